"""The page's memory between script runs: the only module that touches `st.session_state` and
`st.query_params`, each through a typed accessor.

Everything a user owns lives in Redis; what is here is UI state only: which conversation the
URL opens (`?c=<id>`, `&m=<seq>` for a search hit, `?user=` for the demo picker), an unsent
draft, the turn a callback asked for, the last failure, a question waiting for its yes, and
what each widget shows (set from what Redis holds on every run, so two tabs never disagree for
long). Records name their user, so nothing of one demo user's page shows after a switch.
"""

from __future__ import annotations

import hashlib
from typing import TypeVar

import streamlit as st

from chatbot.turn import Draft, TurnRequest
from ui.records import Confirmation, Destructive, Editing, FoundMessage, ModelFailure, Place

_Record = TypeVar("_Record")
PROMPT_KEY = "prompt"  # the chat input's widget key
EDIT_KEY = "edit_text"  # the editor of the last prompt (one per session; `Editing` names whose)


def widget_key(name: str, user_id: str) -> str:
    """Per-user widget keys, so switching user re-reads that user's settings from Redis."""
    return f"{name}:{hashlib.sha256(user_id.encode()).hexdigest()[:12]}"


def _record(key: str, kind: type[_Record]) -> _Record | None:
    value = st.session_state.get(key)
    return value if isinstance(value, kind) else None


def _flag(key: str) -> bool:
    """Read and clear a one-run flag."""
    return bool(st.session_state.pop(key, False))


# --- widgets -----------------------------------------------------------------------------------


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


# --- the URL -----------------------------------------------------------------------------------


def url_conversation() -> str | None:
    return st.query_params.get("c") or None


def name_conversation(conversation_id: str) -> None:
    """Put the open conversation in the URL, so reload and back/forward keep it."""
    if st.query_params.get("c") != conversation_id:
        st.query_params["c"] = conversation_id


def url_message() -> str | None:
    return st.query_params.get("m")


def drop_url_message() -> None:
    st.query_params.pop("m", None)


def url_user() -> str | None:
    return st.query_params.get("user")


def name_user(user: str) -> None:
    if st.query_params.get("user") != user:
        st.query_params["user"] = user


# --- moving around -----------------------------------------------------------------------------


def open_conversation(conversation_id: str) -> None:
    """Switch conversation: the URL names it (a browser history entry, so Back returns)."""
    st.query_params["c"] = conversation_id
    st.session_state["close_sidebar"] = True  # on a phone, the chat it opened is under it
    # the failure explained the conversation left; back there, "no reply stored" + Retry show
    for record in ("confirm", "editing", "model_error"):
        st.session_state.pop(record, None)


def open_found(found: FoundMessage) -> None:
    """A search hit's conversation and message in the URL (one browser history entry)."""
    st.session_state["found"] = found
    st.query_params.update(c=found.conversation_id, m=str(found.seq))
    st.session_state["close_sidebar"] = True


def user_switched() -> None:
    st.session_state["close_sidebar"] = True
    st.query_params.pop("c", None)  # another user's conversation is not theirs to open


def start_fresh() -> None:
    """After an erase: no conversation in the URL, nothing of the old page kept."""
    for param in ("c", "m"):
        st.query_params.pop(param, None)
    for key in ("draft", "model_error", "found", "turn"):
        st.session_state.pop(key, None)


def close_sidebar_now() -> bool:
    return _flag("close_sidebar")


# --- found messages ----------------------------------------------------------------------------


def found_message() -> FoundMessage | None:
    return _record("found", FoundMessage)


def remember_found(found: FoundMessage) -> None:
    """Where the opened hit sits; the page scrolls to it once."""
    st.session_state["found"] = found
    st.session_state["scroll_to_found"] = True


def forget_found() -> None:
    st.session_state.pop("found", None)


def scroll_to_found_now() -> bool:
    return _flag("scroll_to_found")


# --- the turn and its draft --------------------------------------------------------------------


def queue_turn(request: TurnRequest) -> None:
    """The next script run runs this turn, with the inputs disabled."""
    st.session_state["turn"] = request


def waiting_turn() -> TurnRequest | None:
    return _record("turn", TurnRequest)


def take_turn() -> None:
    st.session_state.pop("turn", None)


def typed_prompt() -> str | None:
    prompt = st.session_state.get(PROMPT_KEY)
    return prompt if isinstance(prompt, str) else None


def draft_of(user_id: str, conversation_id: str | None = None) -> Draft | None:
    """The user's unsent prompt; with `conversation_id`, only if it was typed there."""
    draft = _record("draft", Draft)
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
    return _flag("saved_after_all")


def mark_replying(user_id: str) -> None:
    """A reply for `user_id` streams; still set on the next run, it was cut short (Stop)."""
    st.session_state["replying"] = user_id


def done_replying() -> None:
    st.session_state.pop("replying", None)


def take_stopped(user_id: str) -> bool:
    """Whether the last run's reply was cut short (read once)."""
    return st.session_state.pop("replying", None) == user_id


def model_failure_of(user_id: str) -> ModelFailure | None:
    failure = _record("model_error", ModelFailure)
    return failure if failure is not None and failure.user_id == user_id else None


def set_model_failure(failure: ModelFailure | None) -> None:
    if failure is None:
        st.session_state.pop("model_error", None)
    else:
        st.session_state["model_error"] = failure


# --- questions and editors ---------------------------------------------------------------------


def ask(confirmation: Confirmation | None) -> None:
    """Show (or, with None, dismiss) the confirmation of a destructive action."""
    st.session_state["confirm"] = confirmation


def confirmation_of(
    user_id: str, action: Destructive, conversation_id: str | None = None
) -> Confirmation | None:
    asked = _record("confirm", Confirmation)
    if (
        asked is not None
        and asked.user_id == user_id
        and asked.action is action
        and asked.conversation_id == conversation_id
    ):
        return asked
    return None


def editing_of(user_id: str, conversation_id: str) -> Editing | None:
    editing = _record("editing", Editing)
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


# --- messages to the user ----------------------------------------------------------------------


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
