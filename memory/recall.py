"""Recall: the user's older messages most relevant to a prompt, for the next request.

A per-user setting (in the user's settings hash, field `recall_scope`) says where to look:
`off`, `conversation` (this conversation, the default) or `all` (all the user's
conversations). Messages already in the request's window are never recalled. Where the index
cannot answer (a Redis Cluster without a search coordinator, clear-all running), recall adds
nothing and says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from memory.connection import RedisClient
from memory.errors import storage_errors
from memory.hybrid import Candidate
from memory.keys import KeyLayout, conversation_of_tag, user_tag
from memory.models import ChatMemoryError, IndexUnavailable, InvalidInput, Role
from memory.store import ChatMemory
from memory.vectors import EmbedderUnavailable, text_to_embed

RECALL_FIELD = "recall_scope"


class RecallScope(StrEnum):
    OFF = "off"
    CONVERSATION = "conversation"
    ALL = "all"


DEFAULT_RECALL_SCOPE = RecallScope.CONVERSATION


@dataclass(frozen=True)
class RecalledMessage:
    """One earlier message recalled into a request; `seq` opens it (`?c=<cid>&m=<seq>`)."""

    key: str
    conversation_id: str
    seq: int
    role: Role
    content: str
    created_at: float
    token_count: int  # as stored with the message
    score: float


@dataclass(frozen=True)
class RecallResult:
    scope: RecallScope
    messages: tuple[RecalledMessage, ...] = ()
    unavailable: str | None = None  # why nothing could be recalled, when that is the case


class Recall:
    def __init__(self, memory: ChatMemory, redis_client: RedisClient, index_name: str,
                 *, max_messages: int = 5) -> None:  # fmt: skip
        self._memory = memory
        self._redis = redis_client
        self._layout = KeyLayout(index_name)
        self.max_messages = max_messages

    @storage_errors
    def scope(self, user_id: str) -> RecallScope:
        stored = self._redis.hget(self._layout.settings_key(user_tag(user_id)), RECALL_FIELD)
        try:
            return RecallScope(str(stored)) if stored else DEFAULT_RECALL_SCOPE
        except ValueError:
            return DEFAULT_RECALL_SCOPE

    @storage_errors
    def set_scope(self, user_id: str, scope: RecallScope | str) -> RecallScope:
        try:
            checked = RecallScope(scope)
        except ValueError:
            choices = ", ".join(s.value for s in RecallScope)
            raise InvalidInput(f"Recall is one of {choices}; got {scope!r}.") from None
        self._redis.hset(self._layout.settings_key(user_tag(user_id)), RECALL_FIELD, checked)
        return checked

    def find(
        self,
        user_id: str,
        conversation_id: str,
        prompt: str,
        *,
        exclude_keys: Iterable[str] = (),
        scope: RecallScope | None = None,
        vector_of: Callable[[], np.ndarray | None] | None = None,
    ) -> RecallResult:
        """The messages most relevant to `prompt` in the user's chosen scope, best first,
        none of `exclude_keys` (the window). Never raises for an unavailable index, embedder
        or storage: the result is then empty (with the reason) or ranked by words alone, and
        the request goes without it. `vector_of` gives the prompt's vector when the caller
        shares one embedding between recall and memories."""
        try:
            scope = scope or self.scope(user_id)
        except ChatMemoryError as error:
            return RecallResult(DEFAULT_RECALL_SCOPE, unavailable=f"Recall is unavailable: {error}")
        if scope is RecallScope.OFF or not self.max_messages:
            return RecallResult(scope)
        vector = vector_of() if vector_of is not None else self._embedded(prompt)
        try:
            found = self._memory.ranked_messages(
                user_id,
                prompt,
                conversation_id=conversation_id if scope is RecallScope.CONVERSATION else None,
                limit=self.max_messages,
                exclude_keys=frozenset(exclude_keys),
                query_vector=vector,
                embed_query=False,
            )
        except IndexUnavailable as error:
            return RecallResult(scope, unavailable=str(error).replace("Search", "Recall", 1))
        except ChatMemoryError as error:
            return RecallResult(scope, unavailable=f"Recall is unavailable: {error}")
        return RecallResult(scope, _recalled(user_tag(user_id), found))

    def _embedded(self, prompt: str) -> np.ndarray | None:
        vectors = self._memory.vectors
        if vectors is None:
            return None
        try:
            return vectors.embedder.embed([text_to_embed(prompt)])[0]
        except EmbedderUnavailable:
            return None


def _recalled(tag: str, found: list[Candidate]) -> tuple[RecalledMessage, ...]:
    recalled = []
    for candidate in found:
        cid = conversation_of_tag(tag, candidate.session_tag)
        if cid is None or candidate.role not in (Role.USER, Role.ASSISTANT):
            continue
        recalled.append(
            RecalledMessage(
                key=candidate.key,
                conversation_id=cid,
                seq=candidate.seq,
                role=Role(candidate.role),
                content=candidate.content,
                created_at=candidate.created_at,
                token_count=candidate.token_count,
                score=candidate.score,
            )
        )
    return tuple(recalled)
