"""Under the last exchange: edit the last prompt (it and its reply are replaced) or ask for
the last reply again (it is replaced). Each names what it replaces and the newest message the
page showed, so a click on a page the conversation has moved on from removes nothing."""

from __future__ import annotations

import streamlit as st

from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.turn import TurnRequest
from memory import Conversation, Role
from ui import state
from ui.records import Editing

EDIT_LABEL = "Edit your last message"


def send_edit(user_id: str) -> None:
    """The edited prompt replaces the last prompt and its reply."""
    editing, text = state.take_editing()
    if editing is not None and text.strip():
        state.queue_turn(
            TurnRequest(
                user_id,
                text,
                replace_from=editing.from_seq,
                expect_last_seq=editing.expect_last_seq,
            )
        )


def cancel_edit() -> None:
    state.take_editing()


def edit_and_regenerate(services: Services, identity: Identity, conversation: Conversation) -> None:
    recent, user = conversation.recent, identity.user_id
    prompt = next((m for m in reversed(recent[-2:]) if m.role is Role.USER), None)
    if prompt is None:
        return
    editing = state.editing_of(user, conversation.conversation_id)
    if editing is not None:
        edit_box(services, identity, editing)
        return
    newest = conversation.last_seq
    left, right, _ = st.columns([1, 1, 4])
    left.button(
        "✏️ Edit",
        key="edit_prompt",
        on_click=state.start_editing,
        args=(Editing(user, conversation.conversation_id, prompt.seq, prompt.content, newest),),
        help="Edit your last message; it and its reply are replaced.",
    )
    if recent[-1].role is Role.ASSISTANT:
        right.button(
            "↻ Regenerate",
            key="regenerate_reply",
            on_click=state.queue_turn,
            args=(TurnRequest(user, None, replace_from=newest, expect_last_seq=newest),),
            help="Ask for the last reply again; it is replaced.",
        )


def edit_box(services: Services, identity: Identity, editing: Editing) -> None:
    with st.container(border=True):
        st.text_area(
            EDIT_LABEL,
            key=state.EDIT_KEY,
            height=150,
            max_chars=max(services.max_prompt_chars, len(editing.text)),
        )
        left, right = st.columns(2)
        left.button(
            "Send edited message",
            key="send_edit",
            on_click=send_edit,
            args=(identity.user_id,),
            type="primary",
        )
        right.button("Cancel", key="cancel_edit", on_click=cancel_edit)
