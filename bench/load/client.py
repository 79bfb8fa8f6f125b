"""One browser tab on the app, without a browser: the page's HTTP requests, then Streamlit's
websocket, on asyncio, so one process holds hundreds of them.

`PageSession.open()` loads the page as the browser does (the HTML, `/_stcore/health`, which
sets the XSRF cookie, and `/_stcore/host-config`), connects to `/_stcore/stream` with the
`streamlit` subprotocol and asks for the first script run. `chat(prompt)` types the prompt into
the chat input (found by its element type) and times what a person at the page sees: Enter
until the first token of the reply, until the run that showed the whole reply ended (the app
stores a reply before that run ends: the caller checks Redis), and until the chain of runs is
over and the prompt box is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.load import protocol


class PageError(RuntimeError):
    """The page could not be opened or did not answer as a browser expects."""


@dataclass
class Turn:
    """One prompt and its reply; times in seconds after Enter (None: never seen)."""

    prompt: str
    expected: str  # the whole reply, as the page shows it
    entered: float = 0.0  # time.monotonic() at Enter
    first_token: float | None = None
    stored: float | None = None  # the run that showed the whole reply ended
    done: float | None = None  # the chain of runs ended
    error: str | None = None
    runs: int = 0  # script runs started since Enter
    whole_reply_shown: bool = False
    notes: list[str] = field(default_factory=list)  # alerts and exceptions shown
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.stored is not None

    def observe(self, kind: str, text: str, at: float) -> None:
        """An element the page shows: the reply is told from the stored ones above it by its
        text (each reply quotes its own prompt)."""
        shown = text.strip()
        if kind in ("alert", "exception"):
            self.notes.append(shown)
        elif shown and self.first_token is None and self.expected.startswith(shown):
            self.first_token = at - self.entered
        self.whole_reply_shown = self.whole_reply_shown or shown == self.expected

    def run_finished(self, status: int, at: float) -> None:
        if self.whole_reply_shown and self.stored is None:
            self.stored = at - self.entered
        if status == protocol.RUN_CONTINUES or self.runs == 0:
            return
        self.done = at - self.entered
        if self.stored is None:
            self.error = "; ".join(self.notes) or "the runs ended without the reply"
        self.finished.set()

    def fail(self, reason: str) -> None:
        if not self.finished.is_set():
            self.error = reason
            self.finished.set()


class PageSession:
    """One tab: `await open()`, then `await chat(prompt)` as often as wanted, `await close()`."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], reply_to: Callable[[str], str]
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = dict(headers)
        self.reply_to = reply_to
        self.query_string = ""
        self._page_hash = ""
        self._chat_input: tuple[str, bool] | None = None  # (widget id, disabled)
        self._cache: dict[str, ForwardMsg] = {}
        self._idle = asyncio.Event()
        self._turn: Turn | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.Task[None]] = {}
        self.received_bytes = 0

    async def open(self, timeout: float = 60.0) -> None:
        cookie = await asyncio.to_thread(self._load_page)
        xsrf = cookie.split("=", 1)[1]
        url = self.base_url.replace("http", "ws", 1) + protocol.STREAM_PATH
        headers = {**self.headers, "Cookie": cookie, "Origin": self.base_url.rstrip("/")}
        self._ws = await connect(
            url,
            subprotocols=[protocol.SUBPROTOCOL, xsrf],  # type: ignore[list-item]
            additional_headers=headers,
            max_size=None,
            compression=None,  # Streamlit's default: no websocket compression
            ping_interval=None,  # a browser never pings; it only answers the server's pings
            open_timeout=timeout,
        )
        self._reader = asyncio.create_task(self._read())
        await self._send(self._rerun())
        await asyncio.wait_for(self._idle.wait(), timeout)

    def _load_page(self) -> str:
        """GET the page, the health check (it sets the XSRF cookie) and the host config; the
        cookie as `name=value`."""
        cookie = ""
        for path in ("", "_stcore/health", "_stcore/host-config"):
            request = urllib.request.Request(self.base_url + path, headers=self.headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
                for header in response.headers.get_all("set-cookie") or []:
                    if header.startswith(protocol.XSRF_COOKIE + "="):
                        cookie = header.split(";", 1)[0]
        if not cookie:
            raise PageError("the server set no XSRF cookie")
        return cookie

    async def chat(self, prompt: str, timeout: float = 60.0) -> Turn:
        """Type `prompt` and press Enter once the prompt box is ready; the turn when its chain
        of runs is over (or `timeout` seconds after Enter)."""
        turn = Turn(prompt, self.reply_to(prompt))
        try:
            await asyncio.wait_for(self._ready(), timeout)
        except TimeoutError:
            turn.fail("the prompt box did not come back")
            return turn
        assert self._chat_input is not None
        self._turn, self._idle = turn, asyncio.Event()
        turn.entered = time.monotonic()
        await self._send(self._rerun(chat_input=(self._chat_input[0], prompt)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(turn.finished.wait(), timeout)
        turn.fail(f"no end of the turn within {timeout:g} s")
        self._turn = None
        return turn

    async def _ready(self) -> None:
        while not (self._idle.is_set() and self._chat_input and not self._chat_input[1]):
            if self._reader is None or self._reader.done():
                raise PageError("the websocket closed")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await self._reader

    def _rerun(self, chat_input: tuple[str, str] | None = None, fragment_id: str = "") -> bytes:
        """A rerun as the browser asks for it now: its URL's query, its page and cache."""
        return protocol.rerun(
            self.query_string, self._page_hash, list(self._cache), chat_input, fragment_id
        )

    async def _send(self, payload: bytes) -> None:
        if self._ws is None:
            raise PageError("not connected")
        await self._ws.send(payload)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for data in self._ws:
                assert isinstance(data, bytes)
                self.received_bytes += len(data)
                self._on_message(ForwardMsg.FromString(data), time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            if self._turn is not None:
                self._turn.fail("the websocket closed")

    def _on_message(self, message: ForwardMsg, now: float) -> None:
        if message.WhichOneof("type") == "ref_hash":
            cached = self._cache.get(message.ref_hash)
            if cached is None:
                return
            message = cached
        elif message.metadata.cacheable:
            self._cache[message.hash] = message
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self._page_hash = message.new_session.page_script_hash
            if self._turn is not None:
                self._turn.runs += 1
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "script_finished":
            self._script_finished(message.script_finished, now)
        elif kind == "auto_rerun":
            self._start_timer(message.auto_rerun.fragment_id, message.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
        elif kind == "delta":
            self._on_delta(message, now)

    def _script_finished(self, status: int, now: float) -> None:
        if self._turn is not None:
            self._turn.run_finished(status, now)
        if status != protocol.RUN_CONTINUES:
            self._idle.set()

    def _on_delta(self, message: ForwardMsg, now: float) -> None:
        chat_input = protocol.chat_input_of(message)
        if chat_input is not None:
            self._chat_input = (chat_input.id, chat_input.disabled)
            return
        shown = protocol.shown_text(message)
        if shown is not None and self._turn is not None:
            self._turn.observe(*shown, now)

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        """A fragment with `run_every`: the browser asks for its rerun every `interval` s."""
        if fragment_id in self._timers:
            return

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                if self._idle.is_set():
                    await self._send(self._rerun(fragment_id=fragment_id))

        self._timers[fragment_id] = asyncio.create_task(tick())
