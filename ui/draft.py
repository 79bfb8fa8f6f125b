"""The unsent draft: a prompt kept next to the prompt box (too long, refused, or not stored
because storage was down), editable in full, with Send and Discard; while storage is down a
typed prompt is kept, never dropped; a draft whose write outcome was unknown is settled by
asking Redis by its id."""

from __future__ import annotations

import streamlit as st

from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.turn import Draft, TurnRequest, keepable
from memory import ChatMemoryError, new_message_id
from ui import state
from ui.records import Place

DRAFT_LABEL = "Your unsent message"


def edit_draft(user_id: str, key: str) -> None:
    """An edited draft is a new message (a new id); an unchanged one keeps its id."""
    text = str(state.widget_value(key))
    draft = state.draft_of(user_id)
    if draft is None or draft.text != text:
        where = draft.conversation_id if draft else ""
        state.keep_draft(Draft(user_id, text, conversation_id=where))


def send_draft(user_id: str, key: str) -> None:
    text = str(state.widget_value(key))
    draft = state.draft_of(user_id)
    state.drop_draft()
    same = draft is not None and draft.text == text
    state.queue_turn(TurnRequest(user_id, text, draft.message_id if same and draft else None))


def draft_editor(services: Services, identity: Identity, conversation_id: str | None) -> None:
    """An unsent prompt, editable in full next to the prompt box, with its length against the
    limit (the box counts as you type), its error, Send (only when it can succeed) and Discard.
    A draft typed in another conversation waits there."""
    if state.saved_after_all_now():
        st.info("Your message was saved after all.")
    draft = state.draft_of(identity.user_id, conversation_id)
    error = state.take_report(Place.PROMPT)
    if draft is None:
        if error:
            st.error(error)
        return
    limit = services.max_prompt_chars
    key = state.widget_key("draft", identity.user_id)
    state.show_value(key, draft.text)
    with st.container(border=True):
        if error:
            st.error(error)
        st.text_area(
            DRAFT_LABEL,
            key=key,
            height=200,
            max_chars=max(limit, len(draft.text)),
            on_change=edit_draft,
            args=(identity.user_id, key),
        )
        over = len(draft.text) - limit
        st.caption(
            f"{len(draft.text):,} characters: {over:,} over the {limit:,} limit; shorten it to "
            "send it."
            if over > 0
            else f"{len(draft.text):,} of {limit:,} characters."
        )
        left, right = st.columns(2)
        left.button(
            "Send",
            key="send_draft",
            on_click=send_draft,
            args=(identity.user_id, key),
            disabled=over > 0,
            type="primary",
        )
        right.button("Discard", key="discard_draft", on_click=state.drop_draft)


def keep_unsent_prompt(services: Services, identity: Identity) -> None:
    """While storage is down, a prompt typed into the page is kept, never dropped."""
    request = state.waiting_turn()
    if request is not None and request.prompt is not None:
        message_id = request.message_id or new_message_id()
        text = keepable(request.prompt, services.max_prompt_chars)
        state.keep_draft(Draft(identity.user_id, text, message_id))
    state.take_turn()
    draft = state.draft_of(identity.user_id)
    if draft is not None:
        saved = "may not have been saved" if draft.outcome_unknown else "was NOT saved or sent"
        st.warning(f"Your message {saved}. It is kept here to resend later:")
        draft_editor(services, identity, None)


def settle_unknown_draft(services: Services, user_id: str) -> None:
    """A draft whose write outcome was unknown: ask Redis by its id whether it was saved."""
    draft = state.draft_of(user_id)
    if draft is None or not draft.outcome_unknown:
        return
    try:
        saved = services.memory.saved_message(user_id, draft.message_id)
    except ChatMemoryError:
        return
    if saved is not None:
        state.drop_draft()
        state.take_report(Place.PROMPT)
        state.mark_saved_after_all()
