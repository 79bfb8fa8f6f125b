"""Redis at scale (not in CI): many users and one very long history, on a Redis of its own.

    python -m bench.scale [--users 100000] [--messages 20] [--big-user 100000] [--chars 600]

Loads users x messages, plus one user with `--big-user` messages, through the project's append
script (pipelined), then measures in one run: a turn's append and read against the raw floor
(interleaved); while each bulk operation runs, the worst PING another process sees, the
longest command in SLOWLOG and what stalled Redis (latency monitor); bytes per message with
the lean index and with redisvl's default (full-text) one over the same documents; restart
until a read answers and until indexed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

import redis
from redis.typing import EncodableT, FieldT
from redisvl.extensions.message_history.schema import MessageHistorySchema
from redisvl.index import SearchIndex

from bench.contenders import CONVERSATION, Floor
from bench.conversations import load
from bench.corpus import SYSTEM_TEXT
from bench.report import table
from bench.server import embedded_redis
from bench.timing import Interleaved
from memory import ChatMemory, Role, StorageLimits, SystemInstruction
from memory.embedded import EmbeddedRedis
from memory.keys import user_tag

SYSTEM = SystemInstruction(text=SYSTEM_TEXT, preset="standard")
BIG_USER = "big-user"
NAME = "scale"
BULK_WORK = {
    "retention_big_user": "retention change, big user",
    "keep_forever_big_user": "keep forever, big user",
    "clear_big_user": "clear, big user",
    "expiry_big_user": "first read after expiry, big user",
    "clear_all": "clear-all",
    "after_clear_all": "the 70 s after clear-all (index GC)",
}


def timed_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def floor_append(client: redis.Redis, memory: ChatMemory, tag: str) -> None:
    """The floor's write: the same kind of indexed hash plus a sorted-set entry, one MULTI."""
    key = memory._layout.message_key(tag, uuid.uuid4().hex)
    pipe = client.pipeline(transaction=True)
    fields: dict[FieldT, EncodableT] = {"role": "user", "content": "How are you?", "timestamp": 1}
    pipe.hset(key, mapping=fields | {"session_tag": tag})
    pipe.zadd(f"{NAME}:floor:{{{tag}}}", {key: time.time()})
    pipe.execute()


def turns(memory: ChatMemory, client: redis.Redis, users: list[str], n: int) -> list[dict]:
    """A turn's append and read (window 5, page 50) against the floor's, on the same user."""
    floor = Floor(client, NAME)
    contenders: dict[str, Callable[[str], object]] = {
        "append.project": lambda user: memory.append(
            user, Role.USER, "How are you?", conversation_id=CONVERSATION
        ),
        "read.project": lambda user: memory.conversation(user, CONVERSATION, window_size=5),
        "append.floor": lambda user: floor_append(client, memory, user_tag(user)),
        "read.floor": lambda user: floor.read(user_tag(user), 50),
    }
    timing = Interleaved(contenders, lambda rng: rng.choice(users), 20, n)
    return [asdict(row) for row in timing.run(random.Random(2), "turn", 0, 5)]


def _probe(port: int, stop: Any, out: Connection) -> None:
    client, worst = redis.Redis(port=port), 0.0
    while not stop.is_set():
        worst = max(worst, timed_ms(client.ping))
        time.sleep(0.0005)
    out.send(worst)


