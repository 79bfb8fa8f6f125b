"""Redis at scale: the memory layer with many users and one very long history (not in CI).

    python -m bench.scale [--users 100000] [--messages 20] [--big-user 100000] [--chars 600]

Starts its own Redis (memory.embedded, temporary directory), loads users x messages through
the project's append script (pipelined) plus one user with `--big-user` messages, then
measures side by side in one run:
- a chat turn (append prompt, read the page, append reply): p50/p99 against the raw-command
  floor (the same writes as plain HSET + ZADD in one pipeline; the read as one FT.SEARCH);
- what another client sees (max PING latency, from a separate process) and the longest single
  command Redis ran (SLOWLOG) while clear-all, a retention change, expiry pruning and a clear
  of the big user run;
- bytes per message: data alone, with the lean index, and with redisvl's default (full-text)
  index built over the same documents;
- restart-to-serving: from `redis-server` start until a conversation read answers, and until
  the index has caught up.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis
from redisvl.extensions.message_history.schema import MessageHistorySchema
from redisvl.index import SearchIndex

from memory import ChatMemory, Role, StorageLimits, SystemInstruction
from memory.embedded import EmbeddedRedis
from memory.keys import user_tag
from tests.conftest import free_port

SYSTEM = SystemInstruction(text="You are a helpful assistant.", preset="standard")
WORDS = [f"w{n:x}" for n in range(5000)]
BIG_USER = "big-user"


def text(rng: random.Random, chars: int) -> str:
    """About `chars` characters of words from a 5,000-word vocabulary (so a full-text index
    has a realistic number of terms to hold)."""
    return " ".join(rng.choices(WORDS, k=max(1, chars // 5)))


def load(memory: ChatMemory, client: redis.Redis, plan: list[tuple[str, int]], chars: int) -> None:
    """Every message through the project's append script, 1,000 per pipeline."""
    rng = random.Random(7)
    pipe = client.pipeline(transaction=False)
    for user, count in plan:
        tag = user_tag(user)
        for index in range(count):
            key = memory._layout.message_key(tag, uuid.uuid4().hex)
            role = "user" if index % 2 == 0 else "assistant"
            args = [
                role,
                text(rng, chars),
                tag,
                150,
                "o200k_base",
                "",
                "",
                "",
                user,
                key.rsplit(":", 1)[1],
                10**9,
                10**12,
                200,
            ]
            memory._append(keys=[*memory._user_keys(tag), key], args=args, client=pipe)
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.zadd(memory._layout.user_registry_key, {tag: 0}, nx=True)
        pipe.hset(memory._layout.settings_key(tag), "registered", 1)
    pipe.execute()


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def raw_append(client: redis.Redis, memory: ChatMemory, tag: str) -> None:
    """The floor's write: the same kind of indexed hash plus a sorted-set entry, one MULTI."""
    layout = memory._layout
    key = layout.message_key(tag, uuid.uuid4().hex)
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        key, mapping={"role": "user", "content": "How are you?", "session_tag": tag, "timestamp": 1}
    )
    pipe.zadd(f"{layout.index_name}:floor:{{{tag}}}", {key: time.time()})
    pipe.execute()


def raw_read(client: redis.Redis, memory: ChatMemory, tag: str) -> None:
    """The floor's read: one FT.SEARCH for the user's newest 50 messages."""
    client.execute_command(
        "FT.SEARCH", memory._layout.index_name, f"@session_tag:{{{tag}}}",
        "SORTBY", "timestamp", "DESC", "RETURN", 3, "role", "content", "timestamp",
        "LIMIT", 0, 50,
    )  # fmt: skip


