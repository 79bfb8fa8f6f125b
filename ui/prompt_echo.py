"""The prompt on the page the moment Enter is pressed, before the server answers.

Enter starts a script run, and the browser first re-renders the whole page (every element
turns stale, the sidebar disabled, 50 messages and the chart) before it paints the prompt the
run sends back: 150-600 ms on a busy machine with a long history. So the page echoes the
prompt itself: a script, installed once per page, copies the newest user message's look, puts
the text (as text, never HTML) below the conversation, and removes the copy as soon as the
run's own message shows (one more prompt bubble saying it, even when the reply's bubble came
in the same frame) or the run ends (a refused prompt is then explained by the page).
Prompts the app will refuse at once (blank, or longer than the limit) are not echoed.
"""

from __future__ import annotations

import streamlit as st

_ECHO = """<script>
(() => {
  if (window.promptEcho) return;
  window.promptEcho = true;
  const limit = LIMIT;
  const shown = () => document.getElementById("prompt-echo");
  const users = main => main.querySelectorAll(
    "[data-testid='stChatMessage']:has([data-testid='stChatMessageAvatarUser'])");
  // how many of the page's own prompt bubbles say `text` (the echo has no test ids); their
  // content only: the avatar's icon is text too (a font ligature)
  const said = m => m.querySelector("[data-testid='stChatMessageContent']")?.innerText.trim();
  const saying = (main, text) => [...users(main)].filter(m => said(m) === text.trim()).length;
  function echo(text) {
    const main = document.querySelector("[data-testid='stMainBlockContainer']");
    if (!main) return;
    shown()?.remove();
    const prompts = users(main);
    const copy = prompts.length ? prompts[prompts.length - 1].cloneNode(true)
                                : document.createElement("div");
    const body = copy.querySelector("[data-testid='stChatMessageContent']") || copy;
    const line = document.createElement("div");
    line.style.whiteSpace = "pre-wrap";
    line.textContent = text;
    body.replaceChildren(line);
    copy.querySelectorAll("[data-testid]").forEach(node => node.removeAttribute("data-testid"));
    copy.id = "prompt-echo";
    copy.setAttribute("data-testid", "promptEcho");
    copy.style.padding = copy.style.padding || "0 1rem";
    main.append(copy);
    copy.scrollIntoView({block: "nearest"});
    const before = saying(main, text);
    const app = document.querySelector("[data-testid='stApp']");
    let running = false;
    const watch = new MutationObserver(() => {
      const state = app?.getAttribute("data-test-script-state");
      running = running || state === "running";
      // the run's own prompt shows (wherever it is: a reply may already stream below it)
      const arrived = saying(main, text) > before;
      if (arrived || (running && state === "notRunning") || !copy.isConnected) {
        copy.remove();
        watch.disconnect();
      }
    });
    watch.observe(document.body, {childList: true, subtree: true, characterData: true,
                                  attributes: true, attributeFilter: ["data-test-script-state"]});
  }
  window.addEventListener("keydown", event => {
    const box = event.target;
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    if (!box.matches?.("[data-testid='stChatInputTextArea']") || box.disabled) return;
    if (box.value.trim() && box.value.length <= limit) echo(box.value);
  }, true);
})();
</script>"""


def install_prompt_echo(limit: int) -> None:
    """Once per page (the script guards itself); `limit`: the longest prompt the app sends.
    At the end of the sidebar, where its empty element (and the gap before it) shows nothing."""
    st.sidebar.html(_ECHO.replace("LIMIT", str(limit)), unsafe_allow_javascript=True)
