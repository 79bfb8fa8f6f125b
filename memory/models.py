"""Typed values that cross the memory layer's boundary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, NamedTuple


class Role(StrEnum):
    """Who wrote a stored message. The system instruction is a per-user setting, not a message."""

    USER = "user"
    ASSISTANT = "assistant"


class ChatMemoryError(Exception):
    """Base class of every error the memory layer raises on purpose."""


class InvalidInput(ChatMemoryError, ValueError):
    """The caller passed something the memory layer refuses; the message says what and why."""


class StorageUnavailable(ChatMemoryError):
    """Redis could not be reached after retries; nothing was written by the failed call."""


class WriteOutcomeUnknown(StorageUnavailable):
    """A write was sent but no answer came back (timeout, connection lost): it may or may not
    be stored. Ask again by its id (`ChatMemory.saved_message`), or resend with the same id:
    a message id is stored at most once."""


class StorageFull(ChatMemoryError):
    """Redis is out of memory (`maxmemory` reached); nothing of the refused write is stored."""


class StorageReadOnly(ChatMemoryError):
    """Redis answers read-only (a replica, or a failover in progress); nothing was written."""


class StorageLimitReached(ChatMemoryError):
    """The user's stored history is at a configured cap; the write was refused whole.
    `limit` names the setting (MAX_MESSAGES_PER_USER or MAX_BYTES_PER_USER)."""

    def __init__(self, message: str, *, limit: str, value: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value


class StaleTarget(ChatMemoryError):
    """An action that removes messages (edit, regenerate, clear, delete) named the newest
    message the page showed, and the conversation's newest is another now (a message was
    added or removed since, in another tab or another app instance): nothing was removed.
    `expected` is the seq the page showed, `actual` the newest now (0: none)."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            "The conversation changed since the page showed it (a message was added or "
            "removed, perhaps in another tab), so nothing was removed. Look at it again and "
            "retry if you still want to."
        )
        self.expected = expected
        self.actual = actual


class IndexUnavailable(ChatMemoryError):
    """A feature needs the search index and it cannot answer for every message (for example,
    open-source RediSearch on a Redis Cluster sees only one shard's documents)."""


@dataclass(frozen=True)
class Reservation:
    """Tokens held for one admitted model request until it is settled to its real usage
    (memory/limits.py). `request_id` makes settling it happen once; '' for a reservation
    made before ids existed."""

    user_id: str
    tokens: int
    day: int
    request_id: str = ""


@dataclass(frozen=True)
class StorageLimits:
    """Per-user caps on stored history; a write past either is refused, never trimmed."""

    max_messages: int = 10_000
    max_bytes: int = 20_000_000


@dataclass(frozen=True)
class Usage:
    """Token usage of one reply and how it ended.

    `estimated`: the server reported nothing, these are the app's own counts.
    `estimated_prompt_tokens`: the app's count of a prompt the server did report on, so the
    drift between the two stays visible. `cut_off`: the reply hit its length limit.
    `stopped`: the user stopped it; these count what it had produced.
    """

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    estimated_prompt_tokens: int | None = None
    cut_off: bool = False
    stopped: bool = False

    def as_metadata(self) -> str:
        """The JSON stored in the message's redisvl `metadata` field."""
        fields = asdict(self)
        always = {"prompt_tokens", "completion_tokens"}
        return json.dumps({"usage": {k: v for k, v in fields.items() if v or k in always}})

    @classmethod
    def from_metadata(cls, usage: dict[str, Any]) -> Usage:
        return cls(
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            estimated=bool(usage.get("estimated")),
            estimated_prompt_tokens=usage.get("estimated_prompt_tokens"),
            cut_off=bool(usage.get("cut_off")),
            stopped=bool(usage.get("stopped")),
        )

    @property
    def prompt_drift(self) -> float | None:
        """How far the server's prompt count is from the app's estimate (0.1 = 10% more)."""
        if not self.estimated_prompt_tokens:
            return None
        return self.prompt_tokens / self.estimated_prompt_tokens - 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Message:
    """One stored chat message, as read back. `metadata` is the stored JSON, decoded only
    when `usage` is asked for: a page render reads fifty messages and one reply's usage."""

    role: Role
    content: str
    seq: int
    created_at: float
    token_count: int
    metadata: str = ""
    key: str = ""

    @cached_property
    def usage(self) -> Usage | None:
        if not self.metadata:
            return None
        usage = json.loads(self.metadata).get("usage")
        return Usage.from_metadata(usage) if usage else None

    def as_openai(self) -> dict[str, str]:
        return {"role": self.role.value, "content": self.content}


@dataclass(frozen=True)
class SystemInstruction:
    """The instruction sent first in every request. `preset` is None for custom text."""

    text: str
    preset: str | None = None
    token_count: int = 0

    def as_openai(self) -> dict[str, str]:
        return {"role": "system", "content": self.text}


@dataclass(frozen=True)
class ContextWindow:
    """Exactly what the next request sends: the system instruction and the last N messages."""

    system: SystemInstruction
    messages: tuple[Message, ...]
    token_count: int

    def as_openai(self) -> list[dict[str, str]]:
        return [self.system.as_openai(), *(message.as_openai() for message in self.messages)]


@dataclass(frozen=True)
class UsageTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    replies: int = 0
    estimated_replies: int = 0  # of those, counted by the app's estimate (no server usage)

    @property
    def estimated(self) -> bool:
        """Some of these numbers are the app's estimate: show them marked (≈)."""
        return self.estimated_replies > 0


