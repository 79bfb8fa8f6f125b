"""What the page does on its own so a user can keep typing and keep reading: the message box
has the focus when the page loads and after every reply, and the new prompt and the reply
streaming under it stay in view (on a phone the page otherwise stays where it was, showing
the previous reply).

Both run in the browser, in one script per page (it guards itself, so each run re-sends the
same element and nothing runs twice). Focus is only taken from nothing: the page body, a
button just clicked or an element a rerun removed, never from a box, a slider or a menu the
user is in, nor on a phone while the sidebar covers the chat. Following stops as soon as the
user scrolls, and once the last message has not grown for fifteen seconds (a slow model may
take that long to its first word).
"""

from __future__ import annotations

import streamlit as st

# The prompt box's placeholder while a reply streams (its Stop on the page): the page's script
# below shows it.
BUSY_PLACEHOLDER = "Type your next message: Enter sends it once this reply is done"

_SCRIPT = """<script>
(() => {
  if (window.pageFollow) return;
  window.pageFollow = true;
  const doc = document;
  const box = () => doc.querySelector("[data-testid='stChatInputTextArea']");
  const state = () => doc.querySelector("[data-testid='stApp']")
    ?.getAttribute("data-test-script-state");
  const sidebarCovers = () => innerWidth <= 768 && doc.querySelector(
    "[data-testid='stSidebar']")?.getAttribute("data-collapsed") === "false";
  const free = element => !element || element === doc.body || !element.isConnected
    || (element.tagName === "BUTTON" && !element.matches(".message-copy")
        && !element.closest("[role='dialog'], [data-testid='stPopoverBody']"));

  const touch = matchMedia("(pointer: coarse)").matches;  // focus would pop the keyboard up
  function focusBox() {
    const input = box();
    if (!input || input.disabled || touch || sidebarCovers() || !free(doc.activeElement)) return;
    input.focus({preventScroll: true});
  }

  // While a prompt's exchange is followed: where it started, and when the last message last
  // grew (timers rerun parts of the page all the time, so "the run ended" is not the end).
  let following = null;
  function follow() { following = {href: location.href, size: -1, grew: Date.now()}; }
  function scroller(element) {
    for (let node = element.parentElement; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      const scrolls = /(auto|scroll)/.test(style.overflowY);
      if (scrolls && node.scrollHeight > node.clientHeight) return node;
    }
    return doc.scrollingElement;
  }
  function keepInView() {
    if (!following) return;
    if (location.href !== following.href) { following = null; return; }
    const main = doc.querySelector("[data-testid='stMainBlockContainer']");
    const last = main && [...main.querySelectorAll(
      "[data-testid='stChatMessage'], [data-testid='promptEcho']")].pop();
    if (!last) return;
    const size = last.innerText.length;
    if (size !== following.size) { following.size = size; following.grew = Date.now(); }
    else if (Date.now() - following.grew > 15000) { following = null; return; }
    const input = doc.querySelector("[data-testid='stChatInput']");
    const limit = (input ? input.getBoundingClientRect().top : innerHeight) - 8;
    const below = last.getBoundingClientRect().bottom - limit;
    if (below > 1) scroller(last).scrollBy({top: below, behavior: "instant"});  // in this frame
  }

  // While a reply streams (its Stop is on the page) the box takes typing but not Enter (nor
  // its send button): its placeholder and, on Enter, a note beside it say so, and the text
  // waits in the box. The run that streams is the one that shows the reply stored, so the
  // box is drawn once, with its usual placeholder: the page swaps it while Stop is there.
  const streaming = input => Boolean(input && doc.querySelector(".st-key-stop_reply button"));
  function showBusy(input) {
    if (!input) return;
    const busy = streaming(input);
    if (busy && input.placeholder !== "BUSY_PLACEHOLDER") {
      input.dataset.usualPlaceholder = input.placeholder;
      input.placeholder = "BUSY_PLACEHOLDER";
    } else if (!busy && input.dataset.usualPlaceholder !== undefined) {
      input.placeholder = input.dataset.usualPlaceholder;
      delete input.dataset.usualPlaceholder;
    }
  }
  function hold(event, input) {
    event.preventDefault();
    event.stopImmediatePropagation();
    let note = doc.getElementById("reply-still-coming");
    if (!note) {
      note = doc.createElement("div");
      note.id = "reply-still-coming";
      note.setAttribute("role", "status");
      note.style.cssText = "font-size:0.875rem;padding:0.25rem 0.5rem;opacity:0.8";
      input.closest("[data-testid='stChatInput']")?.before(note);
    }
    note.textContent = "The reply is still being written: your message is kept here; " +
      "press Enter again once it is done (Esc stops it).";
  }
  addEventListener("keydown", event => {
    const input = event.target;
    const enter = event.key === "Enter" && !event.shiftKey && !event.isComposing;
    if (enter && input.matches?.("[data-testid='stChatInputTextArea']") && streaming(input)) {
      hold(event, input);
    }
  }, true);
  addEventListener("click", event => {
    const input = event.target.closest?.("[data-testid='stChatInputSubmitButton']")
      ?.closest("[data-testid='stChatInput']")?.querySelector("textarea");
    if (streaming(input)) hold(event, input);
  }, true);

  addEventListener("keydown", event => {
    const target = event.target;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing
        && target.matches?.("[data-testid='stChatInputTextArea']") && target.value.trim()) follow();
    const reading = ["PageUp", "ArrowUp", "Home"].includes(event.key);
    if (reading && !target.matches?.("textarea, input")) following = null;
  }, true);
  addEventListener("click", event => {
    const button = event.target.closest?.("button");
    if (!button || button.matches(".message-copy")) return;
    const inMain = button.closest("[data-testid='stMainBlockContainer']");
    if (button.closest("[data-testid='stChatInput']")
        || (inMain && !button.innerText.startsWith("Show earlier"))) follow();
    else following = null;
  }, true);
  for (const kind of ["wheel", "touchmove"]) {
    addEventListener(kind, () => { following = null; }, {capture: true, passive: true});
  }

  // The box grows when its text or placeholder wraps (the long "while streaming" one does on
  // a phone): the reply's last lines would sit behind it until the next chunk. Followed in the
  // frame it grows in (a resize is no mutation the observer below sees).
  const resized = new ResizeObserver(keepInView);
  let watchedBox = null;
  function watchBox() {
    const input = doc.querySelector("[data-testid='stChatInput']");
    if (input && input !== watchedBox) {
      if (watchedBox) resized.unobserve(watchedBox);
      resized.observe(input);
      watchedBox = input;
    }
  }

  let queued = false, lastState = null, lastDisabled = null;
  function onChange() {
    queued = false;
    watchBox();
    const now = state(), input = box(), disabled = input ? input.disabled : null;
    const ended = lastState === "running" && now === "notRunning";
    const ready = disabled === false && lastDisabled !== false;  // shown, or enabled again
    lastState = now;
    lastDisabled = disabled;
    keepInView();
    showBusy(input);
    if (!streaming(input)) doc.getElementById("reply-still-coming")?.remove();
    if (ended || ready) focusBox();
  }
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(onChange); }
  }).observe(doc.body, {childList: true, subtree: true, characterData: true, attributes: true,
                        attributeFilter: ["data-test-script-state", "disabled"]});
  focusBox();
})();
</script>"""


def install() -> None:
    """The page's focus-and-follow script (once per page), at the end of the sidebar, where
    its empty element shows nothing. Installed before the other page scripts, so a held
    Enter is neither echoed nor checked."""
    st.sidebar.html(
        _SCRIPT.replace("BUSY_PLACEHOLDER", BUSY_PLACEHOLDER), unsafe_allow_javascript=True
    )
