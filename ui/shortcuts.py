"""Keyboard shortcuts (the ones ChatGPT users know): new chat, focus the message box, stop the
reply, and this list, shown in a dialog from the sidebar's "Keyboard shortcuts" or Ctrl + /.

A shortcut presses the page's own control (New chat, Stop, the list's button) in the
browser, so it does exactly what the click does, and nothing when that control is not there
or is disabled (New chat while a reply streams, Stop when none does).
"""

from __future__ import annotations

import streamlit as st

HELP_LABEL = "⌨️ Keyboard shortcuts"
HELP_KEY = "keyboard_shortcuts"
SHORTCUTS = (
    ("Ctrl + Shift + O", "New chat"),
    ("Shift + Esc", "Put the cursor in the message box"),
    ("Esc", "Stop the reply while it streams"),
    ("Ctrl + /", "Show these shortcuts"),
)
# One per page (it guards itself). Ctrl or ⌘; keys by `event.code` where a layout or Shift
# changes the character (Shift + O types "O", Ctrl + / is "Slash" on most layouts).
_SCRIPT = """<script>
(() => {
  if (window.pageShortcuts) return;
  window.pageShortcuts = true;
  const press = key => {
    const button = document.querySelector(`.st-key-${key} button`);
    if (!button || button.disabled) return false;
    button.click();
    return true;
  };
  // Esc closes an open dialog wherever the focus is (a run may have moved it out).
  const closeDialog = () => {
    const close = document.querySelector("[role='dialog'] button[aria-label='Close']");
    close?.click();
    return Boolean(close);
  };
  addEventListener("keydown", event => {
    const command = event.ctrlKey || event.metaKey;
    let done = false;
    if (command && event.shiftKey && event.code === "KeyO") done = press("new_chat") || true;
    else if (command && !event.shiftKey && (event.code === "Slash" || event.key === "/"))
      done = press("HELP_KEY") || true;
    else if (event.key === "Escape" && event.shiftKey) {
      const box = document.querySelector("[data-testid='stChatInputTextArea']");
      if (box && !box.disabled) box.focus();
      done = true;
    } else if (event.key === "Escape" && !command) done = press("stop_reply") || closeDialog();
    if (done) { event.preventDefault(); event.stopPropagation(); }
  }, true);
})();
</script>"""


@st.dialog(HELP_LABEL)
def shortcuts_dialog() -> None:
    lines = ["| Keys | What they do |", "| --- | --- |"]
    lines += [f"| `{keys}` | {action} |" for keys, action in SHORTCUTS]
    st.markdown("\n".join(lines))
    st.caption("On a Mac, ⌘ works wherever Ctrl is listed.")


def shortcuts() -> None:
    """The page's shortcut script and, at the end of the sidebar, the button that lists them
    (disabled while a reply streams: a click would rerun the page and cut the reply)."""
    st.sidebar.html(_SCRIPT.replace("HELP_KEY", HELP_KEY), unsafe_allow_javascript=True)
    if st.sidebar.button(HELP_LABEL, key=HELP_KEY, type="tertiary"):
        shortcuts_dialog()
