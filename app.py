"""Streamlit entry: a multi-user chatbot whose every message lives in Redis.

Reads top to bottom: configuration, services, identity, the page frame, then dispatch to the
sections in ui/ (one module each) and, when a callback asked for one, the chat turn: one
script run, from Enter to the reply shown as stored. Streamlit runs this file as `__main__`;
importing it (a test) runs nothing.
"""

from __future__ import annotations

import streamlit as st

from memory import ChatMemoryError
from ui import chat, draft, frame, identity, state, turn_view
from ui.sidebar import sidebar


def main() -> None:
    frame.configure_page()
    services = frame.services_or_stop()
    turn = state.waiting_turn()
    user = identity.current_identity(services)
    if turn is not None and turn.user_id != user.user_id:
        turn = None
    turn_view.prompt_box(user.user_id)
    frame.header(services)
    notice, messages, exchange = st.container(), chat.messages_container(), st.empty()
    live = exchange.container()  # the turn's prompt and streaming reply, then them stored
    if turn is not None:
        with live:
            turn_view.show_prompt_at_once(services, turn)
    try:
        page = chat.read(services, user, notice)
    except ChatMemoryError as error:
        draft.keep_unsent_prompt(services, user)
        frame.storage_unavailable(error, details=services.shows_internals_to(user))
    draft.settle_unknown_draft(services, user.user_id)
    conversation = page.conversation
    submitted = None
    if turn is not None:  # the model answers while the page is drawn
        with live:
            submitted = turn_view.start_turn(services, user, conversation, turn)
        page = turn_view.reread_or_rerun(services, user, conversation.conversation_id)

    recounts = sidebar(services, user, page)
    frame.page_scripts(services)
    cid = conversation.conversation_id
    empty = not conversation.total_messages and state.draft_of(user.user_id, cid) is None
    with messages:
        chat.welcome(user, shown=empty and turn is None)
    if submitted is None:
        with messages:
            chat.show_messages(conversation, None)
            turn_view.under_conversation(services, user, conversation)
            draft.draft_editor(services, user, cid)
        return
    slots = turn_view.TurnSlots(messages, exchange, live)
    turn_view.finish_turn(services, user, submitted, conversation, slots, recounts)


if __name__ == "__main__":
    main()
