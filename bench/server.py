"""The Redis the benchmark runs against: its own embedded server, or one given by URL."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from memory.embedded import EmbeddedRedis


@dataclass(frozen=True)
class Target:
    url: str
    owned: bool
    """True when the benchmark started the server (and may tune and discard it)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def redis_target(url: str | None) -> Iterator[Target]:
    """Yield `url` as is, or start an embedded Redis on a free port with a temporary data
    directory, stopped and deleted on exit."""
    if url is not None:
        yield Target(url=url, owned=False)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    server = EmbeddedRedis(port=free_port(), data_dir=data_dir)
    try:
        yield Target(url=server.ensure_running(), owned=True)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def tune_owned_server(client: redis.Redis) -> dict[str, str]:
    """Turn off automatic AOF rewrites on our own server only.

    Loading ~2M documents would otherwise fork a rewrite of the whole dataset several times
    during the measurements (2 cores). Durability stays as the app runs it:
    `appendonly yes`, `appendfsync always`.
    """
    client.config_set("auto-aof-rewrite-percentage", 0)
    return {
        key: str(value)
        for key, value in client.config_get("append*").items()
        if key in ("appendonly", "appendfsync")
    } | {"auto-aof-rewrite-percentage": "0"}


def server_versions(client: redis.Redis) -> dict[str, str]:
    info = client.info("server")
    modules = {str(entry["name"]): int(entry["ver"]) for entry in client.module_list()}
    search = modules.get("search", 0)
    return {
        "redis": str(info["redis_version"]),
        "redisearch": f"{search // 10000}.{search // 100 % 100}.{search % 100}",
    }


@contextmanager
def bulk_load_durability(client: redis.Redis, owned: bool) -> Iterator[None]:
    """While bulk loading our own server, let the kernel flush the AOF (`appendfsync no`):
    loading is setup, and an fsync per 16 KB read would make it wait on the disk. The app's
    setting (`always`) is restored before anything is measured."""
    if not owned:
        yield
        return
    previous = str(client.config_get("appendfsync")["appendfsync"])
    client.config_set("appendfsync", "no")
    try:
        yield
    finally:
        client.config_set("appendfsync", previous)


def drop_bench_data(client: redis.Redis, names: tuple[str, ...]) -> None:
    """Delete the indexes and every key a run made on a server it does not own."""
    for name in names:
        with contextlib.suppress(redis.ResponseError):
            client.execute_command("FT.DROPINDEX", name, "DD")
        for key in client.scan_iter(match=f"{name}:*", count=1000):
            client.delete(key)
