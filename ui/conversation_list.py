"""The sidebar's conversations: New chat, the list (pinned first, then the most recently
active; each entry with its ⋮ menu: rename, pin, delete), and the open conversation's title,
pin and delete."""

from __future__ import annotations

import streamlit as st

from chatbot.conversation_list import (
    activity_line,
    entry_label,
    listed,
    plural,
    title_of,
)
from chatbot.formatting import plain
from chatbot.identity import Identity
from chatbot.services import Services
from memory import (
    MAX_WINDOW,
    PageView,
    new_conversation_id,
)
from ui import state
from ui.confirm import ask, confirm
from ui.conversation_actions import delete, pin, save_title
from ui.entry_menu import entry_menu
from ui.feedback import show_error
from ui.records import Confirmation, Destructive, Place

LIST_STEP = 20  # conversations listed at first, and added by each "Show more"
TITLE = "Title of this conversation"


def list_limit(user_id: str) -> int:
    """How many conversations the list shows (what the page reads)."""
    return state.count_value(state.widget_key("conversation_limit", user_id), LIST_STEP)


# --- callbacks ---------------------------------------------------------------------------------


def start_new_chat() -> None:
    """A fresh id in the URL; nothing is stored until its first prompt."""
    state.open_conversation(new_conversation_id())


def show_more(key: str, limit: int) -> None:
    state.show_value(key, min(limit + LIST_STEP, MAX_WINDOW))


# --- the section -------------------------------------------------------------------------------


def conversations_section(services: Services, identity: Identity, page: PageView) -> None:
    bar = st.sidebar
    bar.subheader("Conversations")
    show_error(Place.CONVERSATIONS)
    conversation = page.conversation
    bar.button(  # one entry: marked as the open one while a New chat is open (listed once
        "New chat",  # its first prompt is stored)
        icon=":material/add:",
        key="new_chat",
        on_click=start_new_chat,
        type="primary" if conversation.info is None else "secondary",
    )
    entries = listed(page.conversations)
    for info in entries:
        with bar.container(
            horizontal=True,
            gap="small",
            vertical_alignment="center",
            wrap=False,  # the menu stays beside its entry, however long the title
            key=f"entry_{info.id}",
        ):
            st.button(
                entry_label(info),
                key=f"conversation:{info.id}",
                on_click=state.open_conversation,
                args=(info.id,),
                type="primary" if info.id == conversation.conversation_id else "tertiary",
                width="stretch",
            )
            entry_menu(services, identity, info, conversation.conversation_id)
        bar.caption(activity_line(info))
    if page.conversations.total > len(entries):
        key = state.widget_key("conversation_limit", identity.user_id)
        bar.button(
            f"Show more ({page.conversations.total - len(entries):,} more)",
            key="more_conversations",
            on_click=show_more,
            args=(key, list_limit(identity.user_id)),
        )
    if conversation.info is not None:
        open_conversation_controls(services, identity, page)


def open_conversation_controls(services: Services, identity: Identity, page: PageView) -> None:
    bar, memory, user = st.sidebar, services.memory, identity.user_id
    info = page.conversation.info
    if info is None:
        return
    title_key = state.widget_key("title", user)
    state.show_value(title_key, info.title)  # what Redis holds, on every run
    bar.text_input(
        TITLE,
        key=title_key,
        max_chars=120,
        on_change=save_title,
        args=(memory, user, info.id, title_key),
        help="Saved as soon as you leave the box (or press Enter).",
    )
    if state.confirmation_of(user, Destructive.DELETE_CONVERSATION, info.id) is not None:
        confirm(
            f"Delete “{plain(title_of(info))}” and its {plural(info.message_count, 'message')}? "
            "This cannot be undone.",
            ("Yes, delete it", delete, (services, user, info, page.conversation.last_seq)),
            "delete_conversation",
        )
        return
    left, right = bar.columns(2)
    left.button(
        "Unpin" if info.pinned else "📌 Pin",
        key="pin_conversation",
        on_click=pin,
        args=(memory, user, info.id, not info.pinned),
    )
    right.button(
        "🗑️ Delete…",
        key="delete_conversation",
        on_click=ask,
        args=(Confirmation(user, Destructive.DELETE_CONVERSATION, conversation_id=info.id),),
    )
