"""The one confirmation question every destructive action asks before it deletes."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import state
from ui.records import Confirmation


def ask(confirmation: Confirmation | None) -> None:
    """A button's callback: show (or, with None, dismiss) the question."""
    state.ask(confirmation)


def confirm(
    question: str,
    yes: tuple[str, Callable[..., None], tuple[object, ...]],
    name: str,
) -> None:
    """A destructive action's question in the sidebar, with its Yes (label, callback and
    arguments) and Cancel, one a row, so that the label saying what Yes does is never cut
    off; Yes is disabled while a reply streams."""
    label, on_yes, args = yes
    st.sidebar.warning(question)
    st.sidebar.button(label, on_click=on_yes, args=args, type="primary")
    st.sidebar.button("Cancel", key=f"cancel_{name}", on_click=ask, args=(None,))