def observed(client: redis.Redis, port: int, action: Callable[[], object]) -> dict[str, Any]:
    """Run `action` while another process PINGs: its worst latency, the longest command Redis
    logged (SLOWLOG, every command over 1 ms) and what stalled the server (the latency monitor's
    worst events over 5 ms: aof-fsync-always, fork, module-acquire-GIL, command...)."""
    client.config_set("slowlog-log-slower-than", 1000)
    client.config_set("slowlog-max-len", 100_000)  # the default keeps only the last 128
    client.config_set("latency-monitor-threshold", 5)
    client.slowlog_reset()
    client.execute_command("LATENCY", "RESET")
    stop = multiprocessing.Event()
    receive, send = multiprocessing.Pipe(duplex=False)
    prober = multiprocessing.Process(target=_probe, args=(port, stop, send))
    prober.start()
    time.sleep(0.2)
    took = timed_ms(action)
    stop.set()
    worst_ping = receive.recv()
    prober.join()
    entries = client.slowlog_get(100_000)
    events = sorted(client.execute_command("LATENCY", "LATEST"), key=lambda e: -int(e[3]))
    slowest = max(entries, key=lambda e: e["duration"], default=None)
    return {
        "took_ms": took,
        "max_ping_ms": worst_ping,
        "longest_command_ms": slowest["duration"] / 1000 if slowest else 0.0,
        "longest_command": str(slowest["command"][:60]) if slowest else "",
        "commands_over_10ms": sum(e["duration"] > 10_000 for e in entries),
        "stalls": ", ".join(f"{e[0].decode()} {e[3]}" for e in events[:3]),
    }


def wait_indexed(client: redis.Redis, name: str) -> None:
    while int(client.ft(name).info().get("indexing", 0)):
        time.sleep(0.2)


def index_bytes(client: redis.Redis, name: str) -> float:
    return float(client.ft(name).info()["total_index_memory_sz_mb"]) * 2**20


def memory_per_message(client: redis.Redis, total: int) -> dict[str, float]:
    """The lean index and redisvl's default (full-text) schema over the same documents, as
    FT.INFO reports them; data = INFO used_memory minus both."""
    full = SearchIndex(MessageHistorySchema.from_params(f"{NAME}-full", f"{NAME}:msg"), client)
    full.create()
    wait_indexed(client, NAME)
    wait_indexed(client, f"{NAME}-full")
    client.execute_command("MEMORY", "PURGE")
    used = int(client.info("memory")["used_memory"])
    lean, full_text = index_bytes(client, NAME), index_bytes(client, f"{NAME}-full")
    full.delete(drop=False)
    data = used - lean - full_text
    return {
        "data_only": data / total, "lean_index": lean / total, "full_index": full_text / total,
        "total_lean": (data + lean) / total, "total_full": (data + full_text) / total,
    }  # fmt: skip


def restart_to_serving(server: EmbeddedRedis) -> dict[str, float]:
    """From `redis-server` start (after an AOF rewrite) until a conversation read answers,
    and until the index has caught up."""
    client = redis.Redis(port=server.port)
    client.bgrewriteaof()
    persistence = ("aof_rewrite_in_progress", "aof_rewrite_scheduled")
    while any(int(client.info("persistence")[field]) for field in persistence):
        time.sleep(0.2)
    server.stop()
    started = time.perf_counter()
    server.ensure_running(timeout=3600)
    reader = redis.Redis(port=server.port, decode_responses=True)
    ChatMemory(reader, default_system=SYSTEM, index_name=NAME).conversation(BIG_USER, CONVERSATION)
    serving = time.perf_counter() - started
    wait_indexed(client, NAME)
    return {"serving_s": serving, "index_ready_s": time.perf_counter() - started}


