"""Reading what a user has stored across their conversations (tests only)."""

from __future__ import annotations

from memory import ChatMemory, Message
from memory.store import MAX_WINDOW

# The conversation tests write into directly; the app opens it as the most recent one.
FIRST = "f1"


def latest_id(memory: ChatMemory, user_id: str) -> str | None:
    """The user's most recently active conversation (the one the app opens by default)."""
    listing = memory.conversations(user_id, limit=MAX_WINDOW)
    known = (*listing.pinned, *listing.recent)
    return max(known, key=lambda info: info.last_active).id if known else None


def messages_of(memory: ChatMemory, user_id: str) -> list[Message]:
    """The messages of the user's most recently active conversation ([] without one)."""
    conversation_id = latest_id(memory, user_id)
    return memory.messages(user_id, conversation_id) if conversation_id else []


def count_of(memory: ChatMemory, user_id: str) -> int:
    """The user's messages over all their conversations."""
    listing = memory.conversations(user_id, limit=MAX_WINDOW)
    return sum(info.message_count for info in (*listing.pinned, *listing.recent))
