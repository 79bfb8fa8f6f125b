"""Streamlit entry: a multi-user chatbot whose every message lives in Redis.

Reads top to bottom: configuration, services, identity, the page frame, then dispatch to the
sections in ui/ (one module each) and, when a callback asked for one, the chat turn. Streamlit
runs this file as `__main__`; importing it (a test) runs nothing.
"""

from __future__ import annotations

import streamlit as st

from memory import ChatMemoryError
from ui import chat, editing, frame, identity, live_reply, state, turn_view
from ui.sidebar import sidebar


def main() -> None:
    frame.configure_page()
    services = frame.services_or_stop()
    turn = state.waiting_turn()
    user = identity.current_identity(services, busy=turn is not None)
    if turn is not None and turn.user_id != user.user_id:
        turn = None
    turn_view.prompt_box(user.user_id, busy=turn is not None)
    frame.header(services)
    notice, messages, new_turn = st.container(), st.container(), st.container()
    if turn is not None:
        with new_turn:
            turn_view.show_prompt_at_once(services, turn)
    try:
        page = chat.read(services, user, notice)
    except ChatMemoryError as error:
        turn_view.keep_unsent_prompt(services, user)
        frame.storage_unavailable(error, details=services.shows_internals_to(user))
    turn_view.settle_unknown_draft(services, user.user_id)
    submitted = None
    if turn is not None:  # the model answers while the page is drawn
        with new_turn:
            submitted = turn_view.start_turn(services, user, page.conversation, turn)

    sidebar(services, user, page, busy=turn is not None)
    frame.page_scripts(services, busy=turn is not None)
    conversation = page.conversation
    with messages:
        cid = conversation.conversation_id
        empty = not conversation.total_messages and state.draft_of(user.user_id, cid) is None
        chat.welcome(user, shown=empty and turn is None)
        chat.show_messages(conversation, turn.replace_from if turn is not None else None)
        if turn is None:
            live_reply.under_prompt(services, user, conversation)
            turn_view.continue_button(user, conversation)
            editing.edit_and_regenerate(services, user, conversation)
        turn_view.draft_editor(services, user, cid)
    if submitted is not None:
        with new_turn:
            turn_view.follow_turn(services, submitted)


if __name__ == "__main__":
    main()
