"""The turn a callback asked for, the unsent draft and the last model failure."""

from __future__ import annotations

import streamlit as st

from chatbot.turn import Draft, TurnRequest
from ui.records import ModelFailure
from ui.state.base import PROMPT_KEY, record_of, take_flag


def queue_turn(request: TurnRequest) -> None:
    """The next script run runs this turn, with the inputs disabled."""
    st.session_state["turn"] = request


def waiting_turn() -> TurnRequest | None:
    return record_of("turn", TurnRequest)


def take_turn() -> None:
    st.session_state.pop("turn", None)


def typed_prompt() -> str | None:
    prompt = st.session_state.get(PROMPT_KEY)
    return prompt if isinstance(prompt, str) else None


def draft_of(user_id: str, conversation_id: str | None = None) -> Draft | None:
    """The user's unsent prompt; with `conversation_id`, only if it was typed there."""
    draft = record_of("draft", Draft)
    if draft is None or draft.user_id != user_id:
        return None
    if conversation_id is not None and draft.conversation_id not in ("", conversation_id):
        return None
    return draft


def keep_draft(draft: Draft) -> None:
    st.session_state["draft"] = draft


def drop_draft() -> None:
    st.session_state.pop("draft", None)


def mark_saved_after_all() -> None:
    st.session_state["saved_after_all"] = True


def saved_after_all_now() -> bool:
    return take_flag("saved_after_all")


def first_reread_for(reply_id: str) -> bool:
    """True the first time a run asks for `reply_id`: the page read before that reply was
    stored, so one rerun shows it (never more than one, whatever Redis holds)."""
    if st.session_state.get("reply_reread") == reply_id:
        return False
    st.session_state["reply_reread"] = reply_id
    return True


def model_failure_of(user_id: str) -> ModelFailure | None:
    failure = record_of("model_error", ModelFailure)
    return failure if failure is not None and failure.user_id == user_id else None


def set_model_failure(failure: ModelFailure | None) -> None:
    if failure is None:
        st.session_state.pop("model_error", None)
    else:
        st.session_state["model_error"] = failure


def show_newest(user_id: str, conversation_id: str, seq: int) -> None:
    """The newest message of the conversation the page shows now (0: none), as a run draws
    it: what the actions drawn under its messages act on."""
    st.session_state[f"newest_shown:{user_id}:{conversation_id}"] = seq


def newest_shown(user_id: str, conversation_id: str) -> int | None:
    value = st.session_state.get(f"newest_shown:{user_id}:{conversation_id}")
    return value if isinstance(value, int) else None
