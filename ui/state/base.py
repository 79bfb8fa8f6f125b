"""What every part of the page state shares: widget keys and the typed reads of records."""

from __future__ import annotations

import hashlib
from typing import TypeVar

import streamlit as st

_Record = TypeVar("_Record")
PROMPT_KEY = "prompt"  # the chat input's widget key
EDIT_KEY = "edit_text"  # the editor of the last prompt (one per session; `Editing` names whose)


def widget_key(name: str, user_id: str) -> str:
    """Per-user widget keys, so switching user re-reads that user's settings from Redis."""
    return f"{name}:{hashlib.sha256(user_id.encode()).hexdigest()[:12]}"


def record_of(key: str, kind: type[_Record]) -> _Record | None:
    value = st.session_state.get(key)
    return value if isinstance(value, kind) else None


def take_flag(key: str) -> bool:
    """Read and clear a one-run flag."""
    return bool(st.session_state.pop(key, False))


def widget_value(key: str) -> object:
    """What a widget holds now (read by its callback)."""
    return st.session_state.get(key)


def show_value(key: str, value: object) -> None:
    """Make a widget show `value` (what Redis holds) on this run."""
    st.session_state[key] = value


def count_value(key: str, default: int) -> int:
    """A page size or list length kept per widget key."""
    value = st.session_state.get(key, default)
    return value if isinstance(value, int) else default
