"""Bytes of Redis memory per stored message, measured two ways.

- `used_memory` delta: INFO memory `used_memory` after loading a phase's messages minus before,
  divided by the messages loaded. Everything a message costs: the hash, its timeline entry and
  its share of the RediSearch index (module allocations count in used_memory), plus allocator
  and dict-growth effects. This is the number to plan capacity with.
- `MEMORY USAGE` sampling: mean of `MEMORY USAGE <key> SAMPLES 0` over random message hashes
  (the hash alone), timeline bytes per entry for sampled users, and FT.INFO's
  `total_index_memory_sz_mb` per document for the index share.
"""

from __future__ import annotations

import random
from typing import Any

import redis

from bench.population import BenchUser
from memory.keys import KeyLayout


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def index_info(client: redis.Redis, index: str) -> dict[str, Any]:
    info = client.execute_command("FT.INFO", index)
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2], strict=False))
    return dict(info)


def index_bytes_per_doc(client: redis.Redis, index: str) -> float:
    info = index_info(client, index)
    docs = int(info["num_docs"])
    return float(info["total_index_memory_sz_mb"]) * 2**20 / docs if docs else 0.0


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def sample_project(
    client: redis.Redis, layout: KeyLayout, users: list[BenchUser], samples: int, rng: random.Random
) -> dict[str, float]:
    chosen = [rng.choice(users) for _ in range(samples)]
    hashes: list[int] = []
    per_entry: list[float] = []
    for user in chosen:
        timeline = layout.timeline_key(user.tag)
        key = client.zrandmember(timeline)
        if isinstance(key, str):
            hashes.append(int(client.memory_usage(key, samples=0) or 0))
    for user in {u.user_id: u for u in chosen}.values():
        timeline = layout.timeline_key(user.tag)
        entries = int(client.zcard(timeline))
        if entries:
            per_entry.append(int(client.memory_usage(timeline, samples=0) or 0) / entries)
    return {
        "hash_bytes_memory_usage": round(_mean(hashes), 1),
        "timeline_bytes_per_message": round(sum(per_entry) / len(per_entry), 1)
        if per_entry
        else 0.0,
    }


def sample_demo(client: redis.Redis, prefix: str, samples: int) -> dict[str, float]:
    hashes: list[int] = []
    cursor = 0
    while len(hashes) < samples:
        cursor, keys = client.scan(cursor, match=f"{prefix}:*", count=max(samples, 100))
        hashes += [int(client.memory_usage(key, samples=0) or 0) for key in keys]
        if cursor == 0:
            break
    return {"hash_bytes_memory_usage": round(_mean(hashes[:samples]), 1)}
