"""Under each message, a small row of actions on it: Copy puts the message's text, exactly as
stored (a reply's Markdown source, not its rendering), on the clipboard; Remember this keeps
it (shortened to a fact) as a memory (ui/memories.py).

Copy runs in the browser (the clipboard is the user's, not the server's): each row holds a
plain button carrying the text, and one script per page (installed with `install`) answers
every such button's click, so fifty messages cost fifty small elements and no script each.

Adding an action: a function `(conversation, message) -> None` that draws its control (a
Streamlit button keyed by the message's seq, so a click on a stale page names its target),
appended to `ACTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import streamlit as st

from memory import Conversation, Message
from ui.memories import remember_button

COPY_LABEL = "Copy"
COPIED_LABEL = "Copied"
COPY_FAILED_LABEL = "Copy failed"
# One per page (it guards itself): a click on any copy button writes its text to the clipboard
# (through a hidden text area where the Clipboard API is missing: plain HTTP) and says so on
# the button for a moment.
_COPY_SCRIPT = """<style>
button.message-copy { font-size: 0.8rem; padding: 0.1rem 0.5rem; border-radius: 0.5rem;
  border: 1px solid rgba(128, 128, 128, 0.35); background: transparent; color: inherit;
  cursor: pointer; opacity: 0.75; }
button.message-copy:hover, button.message-copy:focus-visible { opacity: 1; }
</style><script>
(() => {
  if (window.messageCopy) return;
  window.messageCopy = true;
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
    const text = button.getAttribute("data-copy") ?? "";
    try {
      if (navigator.clipboard?.writeText) await navigator.clipboard.writeText(text);
      else byTextArea(text);
      say(button, "COPIED_LABEL");
    } catch (error) {
      try { byTextArea(text); say(button, "COPIED_LABEL"); }
      catch (again) { say(button, "COPY_FAILED_LABEL"); }
    }
  });
})();
</script>"""

MessageAction = Callable[[Conversation, Message], None]


def install() -> None:
    """The page's copy script (once per page; at the end of the sidebar, where its empty
    element shows nothing)."""
    st.sidebar.html(
        _COPY_SCRIPT.replace("COPY_FAILED_LABEL", COPY_FAILED_LABEL)
        .replace("COPIED_LABEL", COPIED_LABEL)
        .replace("COPY_LABEL", COPY_LABEL),
        unsafe_allow_javascript=True,
    )


def copy_button(conversation: Conversation, message: Message) -> None:
    """A button carrying the message's stored text (escaped: it is data, never markup)."""
    st.html(
        f'<button type="button" class="message-copy" title="Copy this message" '
        f'aria-label="{COPY_LABEL}" data-copy="{escape(message.content, quote=True)}">'
        f"{COPY_LABEL}</button>",
        width="content",
    )


ACTIONS: list[MessageAction] = [copy_button, remember_button]


def message_actions(conversation: Conversation, message: Message) -> None:
    """The row of actions under `message`, one control per entry of `ACTIONS`."""
    with st.container(horizontal=True, gap="small", key=f"message_actions_{message.seq}"):
        for action in ACTIONS:
            action(conversation, message)
