"""Recall on the page: the setting (off / this conversation / all my conversations), saved at
once; under a reply, what its request recalled ("3 earlier messages recalled", each openable
at its message); and how far embedding the user's messages has come, and why it waits.

What a request recalled is kept in page state when its reply is stored: a rerun shows it
without recalling again (that would cost an embedding every run)."""

from __future__ import annotations

from datetime import UTC, datetime

import redis
import streamlit as st

from chatbot.budget import PlannedRequest
from chatbot.conversation_list import plural
from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.turn import ChatTurn, Outcome, Stored
from chatbot.your_data import ROLE_NAMES
from memory import ChatMemoryError, Conversation, Message, PageView, Role
from memory.embedding_worker import EmbeddingProgress, EmbeddingWorker, WorkerState
from memory.recall import DEFAULT_RECALL_SCOPE, RecalledMessage, RecallResult, RecallScope
from memory.search import snippet
from ui import state
from ui.feedback import act, show_error
from ui.memories import memories_used
from ui.records import Place, RequestNote
from ui.search import open_hit

SCOPE_LABELS = {
    RecallScope.OFF: "Off",
    RecallScope.CONVERSATION: "This conversation",
    RecallScope.ALL: "All my conversations",
}
SCOPE_LABEL = "Recall earlier messages from"
SCOPE_HELP = (
    "Before each reply, the app looks through your earlier messages (beyond the last N it "
    "sends anyway) for the ones most related to what you just wrote, and sends those to the "
    "model too. Saved at once."
)
SNIPPET_CHARS = 120


# --- the setting ---------------------------------------------------------------------------


def save_scope(services: Services, user_id: str, key: str) -> None:
    chosen = RecallScope(str(state.widget_value(key)))
    recall = services.recall
    if recall is not None:
        act(Place.RECALL, "Saving the recall setting", lambda: recall.set_scope(user_id, chosen))


def recall_settings(services: Services, identity: Identity) -> None:
    """The settings group: where recall looks, and the embedding backlog while one waits."""
    if services.recall is None:
        return
    bar, user = st.sidebar, identity.user_id
    bar.subheader("Recall")
    show_error(Place.RECALL)
    try:
        scope = services.recall.scope(user)
    except ChatMemoryError as error:
        bar.caption(f"The recall setting cannot be read now: {error}")
        return
    key = state.widget_key("recall_scope", user)
    state.show_value(key, scope.value)  # what Redis holds, on every run
    bar.radio(
        SCOPE_LABEL,
        options=[s.value for s in SCOPE_LABELS],
        format_func=lambda value: SCOPE_LABELS[RecallScope(value)],
        key=key,
        on_change=save_scope,
        args=(services, user, key),
        help=SCOPE_HELP,
    )
    with bar:
        backlog_status(services, identity)


# --- what the last request recalled --------------------------------------------------------


def keep_what_was_sent(turn: ChatTurn, outcome: Outcome) -> None:
    """After a stored reply: what its request recalled, for the page to show under it."""
    planned = turn.planned
    if not isinstance(outcome, Stored) or planned is None:
        return
    state.keep_request_note(
        RequestNote(
            user_id=turn.user_id,
            conversation_id=turn.conversation_id,
            reply_seq=outcome.reply.seq,
            recalled=planned.recalled,
            recall_left_out=planned.recall_left_out,
            memories=planned.memories,
            memories_left_out=planned.memories_left_out,
        )
    )


def recalled_label(note: RequestNote) -> str | None:
    """ "🔎 3 earlier messages recalled · 1 did not fit", or None when nothing was."""
    count, left_out = len(note.recalled), note.recall_left_out
    if not count and not left_out:
        return None
    did_not_fit = f"{left_out:,} did not fit" if left_out else ""
    if not count:
        return f"🔎 No earlier message recalled: {plural(left_out, 'message')} did not fit"
    recalled = f"🔎 {plural(count, 'earlier message')} recalled"
    return f"{recalled} · {did_not_fit}" if did_not_fit else recalled


