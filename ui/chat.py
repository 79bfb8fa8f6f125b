"""The conversation on the page: which one the URL opens, its messages (the newest page, with
"Show earlier messages"), the mark on a message a search hit opened, and the welcome card of
an empty chat."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from chatbot.identity import Identity
from chatbot.page_read import read_page
from chatbot.services import Services
from chatbot.turn import TurnRequest
from chatbot.your_data import found_seq, messages_to_reach
from memory import (
    Conversation,
    InvalidInput,
    Message,
    PageView,
    check_conversation_id,
    new_conversation_id,
)
from ui import branches, frame, message_actions, state
from ui.conversation_list import list_limit
from ui.memories import remember_editor
from ui.recall import sent_note
from ui.records import FoundMessage, Place
from ui.rendering import is_cut_off, is_stopped, render_message

PAGE_STEP = 50  # messages shown at first, and added by each "Show earlier messages"
FOUND_HERE = "🔎 found here"
EXAMPLE_PROMPTS = (
    "Explain in two sentences what you will remember about this chat.",
    "Give me three tips for naming variables.",
    "What was the first thing I asked you?",
)
# Brings the message a search hit opened into view. The page sticks to its bottom while a chat
# renders, so this keeps the mark in view until it has stayed there for a second (or ten
# seconds have passed).
SCROLL_TO_FOUND = """<script>
/* RUN */
(() => {
  const app = window;
  const started = Date.now();
  let steady = 0;
  const step = () => {
    const mark = [...app.document.querySelectorAll("[data-testid='stCaptionContainer']")]
      .find(element => element.innerText.includes("FOUND_HERE"));
    if (mark) {
      const box = mark.getBoundingClientRect();
      if (box.top >= 0 && box.bottom <= app.innerHeight) steady++;
      else { mark.scrollIntoView({block: "center"}); steady = 0; }
    }
    if (steady < 10 && Date.now() - started < 10000) setTimeout(step, 100);
  };
  step();
})();
</script>""".replace("FOUND_HERE", FOUND_HERE)


def messages_container() -> DeltaGenerator:
    """The conversation's messages. Until a run draws them again, the page keeps the last
    run's (Streamlit's stale elements), shown as they are, not faded (`HISTORY_STYLE`): a
    turn's run draws them after its reply, so the reply starts at once."""
    return st.container(key=message_actions.MESSAGES_KEY)


def page_key(user_id: str, conversation_id: str) -> str:
    return state.widget_key(f"page:{conversation_id}", user_id)


def read(services: Services, identity: Identity, notice: DeltaGenerator) -> PageView:
    """What this render shows, read from Redis in one call (raises ChatMemoryError). The
    open conversation's id is put in the URL, so reload and back/forward keep it."""
    user = identity.user_id
    with notice:
        wanted = wanted_conversation()
    page_size = PAGE_STEP
    if wanted is not None:
        page_size = state.count_value(page_key(user, wanted), PAGE_STEP)
        page_size = found_message_page(services, identity, wanted, page_size)
    view = read_page(services, user, wanted, page_size=page_size, list_limit=list_limit(user))
    opened = view.conversation.conversation_id
    state.name_conversation(opened)
    kept = state.count_value(page_key(user, opened), PAGE_STEP)
    if wanted is None and kept != page_size:  # opened by default, with "earlier" shown before
        view = read_page(services, user, opened, page_size=kept, list_limit=list_limit(user))
    return view


def reread(services: Services, identity: Identity, conversation_id: str) -> PageView:
    """The page's read again, of the conversation it opened: after a turn stored its prompt
    (the sidebar lists the new chat), or after its reply was stored."""
    user = identity.user_id
    page_size = state.count_value(page_key(user, conversation_id), PAGE_STEP)
    return read_page(
        services, user, conversation_id, page_size=page_size, list_limit=list_limit(user)
    )


def wanted_conversation() -> str | None:
    """The conversation the URL names (`?c=`); None without one (the user's most recently
    active conversation opens, or a fresh id: nothing is stored until its first prompt); a
    malformed one is said so and opens a New chat."""
    wanted = state.url_conversation()
    if not wanted:
        return None
    try:
        return check_conversation_id(wanted)
    except InvalidInput as error:
        st.warning(f"The link's conversation could not be opened: {error} A New chat is open.")
        return new_conversation_id()


