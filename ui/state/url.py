"""The URL (`?c=<id>`, `&m=<seq>`, `?user=`) and moving between conversations."""

from __future__ import annotations

import streamlit as st

from ui.records import FoundMessage
from ui.state.base import record_of, take_flag


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
    return take_flag("close_sidebar")


def found_message() -> FoundMessage | None:
    return record_of("found", FoundMessage)


def remember_found(found: FoundMessage) -> None:
    """Where the opened hit sits; the page scrolls to it once."""
    st.session_state["found"] = found
    st.session_state["scroll_to_found"] = True


def forget_found() -> None:
    st.session_state.pop("found", None)


def scroll_to_found_now() -> bool:
    return take_flag("scroll_to_found")
