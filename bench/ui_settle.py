"""How the page feels, the app vs a minimal Streamlit chat page showing the same 50 messages,
side by side in one run, in headless Chromium: a slider change until the page settles, and
Enter until the message box accepts the next prompt.

`python -m bench.ui_settle [--rounds N] [--prompts N]` stores 50 messages for one user (and
the same 50 under the minimal page's index) in a Redis of its own, starts the app (no model
configured: the offline responder answers, through the reply worker and Redis as a model's
reply does) and the minimal page (a slider, the messages, a chat input; a prompt is stored and
answered with its echo, stored too) with `streamlit run`: neither calls a model. The app's
"Length of chat history" slider is in its Settings panel, opened first as a user does (a click
on "Settings").

1. Left/Right on each page's slider, the pages interleaved per round after two warm-up
   rounds: the key press, the script starting and stopping (the arrival of the messages that
   start and end a run) and the frame that painted its last change, in the page's own clock.
2. Enter, the pages interleaved, after one warm-up each: until the prompt is in the page's
   text (**shown**), until the reply is on the page and the box takes the next prompt (enabled,
   its placeholder the usual one, not "Enter sends it once this reply is done": **accepts**),
   and until, besides, no script runs (**settled**), each at the next frame.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from statistics import median, quantiles
from typing import Any

from playwright.sync_api import Page, sync_playwright
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.report import table
from bench.server import embedded_redis
from bench.timing import p50_p99
from chatbot.config import SETTINGS
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, RedisTarget, Role, create_redis_client
from memory.embedded import free_port
from ui.context import SLIDER_LABEL
from ui.sidebar import SETTINGS_LABEL
from ui.turn_view import PLACEHOLDER

REPO = Path(__file__).resolve().parent.parent
USER = "Luke"  # the app's
INDEX = "uisettle"
MINIMAL_INDEX = "uisettle-minimal"  # the minimal page's: the same 50 messages, apart
SLIDER = f"input[type='range'][aria-label='{SLIDER_LABEL}']"
PARTS = ("to start", "script", "paint")
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
Settles = dict[str, list[dict[str, float]]]
"""Per page, per settle: ms of each part (PARTS)."""
MINIMAL_PAGE = f'''
import os
import streamlit as st
from memory import ChatMemory, RedisTarget, Role, SystemInstruction, create_redis_client

@st.cache_resource
def memory():
    client = create_redis_client(RedisTarget(url=os.environ["REDIS_URL"]))
    return ChatMemory(client, default_system=SystemInstruction("-"), index_name="{MINIMAL_INDEX}")

st.sidebar.slider("{SLIDER_LABEL}", 1, 50, 5)
for message in memory().conversation("{USER}", "0", page_size=50).recent:
    with st.chat_message(message.role.value):
        st.markdown(message.content)
if prompt := st.chat_input("{PLACEHOLDER}"):
    memory().append("{USER}", Role.USER, prompt, conversation_id="0")
    with st.chat_message("user"):
        st.markdown(prompt)
    reply = "Echo: " + prompt
    with st.chat_message("assistant"):
        st.markdown(reply)
    memory().append("{USER}", Role.ASSISTANT, reply, conversation_id="0")
'''
# Before any page script: every ForwardMsg the page receives is read for the two that bound a
# run (top-level protobuf fields, numbers from ForwardMsg: new_session starts a run,
# script_finished other than "early, for a rerun" ends it), and handed with its arrival time to
# `window.onScriptRun`. The page's script-state attribute cannot bound a short run: React may
# draw "running" and "notRunning" in one render, and the attribute then never changes.
RUN_FIELDS = ForwardMsg.DESCRIPTOR.fields_by_name
SOCKET_HOOK = f"""(() => {{
  const read = buffer => {{
    const b = new Uint8Array(buffer), fields = {{}};
    let i = 0;
    const varint = () => {{
      let value = 0, scale = 1, byte;
      do {{ byte = b[i++]; value += (byte & 127) * scale; scale *= 128; }} while (byte & 128);
      return value;
    }};
    while (i < b.length) {{
      const tag = varint(), wire = tag % 8, field = Math.floor(tag / 8);
      if (wire === 0) fields[field] = varint();
      else if (wire === 2) {{ const length = varint(); i += length; fields[field] = true; }}
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else break;
    }}
    return fields;
  }};
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {{
    constructor(...args) {{
      super(...args);
      this.addEventListener("message", event => {{
        if (!(event.data instanceof ArrayBuffer)) return;
        const now = performance.now(), fields = read(event.data);
        if ({RUN_FIELDS["new_session"].number} in fields) window.onScriptRun?.("start", now);
        const end = fields[{RUN_FIELDS["script_finished"].number}];
        if (end !== undefined && end !== {ForwardMsg.FINISHED_EARLY_FOR_RERUN})
          window.onScriptRun?.("end", now);
      }});
    }}
  }};
}})()"""
# Resolves with the page-clock times of one interaction: key press, script start and end (their
# messages' arrival) and the frame that painted the run's last change to the page (frames
# are followed after the end until one passes with no change and no script running).
WATCH = """() => { window.settled = new Promise(resolve => {
  const app = document.querySelector("[data-testid='stApp']");
  const t = {};
  document.addEventListener("keydown", () => { t.press = t.press ?? performance.now(); },
    {capture: true, once: true});
  const painted = () => {
    let changed = true;
    const observer = new MutationObserver(() => { changed = true; });
    observer.observe(app, {subtree: true, childList: true, attributes: true, characterData: true});
    const frame = () => requestAnimationFrame(() => setTimeout(() => {
      const running = app.getAttribute("data-test-script-state") === "running";
      if ((changed || running) && performance.now() - t.end < 5000) {
        if (changed) t.painted = performance.now();
        changed = false;
        frame();
      } else { observer.disconnect(); resolve(t); }
    }));
    frame();
  };
  window.onScriptRun = (kind, now) => {
    if (t.press === undefined) return;
    if (kind === "start" && t.start === undefined) t.start = now;
    if (kind === "end" && t.start !== undefined && t.end === undefined) {
      t.end = now;
      window.onScriptRun = undefined;
      painted();
    }
  };
}); }"""
# Resolves with the ms from Enter until the prompt is in the page's text (the first feedback),
# until the box accepts the next prompt (the reply in the chat message after the prompt's, the
# box enabled with its usual placeholder: Enter sends) and until, besides, no script runs (the
# page has settled); each at the next frame.
WATCH_TURN = """([prompt, placeholder]) => { window.turned = new Promise(resolve => {
  const app = document.querySelector("[data-testid='stApp']");
  let pressed, shown, accepts;
  const frame = () => new Promise(done => requestAnimationFrame(() => done(performance.now())));
  document.addEventListener("keydown", () => { pressed = performance.now(); },
    {capture: true, once: true});
  const accepting = () => {
    const box = document.querySelector("[data-testid='stChatInputTextArea']");
    const messages = [...document.querySelectorAll("[data-testid='stChatMessage']")];
    const [asked, reply] = messages.slice(-2);
    const text = reply?.querySelector("[data-testid='stChatMessageContent']")?.innerText.trim();
    return box && !box.disabled && box.getAttribute("placeholder") === placeholder
      && asked?.innerText.includes(prompt) && text && text !== "Thinking…"
      && reply.querySelector("[data-testid='stChatMessageAvatarAssistant']");
  };
  new MutationObserver((_, observer) => {
    if (pressed === undefined) return;
    if (!shown && document.body.innerText.includes(prompt)) shown = frame();
    if (shown && !accepts && accepting()) accepts = frame();
    if (accepts && accepting() && app.getAttribute("data-test-script-state") === "notRunning") {
      observer.disconnect();
      Promise.all([shown, accepts, frame()]).then(times => resolve(times.map(t => t - pressed)));
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true,
                             attributes: true});
}); }"""


@contextmanager
def streamlit(script: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
               "--server.headless", "true", "--server.fileWatcherType", "none"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):  # a minute at most
            with suppress(OSError):
                if urllib.request.urlopen(url + "_stcore/health", timeout=2).read() == b"ok":
                    break
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def idle(page: Page) -> None:
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(500)


def open_settings(page: Page) -> None:
    """As a user does: a click on the sidebar's "Settings" (closed on a new page)."""
    page.get_by_test_id("stSidebar").get_by_text(SETTINGS_LABEL, exact=True).click()
    page.wait_for_selector(SLIDER)
    idle(page)


def waited(page: Page, promise: str, what: str, seconds: int = 60) -> Any:
    """The page's `window.<promise>`; a RuntimeError naming `what` when it never resolves."""
    race = f"() => Promise.race([window.{promise}, new Promise(r => setTimeout(r, {seconds}000))])"
    result = page.evaluate(race)
    if result is None:
        raise RuntimeError(f"{page.url}: {what} did not finish within {seconds} s")
    return result


def settle(page: Page, key: str) -> dict[str, float]:
    """ms from the press until the script runs (browser, websocket, server queue), of the run
    (its elements streamed to the page) and from its end until the next painted frame."""
    page.evaluate(WATCH)
    page.locator(SLIDER).press(key)
    t = waited(page, "settled", f"the slider's {key}")
    parts = {"to start": t["start"] - t["press"], "script": t["end"] - t["start"]}
    return parts | {"paint": t["painted"] - t["end"]}


def turn(page: Page, prompt: str) -> list[float]:
    """ms until the prompt shows, until the box accepts the next one, until the page settles."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(prompt)
    page.evaluate(WATCH_TURN, [prompt, PLACEHOLDER])
    box.press("Enter")
    elapsed = [float(ms) for ms in waited(page, "turned", f"Enter on {prompt!r}")]
    idle(page)  # anything the app does after the reply (a title, memories) is not timed
    return elapsed


def store_conversation(url: str) -> None:
    system = load_presets()[DEFAULT_PRESET].instruction()
    client = create_redis_client(RedisTarget(url=url))
    for index in (INDEX, MINIMAL_INDEX):
        memory = ChatMemory(client, default_system=system, index_name=index)
        for number in range(50):
            role = Role.USER if number % 2 == 0 else Role.ASSISTANT
            text = f"Message {number}: " + "some words here " * 8
            memory.append(USER, role, text, conversation_id="0")


def measure(
    rounds: int, prompts: int, env: dict[str, str], minimal: Path
) -> tuple[Settles, dict[str, list[list[float]]]]:
    """Settles per page (two warm-up rounds first), then the Enter times of both pages,
    interleaved (one warm-up each)."""
    with (
        streamlit(REPO / "app.py", env) as app_url,
        streamlit(minimal, env) as minimal_url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        pages = {"app": browser.new_page(), "minimal": browser.new_page()}
        for page in pages.values():
            page.add_init_script(SOCKET_HOOK)
        pages["app"].goto(app_url + f"?user={USER}")
        idle(pages["app"])
        open_settings(pages["app"])
        pages["minimal"].goto(minimal_url)
        pages["minimal"].wait_for_selector(SLIDER)
        idle(pages["minimal"])
        runs: Settles = {name: [] for name in pages}
        for round_ in range(rounds + 2):
            key = "ArrowLeft" if round_ % 2 == 0 else "ArrowRight"
            for name, page in pages.items():
                result = settle(page, key)
                if round_ >= 2:
                    runs[name].append(result)
        turns: dict[str, list[list[float]]] = {name: [] for name in pages}
        for number in range(prompts + 1):
            for name, times in turns.items():
                elapsed = turn(pages[name], f"ping {number}")
                times.extend([elapsed] if number else [])  # the first Enter warms up
        browser.close()
    return runs, turns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_settle", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="at least 2")
    parser.add_argument("--prompts", type=int, default=10, help="Enters timed per page")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.prompts < 2:
        parser.error("--rounds and --prompts must be at least 2 (a p99 needs two samples)")
    load = os.getloadavg()[0]
    with embedded_redis() as server:
        store_conversation(server.url)
        minimal = server.data_dir / "minimal_chat.py"  # deleted with the server's directory
        minimal.write_text(MINIMAL_PAGE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
        env.update({setting.name: "" for setting in SETTINGS})
        env.update(REDIS_URL=server.url, CHAT_INDEX_NAME=INDEX, PYTHONPATH=str(REPO))
        env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
        runs, turns = measure(args.rounds, args.prompts, env, minimal)
    print(f"1-minute load average: {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")

    totals = {name: [sum(parts.values()) for parts in settles] for name, settles in runs.items()}
    rows = [[name, *p50_p99(totals[name]), *(median([s[part] for s in settles]) for part in PARTS)]
            for name, settles in runs.items()]  # fmt: skip
    print(table(f"SLIDER CHANGE UNTIL THE PAGE SETTLES (ms; {args.rounds} interleaved rounds)",
                ["page", "settle p50", "settle p99", *(f"{part} p50" for part in PARTS)],
                rows))  # fmt: skip
    ratio = median(totals["app"]) / median(totals["minimal"])
    print(f"ratio app / minimal (settle, p50): {ratio:.2f}x")
    rows = []
    for name, times in turns.items():
        cuts = [quantiles(column, n=20) for column in zip(*times, strict=True)]
        rows.append([name, *(cut[i] for cut in cuts for i in (9, 18))])
    print(table(f"ENTER UNTIL THE BOX ACCEPTS THE NEXT PROMPT (ms; {args.prompts} interleaved)",
                ["page", "shown p50", "shown p95", "accepts p50", "accepts p95", "settled p50",
                 "settled p95"], rows))  # fmt: skip
    for index, what in enumerate(("shown", "accepts", "settled")):
        ratio = median(t[index] for t in turns["app"]) / median(t[index] for t in turns["minimal"])
        print(f"ratio app / minimal ({what}, p50): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