def turns(memory: ChatMemory, client: redis.Redis, users: list[str], n: int) -> dict[str, Any]:
    """Interleaved per iteration: the project's turn, then the floor's, on the same user."""
    calls: dict[str, Callable[[str], object]] = {
        "append": lambda user: memory.append(user, Role.USER, "How are you?"),
        "read": lambda user: memory.conversation(user, window_size=5),
        "floor_append": lambda user: raw_append(client, memory, user_tag(user)),
        "floor_read": lambda user: raw_read(client, memory, user_tag(user)),
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(n):
        for name, call in calls.items():
            samples[name].append(timed(partial(call, users[i % len(users)])))
    result: dict[str, Any] = {}
    for op in ("append", "read"):
        (p50, p99), (f50, f99) = percentiles(samples[op]), percentiles(samples[f"floor_{op}"])
        result[op] = {
            "p50_ms": p50, "p99_ms": p99, "floor_p50_ms": f50, "floor_p99_ms": f99,
            "ratio_p50": p50 / f50, "ratio_p99": p99 / f99,
        }  # fmt: skip
    return result


def _probe(port: int, stop: Any, out: Connection) -> None:
    client = redis.Redis(port=port)
    worst = 0.0
    while not stop.is_set():
        worst = max(worst, timed(client.ping))
        time.sleep(0.0005)
    out.send(worst)


def observed(client: redis.Redis, port: int, action: Callable[[], object]) -> dict[str, float]:
    """Run `action` while another process PINGs: its worst latency, and the longest command
    Redis logged (SLOWLOG, every command over 1 ms)."""
    client.config_set("slowlog-log-slower-than", 1000)
    client.slowlog_reset()
    stop = multiprocessing.Event()
    receive, send = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.Process(target=_probe, args=(port, stop, send))
    prober.start()
    time.sleep(0.2)
    took = timed(action)
    stop.set()
    worst_ping = receive.recv()
    prober.join()
    entries = client.slowlog_get(1000)
    slowest = max(entries, key=lambda e: e["duration"], default=None)
    return {
        "took_ms": took,
        "max_ping_ms": worst_ping,
        "longest_command_ms": slowest["duration"] / 1000 if slowest else 0.0,
        "longest_command": str(slowest["command"][:60]) if slowest else "",
        "commands_over_10ms": sum(e["duration"] > 10_000 for e in entries),
    }


def wait_indexed(client: redis.Redis, name: str) -> None:
    while int(client.ft(name).info().get("indexing", 0)):
        time.sleep(0.2)


def index_bytes(client: redis.Redis, name: str) -> float:
    return float(client.ft(name).info()["total_index_memory_sz_mb"]) * 2**20


def memory_per_message(client: redis.Redis, name: str, prefix: str, total: int) -> dict[str, Any]:
    """Side by side over the same documents: the lean index and redisvl's default (full-text)
    schema, each as RediSearch reports it (FT.INFO); data = INFO used_memory minus both."""
    full = SearchIndex(MessageHistorySchema.from_params(f"{name}-full", prefix), client)
    full.create()
    wait_indexed(client, name)
    wait_indexed(client, f"{name}-full")
    client.execute_command("MEMORY", "PURGE")
    used = int(client.info("memory")["used_memory"])
    lean, full_text = index_bytes(client, name), index_bytes(client, f"{name}-full")
    full.delete(drop=False)
    data = used - lean - full_text
    return {
        "data_only": data / total, "lean_index": lean / total, "full_index": full_text / total,
        "total_lean": (data + lean) / total, "total_full": (data + full_text) / total,
    }  # fmt: skip


def restart_to_serving(server: EmbeddedRedis, name: str) -> dict[str, float]:
    client = redis.Redis(port=server.port)
    client.bgrewriteaof()
    while int(client.info("persistence")["aof_rewrite_in_progress"]) or int(
        client.info("persistence")["aof_rewrite_scheduled"]
    ):
        time.sleep(0.2)
    server.stop()
    started = time.perf_counter()
    server.ensure_running(timeout=3600)
    memory = ChatMemory(
        redis.Redis(port=server.port, decode_responses=True), default_system=SYSTEM, index_name=name
    )
    memory.conversation(BIG_USER)
    serving = time.perf_counter() - started
    wait_indexed(client, name)
    return {"serving_s": serving, "index_ready_s": time.perf_counter() - started}


def run(args: argparse.Namespace) -> dict[str, Any]:
    server = EmbeddedRedis(port=free_port(), data_dir=Path(tempfile.mkdtemp(prefix="scale-")))
    server.ensure_running()
    raw = redis.Redis(port=server.port)
    raw.config_set("appendfsync", "everysec")
    client = redis.Redis(port=server.port, decode_responses=True, protocol=2)
    name = "scale"
    memory = ChatMemory(
        client,
        default_system=SYSTEM,
        index_name=name,
        limits=StorageLimits(max_messages=10**9, max_bytes=10**12),
    )
    users = [f"user{n}@example.com" for n in range(args.users)]
    plan = [(u, args.messages) for u in users] + [(BIG_USER, args.big_user)]
    total = args.users * args.messages + args.big_user
    started = time.perf_counter()
    load(memory, client, plan, args.chars)
    report: dict[str, Any] = {
        "config": vars(args),
        "messages": total,
        "load_s": time.perf_counter() - started,
    }
    wait_indexed(client, name)
    sample = random.Random(1).sample(users, min(200, len(users)))
    report["turn"] = turns(memory, client, sample, args.turns)
    report["bytes_per_message"] = memory_per_message(client, name, f"{name}:msg", total)
    report["restart"] = restart_to_serving(server, name)
    memory = ChatMemory(client, default_system=SYSTEM, index_name=name)

    def watch(key: str, action: Callable[[], object]) -> None:
        report[key] = observed(raw, server.port, action)

    watch("retention_big_user", lambda: memory.set_retention(BIG_USER, 3600))
    watch("keep_forever_big_user", lambda: memory.set_retention(BIG_USER, None))
    watch("clear_big_user", lambda: memory.clear(BIG_USER))
    load(memory, client, [(BIG_USER, args.big_user)], args.chars)
    ttl = int(2 * report["retention_big_user"]["took_ms"] / 1000) + 5  # outlasts applying it
    started = time.monotonic()
    memory.set_retention(BIG_USER, ttl)
    time.sleep(max(0.0, started + ttl + 1 - time.monotonic()))
    watch("expiry_big_user", lambda: memory.conversation(BIG_USER))
    watch("clear_all", memory.clear_all)
    report["clear_all_left"] = memory.count(users[0]) + memory.count(BIG_USER)
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)
    return report


