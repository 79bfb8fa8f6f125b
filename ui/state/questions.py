"""Questions waiting for a yes, the open editor, and messages shown once."""

from __future__ import annotations

import streamlit as st

from ui.records import Confirmation, Destructive, Editing, Place
from ui.state.base import EDIT_KEY, count_value, record_of


def ask(confirmation: Confirmation | None) -> None:
    """Show (or, with None, dismiss) the confirmation of a destructive action."""
    st.session_state["confirm"] = confirmation


def confirmation_of(
    user_id: str, action: Destructive, conversation_id: str | None = None
) -> Confirmation | None:
    asked = record_of("confirm", Confirmation)
    if (
        asked is not None
        and asked.user_id == user_id
        and asked.action is action
        and asked.conversation_id == conversation_id
    ):
        return asked
    return None


def editing_of(user_id: str, conversation_id: str) -> Editing | None:
    editing = record_of("editing", Editing)
    if (
        editing is not None
        and editing.user_id == user_id
        and editing.conversation_id == conversation_id
    ):
        return editing
    return None


def start_editing(editing: Editing) -> None:
    st.session_state["editing"] = editing
    st.session_state[EDIT_KEY] = editing.text


def take_editing() -> tuple[Editing | None, str]:
    """The prompt being edited and the editor's text; the editor closes."""
    editing = st.session_state.pop("editing", None)
    text = str(st.session_state.get(EDIT_KEY, ""))
    return (editing if isinstance(editing, Editing) else None), text


def report(place: Place, message: str) -> None:
    """A failed action's message, shown once at `place`."""
    errors = st.session_state.setdefault("errors", {})
    errors[place] = message


def take_report(place: Place) -> str | None:
    errors = st.session_state.get("errors")
    return errors.pop(place, None) if isinstance(errors, dict) else None


def leave_note(note: str) -> None:
    """The outcome of an import or an erase, shown once at the top of "Your data"."""
    st.session_state["data_note"] = note


def take_note() -> str | None:
    note = st.session_state.pop("data_note", None)
    return note if isinstance(note, str) else None


def import_round() -> int:
    """Which import box is on the page: each upload gets a fresh (empty) one."""
    return count_value("import_round", 0)


def next_import_round() -> None:
    st.session_state["import_round"] = import_round() + 1
