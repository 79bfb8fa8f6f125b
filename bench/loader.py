"""Bulk loading with pipelined raw commands, in exactly the layouts the two writers produce.

- the project's: what `memory/lua/append.lua` writes for each `ChatMemory.append` (message hash
  with the same fields in the same order, timeline entry scored by sequence number, settings
  with `seq`, `user_id` and usage totals);
- the demo's: what redisvl `MessageHistory.add_message` writes (hash `<prefix>:<entry_id>` with
  `entry_id`, `role`, `content`, `session_tag`, `timestamp`), a system message first.

`bench.verify` proves both against the real writers before any figure is taken.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import redis
from redis.typing import EncodableT, FieldT

from bench.corpus import SYSTEM_TEXT, Corpus, SyntheticMessage
from bench.population import BenchUser
from memory.keys import KeyLayout

_FLUSH_EVERY = 2000
_ZADD_CHUNK = 1000


def project_fields(
    message: SyntheticMessage, key: str, layout: KeyLayout, tag: str, seq: int, now_ms: int,
    encoding: str,
) -> dict[FieldT, EncodableT]:  # fmt: skip
    """The message hash append.lua writes, field for field."""
    fields: dict[FieldT, EncodableT] = {
        "entry_id": key.removeprefix(layout.message_prefix + ":"),
        "role": message.role.value,
        "content": message.content,
        "session_tag": tag,
        "timestamp": seq,
        "created_at": f"{now_ms / 1000:.3f}",
        "token_count": message.token_count,
        "token_encoding": encoding,
    }
    if message.usage is not None:
        fields["metadata"] = json.dumps(
            {
                "usage": {
                    "prompt_tokens": message.usage.prompt_tokens,
                    "completion_tokens": message.usage.completion_tokens,
                }
            }
        )
    return fields


class _Batcher:
    """Pipelines of `_FLUSH_EVERY` commands; one executes in a worker thread while the next is
    being built, so client and server work overlap."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-load")
        self._in_flight: Future[list[object]] | None = None
        self.pipe = client.pipeline(transaction=False)

    def maybe_flush(self) -> None:
        if len(self.pipe) >= _FLUSH_EVERY:
            self._submit()

    def _submit(self) -> None:
        if self._in_flight is not None:
            self._in_flight.result()
        self._in_flight = self._worker.submit(self.pipe.execute)
        self.pipe = self._client.pipeline(transaction=False)

    def close(self) -> None:
        if len(self.pipe):
            self._submit()
        if self._in_flight is not None:
            self._in_flight.result()
        self._worker.shutdown()


def load_project(
    client: redis.Redis,
    layout: KeyLayout,
    corpus: Corpus,
    users: Iterable[BenchUser],
    encoding: str,
) -> int:
    """Write every message of `users` as ChatMemory.append would; return the count."""
    batch = _Batcher(client)
    written = 0
    base_ms = int(time.time() * 1000) - 10_000_000
    for user in users:
        members: dict[str, int] = {}
        prompt_tokens = completion_tokens = replies = stored_bytes = 0
        for k in range(user.history):
            message = corpus.message(user.index, k)
            key = layout.new_message_key(user.tag)
            fields = project_fields(message, key, layout, user.tag, k + 1, base_ms + k, encoding)
            batch.pipe.hset(key, mapping=fields)
            stored_bytes += len(str(fields["content"]).encode()) + len(
                str(fields.get("metadata", "")).encode()
            )
            members[key] = k + 1
            if message.usage is not None:
                prompt_tokens += message.usage.prompt_tokens
                completion_tokens += message.usage.completion_tokens
                replies += 1
            batch.maybe_flush()
        settings: dict[FieldT, EncodableT] = {
            "seq": user.history,
            "user_id": user.user_id,
            "stored_bytes": stored_bytes,
            "registered": 1,
        }
        batch.pipe.zadd(layout.user_registry_key, {user.tag: base_ms}, nx=True)
        if replies:
            settings |= {
                "usage_prompt_tokens": prompt_tokens,
                "usage_completion_tokens": completion_tokens,
                "usage_replies": replies,
            }
        batch.pipe.hset(layout.settings_key(user.tag), mapping=settings)
        items = list(members.items())
        for start in range(0, len(items), _ZADD_CHUNK):
            batch.pipe.zadd(layout.timeline_key(user.tag), dict(items[start : start + _ZADD_CHUNK]))
        written += user.history
        batch.maybe_flush()
    batch.close()
    return written


def demo_fields(
    session_tag: str, role: str, content: str, timestamp: float
) -> tuple[str, dict[FieldT, EncodableT]]:
    """A redisvl ChatMessage as MessageHistory stores it: (entry_id, hash fields)."""
    entry_id = f"{session_tag}:{timestamp}:{uuid.uuid4().hex[:8]}"
    return entry_id, {
        "entry_id": entry_id,
        "role": role,
        "content": content,
        "session_tag": session_tag,
        "timestamp": timestamp,
    }


def load_demo(client: redis.Redis, prefix: str, corpus: Corpus, users: Iterable[BenchUser]) -> int:
    """Write each user's system message then their messages as the demo stores them; return
    the number of non-system messages (the same count as the project holds)."""
    batch = _Batcher(client)
    written = 0
    base = time.time() - 20_000
    for user in users:
        texts = [("system", SYSTEM_TEXT)]
        texts += [
            (m.role.value, m.content)
            for m in (corpus.message(user.index, k) for k in range(user.history))
        ]
        for position, (role, content) in enumerate(texts):
            entry_id, fields = demo_fields(user.user_id, role, content, base + position / 1000)
            batch.pipe.hset(f"{prefix}:{entry_id}", mapping=fields)
            batch.maybe_flush()
        written += user.history
    batch.close()
    return written
