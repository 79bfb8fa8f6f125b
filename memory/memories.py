"""Memories: short facts about a user, kept across all their conversations, tied to the
messages they came from.

Each memory is a hash in the user's slot (`<index>:mem:{tag}:<id>`: text, origin, pinned,
state active/superseded, superseded_by/supersedes, its sources as conversation id + seq +
message key, created and last-used times, its float16 vector), listed in a per-user sorted
set, and found by its own small search index (`<index>-memories`: words and vectors, per
user by tag). A message's memories are named in a per-user hash (message key -> memory ids)
so the scripts that remove messages (clear, delete, erase, edit/regenerate, retention) remove
the memories that came only from them in the same atomic step (common.lua forget_sources);
under retention a pinned memory stays, its source marked expired.

A new memory that restates one (memory/memory_rules.py, or vectors nearly identical) is
merged into it (one more source); one that contradicts it replaces it, and the old one stays,
marked superseded, with its own sources.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import redis

from memory.errors import storage_errors
from memory.hybrid import Candidate, HybridSearch, content_words
from memory.keys import KeyLayout, check_conversation_id, user_tag
from memory.memory_rules import Relation, relation
from memory.models import ChatMemoryError, InvalidInput
from memory.scripts import PER_USER, lua_script
from memory.store import ChatMemory
from memory.vectors import EmbedderUnavailable, to_bytes

MAX_MEMORIES = 200  # per user: what a turn's relevance search and the panel list stay within
MAX_MEMORY_CHARS = 300
MERGE_SIMILARITY = 0.9  # cosine: "prefers metric units" / "I prefer metric units" is 0.93
RELEVANT_LIMIT = 8
MEMORY_SETTING = "memory_on"
VECTOR_FIELD = "vec"
# Words every memory and prompt is full of: matching on them would make every memory relevant.
_PERSONAL = "i me my mine myself we us our you your what which who whom should do does did can"
PERSONAL_WORDS = frozenset((_PERSONAL + " could would how get have has am tell about know").split())
_ID = re.compile(r"[0-9a-f]{16}")
_FIELDS = (
    "content", "origin", "pinned", "state", "superseded_by", "supersedes", "sources",
    "created_at", "last_used_ms", "token_count",
)  # fmt: skip


class MemoryFull(ChatMemoryError):
    """The user has as many memories as are kept."""


class AddStatus(StrEnum):
    ADDED = "added"
    MERGED = "merged"  # a restatement: the existing memory gained this source
    REPLACED = "replaced"  # a contradiction: the new one replaced the old (kept, superseded)


@dataclass(frozen=True)
class MemorySource:
    """A message a memory came from; `?c=<conversation_id>&m=<seq>` opens it."""

    conversation_id: str
    seq: int
    expired: bool = False  # a pinned memory outlived it (retention)
    hidden: bool = False  # in a version of its conversation not shown (memory/branches.py)


@dataclass(frozen=True)
class MemoryRecord:
    id: str
    text: str
    origin: str  # "user" (remember this / typed) or "model" (proposed after a reply)
    pinned: bool
    active: bool  # False: superseded by a newer memory that contradicted it
    superseded_by: str | None
    supersedes: str | None
    sources: tuple[MemorySource, ...]
    created_at: float  # seconds
    last_used_at: float | None  # seconds; None: never sent with a request
    token_count: int


@dataclass(frozen=True)
class AddResult:
    status: AddStatus
    memory_id: str
    replaced_id: str | None = None  # the memory a contradiction superseded

    @property
    def message(self) -> str:
        if self.status is AddStatus.MERGED:
            return "You already had that memory: this message was added to its sources."
        if self.status is AddStatus.REPLACED:
            return "Remembered; it replaces an older memory, which is kept as superseded."
        return "Remembered."


def check_memory_id(memory_id: str) -> str:
    if not isinstance(memory_id, str) or not _ID.fullmatch(memory_id):
        raise InvalidInput("A memory id is 16 lowercase hexadecimal characters.")
    return memory_id


def check_memory_text(text: str) -> str:
    if not isinstance(text, str):
        raise InvalidInput("A memory is text.")
    cleaned = " ".join(text.split())
    if any("\ud800" <= character <= "\udfff" for character in cleaned):
        raise InvalidInput(
            "A memory holds half of a character pair (a lone surrogate), which cannot be "
            "stored as text; nothing was saved."
        )
    if not cleaned:
        raise InvalidInput("A memory cannot be empty; nothing was saved.")
    if len(cleaned) > MAX_MEMORY_CHARS:
        raise InvalidInput(
            f"A memory may have at most {MAX_MEMORY_CHARS} characters (this one has "
            f"{len(cleaned):,}); shorten it. Nothing was saved."
        )
    return cleaned


class Memories:
    """One deployment's memories (every user's, each in their own slot)."""

    def __init__(self, memory: ChatMemory, *, max_per_user: int = MAX_MEMORIES) -> None:
        self._memory = memory
        self._redis = memory.redis_client
        self._layout = KeyLayout(memory.index_name)
        self.max_per_user = max_per_user
        self._script = lua_script(self._redis, *PER_USER, "memories.lua")
        self._search = HybridSearch(self._redis, self._layout.memory_index_name)
        self._indexed = memory.search_unavailable is None and self._ensure_index()

    # --- the index -----------------------------------------------------------------------

    def _ensure_index(self) -> bool:
        """Create the memories index when absent; False where none can be made (then memories
        are ranked here, by their words, from the user's capped list)."""
        name = self._layout.memory_index_name
        try:
            self._redis.execute_command("FT.INFO", name)
            return True
        except redis.ResponseError:
            pass
        except redis.RedisError:
            return False
        schema = ["content", "TEXT", "user_tag", "TAG", "state", "TAG", "timestamp", "NUMERIC"]
        vectors = self._memory.vectors
        if vectors is not None:
            dims = str(vectors.embedder.dimensions)
            # Blocks of 256 vectors: the default 1,024 reserves ~0.8 MB before the first memory.
            schema += [VECTOR_FIELD, "VECTOR", "FLAT", "8", "TYPE", "FLOAT16", "DIM", dims]
            schema += ["DISTANCE_METRIC", "COSINE", "BLOCK_SIZE", "256"]
        try:
            self._redis.execute_command(
                "FT.CREATE", name, "ON", "HASH", "PREFIX", "1", self._layout.memory_prefix,
                "SCHEMA", *schema,
            )  # fmt: skip
        except redis.ResponseError as error:
            return "already exists" in str(error).lower()
        except redis.RedisError:
            return False
        return True

    # --- the setting ---------------------------------------------------------------------

    @storage_errors
    def enabled(self, user_id: str) -> bool:
        """Memory on (the default): memories are used in requests and proposed by the model."""
        stored = self._redis.hget(self._layout.settings_key(user_tag(user_id)), MEMORY_SETTING)
        return stored != "0"

    @storage_errors
    def set_enabled(self, user_id: str, on: bool) -> None:
        key = self._layout.settings_key(user_tag(user_id))
        self._redis.hset(key, MEMORY_SETTING, "1" if on else "0")

    # --- changes -------------------------------------------------------------------------

    @storage_errors
    def add(
        self,
        user_id: str,
        text: str,
        *,
        conversation_id: str | None = None,
        seq: int | None = None,
        origin: str = "user",
        restates: str | None = None,
        contradicts: str | None = None,
    ) -> AddResult:
        """Remember `text`, from message `seq` of `conversation_id` when given (it must still
        be stored). `restates` / `contradicts`: a verdict already made (by the model) about
        one of the user's memories; otherwise the rules of memory/memory_rules.py decide."""
        tag, cleaned = user_tag(user_id), check_memory_text(text)
        cid = check_conversation_id(conversation_id) if conversation_id is not None else ""
        if cid and (not isinstance(seq, int) or seq < 1):
            raise InvalidInput("A message is named by its sequence number (1 or more).")
        vector = self._embedded(cleaned)
        merge_into, supersede = self._judged(tag, cleaned, vector, restates, contradicts)
        memory_id = _new_memory_id()
        tokens = self._memory.token_counter.count_text(cleaned)
        blob: bytes | str = to_bytes(vector) if vector is not None else ""
        args: list[bytes | str | int] = [
            "add", memory_id, cleaned, _now_ms(), self.max_per_user, cid, seq or 0, origin,
            merge_into or "", supersede or "", tokens, blob,
        ]  # fmt: skip
        status, stored_id = self._script(keys=self._layout.user_keys(tag), args=args)
        return self._add_result(str(status), str(stored_id), supersede)

    def _add_result(self, status: str, stored_id: str, supersede: str | None) -> AddResult:
        if status == "full":
            raise MemoryFull(
                f"You have {self.max_per_user} memories, the most that are kept; delete some "
                "first. Nothing was saved."
            )
        if status == "nosource":
            raise InvalidInput(
                "That message is no longer stored (deleted or expired); nothing was remembered."
            )
        result = AddStatus(status)
        replaced = supersede if result is AddStatus.REPLACED else None
        return AddResult(result, stored_id, replaced)

    def _judged(
        self,
        tag: str,
        text: str,
        vector: np.ndarray | None,
        restates: str | None,
        contradicts: str | None,
    ) -> tuple[str | None, str | None]:
        """(memory to merge into, memory to supersede): a given verdict about one of this
        user's active memories first, then the rules, then nearly identical vectors."""
        active = {record.id: record for record in self._records(tag) if record.active}
        if restates in active:
            return restates, None
        if contradicts in active:
            return None, contradicts
        for record in active.values():
            found = relation(text, record.text)
            if found is Relation.SAME:
                return record.id, None
            if found is Relation.CONTRADICTS:
                return None, record.id
        for candidate in self._nearest(tag, text, vector):
            if candidate.score >= MERGE_SIMILARITY and candidate.session_tag in active:
                return candidate.session_tag, None
        return None, None

    def _nearest(self, tag: str, text: str, vector: np.ndarray | None) -> list[Candidate]:
        if vector is None or not self._indexed or self._memory.vectors is None:
            return []
        try:
            return self._search.by_vector(_scope(tag, active_only=True), vector, VECTOR_FIELD, 3)
        except redis.ResponseError:
            return []

    @storage_errors
    def edit(self, user_id: str, memory_id: str, text: str) -> None:
        tag, cleaned = user_tag(user_id), check_memory_text(text)
        vector = self._embedded(cleaned)
        blob: bytes | str = to_bytes(vector) if vector is not None else ""
        tokens = self._memory.token_counter.count_text(cleaned)
        args: list[bytes | str | int] = ["edit", check_memory_id(memory_id), cleaned, tokens, blob]
        self._changed(self._script(keys=self._layout.user_keys(tag), args=args))

    @storage_errors
    def delete(self, user_id: str, memory_id: str) -> None:
        args = ["delete", check_memory_id(memory_id)]
        self._changed(self._script(keys=self._layout.user_keys(user_tag(user_id)), args=args))

    @storage_errors
    def pin(self, user_id: str, memory_id: str, pinned: bool) -> None:
        args = ["pin", check_memory_id(memory_id), "1" if pinned else "0"]
        self._changed(self._script(keys=self._layout.user_keys(user_tag(user_id)), args=args))

    @storage_errors
    def mark_used(self, user_id: str, memory_ids: Iterable[str]) -> None:
        ids = [check_memory_id(memory_id) for memory_id in memory_ids]
        if ids:
            keys = self._layout.user_keys(user_tag(user_id))
            self._script(keys=keys, args=["used", _now_ms(), *ids])

    @staticmethod
    def _changed(result: Sequence[Any]) -> None:
        if not int(result[0]):
            raise InvalidInput(
                "That memory no longer exists (deleted, or removed with the message it came "
                "from); nothing was changed."
            )

    # --- reading -------------------------------------------------------------------------

    @storage_errors
    def listed(self, user_id: str) -> list[MemoryRecord]:
        """Every memory of the user, newest first (superseded ones included)."""
        return self._records(user_tag(user_id))

    @storage_errors
    def get(self, user_id: str, memory_id: str) -> MemoryRecord | None:
        found = self._fetch(user_tag(user_id), [check_memory_id(memory_id)])
        return found[0] if found else None

    @storage_errors
    def search(self, user_id: str, text: str, *, limit: int = 20) -> list[MemoryRecord]:
        """The user's memories best matching `text` (words and meaning), superseded included."""
        return self._ranked(user_tag(user_id), text, limit, active_only=False)

    @storage_errors
    def relevant(
        self,
        user_id: str,
        prompt: str,
        *,
        limit: int = RELEVANT_LIMIT,
        vector_of: Callable[[], np.ndarray | None] | None = None,
    ) -> list[MemoryRecord]:
        """The active memories most relevant to `prompt`, best first; none with memory off.
        `vector_of`: the prompt's vector, when the caller shares one embedding."""
        if not self.enabled(user_id):
            return []
        return self._ranked(user_tag(user_id), prompt, limit, active_only=True, vector_of=vector_of)

    def _ranked(
        self,
        tag: str,
        text: str,
        limit: int,
        *,
        active_only: bool,
        vector_of: Callable[[], np.ndarray | None] | None = None,
    ) -> list[MemoryRecord]:
        """Words (those that tell memories apart: not "I", "my", "what") and meaning."""
        words = " ".join(w for w in content_words(text) if w not in PERSONAL_WORDS)
        if not self._indexed:
            return _by_words(self._records(tag), words, limit, active_only)
        embedded = vector_of or (lambda: self._embedded(text))
        vector = embedded() if content_words(text) else None
        scope = _scope(tag, active_only=active_only)
        try:
            if words:
                found = self._search.ranked(
                    scope, words, vector=vector, limit=limit,
                    vector_field=VECTOR_FIELD if vector is not None else None,
                )  # fmt: skip
            elif vector is not None:
                found = self._search.by_vector(scope, vector, VECTOR_FIELD, limit)
            else:
                return []
        except redis.ResponseError:
            return _by_words(self._records(tag), words, limit, active_only)
        return self._fetch(tag, [candidate.session_tag for candidate in found])

    def _records(self, tag: str) -> list[MemoryRecord]:
        ids = self._redis.zrevrange(self._layout.memories_key(tag), 0, self.max_per_user - 1)
        return self._fetch(tag, [str(memory_id) for memory_id in ids])

    def _fetch(self, tag: str, ids: Sequence[str]) -> list[MemoryRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for memory_id in ids:
            pipe.hmget(self._layout.memory_key(tag, memory_id), *_FIELDS)
        rows = pipe.execute() if ids else []
        return [_record(i, row) for i, row in zip(ids, rows, strict=True) if row[0] is not None]

    def _embedded(self, text: str) -> np.ndarray | None:
        vectors = self._memory.vectors
        if vectors is None:
            return None
        try:
            return vectors.embedder.embed([text])[0]
        except EmbedderUnavailable:
            return None


def _scope(tag: str, *, active_only: bool) -> str:
    return f"@user_tag:{{{tag}}} @state:{{active}}" if active_only else f"@user_tag:{{{tag}}}"


def _by_words(
    records: Sequence[MemoryRecord], text: str, limit: int, active_only: bool
) -> list[MemoryRecord]:
    """Ranking where no index answers: how many of the text's words each memory shares."""
    wanted = set(content_words(text))
    scored = []
    for record in records:
        shared = len(wanted & set(content_words(record.text)))
        if shared and (record.active or not active_only):
            scored.append((shared, record.created_at, record))
    scored.sort(key=lambda item: (-item[0], -item[1]))
    return [record for _, _, record in scored[:limit]]


def _record(memory_id: str, row: Sequence[Any]) -> MemoryRecord:
    fields = dict(zip(_FIELDS, row, strict=True))
    used = int(fields["last_used_ms"] or 0)
    return MemoryRecord(
        id=memory_id,
        text=str(fields["content"]),
        origin=str(fields["origin"] or "user"),
        pinned=fields["pinned"] == "1",
        active=fields["state"] != "superseded",
        superseded_by=fields["superseded_by"] or None,
        supersedes=fields["supersedes"] or None,
        sources=_sources(fields["sources"]),
        created_at=float(fields["created_at"] or 0),
        last_used_at=used / 1000 if used else None,
        token_count=int(fields["token_count"] or 0),
    )


def _sources(raw: str | None) -> tuple[MemorySource, ...]:
    try:
        entries = json.loads(raw or "[]")
    except json.JSONDecodeError:
        return ()
    if not isinstance(entries, list):  # cjson encodes an empty table as {}
        return ()
    return tuple(
        MemorySource(
            str(entry["c"]), int(entry["m"]), bool(entry.get("gone")), bool(entry.get("hidden"))
        )
        for entry in entries
        if isinstance(entry, dict) and "c" in entry and "m" in entry
    )


def _new_memory_id() -> str:
    return uuid.uuid4().hex[:16]


def _now_ms() -> int:
    return int(time.time() * 1000)
