"""What the browser tests drive: the app started by `make run`, and a Streamlit page in Chromium.

`AppServer` starts the app exactly as a developer does (`make run PORT=...`), with its own
embedded Redis, search index and fake model server, and stops all of it afterwards.

`StreamlitPage` waits the way Streamlit's own end-to-end suite does (the `stApp` element's
connection and script-run state) and, because that state briefly reads `notRunning` between
two runs of one chain (a callback, `st.rerun()`), also follows the websocket: after every action
it waits until the server has finished the run the browser asked for, and the chain of reruns it
set off, before looking at the page.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from playwright.sync_api import Locator, Page, ViewportSize, WebSocket, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from chatbot.config import SETTINGS
from memory.embedded import EmbeddedRedis, free_port
from tests.support.openai_server import ChatCompletionsServer
from tests.support.streamlit_process import StreamlitProcess
from ui.sidebar import SETTINGS_LABEL

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = ViewportSize(width=1400, height=1600)  # tall: the whole sidebar is in a screenshot
DEFAULT_TIMEOUT_MS = 30_000
# Set when the tests run under `make test`; the app's `make run` starts as from a shell.
INHERITED_MAKE_VARIABLES = frozenset({"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"})


# --- the app process -------------------------------------------------------------------------


def app_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The inherited environment with every registered setting blanked (load_dotenv does not
    override a variable that is set, even to ""), no STREAMLIT_* option leaking in from the
    developer's shell (nor make's variables from `make test`), usage statistics and the file
    watcher off (a file saved while a test runs must not put the page into Streamlit's "source
    file changed" state), then `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STREAMLIT_") and key not in INHERITED_MAKE_VARIABLES
    }
    env.update({setting.name: "" for setting in SETTINGS})
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    env["STREAMLIT_SERVER_FILE_WATCHER_TYPE"] = "none"
    env.update(overrides)
    return env


@dataclass
class AppServer:
    """`make run PORT=<port>`, with the embedded Redis it starts on a port and folder of its own."""

    redis: EmbeddedRedis
    index_name: str
    streamlit: StreamlitProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.streamlit.port}/"

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @classmethod
    def start(cls, work_dir: Path, index_name: str, env: Mapping[str, str]) -> AppServer:
        redis, port = EmbeddedRedis(port=free_port(), data_dir=work_dir / "redis"), free_port()
        environment = app_environment(
            {
                "EMBEDDED_REDIS_PORT": str(redis.port),
                "EMBEDDED_REDIS_DIR": str(redis.data_dir),
                "CHAT_INDEX_NAME": index_name,
                **env,
            }
        )
        # `-o .venv/bin/activate`: use the venv as it is. The run target depends on it, and make
        # would otherwise recreate it and reinstall every package whenever a requirements file
        # is newer than the venv (a test must not touch the network or the developer's venv).
        command = ["make", "--no-print-directory", "-o", ".venv/bin/activate", "run"]
        try:
            streamlit = StreamlitProcess.start(
                [*command, f"PORT={port}"], environment, work_dir / "app.log", port
            )
        except BaseException:
            redis.stop()  # `make run` may have started it before failing
            raise
        return cls(redis, index_name, streamlit)

    def stop(self) -> None:
        """Stop `make run` and everything under it, then the Redis it started (which left the
        process tree when it daemonized)."""
        self.streamlit.stop()
        self.redis.stop()


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
        if not ws.url.endswith("/_stcore/stream"):
            return
        self.socket, self.closed, self.running, self.finished_runs = ws, False, False, 0
        self.rerun_requested = True  # a new session always runs the script
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
            self.rerun_requested, self.running = False, True
            self.log.append("run started")
        elif kind == "script_finished":
            status = ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)
            self.log.append(f"run finished: {status}")
            if message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.running = False
                self.finished_runs += 1

    @property
    def idle(self) -> bool:
        connected = self.socket is not None and not self.closed
        return (
            connected and not self.rerun_requested and not self.running and self.finished_runs > 0
        )


# --- the page --------------------------------------------------------------------------------


class StreamlitPage:
    """One browser tab on the app, with the waits and look-ups every journey uses. The
    sidebar's settings panel is opened whenever the page is (re)loaded with its sidebar
    showing, as a user of those controls has it (`settings=False`: left as a new page has it,
    closed)."""

    def __init__(self, page: Page, url: str, settings: bool = True) -> None:
        self.page = page
        self.url = url
        self.settings = settings
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
        for state in ("connection-state='CONNECTED'", "script-state='notRunning'"):
            self.page.wait_for_selector(
                f"[data-testid='stApp'][data-test-{state}]", state="attached"
            )
        # The frames have arrived; let the page finish handling them and paint.
        self.page.evaluate(
            "() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))"
        )
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

    def open(self) -> None:
        self.page.goto(self.url)
        self.wait_for_app_idle(timeout=60)  # a new app's first run imports the chart libraries
        self._settings_as_asked()

    def reload(self) -> None:
        self.act(self.page.reload)
        self._settings_as_asked()

    def _settings_as_asked(self) -> None:
        """Open the settings unless told not to, or there is no sidebar (a sign-in page), or
        it is closed (a phone)."""
        sidebar = self.sidebar
        if self.settings and sidebar.count() and sidebar.get_attribute("data-collapsed") == "false":
            self.open_settings()

    @property
    def settings_label(self) -> Locator:
        return self.sidebar.get_by_text(SETTINGS_LABEL, exact=True)

    def open_settings(self, wanted: bool = True) -> None:
        """Open (or, `wanted=False`, close) the sidebar's settings panel."""
        switch = self.sidebar.get_by_role("switch", name=SETTINGS_LABEL, exact=True)
        if switch.is_checked() != wanted:
            self.act(self.settings_label.click)
        expect(switch).to_be_checked(checked=wanted)

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

    def toasts(self) -> Locator:
        return self.page.get_by_test_id("stToast")

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

    def combobox(self, label: str) -> Locator:
        return self.page.get_by_role("combobox", name=label, exact=True)

    def selected(self, label: str) -> str:
        return self.combobox(label).input_value()

    def slider(self, label: str) -> Locator:
        # The thumb's accessible name repeats the label (aria-labelledby), so match aria-label.
        return self.page.locator(f"input[type='range'][aria-label={json.dumps(label)}]")

    def slider_value(self, label: str) -> str:
        return str(self.slider(label).get_attribute("aria-valuetext"))

    # actions ---------------------------------------------------------------------------------

    def send(self, prompt: str, wait: bool = True) -> None:
        """Type a prompt and press Enter; wait for the reply (or the failure) to be shown."""
        self.chat_input.fill(prompt)
        self.act(lambda: self.chat_input.press("Enter"), wait=wait)

    def click(self, label: str) -> None:
        self.act(self.button(label).click)

    def choose(self, label: str, option: str) -> None:
        """Pick `option` in the selectbox labelled `label` (a no-op when it is selected)."""
        if self.selected(label) == option:
            return
        # Centred first: at a screen's bottom edge its menu would open out of sight.
        self.combobox(label).evaluate("box => box.scrollIntoView({block: 'center'})")
        self.combobox(label).click()
        self.act(self.page.get_by_role("option", name=option, exact=True).click)
        expect(self.combobox(label)).to_have_value(option)

    def press_on_slider(self, label: str, *keys: str) -> None:
        """Focus the thumb of the slider labelled `label` and press `keys`, each of which must
        change its value. Each change reruns the app: the next key waits for that run, as a
        person's next press would (pressed at once, a rerun could redraw the slider between
        two presses and one was lost, seen in CI)."""
        thumb = self.slider(label)
        for key in keys:
            thumb.focus()
            self.act(partial(thumb.press, key))


StartApp = Callable[[Mapping[str, str]], AppServer]  # the `start_app` fixture
OpenPage = Callable[..., StreamlitPage]  # the `open_page` fixture


def with_fake_model(fake_model: ChatCompletionsServer, **settings: str) -> dict[str, str]:
    """An app's environment with the fake server as its model, plus `settings`."""
    return {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "test",
        "LLM_MAX_RETRIES": "0",
        **settings,
    }


def as_user(page: StreamlitPage, user: str) -> None:
    """Switch the demo user picker to `user` and wait for the prompt box."""
    page.choose("User", user)
    expect(page.chat_input).to_be_visible()


def open_sidebar(page: StreamlitPage) -> None:
    """Open the sidebar of a phone-sized window and wait out its slide-in."""
    page.page.get_by_test_id("stExpandSidebarButton").click()
    expect(page.sidebar).to_have_attribute("data-collapsed", "false")
    expect(page.combobox("User")).to_be_in_viewport(ratio=1)
    page.page.wait_for_timeout(500)  # the slide-in animation: a click during it is lost
