"""The chat turn on the page: the prompt box, the prompt shown at once, the reply streaming
with Stop and then shown stored in the same script run, and what each outcome of
`chatbot.turn.ChatTurn` leaves on the page (a kept draft and why, a missing reply with Retry,
Continue after a cut-off reply, the draft's editor)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.turn import (
    ChatTurn,
    Failed,
    OutcomeUnknown,
    Refused,
    Started,
    Stopped,
    Stored,
    TurnRequest,
    storage_refusal,
)
from memory import ChatMemoryError, Conversation, PageView, Role
from ui import live_reply, state
from ui.chat import add_to_page, reread, show_messages, show_stored_exchange
from ui.draft import draft_editor
from ui.editing import edit_and_regenerate
from ui.recall import keep_what_was_sent
from ui.records import ModelFailure, Place
from ui.rendering import is_cut_off, render_message

PLACEHOLDER = "Type your message"


def queue_prompt(user_id: str) -> None:
    """The prompt box's on_submit: the prompt runs as a turn, with the inputs disabled."""
    prompt = state.typed_prompt()
    if prompt is not None and prompt.strip():
        state.queue_turn(TurnRequest(user_id, prompt))


def prompt_box(user_id: str) -> None:
    """Open for typing even while a reply streams (the next message is written meanwhile);
    the page's script (ui/page_follow.py) holds Enter until the reply is done, and a send
    that gets through anyway is refused with the text kept (one reply per conversation)."""
    st.chat_input(PLACEHOLDER, key=state.PROMPT_KEY, on_submit=queue_prompt, args=(user_id,))


def show_prompt_at_once(services: Services, request: TurnRequest) -> None:
    """The turn's prompt, on the page before anything is read or stored: the first feedback
    after Enter. A prompt that will be refused (too long) waits for its message instead."""
    prompt = request.prompt
    if prompt is not None and prompt.strip() and len(prompt) <= services.max_prompt_chars:
        render_message(Role.USER, prompt)


# --- running the turn --------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """A turn the reply worker is producing, followed at the end of the run."""

    turn: ChatTurn
    reply_id: str
    internals: bool  # the user may see where a failing model server is
    replaced: int | None  # an edit's or a regenerate's first message replaced


@dataclass(frozen=True)
class TurnSlots:
    """Where the page draws a turn: the messages before it, and its exchange (`live` while
    the reply streams, then the exchange as stored, in its place)."""

    messages: DeltaGenerator
    exchange: DeltaGenerator
    live: DeltaGenerator


def start_turn(
    services: Services, identity: Identity, conversation: Conversation, request: TurnRequest
) -> Submitted:
    """Start the turn a callback asked for: claim the conversation's reply, store the prompt
    and hand the model call to the process's reply worker, before the rest of the page is
    drawn (the model works while it is); a turn that does not start reruns with why."""
    state.take_turn()
    turn = ChatTurn(services, request, conversation)
    reply_id = claimed_reply(services, turn)
    started = turn.start()
    if turn.prompt_stored:
        prompt_stored(request.user_id, conversation.conversation_id)
    internals = services.shows_internals_to(identity)
    if not isinstance(started, Started):
        services.replies.release(turn, reply_id)
        keep_outcome(request.user_id, started, internals)
        st.rerun()
    services.replies.submit(turn, reply_id)
    state.forget_request_note(request.user_id, conversation.conversation_id)
    return Submitted(turn, reply_id, internals, request.replace_from)


def reread_or_rerun(services: Services, identity: Identity, conversation_id: str) -> PageView:
    """The page read again once the turn's prompt is stored (the list shows a new chat, the
    counts count the prompt); a failed read reruns, where the page says why."""
    try:
        return reread(services, identity, conversation_id)
    except ChatMemoryError:
        st.rerun()


def follow_turn(services: Services, identity: Identity, submitted: Submitted) -> PageView:
    """At the end of the run: follow the reply from Redis to its end; the page as stored
    after it, for the same run to show (the reply with its actions, Regenerate,
    Continue). An outcome that keeps a draft or says why no reply came reruns with it, as
    does a storage failure. A run cut short (Stop, a reload, a closed tab) leaves the reply
    to the worker."""
    turn, reply_id = submitted.turn, submitted.reply_id
    live_reply.follow(services, turn.user_id, turn.conversation_id, reply_id)
    outcome = services.replies.outcome(reply_id, timeout=1.0)
    if outcome is not None:
        keep_what_was_sent(turn, outcome)
        keep_outcome(turn.user_id, outcome, submitted.internals)
    if not isinstance(outcome, Stored | Stopped):
        st.rerun()
    try:
        return reread(services, identity, turn.conversation_id)
    except ChatMemoryError:
        st.rerun()


