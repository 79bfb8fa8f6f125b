"""Memories on the page: the panel in Settings (memory on/off, remember something typed,
search, and each memory with where it came from, when it was last used, Open source, Pin,
Edit, Delete); "Remember this" under a message; and, under a reply, the memories its request
carried.

Every action names its memory by id (or its message by conversation and seq): a memory
deleted or removed with its source since the page was drawn is refused with a message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import streamlit as st

from chatbot.conversation_list import plural
from chatbot.identity import Identity
from chatbot.services import Services
from memory import ChatMemoryError, Conversation, Message
from memory.memories import MAX_MEMORY_CHARS, MemoryRecord
from ui import state
from ui.feedback import act, show_error
from ui.frame import services_or_stop  # the process's services (cached), for callbacks
from ui.records import Place, Remembering, RequestNote
from ui.search import open_hit

TOGGLE_LABEL = "Use my memories"
TOGGLE_HELP = (
    "Memories are short facts about you, kept across all your chats. When on, the ones related "
    "to what you write are sent to the model with your message, and a configured model may "
    "propose new ones after a reply. Saved at once."
)
ADD_LABEL = "Remember something"
SEARCH_LABEL = "Search my memories"
REMEMBER_LABEL = "🧠 Remember this"


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- the panel ------------------------------------------------------------------------------


def save_enabled(user_id: str, key: str) -> None:
    memories = services_or_stop().memories
    on = bool(state.widget_value(key))
    if memories is not None:
        act(Place.MEMORIES, "Saving the memory setting", lambda: memories.set_enabled(user_id, on))


def add_typed(user_id: str, key: str) -> None:
    memories, text = services_or_stop().memories, str(state.widget_value(key) or "")
    if memories is None:
        return

    def remember() -> None:
        state.leave_memory_note(memories.add(user_id, text).message)

    if act(Place.MEMORIES, "Remembering that", remember):
        state.show_value(key, "")  # kept when refused: nothing typed is lost


def memories_count(count: int) -> str:
    return f"{count:,} {'memory' if count == 1 else 'memories'}"


def memories_section(services: Services, identity: Identity) -> None:
    memories = services.memories
    if memories is None:
        return
    bar, user = st.sidebar, identity.user_id
    bar.subheader("Memories")
    show_error(Place.MEMORIES)
    note = state.take_memory_note()
    if note:
        bar.success(note)
    try:
        on, records = memories.enabled(user), memories.listed(user)
    except ChatMemoryError as error:
        bar.caption(f"Your memories cannot be read now: {error}")
        return
    key = state.widget_key("memory_on", user)
    state.show_value(key, on)
    bar.toggle(TOGGLE_LABEL, key=key, on_change=save_enabled, args=(user, key),
               help=TOGGLE_HELP)  # fmt: skip
    add_key = state.widget_key("memory_add", user)
    bar.text_input(ADD_LABEL, key=add_key, max_chars=MAX_MEMORY_CHARS,
                   placeholder="e.g. I prefer metric units")  # fmt: skip
    bar.button("Remember", key=f"{add_key}:go", on_click=add_typed,
               args=(user, add_key))  # fmt: skip
    memory_list(services, user, records)


def memory_list(services: Services, user: str, records: list[MemoryRecord]) -> None:
    bar = st.sidebar
    if not records:
        bar.caption("No memories yet: use “Remember this” under a message, or type one above.")
        return
    text = bar.text_input(SEARCH_LABEL, key=state.widget_key("memory_search", user))
    shown = records
    if text.strip() and services.memories is not None:
        try:
            shown = services.memories.search(user, text)
        except ChatMemoryError as error:
            bar.caption(f"Searching your memories failed: {error}")
        if not shown:
            bar.caption("No memory matches that.")
    by_id = {record.id: record for record in records}
    with bar.expander(f"Your memories ({len(records):,})", expanded=True):
        for record in shown:
            memory_row(user, record, by_id)


HIDDEN_SOURCE = (
    "Its message is in a version of the conversation not shown now (an edited prompt's "
    "earlier version): switch to it with < > beside the edited prompt."
)


def memory_row(user: str, record: MemoryRecord, by_id: dict[str, MemoryRecord]) -> None:
    box = st.container(border=True)
    box.text(record.text)  # as typed: never read as Markdown
    box.caption(describe(record))
    newer = by_id.get(record.superseded_by or "") if not record.active else None
    if newer is not None:
        box.text(f"Replaced by: {newer.text}")  # user or model text: never Markdown
    for number, source in enumerate(record.sources, start=1):
        label = "Open source" if len(record.sources) == 1 else f"Open source {number}"
        box.button(label, key=f"memory:{record.id}:source:{number}", on_click=open_hit,
                   args=(user, source.conversation_id, source.seq),
                   disabled=source.expired or source.hidden,
                   help=HIDDEN_SOURCE if source.hidden else None)  # fmt: skip
    left, middle, right = box.columns(3)
    left.button("Unpin" if record.pinned else "Pin", key=f"memory:{record.id}:pin",
                on_click=change, args=(user, record.id, "pin", not record.pinned))  # fmt: skip
    middle.toggle("Edit", key=f"memory:{record.id}:editing")
    right.button("Delete", key=f"memory:{record.id}:delete", on_click=change,
                 args=(user, record.id, "delete", None))  # fmt: skip
    if state.widget_value(f"memory:{record.id}:editing"):
        key = state.widget_key(f"memory_edit:{record.id}", user)
        state.show_value(key, record.text)  # what Redis holds, on every run
        box.text_input("Memory (saved when you press Enter)", key=key, max_chars=MAX_MEMORY_CHARS,
                       on_change=change, args=(user, record.id, "edit", key))  # fmt: skip


def describe(record: MemoryRecord) -> str:
    """Where it came from, when it was made and last used, pinned or superseded (app text
    only: safe as Markdown)."""
    origin = "proposed by the model" if record.origin == "model" else "saved by you"
    parts = [f"{origin} · {_when(record.created_at)}"]
    if record.sources:
        expired = sum(source.expired for source in record.sources)
        hidden = sum(source.hidden for source in record.sources)
        came = f"from {plural(len(record.sources), 'message')}"
        notes = [f"{expired} expired"] if expired else []
        notes += [f"{hidden} in a version not shown"] if hidden else []
        parts.append(f"{came} ({', '.join(notes)})" if notes else came)
    else:
        parts.append("typed, no source message")
    used = _when(record.last_used_at) if record.last_used_at else "never"
    parts.append(f"last used: {used}")
    if record.pinned:
        parts.append("📌 pinned: kept when its messages expire")
    if not record.active:
        parts.append("superseded: no longer used")
    return " · ".join(parts)


def change(user: str, memory_id: str, what: str, value: object) -> None:
    memories = services_or_stop().memories
    if memories is None:
        return
    if what == "pin":
        act(
            Place.MEMORIES, "Pinning the memory", lambda: memories.pin(user, memory_id, bool(value))
        )
    elif what == "delete":
        act(Place.MEMORIES, "Deleting the memory", lambda: memories.delete(user, memory_id))
    elif what == "edit":
        text = str(state.widget_value(str(value)) or "")
        act(Place.MEMORIES, "Saving the memory", lambda: memories.edit(user, memory_id, text))


# --- under the messages ---------------------------------------------------------------------


def remember_button(conversation: Conversation, message: Message) -> None:
    """ "Remember this" in the message's action row (ui/message_actions.py): opens the
    editor below it; once saved, what happened instead."""
    here = Remembering(conversation.user_id, conversation.conversation_id, message.seq)
    now = state.remembering_now()
    if now is not None and now.saved and replace(now, saved="") == here:
        st.caption(f"🧠 {now.saved}")
    elif now != here:
        st.button(REMEMBER_LABEL, key=f"remember:{message.seq}", type="tertiary",
                  on_click=state.start_remembering, args=(here,))  # fmt: skip


def remember_editor(conversation: Conversation, message: Message) -> None:
    """Under a message whose "Remember this" was pressed: the memory to keep (the message's
    start, to shorten into a fact), Save and Cancel."""
    here = Remembering(conversation.user_id, conversation.conversation_id, message.seq)
    if state.remembering_now() != here:
        return
    key = f"remember_text:{message.seq}"
    if state.widget_value(key) is None:
        state.show_value(key, " ".join(message.content.split())[:MAX_MEMORY_CHARS])
    st.text_area("Memory to keep (shorten it to the fact)", key=key, max_chars=MAX_MEMORY_CHARS)
    save, cancel = st.columns(2)
    save.button("Save memory", key=f"remember_save:{message.seq}", on_click=save_remembered,
                args=(here, key))  # fmt: skip
    cancel.button("Cancel", key=f"remember_cancel:{message.seq}", on_click=state.stop_remembering)


def save_remembered(here: Remembering, key: str) -> None:
    memories, text = services_or_stop().memories, str(state.widget_value(key) or "")
    if memories is None:
        return
    user, cid, seq = here.user_id, here.conversation_id, here.seq

    def remember() -> None:
        result = memories.add(user, text, conversation_id=cid, seq=seq)
        state.start_remembering(replace(here, saved=result.message))

    if not act(Place.PROMPT, "Remembering that", remember):
        return
    state.show_value(key, None)


def memories_used(note: RequestNote) -> None:
    """Under the reply: the memories its request carried, and how many did not fit."""
    count, left_out = len(note.memories), note.memories_left_out
    if not count and not left_out:
        return
    label = f"🧠 {memories_count(count)} of yours used"
    if left_out:
        label += f" · {left_out:,} did not fit"
    with st.expander(label):
        for memory in note.memories:
            st.text(memory.text)
