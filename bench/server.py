"""The Redis a run uses: an embedded one it owns, or one given by URL that it leaves clean."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import redis

from memory.embedded import EmbeddedRedis, free_port


@contextlib.contextmanager
def embedded_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of our own (AOF, `appendfsync always`, as the app runs it) on a free port and a
    temporary directory, stopped and deleted on exit."""
    server = EmbeddedRedis(port=free_port(), data_dir=Path(tempfile.mkdtemp(prefix="bench-")))
    try:
        server.ensure_running()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


@contextlib.contextmanager
def redis_url(url: str | None) -> Iterator[tuple[str, bool]]:
    """`(url, owned)`: the given Redis, or an embedded one."""
    if url is not None:
        yield url, False
        return
    with embedded_redis() as server:
        yield server.url, True


@contextlib.contextmanager
def bulk_loading(client: redis.Redis, owned: bool) -> Iterator[None]:
    """On our own server only: no AOF rewrite forks during the run, and the kernel flushes the
    AOF while bulk loading (setup, not measured); `appendfsync always` before any timing."""
    if owned:
        client.config_set("auto-aof-rewrite-percentage", 0)
        client.config_set("appendfsync", "no")
    try:
        yield
    finally:
        if owned:
            client.config_set("appendfsync", "always")


def drop_indexes(client: redis.Redis, names: tuple[str, ...]) -> None:
    """Delete the indexes and every key of a run on a server it does not own."""
    for name in names:
        with contextlib.suppress(redis.ResponseError):
            client.execute_command("FT.DROPINDEX", name, "DD")
        for key in client.scan_iter(match=f"{name}:*", count=1000):
            client.delete(key)
