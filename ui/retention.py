"""The sidebar's retention: how long each message is kept, saved at once unless a shorter
time would delete messages sooner (then it asks first), and a live countdown to the oldest
message's expiry."""

from __future__ import annotations

import streamlit as st

from chatbot.conversation_list import plural
from chatbot.formatting import format_duration
from chatbot.identity import Identity
from chatbot.services import Services
from memory import ChatMemory, ChatMemoryError, Conversation
from ui import state
from ui.confirm import confirm
from ui.feedback import act, show_error
from ui.records import Confirmation, Destructive, Place

KEEP_FOREVER = 0
RETENTION_CHOICES = [
    5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, KEEP_FOREVER,
]  # fmt: skip
SLIDER_LABEL = "Time to live of chat entries"


def retention_label(seconds: int) -> str:
    return "Keep forever" if seconds == KEEP_FOREVER else format_duration(seconds)


def choose_retention(
    memory: ChatMemory, user_id: str, key: str, ttl: int | None, stored: int
) -> None:
    """Save at once, unless the new time to live deletes messages sooner: then ask first."""
    chosen = int(str(state.widget_value(key))) or None
    shorter = chosen is not None and (ttl is None or chosen < ttl)
    if shorter and stored:
        state.ask(Confirmation(user_id, Destructive.RETENTION, chosen))
    else:
        apply_retention(memory, user_id, chosen)


def apply_retention(memory: ChatMemory, user_id: str, ttl: int | None) -> None:
    state.ask(None)
    if act(Place.RETENTION, "Applying retention", lambda: memory.set_retention(user_id, ttl)):
        label = "kept forever" if ttl is None else f"kept {format_duration(ttl)}"
        st.toast(f"Your messages are now {label}.")


def expiry_status(
    memory: ChatMemory, user_id: str, conversation_id: str, shown: int, countdown: bool = True
) -> None:
    """Re-read on a timer (a fragment): the countdown moves, and the page reruns once messages
    have expired (or arrived from another tab), so what is on screen is what Redis holds.
    Without `countdown` (settings closed) it only watches."""
    try:
        now = memory.conversation(user_id, conversation_id, window_size=0, page_size=0)
    except ChatMemoryError as error:
        if countdown:
            st.caption(f"Retention status unavailable: {error}")
        return
    if now.total_messages != shown:
        st.rerun(scope="app")
    ttl, oldest = now.retention.ttl_seconds, now.retention.oldest_expires_in
    if ttl is None or not countdown:
        return
    remaining = (
        f"oldest message expires in {format_duration(round(oldest))}"
        if oldest is not None
        else "no messages stored"
    )
    st.caption(f"Policy: {format_duration(ttl)} per message; {remaining}.")


live_expiry_status = st.fragment(run_every=1)(expiry_status)


def watch_expiry(services: Services, identity: Identity, conversation: Conversation) -> None:
    """With the settings closed, expired messages still leave the page as they expire."""
    if conversation.ttl_seconds is not None:
        with st.sidebar:
            live_expiry_status(
                services.memory,
                identity.user_id,
                conversation.conversation_id,
                conversation.total_messages,
                countdown=False,
            )


def retention_section(services: Services, identity: Identity, conversation: Conversation) -> None:
    bar = st.sidebar
    bar.subheader("Retention")
    show_error(Place.RETENTION)
    memory, user = services.memory, identity.user_id
    key = state.widget_key("ttl", user)
    ttl = conversation.ttl_seconds
    state.show_value(key, ttl or KEEP_FOREVER)
    bar.select_slider(
        SLIDER_LABEL,
        options=[*sorted({*RETENTION_CHOICES[:-1], ttl or 5}), KEEP_FOREVER],
        format_func=retention_label,
        key=key,
        on_change=choose_retention,
        args=(memory, user, key, ttl, conversation.total_messages),
        help="Saved at once; a shorter time that would delete your messages asks first.",
    )
    asked = state.confirmation_of(user, Destructive.RETENTION)
    if asked is not None and asked.ttl_seconds is not None:
        duration = format_duration(asked.ttl_seconds)
        confirm(
            f"Keep messages {duration}? Your {plural(conversation.total_messages, 'message')} "
            f"stored now will be deleted in {duration}.",
            ("Apply retention", apply_retention, (memory, user, asked.ttl_seconds)),
            "retention",
        )
    if ttl is None:
        bar.caption("Policy: keep forever.")
        return
    with bar:
        live_expiry_status(memory, user, conversation.conversation_id, conversation.total_messages)
