"""Streamlit's websocket protocol, as the browser speaks it: protobufs from the `streamlit`
package, one `BackMsg` per client action and a stream of `ForwardMsg`s back.

The browser opens `/_stcore/stream` with the subprotocol list `["streamlit", <xsrf cookie>]`
and asks for every script run with a `rerun_script` message carrying the page's query string,
the page hash and the widget values that changed. The server merges widget values it is not
sent with the ones it already holds, so a client that only types prompts sends only the chat
input's value. What the page shows arrives as deltas; an element is recognised by its type
(`chat_input`, `markdown`, ...), never by its key or position, so the client does not depend on
the page's layout.
"""

from __future__ import annotations

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ChatInput_pb2 import ChatInput
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

SUBPROTOCOL = "streamlit"
STREAM_PATH = "_stcore/stream"
XSRF_COOKIE = "_streamlit_xsrf"
RUN_CONTINUES = ForwardMsg.FINISHED_EARLY_FOR_RERUN  # the chain goes on with another run
TEXT_ELEMENTS = ("markdown", "text", "alert", "exception")


def rerun(
    query_string: str,
    page_script_hash: str,
    cached_hashes: list[str],
    chat_input: tuple[str, str] | None = None,
    fragment_id: str = "",
) -> bytes:
    """A `rerun_script` message; `chat_input`: (widget id, prompt) submitted with it;
    `fragment_id`: a fragment's timed rerun (`st.fragment(run_every=...)`)."""
    message = BackMsg()
    state = message.rerun_script
    state.query_string = query_string
    state.page_script_hash = page_script_hash
    state.cached_message_hashes.extend(cached_hashes)
    state.context_info.timezone = "UTC"
    state.context_info.locale = "en-US"
    if fragment_id:
        state.fragment_id = fragment_id
        state.is_auto_rerun = True
    if chat_input is not None:
        widget = state.widget_states.widgets.add()
        widget.id, widget.chat_input_value.data = chat_input
    return message.SerializeToString()


def new_element(message: ForwardMsg) -> Element | None:
    if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
        return message.delta.new_element
    return None


def chat_input_of(message: ForwardMsg) -> ChatInput | None:
    element = new_element(message)
    return element.chat_input if element and element.WhichOneof("type") == "chat_input" else None


def shown_text(message: ForwardMsg) -> tuple[str, str] | None:
    """(element type, text) of a text-like element: Markdown, text, an alert, an exception."""
    element = new_element(message)
    kind = element.WhichOneof("type") if element else None
    if element is None or kind not in TEXT_ELEMENTS:
        return None
    if kind == "exception":
        return kind, element.exception.message
    return str(kind), str(getattr(element, str(kind)).body)
