"""Records the page keeps in `st.session_state` between runs (UI state only, never user data).

They live in a module, not in app.py: Streamlit executes app.py afresh on every run, so a class
defined there is a new class each time and `isinstance` against last run's record would fail.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Draft:
    """A prompt that was not stored (too long, or storage down), kept for its user to resend."""

    user_id: str
    text: str


@dataclass(frozen=True)
class ModelFailure:
    """Why the reply to `user_id`'s last message is missing, shown until a reply is stored."""

    user_id: str
    message: str
