"""Records the page keeps in `st.session_state` between runs (UI state only, never user data).

They live in a module, not in app.py: Streamlit executes app.py afresh on every run, so a class
defined there is a new class each time and `isinstance` against last run's record would fail.
Each record names its user, so nothing of one demo user's page shows after switching to another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from memory import new_message_id


@dataclass(frozen=True)
class Draft:
    """A prompt that was not stored (too long, or storage down), kept for its user to resend.

    `message_id` was fixed before the first attempt to store it, so sending it again can never
    store it twice; `outcome_unknown`: storage did not answer, so it may have been saved.
    `conversation_id`: where it was typed; it shows (and is sent) only there ("" where the
    page could not tell: it shows in any)."""

    user_id: str
    text: str
    message_id: str = field(default_factory=new_message_id)
    outcome_unknown: bool = False
    conversation_id: str = ""


@dataclass(frozen=True)
class ModelFailure:
    """Why the reply to `user_id`'s last message is missing, shown until a reply is stored."""

    user_id: str
    message: str


@dataclass(frozen=True)
class Turn:
    """A turn asked for by a callback and run by the next script run: store `prompt` (None to
    answer the stored last message) and stream the reply. While one runs, inputs are disabled."""

    user_id: str
    prompt: str | None
    message_id: str | None = None  # a resent draft's id, so it is stored at most once
    # Edit / regenerate: the open conversation's messages from this seq on are replaced (removed
    # in one atomic step just before the new prompt is stored, or the reply asked for again).
    replace_from: int | None = None


@dataclass(frozen=True)
class Editing:
    """The last prompt of a conversation, opened in the editor by "Edit"; sending the edited
    text replaces the prompt and its reply (messages from `from_seq` on)."""

    user_id: str
    conversation_id: str
    from_seq: int
    text: str


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
