"""The actions on each message, in a small row under it: Copy puts the message's text, exactly as
stored (a reply's Markdown source, not its rendering), on the clipboard. Remember this keeps
it (shortened to a fact) as a memory (ui/memories.py), drawn by Streamlit in a row under it.

Copy runs in the browser (the clipboard is the user's, not the server's) and costs a rerun
one element, not one per message: the stored texts of the messages shown go to the page as
one data element (`show_sources`), and one script per page (`install`) puts a Copy button
under each of those messages, in the order they are shown, and answers its click. (Fifty
rows of Streamlit elements made every rerun ~25% slower.)

Adding a server-side action (one that writes Redis, e.g. "Remember"): a function
`(conversation, message) -> None` that draws its control (a Streamlit button keyed by the
message's seq, so a click on a stale page names its target), appended to `ACTIONS`; the row
of those is drawn under each message by `message_actions`, called from ui/chat.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from html import escape

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from memory import Conversation, Message
from ui.branches import edit_button, version_switch
from ui.memories import remember_button

MESSAGES_KEY = "conversation"  # the key of the messages' container (ui/chat.py)
COPY_LABEL = "Copy"
COPIED_LABEL = "Copied"
COPY_FAILED_LABEL = "Copy failed"
# One per page (it guards itself). After every change of the page, each of the first N chat
# messages in the main area (N: how many texts the data element holds; the stored messages
# come first, a streaming turn after them) gets its Copy row (shown last, by CSS order); a
# click writes that message's text to the clipboard (through a hidden text area
# where the Clipboard API is missing: plain HTTP) and says so on the button for a moment.
_COPY_SCRIPT = """<style>
/* Stored messages a turn's run has not drawn again yet (ui/chat.py): what Redis holds, so
   not faded as Streamlit fades stale elements. */
.st-key-MESSAGES_KEY [data-stale="true"] { opacity: 1 !important; transition: none !important; }
/* The server-side row (Remember this) sits tight under its own message, aligned with Copy,
   not halfway to the next one. */
div[class*="st-key-message_actions_"] { margin-top: -1rem; padding-left: 3.75rem; }
[data-testid='stChatMessage']:has(> .message-actions) { flex-wrap: wrap; }
[data-testid='stChatMessage']:has(> .message-actions) > [data-testid='stChatMessageContent'] {
  flex: 1 1 0; min-width: 0; }
.message-actions { order: 99; flex-basis: 100%; display: flex; gap: 0.5rem; padding-left: 2.75rem;
  position: relative; z-index: 1; }
#prompt-echo .message-actions { display: none; }
button.message-copy { font-size: 0.8rem; padding: 0.1rem 0.5rem; border-radius: 0.5rem;
  border: 1px solid rgba(128, 128, 128, 0.35); background: transparent; color: inherit;
  cursor: pointer; opacity: 0.75; }
button.message-copy:hover, button.message-copy:focus-visible { opacity: 1; }
</style><script>
(() => {
  if (window.messageCopy) return;
  window.messageCopy = true;
  const texts = () => {
    try {
      return JSON.parse(document.querySelector(".message-sources")?.getAttribute("data-sources")
                        || "[]");
    } catch (error) { return []; }
  };
  function sync() {
    const known = texts().length;
    const messages = document.querySelectorAll(
      "[data-testid='stMainBlockContainer'] [data-testid='stChatMessage']");
    messages.forEach((message, index) => {
      let row = message.querySelector(":scope > .message-actions");
      if (index >= known) { row?.remove(); return; }
      if (!row) {
        row = document.createElement("div");
        row.className = "message-actions";
        const button = document.createElement("button");
        button.type = "button";
        button.className = "message-copy";
        button.title = "Copy this message";
        button.textContent = "COPY_LABEL";
        row.append(button);
        message.append(row);  // never moved after: a moved button loses the click on it
      }
      if (row.dataset.index !== String(index)) row.dataset.index = String(index);
    });
  }
  const say = (button, text) => {
    button.textContent = text;
    clearTimeout(button.restore);
    button.restore = setTimeout(() => { button.textContent = "COPY_LABEL"; }, 2000);
  };
  const byTextArea = text => {
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    if (!done) throw new Error("copy refused");
  };
  document.addEventListener("click", async event => {
    const button = event.target.closest?.("button.message-copy");
    if (!button) return;
    const text = texts()[Number(button.parentElement.dataset.index)] ?? "";
    try {
      if (navigator.clipboard?.writeText) await navigator.clipboard.writeText(text);
      else byTextArea(text);
      say(button, "COPIED_LABEL");
    } catch (error) {
      try { byTextArea(text); say(button, "COPIED_LABEL"); }
      catch (again) { say(button, "COPY_FAILED_LABEL"); }
    }
  });
  let queued = false;
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; sync(); }); }
  }).observe(document.body, {childList: true, subtree: true,
                             attributes: true, attributeFilter: ["data-sources"]});
  sync();
})();
</script>"""

MessageAction = Callable[[Conversation, Message], None]
# server-side; Copy is the browser's
ACTIONS: list[MessageAction] = [version_switch, edit_button, remember_button]


def install() -> None:
    """The page's copy script (once per page; at the end of the sidebar, where its empty
    element shows nothing)."""
    st.sidebar.html(
        _COPY_SCRIPT.replace("MESSAGES_KEY", MESSAGES_KEY)
        .replace("COPY_FAILED_LABEL", COPY_FAILED_LABEL)
        .replace("COPIED_LABEL", COPIED_LABEL)
        .replace("COPY_LABEL", COPY_LABEL),
        unsafe_allow_javascript=True,
    )


def show_sources(slot: DeltaGenerator, shown: Sequence[Message]) -> None:
    """The stored texts of the messages shown, in their order, as one inert data element
    (escaped: it is data, never markup) in `slot` (in the sidebar), before the messages draw."""
    texts = escape(json.dumps([message.content for message in shown]), quote=True)
    slot.html(f'<div class="message-sources" hidden data-sources="{texts}"></div>')


def message_actions(conversation: Conversation, message: Message) -> None:
    """The row of server-side actions under `message`, one control per entry of `ACTIONS`
    (nothing, no element, while there is none)."""
    if not ACTIONS:
        return
    with st.container(horizontal=True, gap="small", key=f"message_actions_{message.seq}"):
        for action in ACTIONS:
            action(conversation, message)
