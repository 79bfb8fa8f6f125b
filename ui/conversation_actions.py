"""What the conversation controls do (the open conversation's, and each list entry's menu):
rename, pin or unpin, delete. Each names its conversation; delete carries the newest message
its question was shown with, so a conversation that moved on since is not deleted."""

from __future__ import annotations

import streamlit as st

from chatbot.conversation_list import title_of
from chatbot.formatting import plain
from chatbot.services import Services
from memory import ChatMemory, ChatMemoryError, ConversationInfo, new_conversation_id
from ui import state
from ui.feedback import act
from ui.live_reply import refused_in_flight
from ui.records import Place


def save_title(memory: ChatMemory, user_id: str, conversation_id: str, key: str) -> None:
    title = str(state.widget_value(key) or "")
    if act(
        Place.CONVERSATIONS,
        "Renaming the conversation",
        lambda: memory.rename_conversation(user_id, conversation_id, title),
    ):
        st.toast("Conversation renamed.")


def pin(memory: ChatMemory, user_id: str, conversation_id: str, pinned: bool) -> None:
    act(
        Place.CONVERSATIONS,
        "Pinning the conversation" if pinned else "Unpinning the conversation",
        lambda: memory.pin_conversation(user_id, conversation_id, pinned),
    )


def delete(
    services: Services, user_id: str, info: ConversationInfo, newest: int, is_open: bool = True
) -> None:
    """Delete a conversation (unless it changed since the question showed `newest`, or a reply
    to it is being written); when it was the open one, open the most recent one left (or a
    New chat)."""
    state.ask(None)
    if refused_in_flight(services, user_id, info.id, Place.CONVERSATIONS, "delete"):
        return
    memory = services.memory
    if not act(
        Place.CONVERSATIONS,
        "Deleting the conversation",
        lambda: memory.delete_conversation(user_id, info.id, expect_last_seq=newest),
    ):
        return
    st.toast(f"Deleted “{plain(title_of(info))}”.")
    if not is_open:
        return
    try:
        remaining = memory.most_recent_conversation(user_id)
    except ChatMemoryError:
        remaining = None
    state.open_conversation(remaining or new_conversation_id())
