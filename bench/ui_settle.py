"""How long the page takes to settle after a slider change: the app vs a minimal Streamlit chat
page showing the same 50 messages, interleaved in one run, in headless Chromium.

`python -m bench.ui_settle [--rounds N]` stores 50 messages for one user in a Redis of its own,
starts both pages with `streamlit run` and alternates Left/Right on each page's slider. A settle
is timed in the page's own clock: the key press, the script starting and stopping (`stApp`'s
script-state attribute) and the next painted frame. Then, for the app, Enter until the prompt
is on the page (first feedback), interleaved with a page that only echoes the prompt.
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

from playwright.sync_api import Page, sync_playwright

from bench.report import table
from bench.server import embedded_redis
from bench.timing import p50_p99
from chatbot.config import SETTINGS
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, RedisTarget, Role, create_redis_client
from memory.embedded import free_port

REPO = Path(__file__).resolve().parent.parent
USER = "Luke"
INDEX = "uisettle"
SLIDER = "input[type='range'][aria-label='Length of chat history']"
PARTS = ("to start", "script", "paint")
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
Settles = dict[str, list[dict[str, float]]]
"""Per page, per settle: ms of each part (PARTS)."""
MINIMAL_PAGE = f'''
import os
import streamlit as st
from memory import ChatMemory, RedisTarget, SystemInstruction, create_redis_client

@st.cache_resource
def memory():
    client = create_redis_client(RedisTarget(url=os.environ["REDIS_URL"]))
    return ChatMemory(client, default_system=SystemInstruction("-"), index_name="{INDEX}")

st.sidebar.slider("Length of chat history", 1, 50, 5)
for message in memory().conversation("{USER}", "0", page_size=50).recent:
    with st.chat_message(message.role.value):
        st.markdown(message.content)
st.chat_input("Type your message")
'''
ECHO_PAGE = """
import streamlit as st
if prompt := st.chat_input("Type your message"):
    with st.chat_message("user"):
        st.text(prompt)
