"""A reply in flight on the page: whichever tab or instance shows the conversation follows it
from Redis (memory/reply_stream.py) to its end, with Stop; a reply that ended without being
stored says why (failed, or interrupted with what it had written) and offers Retry."""

from __future__ import annotations

from itertools import chain

import streamlit as st

from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.turn import TurnRequest
from memory import ChatMemoryError, Conversation, Role
from memory.reply_stream import ReplyState, ReplyView
from ui import state
from ui.records import Place
from ui.rendering import redraw_reply, show_reply

BUSY = (
    "A reply in this conversation is still being written: wait for it, or Stop it, then send again."
)
INTERRUPTED = (
    "Interrupted: the app stopped while writing this reply, so it was not saved. What it "
    "had written is shown; Retry asks the model again."
)
LOST_TRACK = "Storage stopped answering while the reply was streaming; it may still arrive."


def in_flight(services: Services, user_id: str, conversation_id: str) -> bool:
    """Whether a reply to the conversation is being written now (by any tab or instance); a
    storage failure says no (the action it guards then fails on its own, with why)."""
    try:
        view = services.replies.streams.read(user_id, conversation_id)
    except ChatMemoryError:
        return False
    return view is not None and view.streaming


def refused_in_flight(
    services: Services, user_id: str, conversation_id: str, place: Place, action: str
) -> bool:
    """True, with why at `place`, while a reply to the conversation is being written: clearing
    or deleting it then would leave that reply stored alone."""
    if not in_flight(services, user_id, conversation_id):
        return False
    state.report(place, f"A reply in this conversation is still being written: {action} it once "
                 "the reply is done, or Stop it first.")  # fmt: skip
    return True


def stop_reply(services: Services, user_id: str, conversation_id: str, reply_id: str) -> None:
    """Stop's on_click: the reply it was shown with, wherever it is being produced."""
    try:
        answer = services.replies.stop(user_id, conversation_id, reply_id)
    except ChatMemoryError as error:
        state.report(Place.PROMPT, f"Stopping the reply failed: {error}")
        return
    if answer == "stale":
        state.report(Place.PROMPT, "That reply is no longer the latest one; nothing was stopped.")


def follow(
    services: Services, user_id: str, conversation_id: str, reply_id: str | None = None
) -> ReplyView | None:
    """The conversation's reply (`reply_id`: only that one) as Redis holds it, followed to its
    end while it streams, with Stop; the last view (None: no such reply, or storage away)."""
    views = services.replies.streams.follow(user_id, conversation_id, reply_id)
    try:
        last = next(views, None)
        if last is None or not last.streaming:
            return last
        st.button(
            "■ Stop",
            key="stop_reply",
            help="Stops the reply; what it has written so far is kept.",
            on_click=stop_reply,
            args=(services, user_id, conversation_id, last.reply_id),
        )
        with st.chat_message("assistant"):
            placeholder = st.empty()
            if not last.text:
                placeholder.caption("Thinking…")
            for view in chain([last], views):
                last = view
                if view.text:
                    redraw_reply(placeholder, view.text)
    except ChatMemoryError:
        st.warning(LOST_TRACK)
        return None
    return last


def under_prompt(services: Services, identity: Identity, conversation: Conversation) -> None:
    """When the newest message is the user's: its reply followed while it streams (then the
    page reruns to show it stored), or why none was stored, with Retry."""
    recent = conversation.recent
    if not recent or recent[-1].role is not Role.USER:
        return
    try:
        view = services.replies.streams.read(identity.user_id, conversation.conversation_id)
    except ChatMemoryError:
        view = None
    if view is not None and view.streaming:
        follow(services, identity.user_id, conversation.conversation_id, view.reply_id)
        st.rerun()
    stored = view.seq if view is not None else None
    newer = stored is not None and stored > recent[-1].seq
    if view is not None and newer and state.first_reread_for(view.reply_id):
        st.rerun()  # it was stored after this run read the conversation
    missing_reply(identity, view)


def missing_reply(identity: Identity, view: ReplyView | None) -> None:
    """Why no reply follows the stored prompt, and Retry."""
    failure = state.model_failure_of(identity.user_id)
    if view is not None and view.state is ReplyState.INTERRUPTED:
        if view.text:
            with st.chat_message("assistant"):
                show_reply(view.text)
        st.warning(INTERRUPTED, icon="⚠️")
    elif failure is not None:
        st.error(f"{failure.message} Your message is saved.")
    elif view is not None and view.state is ReplyState.FAILED and view.error:
        st.error(f"{view.error} Your message is saved.")
    elif view is not None and view.state is ReplyState.STOPPED:
        st.info("You stopped the reply before it wrote anything. Your message is saved.")
    else:
        st.caption("No reply was stored for your last message.")
    st.button(
        "↻ Retry reply",
        key="retry_reply",
        on_click=state.queue_turn,
        args=(TurnRequest(identity.user_id, None),),
    )
