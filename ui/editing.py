"""Under the last exchange: ask for the last reply again (it is replaced). It names the newest
message the page showed, so a click on a page the conversation has moved on from removes
nothing. Editing a prompt (any of them, with its earlier version kept) is ui/branches.py."""

from __future__ import annotations

import streamlit as st

from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.turn import TurnRequest
from memory import Conversation, Role
from ui import state


def edit_and_regenerate(services: Services, identity: Identity, conversation: Conversation) -> None:
    recent, user = conversation.recent, identity.user_id
    if not recent or recent[-1].role is not Role.ASSISTANT:
        return
    if state.editing_of(user, conversation.conversation_id) is not None:
        return
    newest = conversation.last_seq
    left, _ = st.columns([1, 5])
    left.button(
        "↻ Regenerate",
        key="regenerate_reply",
        on_click=state.queue_turn,
        args=(TurnRequest(user, None, replace_from=newest, expect_last_seq=newest),),
        help="Ask for the last reply again; it is replaced.",
    )
