"""How a message shows on the page: a prompt as plain text, a reply as inert Markdown with its
code verbatim (stored or while it streams), and the mark of a reply cut off at its limit."""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from chatbot.formatting import inert_markdown, split_code_blocks
from memory import Message, Role

CUT_OFF = "✂️ Cut off: the reply reached its length limit (LLM_MAX_TOKENS)."


def is_cut_off(message: Message) -> bool:
    return message.role is Role.ASSISTANT and bool(message.usage and message.usage.cut_off)


def render_message(role: Role, content: str, cut_off: bool = False) -> None:
    with st.chat_message(role.value):
        if role is Role.USER:
            st.text(content)
        else:
            show_reply(content)
        if cut_off:
            st.caption(CUT_OFF)


def show_reply(text: str) -> None:
    """Render a model reply: prose as inert Markdown, fenced code verbatim."""
    for block in split_code_blocks(text):
        if block.code:
            st.code(block.text, language=block.language)
        elif block.text.strip():
            st.markdown(inert_markdown(block.text))


def stream_reply(chunks: Iterable[str]) -> str:
    """Show a streaming reply as it arrives, rendered like a stored one; the full text.
    (`st.write_stream` would render the raw Markdown, images included, while it streams.)"""
    placeholder = st.empty()
    text = ""
    for chunk in chunks:
        if not chunk:
            continue
        text += chunk
        with placeholder.container():
            show_reply(text)
    with placeholder.container():
        show_reply(text)
    return text
