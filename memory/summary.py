"""The rolling summary of a conversation's older messages, stored beside the transcript.

Per user: an on/off setting (off by default) in the user's settings hash. Per conversation:
the latest checkpoint in its own hash: the summary text, the last message seq it covers, its
token count and the model that wrote it. The transcript itself is never touched: the
checkpoint only says which messages a request may replace by the summary. The checkpoint
follows the user's retention (it expires with the messages it summarises) and is deleted with
its conversation's history.
"""

from __future__ import annotations

from collections.abc import Callable

from memory.connection import RedisClient
from memory.errors import storage_errors
from memory.keys import KeyLayout, check_conversation_id, user_tag
from memory.models import Summary, SummaryState, summary_state

__all__ = ["Summary", "SummaryState", "SummaryStore"]

_ENABLED_FIELD = "summary_enabled"  # in the settings hash (models.summary_state reads it)
_USERS_PAGE = 500


class SummaryStore:
    """Reads and writes the summary setting and checkpoint; one round trip each."""

    def __init__(self, client: RedisClient, index_name: str) -> None:
        self._redis = client
        self._layout = KeyLayout(index_name)

    def state(self, user_id: str, conversation_id: str) -> SummaryState:
        """The setting and the conversation's checkpoint (ChatMemory.page_view and
        begin_turn return the same with what they read anyway)."""
        tag = user_tag(user_id)
        enabled, fields = self._read_state(tag, check_conversation_id(conversation_id))
        return summary_state(enabled, fields)

    @storage_errors
    def _read_state(self, tag: str, cid: str) -> tuple[str | None, dict[str, str]]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(self._layout.settings_key(tag), _ENABLED_FIELD)
        pipe.hgetall(self._layout.summary_key(tag, cid))
        enabled, fields = pipe.execute()
        return enabled, fields

    def set_enabled(self, user_id: str, enabled: bool) -> None:
        key = self._layout.settings_key(user_tag(user_id))
        self._run(lambda: self._redis.hset(key, _ENABLED_FIELD, "1" if enabled else "0"))

    def save(
        self, user_id: str, conversation_id: str, summary: Summary, ttl_seconds: int | None
    ) -> None:
        key = self._key(user_id, conversation_id)

        def write() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(
                key,
                mapping={
                    "text": summary.text,
                    "covers_seq": summary.covers_seq,
                    "token_count": summary.token_count,
                    "model": summary.model,
                },
            )
            if ttl_seconds:
                pipe.expire(key, ttl_seconds)
            else:
                pipe.persist(key)
            pipe.execute()

        self._run(write)

    def clear(self, user_id: str, conversation_id: str) -> None:
        key = self._key(user_id, conversation_id)
        self._run(lambda: self._redis.delete(key))

    def _key(self, user_id: str, conversation_id: str) -> str:
        return self._layout.summary_key(user_tag(user_id), check_conversation_id(conversation_id))

    @storage_errors
    def clear_all(self) -> None:
        """Every checkpoint of every user's conversations, user by user from the registry and
        each user's conversation list (no keyspace scan)."""
        start = 0
        while tags := self._redis.zrange(
            self._layout.user_registry_key, start, start + _USERS_PAGE - 1
        ):
            for tag in map(str, tags):
                self._clear_user(tag)
            start += _USERS_PAGE

    def _clear_user(self, tag: str) -> None:
        self._redis.delete(self._layout.summary_key(tag))
        start = 0
        while ids := self._redis.zrange(
            self._layout.conversations_key(tag), start, start + _USERS_PAGE - 1
        ):
            self._redis.delete(*[self._layout.summary_key(tag, str(cid)) for cid in ids])
            start += _USERS_PAGE

    @staticmethod
    @storage_errors
    def _run(write: Callable[[], object]) -> None:
        write()
