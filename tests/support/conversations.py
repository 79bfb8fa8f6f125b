"""Which conversation a test means, for tests that drive the app (it opens the user's most
recently active conversation when the URL names none)."""

from __future__ import annotations

from memory import LEGACY_CONVERSATION_ID, ChatMemory, Message

SEEDED = "5eed"  # the conversation tests write before the app opens it


def opened(memory: ChatMemory, user_id: str) -> str:
    """The conversation the app opens for `user_id` without a `?c=`: the most recently active
    one ("0", empty, when the user has none)."""
    listing = memory.conversations(user_id, limit=1)
    known = sorted((*listing.pinned, *listing.recent), key=lambda c: -c.last_active)
    return known[0].id if known else LEGACY_CONVERSATION_ID


def opened_messages(memory: ChatMemory, user_id: str) -> list[Message]:
    """Every message of the conversation the app opens for `user_id`."""
    return memory.messages(user_id, opened(memory, user_id))


def opened_count(memory: ChatMemory, user_id: str) -> int:
    return memory.count(user_id, opened(memory, user_id))