"""
# Resolves with the page-clock times of one interaction: key press, script start, script end,
# next painted frame after the end.
WATCH = """() => { window.settled = new Promise(resolve => {
  const app = document.querySelector("[data-testid='stApp']");
  const t = {};
  document.addEventListener("keydown", () => { t.press = t.press ?? performance.now(); },
    {capture: true, once: true});
  new MutationObserver((_, observer) => {
    const state = app.getAttribute("data-test-script-state");
    if (state === "running" && t.start === undefined) t.start = performance.now();
    if (state === "notRunning" && t.start !== undefined) {
      t.end = performance.now();
      observer.disconnect();
      requestAnimationFrame(() => setTimeout(() => { t.painted = performance.now(); resolve(t); }));
    }
  }).observe(app, {attributes: true, attributeFilter: ["data-test-script-state"]});
}); }"""
# Resolves with the ms from Enter until the prompt is in the page's text (the first feedback,
# which may be the page's own echo) and until the script run's chat message holds it.
WATCH_PROMPT = """prompt => { window.shown = new Promise(resolve => {
  let pressed, first;
  const frame = () => new Promise(done => requestAnimationFrame(() => done(performance.now())));
  document.addEventListener("keydown", () => { pressed = performance.now(); },
    {capture: true, once: true});
  new MutationObserver((_, observer) => {
    if (pressed === undefined || !document.body.innerText.includes(prompt)) return;
    first = first ?? frame();
    const messages = [...document.querySelectorAll("[data-testid='stChatMessage']")];
    if (messages.some(message => message.innerText.includes(prompt))) {
      observer.disconnect();
      Promise.all([first, frame()]).then(times => resolve(times.map(t => t - pressed)));
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
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


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(SLIDER)
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(500)


def settle(page: Page, key: str) -> dict[str, float]:
    """ms from the press until the script runs (browser, websocket, server queue), of the run
    (its elements streamed to the page) and from its end until the next painted frame."""
    page.evaluate(WATCH)
    page.locator(SLIDER).press(key)
    t = page.evaluate("() => window.settled")
    parts = {"to start": t["start"] - t["press"], "script": t["end"] - t["start"]}
    return parts | {"paint": t["painted"] - t["end"]}


def first_feedback(page: Page, prompt: str) -> list[float]:
    """ms until the prompt shows, and until it shows in the run's own chat message."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(prompt)
    page.evaluate(WATCH_PROMPT, prompt)
    box.press("Enter")
    elapsed = [float(ms) for ms in page.evaluate("() => window.shown")]
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(1500)  # the reply and the run after it
    return elapsed


def store_conversation(url: str) -> None:
    system = load_presets()[DEFAULT_PRESET].instruction()
    client = create_redis_client(RedisTarget(url=url))
    memory = ChatMemory(client, default_system=system, index_name=INDEX)
    for number in range(50):
        role = Role.USER if number % 2 == 0 else Role.ASSISTANT
        memory.append(
            USER, role, f"Message {number}: " + "some words here " * 8, conversation_id="0"
        )


def measure(
    rounds: int, prompts: int, env: dict[str, str], minimal: Path
) -> tuple[Settles, dict[str, list[list[float]]]]:
    """Settles per page (two warm-up rounds first), then Enter-to-prompt times of the app and
    of the echo page, interleaved (one warm-up each)."""
    with (
        streamlit(REPO / "app.py", env) as app_url,
        streamlit(minimal, env) as minimal_url,
        streamlit(minimal.with_name("echo.py"), env) as echo_url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        pages = {"app": browser.new_page(), "minimal": browser.new_page()}
        open_page(pages["app"], app_url + f"?user={USER}")
        open_page(pages["minimal"], minimal_url)
        runs: Settles = {name: [] for name in pages}
        for round_ in range(rounds + 2):
            key = "ArrowLeft" if round_ % 2 == 0 else "ArrowRight"
            for name, page in pages.items():
                result = settle(page, key)
                if round_ >= 2:
                    runs[name].append(result)
        pages["echo"] = browser.new_page()
        pages["echo"].goto(echo_url)
        pages["echo"].wait_for_selector(IDLE)
        feedback: dict[str, list[list[float]]] = {"app": [], "echo": []}
        for number in range(prompts + 1):
            for name, times in feedback.items():
                elapsed = first_feedback(pages[name], f"ping {number}")
                times.extend([elapsed] if number else [])  # the first Enter warms up
        browser.close()
    return runs, feedback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_settle", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="at least 2")
    parser.add_argument("--prompts", type=int, default=10, help="Enters timed per page")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.prompts < 2:
        parser.error("--rounds and --prompts must be at least 2 (a p99 needs two samples)")
    with embedded_redis() as server:
        store_conversation(server.url)
        minimal = server.data_dir / "minimal_chat.py"  # deleted with the server's directory
        minimal.write_text(MINIMAL_PAGE)
        minimal.with_name("echo.py").write_text(ECHO_PAGE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
        env.update({setting.name: "" for setting in SETTINGS})
        env.update(REDIS_URL=server.url, CHAT_INDEX_NAME=INDEX, PYTHONPATH=str(REPO))
        env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
        runs, feedback = measure(args.rounds, args.prompts, env, minimal)

    totals = {name: [sum(parts.values()) for parts in settles] for name, settles in runs.items()}
    rows = [[name, *p50_p99(totals[name]), *(median([s[part] for s in settles]) for part in PARTS)]
            for name, settles in runs.items()]  # fmt: skip
    ratio = median(totals["app"]) / median(totals["minimal"])
    print(table(f"SLIDER CHANGE UNTIL THE PAGE SETTLES (ms; {args.rounds} interleaved rounds)",
                ["page", "settle p50", "settle p99", *(f"{part} p50" for part in PARTS)],
                rows))  # fmt: skip
    print(f"ratio app / minimal: {ratio:.2f}x")
    rows = []
    for name, times in feedback.items():
        cuts = [quantiles(column, n=20) for column in zip(*times, strict=True)]
        rows.append([name, *(cut[i] for cut in cuts for i in (9, 18))])
    print(table(f"ENTER UNTIL THE PROMPT SHOWS (ms; {args.prompts} interleaved)",
                ["page", "shown p50", "shown p95", "run's message p50", "run's message p95"],
                rows))  # fmt: skip
    shown = {name: median(times[0] for times in feedback[name]) for name in feedback}
    print(f"ratio app / echo (shown, p50): {shown['app'] / shown['echo']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
