"""Records the page keeps between script runs (UI state only, never user data).

They live in a module, not in app.py: Streamlit executes app.py afresh on every run, so a class
defined there is a new class each time and `isinstance` against last run's record would fail.
Each record names its user, so nothing of one demo user's page shows after switching to another.
The unsent prompt (`chatbot.turn.Draft`) and the turn a callback asked for
(`chatbot.turn.TurnRequest`) are the chat turn's own types.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from memory.memories import MemoryRecord
from memory.recall import RecalledMessage


class Place(StrEnum):
    """Where a failed action's message shows: the top of the section whose control failed, or
    next to the prompt box."""

    PROMPT = "prompt"
    CONVERSATIONS = "conversations"
    SEARCH = "search"
    CONTEXT = "context"
    INSTRUCTION = "instruction"
    RETENTION = "retention"
    HISTORY = "history"
    DATA = "data"
    RECALL = "recall"
    MEMORIES = "memories"


@dataclass(frozen=True)
class ModelFailure:
    """Why the reply to `user_id`'s last message is missing, shown until a reply is stored."""

    user_id: str
    message: str


@dataclass(frozen=True)
class Editing:
    """A prompt of a conversation (seq `from_seq`), opened in the editor by its "Edit";
    sending the edited text starts a new version from there, the prompt and what followed it
    kept as the earlier one (ui/branches.py), unless the conversation's newest message is no
    longer `expect_last_seq` (what the page showed when Edit was pressed)."""

    user_id: str
    conversation_id: str
    from_seq: int
    text: str
    expect_last_seq: int | None = None


class Destructive(StrEnum):
    CLEAR_MINE = "clear_mine"  # the open conversation's messages
    DELETE_CONVERSATION = "delete_conversation"
    CLEAR_ALL = "clear_all"
    RETENTION = "retention"
    ERASE_ME = "erase_me"


@dataclass(frozen=True)
class Confirmation:
    """A destructive action waiting for its user's yes; `ttl_seconds` for a retention change,
    `conversation_id` for an action on one conversation (asked again after switching)."""

    user_id: str
    action: Destructive
    ttl_seconds: int | None = None
    conversation_id: str | None = None


@dataclass(frozen=True)
class FoundMessage:
    """A search hit opened (`?c=…&m=<seq>`): the page shows `size` newest messages of that
    conversation so the hit is among them (0 until the page has found where it is)."""

    user_id: str
    conversation_id: str
    seq: int
    size: int = 0


@dataclass(frozen=True)
class RequestNote:
    """What the last request in a conversation carried besides its window: the earlier
    messages recalled (best first) and how many recalled ones did not fit. Shown under the
    reply it got (`reply_seq`) until another reply comes; kept here so a rerun never recalls
    again (that costs an embedding)."""

    user_id: str
    conversation_id: str
    reply_seq: int
    recalled: tuple[RecalledMessage, ...] = ()
    recall_left_out: int = 0
    memories: tuple[MemoryRecord, ...] = ()  # the user's memories it carried, best first
    memories_left_out: int = 0


@dataclass(frozen=True)
class Remembering:
    """A message whose "Remember this" was pressed: its editor shows under it until saved or
    cancelled. Saving names the message (conversation and seq), so a message deleted since is
    refused with a message."""

    user_id: str
    conversation_id: str
    seq: int
    saved: str = ""  # once saved: what happened ("Remembered."), shown under the message
