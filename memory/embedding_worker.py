"""The background worker that embeds the backlog, owned by the app process.

One thread per app instance; across instances, a lease in Redis (`embedding_lease_key`, a
TTL its holder renews) lets one embed at a time, so two instances never embed the same
messages twice and a crashed one hands over within the lease time. Each batch is bounded
(`EMBED_BATCH` messages) and followed by a rest as long as it took (at most half a core goes
to embedding); with nothing to do the worker sleeps, or waits for `wake()` (a turn calls it
after storing a message). An unavailable embedder or index only makes it wait
longer (up to a minute); the backlog stays, and `progress()` says so.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

import redis

from memory.connection import RedisClient
from memory.keys import KeyLayout, user_tag
from memory.vector_store import EMBED_BATCH, VectorStore
from memory.vectors import EmbedderUnavailable

LEASE_SECONDS = 30
IDLE_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class WorkerState(StrEnum):
    IDLE = "idle"  # nothing waits, or not started
    EMBEDDING = "embedding"
    OTHER_INSTANCE = "another app instance embeds"
    WAITING = "waiting for the embedder"  # the embedder or the index failed: retried later


@dataclass(frozen=True)
class EmbeddingProgress:
    """What the page can show: how many of the user's messages (and everyone's) wait to be
    embedded in the current space, and what the worker is doing."""

    space: str
    pending: int  # of this user
    pending_all: int
    state: WorkerState
    last_error: str | None = None

    @property
    def done(self) -> bool:
        return self.pending == 0


class EmbeddingWorker:
    def __init__(self, redis_client: RedisClient, layout: KeyLayout, vectors: VectorStore):
        self._redis = redis_client
        self._lease_key = layout.embedding_lease_key
        self._vectors = vectors
        self._token = uuid.uuid4().hex
        self._renew = redis_client.register_script(_RENEW)
        self._release = redis_client.register_script(_RELEASE)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = WorkerState.IDLE
        self.last_error: str | None = None
        self.embedded = 0  # by this instance, since it started

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="embedder", daemon=True)
            self._thread.start()
            # A daemon thread still inside onnxruntime when the interpreter finalises aborts
            # the process ("terminate called without an active exception"): finish first.
            atexit.register(self.stop)

    def stop(self, timeout: float = 5.0) -> None:
        atexit.unregister(self.stop)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with contextlib.suppress(redis.RedisError):
            self._release(keys=[self._lease_key], args=[self._token])

    def wake(self) -> None:
        """New messages were stored: look at the backlog now rather than after the pause."""
        self._wake.set()

    def run_once(self, limit: int = EMBED_BATCH) -> int:
        """One bounded batch if this instance holds the lease; returns messages embedded."""
        if not int(self._renew(keys=[self._lease_key], args=[self._token, LEASE_SECONDS * 1000])):
            self.state = WorkerState.OTHER_INSTANCE
            return 0
        stored = self._vectors.embed_batch(limit)
        self.embedded += stored
        self.state = WorkerState.EMBEDDING if stored else WorkerState.IDLE
        self.last_error = None
        return stored

    def _loop(self) -> None:
        backoff = IDLE_SECONDS
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                if self.run_once():
                    backoff = IDLE_SECONDS
                    # More may wait: rest as long as the batch took, so a long backlog (an
                    # import, a model change) takes at most half a core from the chat.
                    self._stop.wait(time.monotonic() - began)
                    continue
                pause = IDLE_SECONDS
            except (EmbedderUnavailable, redis.RedisError) as error:
                self.state = WorkerState.WAITING
                self.last_error = str(error)
                pause, backoff = backoff, min(backoff * 2, MAX_BACKOFF_SECONDS)
            self._wake.wait(pause)
            self._wake.clear()

    def progress(self, user_id: str | None = None) -> EmbeddingProgress:
        """The backlog as data (two counts from the index; raises redis errors as they are,
        the caller decides how to show them)."""
        everyone = self._vectors.pending()
        mine = self._vectors.pending(user_tag(user_id)) if user_id is not None else everyone
        return EmbeddingProgress(
            space=self._vectors.space,
            pending=mine,
            pending_all=everyone,
            state=self.state,
            last_error=self.last_error,
        )
