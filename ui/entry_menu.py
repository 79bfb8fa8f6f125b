"""The menu of one conversation in the sidebar's list (⋮ beside its entry): rename, pin or unpin,
delete, without opening it first.

The menu is built only while it is open (a closed one costs a rerun one button), so twenty
entries do not cost twenty forms. Each control names its conversation; delete asks first,
naming the title and message count, and its Yes carries the newest message the question was
shown with, so a conversation that moved on since (a prompt in another tab) is not deleted.
"""

from __future__ import annotations

import streamlit as st

from chatbot.conversation_list import plural, title_of
from chatbot.formatting import plain
from chatbot.identity import Identity
from chatbot.services import Services
from memory import ChatMemoryError, ConversationInfo
from ui import state
from ui.confirm import ask
from ui.conversation_actions import delete, pin, save_title
from ui.records import Confirmation, Destructive, Place

MENU_LABEL = "⋮"
MENU_HELP = "Rename, pin or delete"
RENAME_LABEL = "Rename"


def menu_key(conversation_id: str) -> str:
    return f"menu_{conversation_id}"


def entry_menu(
    services: Services, identity: Identity, info: ConversationInfo, open_id: str
) -> None:
    """The ⋮ button of the entry of `info`, and its menu while it is open."""
    menu = st.popover(MENU_LABEL, key=menu_key(info.id), help=MENU_HELP, on_change="rerun")
    if not menu.open:
        return
    with menu:
        user = identity.user_id
        if state.confirmation_of(user, Destructive.DELETE_CONVERSATION, info.id) is not None:
            delete_question(services, user, info, info.id == open_id)
        else:
            menu_actions(services, user, info)


def menu_actions(services: Services, user_id: str, info: ConversationInfo) -> None:
    memory = services.memory
    key = state.widget_key(f"rename:{info.id}", user_id)
    state.show_value(key, info.title)  # what Redis holds, on every run the menu is open
    st.text_input(
        RENAME_LABEL,
        key=key,
        max_chars=120,
        on_change=save_title,
        args=(memory, user_id, info.id, key),
        help="Saved as soon as you leave the box (or press Enter).",
    )
    st.button(
        "Unpin" if info.pinned else "📌 Pin",
        key=f"pin_{info.id}",
        on_click=pin,
        args=(memory, user_id, info.id, not info.pinned),
        width="stretch",
    )
    st.button(
        "🗑️ Delete…",
        key=f"delete_{info.id}",
        on_click=ask,
        args=(Confirmation(user_id, Destructive.DELETE_CONVERSATION, conversation_id=info.id),),
        width="stretch",
    )


def delete_question(
    services: Services, user_id: str, info: ConversationInfo, is_open: bool
) -> None:
    """The question, with Yes carrying the newest message it was asked with."""
    try:
        newest = services.memory.conversation(user_id, info.id, page_size=1).last_seq
    except ChatMemoryError as error:
        state.report(Place.CONVERSATIONS, f"Reading the conversation failed: {error}")
        return
    st.warning(
        f"Delete “{plain(title_of(info))}” and its {plural(info.message_count, 'message')}? "
        "This cannot be undone."
    )
    st.button(
        "Yes, delete it",
        key=f"yes_delete_{info.id}",
        on_click=delete,
        args=(services, user_id, info, newest, is_open),
        type="primary",
        width="stretch",
    )
    st.button("Cancel", key=f"cancel_delete_{info.id}", on_click=ask, args=(None,), width="stretch")