def run(args: argparse.Namespace, server: EmbeddedRedis) -> dict[str, Any]:
    raw = redis.Redis(port=server.port)
    raw.config_set("appendfsync", "everysec")
    client = redis.Redis(port=server.port, decode_responses=True, protocol=2)
    limits = StorageLimits(max_messages=10**9, max_bytes=10**12)
    memory = ChatMemory(client, default_system=SYSTEM, index_name=NAME, limits=limits)
    users = [f"user{n}@example.com" for n in range(args.users)]
    total = args.users * args.messages + args.big_user
    started = time.perf_counter()
    plan = [(u, CONVERSATION, args.messages) for u in users]
    load(memory, client, [*plan, (BIG_USER, CONVERSATION, args.big_user)], args.chars)
    report: dict[str, Any] = {
        "config": vars(args), "messages": total, "load_s": time.perf_counter() - started
    }  # fmt: skip
    wait_indexed(client, NAME)
    sample = random.Random(1).sample(users, min(200, len(users)))
    report["turn"] = turns(memory, client, sample, args.turns)
    report["bytes_per_message"] = memory_per_message(client, total)
    report["restart"] = restart_to_serving(server)
    raw.config_set("appendfsync", args.appendfsync)  # the restart brought back `always`
    memory = ChatMemory(client, default_system=SYSTEM, index_name=NAME)

    def watch(key: str, action: Callable[[], object]) -> None:
        report[key] = observed(raw, server.port, action)

    watch("retention_big_user", lambda: memory.set_retention(BIG_USER, 3600))
    watch("keep_forever_big_user", lambda: memory.set_retention(BIG_USER, None))
    watch("clear_big_user", lambda: memory.clear(BIG_USER, CONVERSATION))
    load(memory, client, [(BIG_USER, CONVERSATION, args.big_user)], args.chars)
    ttl = int(2 * report["retention_big_user"]["took_ms"] / 1000) + 5  # outlasts applying it
    started = time.monotonic()
    memory.set_retention(BIG_USER, ttl)
    time.sleep(max(0.0, started + ttl + 1 - time.monotonic()))
    watch("expiry_big_user", lambda: memory.conversation(BIG_USER, CONVERSATION))
    watch("clear_all", memory.clear_all)
    watch("after_clear_all", lambda: time.sleep(70))  # RediSearch's GC runs every 30-59 s
    report["clear_all_left"] = memory.count(users[0], CONVERSATION) + memory.count(
        BIG_USER, CONVERSATION
    )
    return report


def format_report(report: dict[str, Any]) -> str:
    config, mem, restart = report["config"], report["bytes_per_message"], report["restart"]
    turn = {(row["measure"], row["contender"]): row for row in report["turn"]}

    def vs_floor(op: str, quantile: str) -> str:
        return f"{turn[op, 'project'][quantile] / turn[op, 'floor'][quantile]:.2f}x"

    return "\n\n".join([
        f"{config['users']:,} users x {config['messages']} messages + one user with "
        f"{config['big_user']:,} ({report['messages']:,} messages, ~{config['chars']} chars "
        f"each; loaded in {report['load_s']:.0f} s)",
        table("TURN (us; floor: HSET + ZADD in one MULTI, one FT.SEARCH LIMIT 50)",
              ["op", "project p50", "project p99", "floor p50", "floor p99", "p50 /floor",
               "p99 /floor"],
              [[op, *(turn[op, c][q] for c in ("project", "floor") for q in ("p50_us", "p99_us")),
                vs_floor(op, "p50_us"), vs_floor(op, "p99_us")] for op in ("read", "append")]),
        table(f"BULK WORK (ms) while another process PINGs (appendfsync {config['appendfsync']});"
              " longest command from SLOWLOG; worst stalls from the latency monitor",
              ["operation", "took", "max PING", "longest command", "commands over 10 ms",
               "stalls"],
              [[label, *(report[key][field] for field in ("took_ms", "max_ping_ms",
                "longest_command_ms", "commands_over_10ms", "stalls"))]
               for key, label in BULK_WORK.items()]),
        table("BYTES PER MESSAGE", ["data", "lean index", "full-text index", "data + lean index",
              "data + full-text index"], [[mem[key] for key in ("data_only", "lean_index",
              "full_index", "total_lean", "total_full")]]),
        f"messages left after clear-all: {report['clear_all_left']}\nrestart to serving "
        f"{restart['serving_s']:.1f} s, to index ready {restart['index_ready_s']:.1f} s",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--big-user", type=int, default=100_000)
    parser.add_argument("--chars", type=int, default=600)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument(
        "--appendfsync",
        choices=["always", "everysec", "no"],
        default="everysec",
        help="during bulk work; everysec = Azure Managed Redis's AOF every 1s",
    )
    args = parser.parse_args()
    with embedded_redis() as server:
        report = run(args, server)
    print(json.dumps(report, indent=1, default=str))
    print(format_report(report))


if __name__ == "__main__":
    main()
