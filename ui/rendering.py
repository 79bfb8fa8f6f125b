"""How a message shows on the page: a prompt as plain text, a reply as inert Markdown with its
code verbatim (stored, or while it streams: ui/live_reply.py), and the marks of a reply cut
off at its limit or stopped by the user."""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from chatbot.formatting import inert_markdown, split_code_blocks
from memory import Message, Role

CUT_OFF = "✂️ Cut off: the reply reached its length limit (LLM_MAX_TOKENS)."
STOPPED = "■ Stopped: you stopped this reply; what it had written is kept."


def is_cut_off(message: Message) -> bool:
    return message.role is Role.ASSISTANT and bool(message.usage and message.usage.cut_off)


def is_stopped(message: Message) -> bool:
    return message.role is Role.ASSISTANT and bool(message.usage and message.usage.stopped)


def render_message(role: Role, content: str, cut_off: bool = False, stopped: bool = False) -> None:
    with st.chat_message(role.value):
        if role is Role.USER:
            st.text(content)
        else:
            show_reply(content)
        if cut_off:
            st.caption(CUT_OFF)
        if stopped:
            st.caption(STOPPED)


def show_reply(text: str) -> None:
    """Render a model reply: prose as inert Markdown, fenced code verbatim."""
    for block in split_code_blocks(text):
        if block.code:
            st.code(block.text, language=block.language)
        elif block.text.strip():
            st.markdown(inert_markdown(block.text))


def redraw_reply(slot: DeltaGenerator, text: str) -> None:
    """Redraw a streaming reply in `slot` (an st.empty): while it is all prose, one Markdown
    element, so a redraw is one message to the browser; a container of its blocks once it
    holds code. Every message a redraw sends is built, hashed and queued by the process's one
    interpreter, ten times a second for every reply in flight."""
    blocks = split_code_blocks(text)
    if len(blocks) == 1 and not blocks[0].code:
        slot.markdown(inert_markdown(blocks[0].text))
        return
    with slot.container():
        show_reply(text)