def table(report: dict[str, Any]) -> str:
    turn, mem = report["turn"], report["bytes_per_message"]
    rows = [
        f"{report['config']['users']:,} users x {report['config']['messages']} messages + "
        f"one user with {report['config']['big_user']:,} ({report['messages']:,} messages, "
        f"~{report['config']['chars']} chars each; loaded in {report['load_s']:.0f} s)",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    for op in ("read", "append"):
        t = turn[op]
        rows.append(
            f"| turn {op} p50 / p99 | {t['p50_ms']:.2f} / {t['p99_ms']:.2f} ms "
            f"(floor {t['floor_p50_ms']:.2f} / {t['floor_p99_ms']:.2f} ms; "
            f"x{t['ratio_p50']:.2f} / x{t['ratio_p99']:.2f}) |"
        )
    for key, label in (
        ("retention_big_user", "retention change, big user"),
        ("keep_forever_big_user", "keep forever, big user"),
        ("clear_big_user", "clear, big user"),
        ("expiry_big_user", "first read after expiry, big user"),
        ("clear_all", "clear-all"),
    ):
        o = report[key]
        rows.append(
            f"| {label}: took / other client's max PING / longest command | "
            f"{o['took_ms']:,.0f} ms / {o['max_ping_ms']:.1f} ms / "
            f"{o['longest_command_ms']:.1f} ms |"
        )
    rows.append(f"| messages left after clear-all | {report['clear_all_left']} |")
    rows.append(
        f"| bytes per message: data / + lean index / + full-text index | "
        f"{mem['data_only']:,.0f} / {mem['total_lean']:,.0f} / {mem['total_full']:,.0f} "
        f"(index {mem['lean_index']:,.0f} vs {mem['full_index']:,.0f}) |"
    )
    restart = report["restart"]
    rows.append(
        f"| restart to serving / to index ready | {restart['serving_s']:.1f} s / "
        f"{restart['index_ready_s']:.1f} s |"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--big-user", type=int, default=100_000)
    parser.add_argument("--chars", type=int, default=600)
    parser.add_argument("--turns", type=int, default=1000)
    report = run(parser.parse_args())
    print(json.dumps(report, indent=1, default=str))
    print(table(report))


if __name__ == "__main__":
    main()
