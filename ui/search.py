"""The search box at the top of the sidebar and its hits: the user's messages in every
conversation, ranked by their words and their meaning (hybrid search). What the user typed
goes to the memory layer as-is (it escapes); hits show as plain text, each with Open."""

from __future__ import annotations

import streamlit as st

from chatbot.identity import Identity
from chatbot.services import Services
from chatbot.your_data import hit_line
from memory import ChatMemoryError, IndexUnavailable, SearchHit
from memory.hybrid import content_words
from ui import state
from ui.feedback import show_error
from ui.records import FoundMessage, Place

LABEL = "🔎 Search your chats"


def open_hit(user_id: str, conversation_id: str, seq: int) -> None:
    """A hit's Open: the URL names its conversation and message (`?c=…&m=<seq>`)."""
    state.open_found(FoundMessage(user_id, conversation_id, seq))


def search_section(services: Services, identity: Identity) -> None:
    bar = st.sidebar
    show_error(Place.SEARCH)
    text = bar.text_input(
        LABEL,
        key=state.widget_key("search", identity.user_id),
        placeholder="Words or a question, across all your chats",
    )
    if not text.strip():
        return
    try:
        hits = services.memory.search(identity.user_id, text)
    except IndexUnavailable as error:
        bar.info(str(error))  # a cluster without a coordinator, or clear-all running
        return
    except ChatMemoryError as error:
        bar.error(f"Search failed: {error}")
        return
    if not hits:
        bar.caption(no_hits(text))
    for number, hit in enumerate(hits):
        show_hit(identity, number, hit)


def no_hits(text: str) -> str:
    """Why nothing was found: hybrid search needs one word that is not a stopword (any one
    such word, or the meaning, may match)."""
    if not content_words(text):
        return (
            "Nothing to search for: type a word. Common words such as “the” or “is”, and "
            "punctuation alone, are not searched."
        )
    return "No message of yours matches these words or their meaning."


def show_hit(identity: Identity, number: int, hit: SearchHit) -> None:
    box = st.sidebar.container(border=True)
    box.text(hit.title or "Untitled chat")
    box.caption(hit_line(hit))
    box.text(hit.snippet)
    box.button(
        "Open",
        key=f"search_hit:{number}",
        on_click=open_hit,
        args=(identity.user_id, hit.conversation_id, hit.seq),
    )
