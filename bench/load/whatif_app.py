"""A what-if, not the product: app.py unchanged except that a streaming reply is redrawn at
most every `REDRAW_SECONDS` (and once at its end) instead of at every token.

Today `ui.rendering.stream_reply` redraws the whole reply so far at every chunk: two
ForwardMsgs per token (the container and its Markdown), each serialized, hashed and queued,
with text that grows with the reply. The load benchmark runs this page beside app.py
(`python -m bench.load --script bench/load/whatif_app.py`) to show what coalescing would buy
before anyone changes the page. app.py is compiled once per process, as Streamlit does for
its main script.
"""

import time
from collections.abc import Iterable
from pathlib import Path
from types import CodeType

import streamlit as st

import ui.rendering
import ui.turn_view

REDRAW_SECONDS = 0.1
APP = Path(__file__).resolve().parents[2] / "app.py"


def stream_reply(chunks: Iterable[str]) -> str:
    placeholder = st.empty()
    text, drawn_at = "", 0.0
    for chunk in chunks:
        text += chunk
        if chunk and time.monotonic() - drawn_at >= REDRAW_SECONDS:
            with placeholder.container():
                ui.rendering.show_reply(text)
            drawn_at = time.monotonic()
    with placeholder.container():
        ui.rendering.show_reply(text)
    return text


@st.cache_resource
def _compiled() -> CodeType:
    return compile(APP.read_text(), str(APP), "exec")


ui.turn_view.stream_reply = stream_reply  # the name the turn's view streams with
exec(_compiled(), {"__name__": "__main__", "__file__": str(APP)})
