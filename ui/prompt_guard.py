"""What the browser must not send: text the connection cannot carry.

Two kinds of typed text never reach the server. A lone UTF-16 surrogate (pasted from a broken
document) is encoded by the browser as invalid UTF-8, so the server drops the connection; a
prompt over the WebSocket's message bound (`server.maxMessageSize`, 8 MB) is cut off by the
connection. Either way nothing was stored and nothing was said. So a script, installed once
per page, makes every text box's value well-formed as it is typed or pasted (a lone surrogate
becomes U+FFFD, the replacement character), and stops Enter or the send button on a prompt
longer than the app sends, saying so beside the box and keeping every character in it.
"""

from __future__ import annotations

import streamlit as st

GUARD_ID = "prompt-guard"

_GUARD = """<script>
(() => {
  if (window.promptGuard) return;
  window.promptGuard = true;
  const limit = LIMIT;
  const isPromptBox = node => node?.matches?.("[data-testid='stChatInputTextArea']");
  const setValue = (box, value) => {
    const proto = box.tagName === "TEXTAREA" ? HTMLTextAreaElement : HTMLInputElement;
    Object.getOwnPropertyDescriptor(proto.prototype, "value").set.call(box, value);
    box.dispatchEvent(new Event("input", {bubbles: true}));
  };
  window.addEventListener("input", event => {
    const box = event.target;
    if (!box?.matches?.("textarea, input") || typeof box.value !== "string") return;
    if (!box.value.isWellFormed()) setValue(box, box.value.toWellFormed());
  }, true);
  const note = box => {
    let line = document.getElementById("GUARD_ID");
    if (!line) {
      line = document.createElement("div");
      line.id = "GUARD_ID";
      line.setAttribute("role", "alert");
      line.style.cssText = "color:#b42318;font-size:0.875rem;padding:0.25rem 0.5rem";
      box.closest("[data-testid='stChatInput']")?.before(line);
    }
    line.textContent = `This message is ${box.value.length.toLocaleString("en-US")} ` +
      `characters; the longest a message may be is ${limit.toLocaleString("en-US")}. ` +
      "Nothing was sent: shorten it (your text is still in the box).";
  };
  const tooLong = box => {
    if (!isPromptBox(box) || box.value.length <= limit) {
      document.getElementById("GUARD_ID")?.remove();
      return false;
    }
    note(box);
    return true;
  };
  const refuse = event => { event.preventDefault(); event.stopImmediatePropagation(); };
  window.addEventListener("keydown", event => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (tooLong(event.target)) refuse(event);
  }, true);
  window.addEventListener("click", event => {
    const button = event.target?.closest?.("[data-testid='stChatInputSubmitButton']");
    const box = button?.closest("[data-testid='stChatInput']")?.querySelector("textarea");
    if (box && tooLong(box)) refuse(event);
  }, true);
})();
</script>"""


def install_prompt_guard(limit: int) -> None:
    """Once per page (the script guards itself); `limit`: the longest prompt the app sends.
    Installed before the prompt echo, so a refused Enter is never echoed."""
    script = _GUARD.replace("LIMIT", str(limit)).replace("GUARD_ID", GUARD_ID)
    st.sidebar.html(script, unsafe_allow_javascript=True)
