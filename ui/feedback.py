"""What a user is told when an action fails: the message shows at the top of the section whose
control failed (on a phone the sidebar covers the page, so an error elsewhere would be hidden,
and one below a tall control may fall under the screen's edge), or next to the prompt box."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from memory import ChatMemoryError, StorageUnavailable
from ui import state
from ui.records import Place


def act(place: Place, action: str, write: Callable[[], object]) -> bool:
    """Run a write; a storage failure becomes a message shown at `place`. True when the write
    went through."""
    try:
        write()
    except StorageUnavailable as error:
        state.report(place, f"{action} failed: storage unavailable ({error}).")
    except ChatMemoryError as error:
        state.report(place, f"{action} failed: {error}")
    else:
        return True
    return False


def show_error(place: Place, where: DeltaGenerator | None = None) -> None:
    """The failed action's message of `place`, once (in the sidebar unless told where)."""
    error = state.take_report(place)
    if error:
        (where or st.sidebar).error(error)
