"""What a conversation's entry in the sidebar reads (chatbot/conversation_list.py)."""

from __future__ import annotations

from chatbot.conversation_list import activity_line, entry_label
from memory import ConversationInfo


def conversation(
    cid: str, title: str = "", last_active: float = 0.0, pinned: bool = False, count: int = 2
) -> ConversationInfo:
    return ConversationInfo(cid, title, "words" if title else "", 0.0, last_active, count, pinned)


def test_a_title_is_shown_as_written_never_as_markup() -> None:
    label = entry_label(conversation("a", "[win](https://evil.example) **now** :smile:"))
    assert "\\[win\\]\\(https\\:" in label and "\\*\\*now\\*\\*" in label
    assert "\\:smile\\:" in label  # no emoji shortcode either
    assert entry_label(conversation("b")) == "New chat"
    assert entry_label(conversation("c", "Plans", pinned=True)) == "📌 Plans"


def test_the_activity_line_counts_messages_and_says_how_long_ago() -> None:
    now = 1_000_000.0
    assert activity_line(conversation("a", last_active=now - 5, count=1), now) == (
        "1 message · just now"
    )
    assert activity_line(conversation("a", last_active=now - 180), now) == (
        "2 messages · 3 minutes ago"
    )
    assert activity_line(conversation("a", last_active=now - 7200), now).endswith("2 hours ago")
    assert activity_line(conversation("a", last_active=now - 86400 * 3), now).endswith("3 days ago")
