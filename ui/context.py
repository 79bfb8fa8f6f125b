"""The sidebar's context section: the history length slider, the tokens the next request
sends (metric, caption and the bar of the context) and the rolling-summary toggle.

A fragment: moving the slider reruns only this section, since only the token count and the
bar depend on it; that rerun re-reads what it shows."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.scriptrunner import get_script_run_ctx

from chatbot.context_chart import context_bar
from chatbot.formatting import request_line
from chatbot.identity import Identity
from chatbot.services import Services
from memory import ChatMemory, PageView
from memory.summary import SummaryState
from ui import state
from ui.feedback import act, show_error
from ui.live_reply import in_flight
from ui.recall import planned_now
from ui.records import Place

SLIDER_MAX_MESSAGES = 50  # the slider's top; memory itself accepts up to MAX_WINDOW
SLIDER_LABEL = "Length of chat history"
METRIC_LABEL = "Chat history tokens"
STREAMING_NOTE = "⏳ A reply is being written: these numbers are counted again once it is stored."


def save_window_size(memory: ChatMemory, user_id: str, key: str) -> None:
    size = int(str(state.widget_value(key)))
    act(Place.CONTEXT, "Saving the history length", lambda: memory.set_window_size(user_id, size))


def save_summary_setting(services: Services, user_id: str, key: str) -> None:
    enabled = bool(state.widget_value(key))
    act(
        Place.CONTEXT,
        "Saving the summary setting",
        lambda: services.context.summaries.set_enabled(user_id, enabled),
    )


def fresh(services: Services, user_id: str, page: PageView) -> PageView:
    """The page's read, or, on a rerun of this section alone, a new one of what it shows."""
    run = get_script_run_ctx()
    if run is None or not run.fragment_ids_this_run:
        return page
    cid = page.conversation.conversation_id
    return PageView(
        services.memory.conversation(user_id, cid, page_size=0),
        page.conversations,
        services.context.summaries.state(user_id, cid),
    )


@st.fragment
def context_section(services: Services, identity: Identity, page: PageView) -> DeltaGenerator:
    """Called inside the sidebar; the slot of the request's numbers, which a turn's run fills
    again once its reply is stored (`show_request_tokens`)."""
    page = fresh(services, identity.user_id, page)
    conversation, user = page.conversation, identity.user_id
    st.subheader("Context")
    show_error(Place.CONTEXT, st.container())
    key = state.widget_key("window", user)
    state.show_value(key, conversation.window_size)  # what Redis holds, on every run
    st.slider(
        SLIDER_LABEL,
        min_value=min(1, conversation.window_size),
        max_value=max(SLIDER_MAX_MESSAGES, conversation.window_size),
        key=key,
        help="The model gets the system instruction plus the last N messages.",
        on_change=save_window_size,
        args=(services.memory, user, key),
    )
    numbers = st.empty()
    if in_flight(services, user, conversation.conversation_id):
        numbers.caption(STREAMING_NOTE)
    else:
        show_request_tokens(numbers, services, page)
    summary_toggle(services, user, page.summary)
    return numbers


def show_request_tokens(slot: DeltaGenerator, services: Services, page: PageView) -> None:
    with slot.container():
        request_tokens(services, page)


def request_tokens(services: Services, page: PageView) -> None:
    """What a retry would send now: its tokens against the budget, message by message."""
    context, window = services.context, page.conversation.window
    request = planned_now(services, page)
    estimated = context.estimated
    st.metric(
        METRIC_LABEL,
        f"{'≈ ' if estimated else ''}{request.token_count:,}",
        help=(
            "Prompt tokens of the system instruction (and summary) plus the last N stored "
            "messages that fit the model: what a retry would send now. The bar below is the "
            "model's whole context, each part labelled with its tokens; hover a part for its "
            "detail."
            + (
                " ≈ estimated: the model's tokenizer is unknown (set LLM_TOKENIZER)."
                if estimated
                else ""
            )
        ),
    )
    budget = context.budget.prompt_limit
    st.caption(request_line(request))
    st.caption(
        f"{'≈ ' if estimated else ''}{request.token_count:,} of the {budget:,} tokens a request "
        f"may use ({request.token_count / budget:.0%})."
    )
    st.html(context_bar(request, window.system, context.budget))


def summary_toggle(services: Services, user_id: str, summary: SummaryState) -> None:
    key = state.widget_key("summary", user_id)
    state.show_value(key, summary.enabled)  # what Redis holds, on every run
    st.toggle(
        "Rolling summary",
        key=key,
        help="Fold messages that leave the window into a summary sent after the instruction.",
        on_change=save_summary_setting,
        args=(services, user_id, key),
    )
    if summary.enabled and summary.checkpoint:
        checkpoint = summary.checkpoint
        author = "extracted offline, no model" if checkpoint.extractive else checkpoint.model
        st.caption(
            f"Summary of messages up to #{checkpoint.covers_seq}: "
            f"{checkpoint.token_count:,} tokens, written by {author}."
        )