def finish_turn(
    services: Services,
    identity: Identity,
    submitted: Submitted,
    before: Conversation,
    slots: TurnSlots,
    recounts: Sequence[Callable[[PageView], None]],
) -> None:
    """The rest of a turn's run, after the sidebar: a new prompt's reply streams under the
    messages the last run drew, kept on the page as they are (ui/chat.py); once it is stored
    it is shown at once, and they are drawn again above it, the sidebar's counts after. An
    edit or a regenerate takes messages away, so those are drawn first."""
    replaced = submitted.replaced
    if replaced is not None:
        with slots.messages:
            shown = show_messages(before, replaced)
    with slots.live:
        stored = follow_turn(services, identity, submitted)
    after = stored.conversation
    newest = before.last_seq if replaced is None else replaced - 1
    with slots.exchange.container():  # in place of the streamed one, element by element
        added = show_stored_exchange(after, newest)
        under_conversation(services, identity, after)
    with slots.messages:
        if replaced is None:
            shown = show_messages(before, None)
        draft_editor(services, identity, before.conversation_id)
    add_to_page(shown, after, added)
    for recount in recounts:
        recount(stored)


def under_conversation(services: Services, identity: Identity, conversation: Conversation) -> None:
    """Under the last message: its missing reply (or one streaming from elsewhere), Continue,
    Regenerate."""
    live_reply.under_prompt(services, identity, conversation)
    continue_button(identity, conversation)
    edit_and_regenerate(services, identity, conversation)


def claimed_reply(services: Services, turn: ChatTurn) -> str:
    """The new reply's id, the conversation claimed for it; refused (the prompt kept as a
    draft) while another reply is in flight there: one prompt, one model call."""
    try:
        reply_id = services.replies.claim(turn.user_id, turn.conversation_id)
    except ChatMemoryError as error:
        refuse(turn, storage_refusal(error))
    if reply_id is None:
        refuse(turn, live_reply.BUSY)
    return reply_id


def refuse(turn: ChatTurn, reason: str) -> NoReturn:
    draft = turn.draft()
    if draft is not None:
        state.keep_draft(draft)
    state.report(Place.PROMPT, reason)
    st.rerun()


def prompt_stored(user_id: str, conversation_id: str) -> None:
    if state.draft_of(user_id, conversation_id) is not None:
        state.drop_draft()  # a draft waiting in another conversation stays
    state.set_model_failure(None)


def keep_outcome(
    user_id: str,
    outcome: Refused | Failed | OutcomeUnknown | Stored | Stopped,
    internals: bool = False,
) -> None:
    """What the next run shows of the outcome: a kept draft with why it is kept, a refusal
    next to the prompt box, or why the stored prompt has no reply (until a reply is stored;
    with `internals`, an admin's, where the failing model server is)."""
    if isinstance(outcome, Stored | Stopped):
        state.set_model_failure(None)
        return
    draft = outcome.draft if isinstance(outcome, Refused | OutcomeUnknown) else None
    if isinstance(outcome, Refused) or draft is not None:
        if draft is not None:
            state.keep_draft(draft)
        state.report(Place.PROMPT, outcome.reason)
    else:
        where = outcome.location if isinstance(outcome, Failed) and internals else None
        reason = outcome.reason + (f" (Model server: {where}.)" if where else "")
        state.set_model_failure(ModelFailure(user_id, reason))


# --- under the conversation --------------------------------------------------------------------


def continue_button(identity: Identity, conversation: Conversation) -> None:
    """A reply cut off at its length limit is stored, marked, and can be continued."""
    if conversation.recent and is_cut_off(conversation.recent[-1]):
        st.button(
            "Continue",
            key="continue_reply",
            on_click=state.queue_turn,
            args=(TurnRequest(identity.user_id, "Continue"),),
        )
