"""The sidebar's history: clear this conversation (asks first), clear every user's history
(admins), and where storage and the model are (admins only)."""

from __future__ import annotations

import streamlit as st

from chatbot.conversation_list import plural, title_of
from chatbot.formatting import NO_PRICE, plain
from chatbot.identity import Identity
from chatbot.services import Services
from memory import Conversation
from ui import state
from ui.confirm import ask, confirm
from ui.feedback import act, show_error
from ui.live_reply import refused_in_flight
from ui.records import Confirmation, Destructive, Place


def clear_history(services: Services, user_id: str, conversation_id: str, newest: int) -> None:
    """Clear the conversation, unless it changed since the question showed `newest` or a
    reply to it is being written."""
    state.ask(None)
    if refused_in_flight(services, user_id, conversation_id, Place.HISTORY, "clear"):
        return

    def clear() -> None:  # its summary goes in the same script
        services.memory.clear(user_id, conversation_id, expect_last_seq=newest)

    if act(Place.HISTORY, "Clearing the conversation", clear):
        st.toast("The conversation was cleared.")


def clear_all_history(services: Services, identity: Identity) -> None:
    state.ask(None)

    if identity.is_admin and act(Place.HISTORY, "Clearing all history", services.memory.clear_all):
        st.toast("All history was cleared.")


def history_section(services: Services, identity: Identity, conversation: Conversation) -> None:
    bar, user, cid = st.sidebar, identity.user_id, conversation.conversation_id
    bar.subheader("History")
    show_error(Place.HISTORY)
    if state.confirmation_of(user, Destructive.CLEAR_MINE, cid) is None:
        bar.button(
            "Clear this conversation",
            on_click=ask,
            args=(Confirmation(user, Destructive.CLEAR_MINE, conversation_id=cid),),
            disabled=not conversation.total_messages,
        )
    else:
        confirm(
            f"Delete the {plural(conversation.total_messages, 'message')} of "
            f"“{plain(title_of(conversation.info))}”? The conversation stays, empty. This "
            "cannot be undone.",
            ("Yes, clear it", clear_history, (services, user, cid, conversation.last_seq)),
            "clear_mine",
        )
    if identity.is_admin:
        clear_all_controls(services, identity)
    if services.shows_internals_to(identity):
        internals(services)


def clear_all_controls(services: Services, identity: Identity) -> None:
    if state.confirmation_of(identity.user_id, Destructive.CLEAR_ALL) is None:
        st.sidebar.button(
            "Clear ALL history…",
            on_click=ask,
            args=(Confirmation(identity.user_id, Destructive.CLEAR_ALL),),
        )
        return
    confirm(
        "Delete every user's messages? This cannot be undone.",
        ("Yes, delete all", clear_all_history, (services, identity)),
        "clear_all",
    )


def internals(services: Services) -> None:
    budget = services.context.budget
    assumed = "" if budget.context_known else " (assumed: set MODEL_CONTEXT_TOKENS)"
    st.sidebar.caption(
        f"Storage: {services.storage_description} · Model: {services.model.config.describe()}"
        f" · context {budget.context_tokens:,} tokens{assumed}, replies up to "
        f"{budget.reply_tokens:,}" + ("" if services.prices else f" · {NO_PRICE}")
    )