@dataclass(frozen=True)
class Retention:
    """A user's retention policy and, when one is set, how long their messages still live."""

    ttl_seconds: int | None
    oldest_expires_in: float | None = None


@dataclass(frozen=True)
class Summary:
    """A rolling-summary checkpoint: the summary of every message with seq <= `covers_seq`."""

    text: str
    covers_seq: int
    token_count: int
    model: str  # who wrote it; "extractive" when no model did

    @property
    def extractive(self) -> bool:
        return self.model == "extractive"


@dataclass(frozen=True)
class SummaryState:
    """The user's summary setting and one conversation's checkpoint (memory/summary.py)."""

    enabled: bool
    checkpoint: Summary | None


def summary_state(enabled: str | None, checkpoint: dict[str, str]) -> SummaryState:
    """From the settings hash's `summary_enabled` and the checkpoint hash's fields."""
    summary = None
    if checkpoint.get("text"):
        summary = Summary(
            text=checkpoint["text"],
            covers_seq=int(checkpoint["covers_seq"]),
            token_count=int(checkpoint["token_count"]),
            model=checkpoint.get("model", ""),
        )
    return SummaryState(enabled=enabled == "1", checkpoint=summary)


class TitleSource(StrEnum):
    """Who wrote a conversation's title; an automatic title never replaces the user's."""

    NONE = ""
    WORDS = "words"  # the first words of the first prompt
    MODEL = "model"  # written by the model after the first exchange
    USER = "user"  # edited by the user


class ConversationInfo(NamedTuple):
    """One conversation as the list shows it. Times are seconds since the epoch. A named
    tuple, not a dataclass: the list builds up to a hundred per page render, and a frozen
    dataclass costs ~5x as much to build."""

    id: str
    title: str
    title_source: str
    created_at: float
    last_active: float
    message_count: int
    pinned: bool


@dataclass(frozen=True)
class ConversationList:
    """A page of a user's conversations for the sidebar (pinned first), read in one round
    trip."""

    pinned: tuple[ConversationInfo, ...]  # pinned, most recently pinned first
    recent: tuple[ConversationInfo, ...]  # then unpinned, most recently active first
    total: int  # all conversations of the user, listed or not


@dataclass(frozen=True)
class SearchHit:
    """One of the user's messages that matches a search, with where it lives."""

    conversation_id: str
    title: str
    seq: int
    role: Role
    snippet: str
    created_at: float


class BranchBusy(ChatMemoryError):
    """A branch switch while a reply of the conversation streams: the reply would land in a
    branch no longer shown, so nothing was switched."""

    def __init__(self) -> None:
        super().__init__(
            "A reply is still being written in this conversation; switch versions once it is "
            "done (or stop it)."
        )


@dataclass(frozen=True)
class BranchPoint:
    """A place where an edited prompt started another version of the conversation: after
    the message `parent_seq` (0: at the start) there are `count` alternatives, number `shown`
    (1-based) is the one in the timeline and starts with the message `head_seq`."""

    parent_seq: int
    shown: int
    count: int
    head_seq: int


@dataclass(frozen=True)
class Conversation:
    """Everything one page render needs, read in a single round trip. `info` is None while
    the conversation has no stored message (a fresh "New chat"). `last_seq` is the seq of its
    newest message (0: none), what an action that removes messages names as the one the page
    showed (`expect_last_seq`)."""

    user_id: str
    recent: tuple[Message, ...]
    total_messages: int
    window: ContextWindow
    window_size: int
    retention: Retention
    usage_totals: UsageTotals = field(default_factory=UsageTotals)
    conversation_id: str = "0"
    info: ConversationInfo | None = None
    last_seq: int = 0
    branches: tuple[BranchPoint, ...] = ()

    def branch_at(self, seq: int) -> BranchPoint | None:
        """The fork point whose shown version starts with message `seq`, if any."""
        return next((b for b in self.branches if b.head_seq == seq and seq), None)

    @property
    def ttl_seconds(self) -> int | None:
        return self.retention.ttl_seconds

    @property
    def has_earlier(self) -> bool:
        return self.total_messages > len(self.recent)

    @property
    def last_reply_usage(self) -> Usage | None:
        for message in reversed(self.recent):
            if message.role is Role.ASSISTANT:
                return message.usage
        return None


@dataclass(frozen=True)
class PageView:
    """Everything one page render reads, in one script call (ChatMemory.page_view): the open
    conversation (as ChatMemory.conversation returns it, with the user's stored window
    size), a page of the user's list (as ChatMemory.conversations) and the summary state (as
    SummaryStore.state)."""

    conversation: Conversation
    conversations: ConversationList
    summary: SummaryState


@dataclass(frozen=True)
class TurnStart:
    """A chat turn admitted and begun by ChatMemory.begin_turn: its reservation (settle it
    with ChatMemory.finish_turn, whatever the model does), the stored prompt (None when a
    reply is asked for again), how many replaced messages went (0 when the same turn was
    begun again), the request's context
    window (the prompt last) and summary state, and the id the reply will be stored under
    (fixed now, so storing it is exactly-once)."""

    user_id: str
    conversation_id: str
    reservation: Reservation
    prompt: Message | None
    removed: int
    window: ContextWindow
    window_size: int
    summary: SummaryState
    reply_id: str