def recalled_line(item: RecalledMessage, conversation_id: str) -> str:
    """Who wrote it, when, and where (app text only: safe as Markdown)."""
    when = datetime.fromtimestamp(item.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = "this conversation" if item.conversation_id == conversation_id else "another chat"
    return f"{ROLE_NAMES.get(item.role, item.role.value)} · {when} · {where}"


def sent_note(conversation: Conversation, message: Message) -> None:
    """Under the reply the last request got: the memories it carried, and what it recalled,
    each with Open."""
    if message.role is not Role.ASSISTANT:
        return
    note = state.request_note_of(conversation.user_id, conversation.conversation_id)
    if note is None or note.reply_seq != message.seq:
        return
    memories_used(note)
    label = recalled_label(note)
    if label is None:
        return
    with st.expander(label):
        for number, item in enumerate(note.recalled):
            st.caption(recalled_line(item, conversation.conversation_id))
            st.text(snippet(item.content, [], SNIPPET_CHARS))
            st.button(
                "Open",
                key=f"recalled:{number}",
                on_click=open_hit,
                args=(conversation.user_id, item.conversation_id, item.seq),
            )


def planned_now(services: Services, page: PageView) -> PlannedRequest:
    """What a retry would send now, with what the last request of this conversation recalled
    (recalling anew on every run would cost an embedding): for the token metric and chart."""
    conversation = page.conversation
    note = state.request_note_of(conversation.user_id, conversation.conversation_id)
    kept = None
    if note is not None and note.recalled:
        in_window = {m.key for m in conversation.window.messages}
        recalled = tuple(m for m in note.recalled if m.key not in in_window)
        kept = RecallResult(DEFAULT_RECALL_SCOPE, recalled)
    memories = note.memories if note is not None else ()
    return services.context.plan(conversation.window, page.summary, kept, memories)


# --- the embedding backlog -----------------------------------------------------------------


def read_progress(worker: EmbeddingWorker, user_id: str) -> EmbeddingProgress | None:
    try:
        return worker.progress(user_id)
    except (redis.RedisError, ChatMemoryError):
        return None


def backlog_words(progress: EmbeddingProgress, details: bool) -> str:
    """What waiting to be embedded means for the user, in words."""
    waiting = f"{plural(progress.pending, 'message')} of yours wait to be embedded"
    meanwhile = "meanwhile search and recall find them by their words alone"
    if progress.state is WorkerState.WAITING:
        why = f" ({progress.last_error})" if details and progress.last_error else ""
        return (
            f"{waiting}: the embedding model is not answering{why}. They are stored and safe; "
            f"{meanwhile}, and embedding resumes when the model answers (retried at least "
            "every minute)."
        )
    doing = {
        WorkerState.EMBEDDING: "embedding them now",
        WorkerState.OTHER_INSTANCE: "another app instance is embedding them",
    }.get(progress.state, "the background embedder takes them next")
    return f"{waiting} for search by meaning ({doing}); {meanwhile}."


def backlog_status(services: Services, identity: Identity) -> None:
    """While messages wait to be embedded (new, imported, or after a model change): how many,
    and what happens meanwhile, refreshed every two seconds."""
    worker = services.embedding_worker
    if worker is None:
        return
    progress = read_progress(worker, identity.user_id)
    if progress is None:
        st.caption("How many of your messages wait to be embedded cannot be read now.")
    elif not progress.done:
        live_backlog(worker, identity.user_id, services.shows_internals_to(identity))


@st.fragment(run_every=2)
def live_backlog(worker: EmbeddingWorker, user_id: str, details: bool) -> None:
    progress = read_progress(worker, user_id)
    if progress is None or progress.done:
        state.backlog_seen(user_id, 0)
        st.rerun(scope="app")  # done: the page without the countdown
    seen = state.backlog_seen(user_id, progress.pending)
    st.progress(1 - progress.pending / seen if seen else 1.0)
    st.caption(backlog_words(progress, details))