def found_message_page(
    services: Services, identity: Identity, conversation_id: str, page_size: int
) -> int:
    """With `?m=<seq>` (a search hit opened), a page size that shows that message, worked out
    once per hit; a message the conversation no longer holds drops `m` (and says so when it
    was just opened here)."""
    seq = found_seq(state.url_message())
    if seq is None:
        return page_size
    found = state.found_message()
    if found is not None and (found.user_id, found.conversation_id, found.seq) != (
        identity.user_id,
        conversation_id,
        seq,
    ):
        found = None
    if found is not None and found.size:
        return max(page_size, found.size)
    reach = messages_to_reach(services.memory, identity.user_id, conversation_id, seq, page_size)
    if reach is None:
        state.drop_url_message()
        state.forget_found()
        if found is not None:
            state.report(Place.SEARCH, "That message is no longer stored.")
        return page_size
    size = -(-reach // PAGE_STEP) * PAGE_STEP
    state.remember_found(FoundMessage(identity.user_id, conversation_id, seq, size))
    return max(page_size, size)


@dataclass(frozen=True)
class ShownPage:
    """The messages a run drew, and the slot of their texts for Copy: a turn's run adds its
    exchange under them once it is stored (`show_stored_exchange`)."""

    messages: tuple[Message, ...]
    sources: DeltaGenerator


def show_messages(conversation: Conversation, replaced: int | None) -> ShownPage:
    """The page of messages, "Show earlier messages" above it; with `replaced` (an edit or
    regenerate running), the messages it replaces are left out."""
    if conversation.has_earlier:
        hidden = conversation.total_messages - len(conversation.recent)
        key = page_key(conversation.user_id, conversation.conversation_id)
        st.button(
            f"Show earlier messages ({hidden:,} more)",
            on_click=state.show_value,
            args=(key, len(conversation.recent) + PAGE_STEP),
        )
    state.show_newest(conversation.user_id, conversation.conversation_id, conversation.last_seq)
    found = found_here()
    shown = tuple(m for m in conversation.recent if replaced is None or m.seq < replaced)
    message_actions.install()
    sources = st.sidebar.empty()
    message_actions.show_sources(sources, shown)
    for message in shown:
        if message.seq == found:
            mark_found()
        show_message(conversation, message)
    return ShownPage(shown, sources)


def show_message(conversation: Conversation, message: Message) -> None:
    """A stored message with its actions, and whatever of it is open (an edit, a memory to
    keep, what its request recalled)."""
    render_message(message.role, message.content, is_cut_off(message), is_stopped(message))
    message_actions.message_actions(conversation, message)
    branches.editor(conversation, message)
    remember_editor(conversation, message)
    sent_note(conversation, message)


def show_stored_exchange(conversation: Conversation, newest: int) -> tuple[Message, ...]:
    """The messages stored after seq `newest` (a turn's prompt and reply), each drawn as a
    stored message is; they go to Copy with `add_to_page`."""
    added = tuple(message for message in conversation.recent if message.seq > newest)
    for message in added:
        show_message(conversation, message)
    return added


def add_to_page(page: ShownPage, conversation: Conversation, added: tuple[Message, ...]) -> None:
    """After a turn's run drew `added` under `page`: their texts go to Copy, and the actions
    on the page act on the conversation as it now shows."""
    message_actions.show_sources(page.sources, page.messages + added)
    state.show_newest(conversation.user_id, conversation.conversation_id, conversation.last_seq)


def found_here() -> int | None:
    """The seq of the message a search hit opened, while the URL still names it."""
    found = state.found_message()
    if found is None or state.url_message() != str(found.seq):
        return None  # none, or left by a switch that dropped `m`
    return found.seq


def mark_found() -> None:
    """Marks the message a search hit opened, and scrolls to it once."""
    st.caption(FOUND_HERE)
    if state.scroll_to_found_now():
        frame.run_once(SCROLL_TO_FOUND)


def welcome(identity: Identity, shown: bool) -> None:
    """The welcome card of an empty chat, in a slot of its own made on every run: when a run
    does not show it (the first prompt's reply is streaming), the empty slot replaces the card
    at once, where Streamlit would otherwise keep the last run's card, example prompts
    clickable, until the streaming run ends."""
    slot = st.empty()
    if not shown:
        return
    with slot.container():
        welcome_card(identity)


def welcome_card(identity: Identity) -> None:
    st.markdown(
        "#### 👋 Start a conversation\n"
        "Every message is stored in Redis, so the chat is here when you come back. "
        "Type below, or try one of these:"
    )
    for column, example in zip(st.columns(len(EXAMPLE_PROMPTS)), EXAMPLE_PROMPTS, strict=True):
        column.button(
            example,
            on_click=state.queue_turn,
            args=(TurnRequest(identity.user_id, example),),
            width="stretch",
        )
