"""What the last request of a conversation recalled (and, later, the memories it used), and
how far the embedding backlog has come since the page first saw it."""

from __future__ import annotations

import streamlit as st

from ui.records import Remembering, RequestNote
from ui.state.base import count_value

_NOTES = "request_notes"


def keep_request_note(note: RequestNote) -> None:
    """One note per conversation (the newest reply's), for the tab's session."""
    notes = st.session_state.setdefault(_NOTES, {})
    notes[(note.user_id, note.conversation_id)] = note


def forget_request_note(user_id: str, conversation_id: str) -> None:
    """A new turn's request replaces the note: the reply before it shows none from now on."""
    notes = st.session_state.get(_NOTES)
    if isinstance(notes, dict):
        notes.pop((user_id, conversation_id), None)


def request_note_of(user_id: str, conversation_id: str) -> RequestNote | None:
    notes = st.session_state.get(_NOTES)
    if not isinstance(notes, dict):
        return None
    note = notes.get((user_id, conversation_id))
    return note if isinstance(note, RequestNote) else None


def backlog_seen(user_id: str, pending: int) -> int:
    """The largest backlog of the user's this tab has seen since it was last empty: what a
    progress bar counts down from."""
    key = f"backlog_seen:{user_id}"
    seen = max(count_value(key, 0), pending) if pending else 0
    st.session_state[key] = seen
    return seen


_REMEMBERING = "remembering"


def start_remembering(remembering: Remembering) -> None:
    st.session_state[_REMEMBERING] = remembering


def remembering_now() -> Remembering | None:
    value = st.session_state.get(_REMEMBERING)
    return value if isinstance(value, Remembering) else None


def stop_remembering() -> None:
    st.session_state.pop(_REMEMBERING, None)


def leave_memory_note(note: str) -> None:
    """The outcome of a memory typed in the panel, shown once at its top."""
    st.session_state["memory_note"] = note


def take_memory_note() -> str | None:
    note = st.session_state.pop("memory_note", None)
    return note if isinstance(note, str) else None
