"""What the browser tests drive: the app started by `make run`, and a Streamlit page in Chromium.

`AppServer` starts the app exactly as a developer does (`make run PORT=...`), with its own
embedded Redis, search index and fake model server, and stops all of it afterwards.

`StreamlitPage` waits the way Streamlit's own end-to-end suite does (health endpoint, then the
`stApp` element's connection and script-run state) and, because that state briefly reads
`notRunning` between two runs of one chain (a callback, `st.rerun()`), also follows the
websocket: after every action it waits until the server has finished the run the browser asked
for, and the chain of reruns it set off, before looking at the page.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Locator, Page, ViewportSize, WebSocket, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from chatbot.config import SETTINGS
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = ViewportSize(width=1400, height=1600)  # tall: the whole sidebar is in a screenshot
DEFAULT_TIMEOUT_MS = 30_000
STREAM_PATH = "/_stcore/stream"
# Set when the tests run under `make test`; the app's `make run` starts as from a shell.
INHERITED_MAKE_VARIABLES = frozenset({"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"})


def poll(
    condition: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
    message: str = "condition",
) -> None:
    """A bounded polling loop: call `condition` until it is true, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout:g} s")
        time.sleep(interval)


# --- the app process -------------------------------------------------------------------------


def app_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The inherited environment with every registered setting blanked (load_dotenv does not
    override a variable that is set, even to ""), no STREAMLIT_* option leaking in from the
    developer's shell (nor make's variables from `make test`), usage statistics and the file
    watcher off, then `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STREAMLIT_") and key not in INHERITED_MAKE_VARIABLES
    }
    env.update({setting.name: "" for setting in SETTINGS})
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    # No reload on source edits: a file saved while a test runs (an editor, a colleague) must
    # not put the page into Streamlit's "source file changed" state.
    env["STREAMLIT_SERVER_FILE_WATCHER_TYPE"] = "none"
    env.update(overrides)
    return env


def _live_members(group: int) -> list[int]:
    """Processes of process group `group` that have not exited (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...; comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


@dataclass
class AppServer:
    """`make run PORT=<port>` in its own process group, with its own embedded Redis."""

    port: int
    redis_port: int
    redis_dir: Path
    index_name: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @classmethod
    def start(
        cls, work_dir: Path, index_name: str, env: Mapping[str, str], timeout: float = 90.0
    ) -> AppServer:
        server = cls(
            port=free_port(),
            redis_port=free_port(),
            redis_dir=work_dir / "redis",
            index_name=index_name,
            log_path=work_dir / "app.log",
        )
        environment = app_environment(
            {
                "EMBEDDED_REDIS_PORT": str(server.redis_port),
                "EMBEDDED_REDIS_DIR": str(server.redis_dir),
                "CHAT_INDEX_NAME": index_name,
                **env,
            }
        )
        # `-o .venv/bin/activate`: use the venv as it is. The run target depends on it, and make
        # would otherwise recreate it and reinstall every package whenever a requirements file
        # is newer than the venv (a test must not touch the network or the developer's venv).
        command = ["make", "--no-print-directory", "-o", ".venv/bin/activate", "run"]
        with open(server.log_path, "wb") as log:
            server.process = subprocess.Popen(
                [*command, f"PORT={server.port}"],
                cwd=REPO_ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole at the end
            )
        try:
            poll(server._healthy, timeout, message=f"app health on port {server.port}")
        except TimeoutError as error:
            server.stop()
            raise TimeoutError(f"{error}; `make run` said:\n{server.log_tail()}") from None
        except BaseException:
            server.stop()
            raise
        return server

    @staticmethod
    def _signal_group(group: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"`make run` exited with {self.process.returncode}:\n{self.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}_stcore/health", timeout=2) as response:
                return bool(response.read().decode().strip() == "ok")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """End the whole process group (make, streamlit), then stop the Redis it started."""
        process, self.process = self.process, None
        if process is not None:
            group = process.pid  # the session leader's pid is the group id
            self._signal_group(group, signal.SIGTERM)
            try:
                poll(lambda: process.poll() is not None and not _live_members(group), 10, 0.05)
            except TimeoutError:
                self._signal_group(group, signal.SIGKILL)
                process.wait(timeout=5)
        # Redis daemonizes (setsid), so it left the process group: stop it by its port.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "memory.embedded",
                "stop",
                "--port",
                str(self.redis_port),
                "--dir",
                str(self.redis_dir),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
            timeout=30,
        )


# --- following the script runs over the websocket --------------------------------------------


@dataclass
class ScriptRunTracker:
    """Follows the page's websocket: reruns the browser asks for, runs the server starts and
    ends. Idle means: connected, no rerun asked for since the last run started, and the last
    run ended other than "early, for a rerun" (the next run of the chain follows that one)."""

    socket: WebSocket | None = None
    closed: bool = False
    rerun_requested: bool = False
    running: bool = False
    finished_runs: int = 0
    log: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws: WebSocket) -> None:
        if not ws.url.endswith(STREAM_PATH):
            return
        self.socket = ws
        self.closed = False
        self.rerun_requested = True  # a new session always runs the script
        self.running = False
        self.finished_runs = 0
        self.log.append("connected")
        ws.on("framesent", lambda payload: self._on_sent(ws, payload))
        ws.on("framereceived", lambda payload: self._on_received(ws, payload))
        ws.on("close", self._on_close)

    def _on_close(self, ws: WebSocket) -> None:
        if ws is self.socket:
            self.closed = True
            self.log.append("disconnected")

    def _on_sent(self, ws: WebSocket, payload: str | bytes) -> None:
        if ws is not self.socket or not isinstance(payload, bytes):
            return
        if BackMsg.FromString(payload).WhichOneof("type") == "rerun_script":
            self.rerun_requested = True
            self.log.append("rerun requested")

    def _on_received(self, ws: WebSocket, payload: str | bytes) -> None:
        if ws is not self.socket or not isinstance(payload, bytes):
            return
        message = ForwardMsg.FromString(payload)
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self.rerun_requested = False
            self.running = True
            self.log.append("run started")
        elif kind == "script_finished":
            self.log.append(
                f"run finished: {ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)}"
            )
            if message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.running = False
                self.finished_runs += 1

    @property
    def idle(self) -> bool:
        return (
            self.socket is not None
            and not self.closed
            and not self.rerun_requested
            and not self.running
            and self.finished_runs > 0
        )


# --- the page --------------------------------------------------------------------------------


class StreamlitPage:
    """One browser tab on the app, with the waits and look-ups every journey uses."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.tracker = ScriptRunTracker()
        self.tracker.attach(page)
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)

    # waiting ---------------------------------------------------------------------------------

    def wait_for_app_idle(self, timeout: float = 30.0) -> None:
        """Wait until the run the last action set off, and any rerun chain after it, is over,
        the page shows it, and no exception is on the page."""
        deadline = time.monotonic() + timeout
        while not self.tracker.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the app did not become idle within {timeout:g} s; "
                    f"websocket events: {self.tracker.log[-12:]}"
                )
            self.page.wait_for_timeout(20)  # lets Playwright deliver websocket events
        self.page.wait_for_selector(
            "[data-testid='stApp'][data-test-connection-state='CONNECTED']", state="attached"
        )
        self.page.wait_for_selector(
            "[data-testid='stApp'][data-test-script-state='notRunning']", state="attached"
        )
        # The frames have arrived; let the page finish handling them and paint.
        self.page.evaluate(
            "() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))"
        )
        self.assert_no_exception()

    def assert_no_exception(self) -> None:
        exceptions = self.page.get_by_test_id("stException")
        if exceptions.count():
            raise AssertionError(f"exception on the page: {exceptions.all_inner_texts()}")

    def act(self, action: Callable[[], object], wait: bool = True) -> None:
        """Do something that makes the app rerun, then (unless `wait` is False, to watch the
        run as it goes) wait for the app to be idle again."""
        self.tracker.rerun_requested = True  # set before acting: the frame may come at once
        action()
        if wait:
            self.wait_for_app_idle()

    # navigation ------------------------------------------------------------------------------

    def open(self) -> None:
        self.page.goto(self.url)
        self.wait_for_app_idle()

    def reload(self) -> None:
        self.tracker.rerun_requested = True
        self.page.reload()
        self.wait_for_app_idle()

    # look-ups --------------------------------------------------------------------------------

    @property
    def sidebar(self) -> Locator:
        return self.page.get_by_test_id("stSidebar")

    @property
    def chat_input(self) -> Locator:
        return self.page.get_by_test_id("stChatInputTextArea")

    @property
    def messages(self) -> Locator:
        return self.page.get_by_test_id("stChatMessage")

    def button(self, label: str) -> Locator:
        return self.page.get_by_role("button", name=label, exact=True)

    def error_alerts(self) -> Locator:
        return self.page.get_by_test_id("stAlertContentError")

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) of every chat message on the page, in order."""
        result = []
        for message in self.messages.all():
            role = "user" if message.get_by_test_id("stChatMessageAvatarUser").count() else ""
            if not role and message.get_by_test_id("stChatMessageAvatarAssistant").count():
                role = "assistant"
            text = message.get_by_test_id("stChatMessageContent").inner_text().strip()
            result.append((role, text))
        return result

    def metric(self, label: str) -> int:
        metric = self.page.get_by_test_id("stMetric").filter(
            has=self.page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
        )
        value = metric.get_by_test_id("stMetricValue").inner_text()
        return int(value.replace(",", "").strip())

    def toasts(self) -> Locator:
        return self.page.get_by_test_id("stToast")

    # actions ---------------------------------------------------------------------------------

    def send(self, prompt: str, wait: bool = True) -> None:
        """Type a prompt and press Enter; wait for the reply (or the failure) to be shown."""
        self.chat_input.fill(prompt)
        self.act(lambda: self.chat_input.press("Enter"), wait=wait)

    def click(self, label: str) -> None:
        self.act(lambda: self.button(label).click())

    def combobox(self, label: str) -> Locator:
        return self.page.get_by_role("combobox", name=label, exact=True)

    def choose(self, label: str, option: str) -> None:
        """Pick `option` in the selectbox labelled `label` (a no-op when it is selected)."""
        if self.selected(label) == option:
            return
        self.combobox(label).click()
        self.act(self.page.get_by_role("option", name=option, exact=True).click)
        expect(self.combobox(label)).to_have_value(option)

    def selected(self, label: str) -> str:
        return self.combobox(label).input_value()

    def slider(self, label: str) -> Locator:
        # The thumb's accessible name repeats the label (aria-labelledby), so match aria-label.
        return self.page.locator(f"input[type='range'][aria-label={json.dumps(label)}]")

    def press_on_slider(self, label: str, *keys: str) -> None:
        """Focus the thumb of the slider labelled `label` and press `keys`, which must change
        its value (each change reruns the app; no change, no rerun to wait for)."""
        thumb = self.slider(label)
        thumb.focus()

        def press() -> None:
            for key in keys:
                thumb.press(key)

        self.act(press)

    def slider_value(self, label: str) -> str:
        return str(self.slider(label).get_attribute("aria-valuetext"))

    def screenshot(self, name: str) -> Path:
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


StartApp = Callable[[Mapping[str, str]], AppServer]  # the `start_app` fixture
OpenPage = Callable[..., StreamlitPage]  # the `open_page` fixture
