"""A real local HTTP server that speaks the OpenAI chat-completions protocol, for tests.

Standard library only. It listens on 127.0.0.1 (a free port by default) in a background thread
and answers like OpenAI or Azure OpenAI, so the official `openai` client, the Streamlit app
and browser tests can all use it as the model::

    with ChatCompletionsServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        client.chat.completions.create(model="gpt-4o", messages=[...])  # "Echo: <last user msg>"
        server.last_request.messages

        azure = openai.AzureOpenAI(
            azure_endpoint=server.azure_endpoint, api_version="2024-10-21", api_key="k"
        )

Routes
    POST /v1/chat/completions                                   OpenAI style
    POST /openai/deployments/{deployment}/chat/completions      Azure OpenAI (needs ?api-version=)
    POST /openai/v1/chat/completions, POST /chat/completions    Azure v1 API, bare base URL
    GET  /v1/models, GET /openai/models                         model list
    GET  /_control/health, GET /_control/requests               control and inspection (JSON),
    POST /_control/fault | config | replies | clear | reset     see `_Handler._control`

Faults (`Fault`) are queued per request with `fail_next(kind, times=..., **params)` or set for
every request with `set_fault(kind, **params)`; queued faults win. Another process controls a
running server through the `/_control/*` endpoints, most easily with `RemoteControl`.

CLI (serves until killed, prints the base URL as its first line of output)::

    python -m tests.support.openai_server --port 8765 [--reply TEXT] [--delay-first-token S]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]
ReplyFunction = Callable[[JSON], str]
Reply = str | ReplyFunction | None

DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini")
SYSTEM_FINGERPRINT = "fp_fake_model"


class Fault(StrEnum):
    """What goes wrong with a chat-completions request.

    Parameters (fields of `FaultSpec`) in brackets; "chunks" are content chunks of a stream.
    """

    HTTP_500 = "http_500"  # 500 with an OpenAI error body [message, retry_after...]
    HTTP_429 = "http_429"  # 429 with Retry-After [retry_after (1 s), retry_after_ms]
    HTTP_ERROR = "http_error"  # any status, default 400 [status, message, code]
    PROMPT_FILTERED = "prompt_filtered"  # Azure: 400, code "content_filter" (prompt refused)
    SLOW = "slow"  # sleep before the response headers [delay]
    SLOW_FIRST_TOKEN = "slow_first_token"  # headers and role chunk sent, then sleep [delay]
    SLOW_STREAM = "slow_stream"  # sleep between chunks [delay]
    DISCONNECT = "disconnect"  # close the socket (FIN) after k chunks, no [DONE] [after_chunks]
    RESET = "reset"  # TCP reset (RST) after k chunks, no [DONE] [after_chunks]
    STREAM_ERROR = "stream_error"  # `data: {"error": ...}` after k chunks [after_chunks, message]
    CONTENT_FILTER = "content_filter"  # Azure: stop after k chunks, finish_reason content_filter

    @classmethod
    def parse(cls, value: Fault | str) -> Fault:
        if isinstance(value, Fault):
            return value
        text = value.strip().lower()
        for member in cls:
            if text in (member.value, member.name.lower()):
                return member
        raise ValueError(f"unknown fault {value!r}; one of {[m.value for m in cls]}")


_DEFAULT_STATUS = {Fault.HTTP_500: 500, Fault.HTTP_429: 429}


@dataclass(frozen=True)
class FaultSpec:
    """A fault and its parameters. Unused parameters are ignored by the other kinds."""

    kind: Fault
    status: int | None = None  # HTTP_ERROR (default 400); HTTP_500/HTTP_429 may override
    message: str | None = None  # error message of the HTTP_* / STREAM_ERROR kinds
    code: str | None = None  # error.code of HTTP_ERROR
    retry_after: float | None = None  # Retry-After seconds (HTTP_429 default 1; float allowed)
    retry_after_ms: int | None = None  # retry-after-ms header (Azure sends it; client prefers it)
    should_retry: bool | None = None  # x-should-retry: true/false (the client obeys it)
    delay: float = 2.0  # SLOW, SLOW_FIRST_TOKEN, SLOW_STREAM
    after_chunks: int = 2  # DISCONNECT, RESET, STREAM_ERROR, CONTENT_FILTER

    @classmethod
    def of(cls, kind: Fault | str | FaultSpec, **params: Any) -> FaultSpec:
        if isinstance(kind, FaultSpec):
            return dataclasses.replace(kind, **params) if params else kind
        return cls(kind=Fault.parse(kind), **params)

    def to_json(self) -> JSON:
        data = dataclasses.asdict(self)
        data["kind"] = self.kind.value
        return data


@dataclass(frozen=True)
class ServerConfig:
    """Behaviour of the server when no fault applies; change it with `configure(...)`."""

    reply: Reply = None  # fixed text, or a function of the request JSON; None echoes
    words_per_chunk: int = 1  # streamed content is split into chunks of this many words
    chunk_delay: float = 0.0  # seconds between streamed content chunks
    first_token_delay: float = 0.0  # seconds between the role chunk and the first content
    prompt_filter_chunk: bool | None = None  # Azure's `choices: []` first chunk; None: Azure only
    omit_usage: bool = False  # ignore stream_options.include_usage (as older Azure versions)
    usage: tuple[int, int] | None = None  # fixed (prompt_tokens, completion_tokens)
    api_key: str | None = None  # when set, other keys get 401 invalid_api_key
    model: str | None = None  # model reported in responses; None: the request's model/deployment
    models: tuple[str, ...] = DEFAULT_MODELS  # listed by GET /v1/models

    def to_json(self) -> JSON:
        data = dataclasses.asdict(self)
        if callable(self.reply):
            data["reply"] = f"<function {getattr(self.reply, '__name__', 'reply')}>"
        return data


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received (control requests are not recorded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: Any  # parsed JSON body, or None
    route: str  # "chat", "models", "unknown" (404) or "invalid" (body not JSON)
    deployment: str | None  # Azure deployment from the path
    api_version: str | None  # ?api-version=
    fault: str | None  # the Fault value applied to this request
    timestamp: float

    @property
    def json(self) -> JSON:
        return self.body if isinstance(self.body, dict) else {}

    @property
    def messages(self) -> list[JSON]:
        messages = self.json.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def model(self) -> str | None:
        model = self.json.get("model")
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream"))

    @property
    def last_user_message(self) -> str | None:
        return last_user_text(self.json)

    @property
    def api_key(self) -> str | None:
        """The `api-key` header (Azure) or the bearer token of `Authorization` (OpenAI)."""
        if "api-key" in self.headers:
            return self.headers["api-key"]
        authorization = self.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            return authorization[7:]
        return None

    @property
    def retry_count(self) -> int:
        """`x-stainless-retry-count` as sent by the openai client (0 on the first attempt)."""
        try:
            return int(self.headers.get("x-stainless-retry-count", "0"))
        except ValueError:
            return 0

    def to_json(self) -> JSON:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: JSON) -> RecordedRequest:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def message_text(content: Any) -> str:
    """Text of a message's `content`: a string, or a list of `{"type": "text"}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def last_user_text(request: JSON) -> str | None:
    messages = request.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return None


def echo_reply(request: JSON) -> str:
    """The default reply: ``"Echo: <last user message>"``."""
    return f"Echo: {last_user_text(request) or ''}"


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def prompt_tokens(request: JSON) -> int:
    """3 tokens per message plus its content, plus 3 to prime the reply (OpenAI's formula)."""
    messages = request.get("messages")
    total = 3
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            total += 3 + count_tokens(message_text(message.get("content")))
    return total


def split_chunks(text: str, words_per_chunk: int) -> list[str]:
    """Split into pieces of `words_per_chunk` words, whitespace kept, joining back to `text`."""
    words = re.findall(r"\s*\S+\s*$|\s*\S+", text)
    if not words:
        return [text] if text else []
    size = max(1, words_per_chunk)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _error_body(message: str, type_: str | None, code: str | int | None, param: Any = None) -> JSON:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


_SAFE_FILTERS: JSON = {
    name: {"filtered": False, "severity": "safe"}
    for name in ("hate", "self_harm", "sexual", "violence")
}


def _filter_results(filtered: str | None = None) -> JSON:
    results = json.loads(json.dumps(_SAFE_FILTERS))
    if filtered is not None:
        results[filtered] = {"filtered": True, "severity": "high"}
    return cast(JSON, results)


_CHAT_ROUTES: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(r"^/v1/chat/completions/?$"), False),
    (re.compile(r"^/chat/completions/?$"), False),
    (re.compile(r"^/openai/v1/chat/completions/?$"), True),
    (re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions/?$"), True),
)
_MODELS_ROUTES = re.compile(r"^(/v1|/openai|/openai/v1)?/models/?$")


class ChatCompletionsServer:
    """A fake OpenAI / Azure OpenAI chat-completions server on 127.0.0.1.

    Thread-safe; `start()` / `stop()` or use it as a context manager.
    """

    def __init__(
        self, port: int = 0, host: str = "127.0.0.1", config: ServerConfig | None = None
    ) -> None:
        self._host = host
        self._requested_port = port
        self._initial_config = config or ServerConfig()
        self._config = self._initial_config
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._queued: deque[FaultSpec] = deque()
        self._persistent: FaultSpec | None = None
        self._replies: deque[str] = deque()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> ChatCompletionsServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self._host, self._requested_port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping for a delay fault
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ChatCompletionsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>``: the control endpoints live under it."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: `base_url` of `openai.OpenAI`, or OPENAI_BASE_URL."""
        return f"{self.root_url}/v1"

    @property
    def azure_endpoint(self) -> str:
        """`azure_endpoint` of `openai.AzureOpenAI`, or AZURE_OPENAI_ENDPOINT."""
        return f"{self.root_url}/"

    # behaviour -------------------------------------------------------------------------------

    @property
    def config(self) -> ServerConfig:
        with self._lock:
            return self._config

    def configure(self, **changes: Any) -> ServerConfig:
        """Change fields of `ServerConfig` (unknown names raise TypeError)."""
        if "usage" in changes and changes["usage"] is not None:
            prompt, completion = changes["usage"]
            changes["usage"] = (int(prompt), int(completion))
        if "models" in changes:
            changes["models"] = tuple(changes["models"])
        with self._lock:
            self._config = dataclasses.replace(self._config, **changes)
            return self._config

    def set_reply(self, reply: Reply) -> None:
        """Every reply: a fixed text, a function of the request JSON, or None to echo."""
        self.configure(reply=reply)

    def reply_next(self, *texts: str) -> None:
        """Queue replies used by the next requests, one each, before `config.reply`."""
        with self._lock:
            self._replies.extend(texts)

    def fail_next(self, kind: Fault | str | FaultSpec, times: int = 1, **params: Any) -> None:
        """Apply a fault to the next `times` chat requests: ``fail_next(Fault.HTTP_500, 2)``."""
        spec = FaultSpec.of(kind, **params)
        with self._lock:
            self._queued.extend([spec] * times)

    def set_fault(self, kind: Fault | str | FaultSpec | None, **params: Any) -> None:
        """Apply a fault to every chat request with no queued fault; None removes it."""
        spec = None if kind is None else FaultSpec.of(kind, **params)
        with self._lock:
            self._persistent = spec

    def clear_faults(self) -> None:
        with self._lock:
            self._queued.clear()
            self._persistent = None

    @property
    def pending_faults(self) -> list[FaultSpec]:
        with self._lock:
            return list(self._queued)

    @property
    def persistent_fault(self) -> FaultSpec | None:
        with self._lock:
            return self._persistent

    def reset(self) -> None:
        """Forget requests, faults and queued replies; back to the configuration of __init__."""
        with self._lock:
            self._requests.clear()
            self._queued.clear()
            self._persistent = None
            self._replies.clear()
            self._config = self._initial_config

    # recording -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == "chat"]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("the server has received no request")
            return self._requests[-1]

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `n` requests are recorded; TimeoutError after `timeout` s."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(
                    f"expected {n} request(s) within {timeout} s, got {len(self._requests)}"
                )
            return list(self._requests)

    # used by the handler ---------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _take_fault(self) -> FaultSpec | None:
        with self._lock:
            return self._queued.popleft() if self._queued else self._persistent

    def _reply_for(self, request: JSON, config: ServerConfig) -> str:
        with self._lock:
            queued = self._replies.popleft() if self._replies else None
        if queued is not None:
            return queued
        if config.reply is None:
            return echo_reply(request)
        if isinstance(config.reply, str):
            return config.reply
        return str(config.reply(request))

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops meanwhile; True when it is stopping."""
        if seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: ChatCompletionsServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # clients going away, resets we made
            return
        super().handle_error(request, client_address)


class _Aborted(Exception):
    """The handler dropped the connection on purpose or the client went away."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server: _HTTPServer

    def version_string(self) -> str:
        return "fake-openai/1.0"

    @property
    def owner(self) -> ChatCompletionsServer:
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, add=True)

    def finish(self) -> None:
        self.owner._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # plumbing --------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        try:
            url = urlsplit(self.path)
            raw = self._read_body()
            if url.path.startswith("/_control/"):
                self._control(url.path[len("/_control/") :].rstrip("/"), raw)
            else:
                self._api(url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}, raw)
        except (_Aborted, OSError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        self.end_headers()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: JSON | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._write_chunk(f"data: {text}\n\n".encode())

    def _sleep(self, seconds: float) -> None:
        if self.owner._sleep(seconds):
            raise _Aborted("server stopping")

    def _drop(self, reset: bool) -> None:
        """Close the connection without finishing the response: FIN, or RST when `reset`."""
        if reset:
            time.sleep(0.05)  # give the client time to read what was sent; a RST may discard it
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())  # closing with linger 0 sends the RST
        else:
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Aborted("connection dropped on purpose")

    # control ---------------------------------------------------------------------------------

    def _control(self, action: str, raw: bytes) -> None:
        """The `/_control/<action>` endpoints; bodies and answers are JSON objects.

        GET  health     {"ok": true, "base_url": ...}
        GET  requests   {"requests": [RecordedRequest.to_json(), ...]}
        GET  fault      {"pending": [...], "persistent": FaultSpec or null}
        POST fault      {"kind": "http_500", "times": 2, **FaultSpec params} queues a fault;
                        with "persistent": true sets it for every request; "kind": null
                        clears the persistent fault (with "persistent": true) or all faults
        GET  config     {"config": ServerConfig}
        POST config     {"reply": "Hi", "chunk_delay": 0.1, ...} changes ServerConfig fields
        POST replies    {"replies": ["first", "second"]} queues replies
        POST clear      forgets the recorded requests
        POST reset      requests, faults, replies and config back to the start
        """
        owner = self.owner
        try:
            data = json.loads(raw) if raw.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            result: Any = {"ok": True}
            if action == "health":
                result["base_url"] = owner.base_url
            elif action == "requests":
                result["requests"] = [r.to_json() for r in owner.requests]
            elif action == "fault" and self.command == "POST":
                kind = data.pop("kind", None)
                times = int(data.pop("times", 1))
                persistent = bool(data.pop("persistent", False))
                if kind is not None and str(kind).lower() == "none":
                    kind = None
                if persistent:
                    owner.set_fault(kind, **data)
                elif kind is None:
                    owner.clear_faults()
                else:
                    owner.fail_next(kind, times, **data)
                result.update(self._faults())
            elif action == "fault":
                result.update(self._faults())
            elif action == "config" and self.command == "POST":
                result["config"] = owner.configure(**data).to_json()
            elif action == "config":
                result["config"] = owner.config.to_json()
            elif action == "replies" and self.command == "POST":
                owner.reply_next(*[str(text) for text in data.get("replies", [])])
            elif action == "clear" and self.command == "POST":
                owner.clear()
            elif action == "reset" and self.command == "POST":
                owner.reset()
            else:
                self._send_json(
                    404, _error_body(f"no control action {action!r}", "not_found", None)
                )
                return
        except (TypeError, ValueError) as exc:
            self._send_json(400, _error_body(str(exc), "invalid_request_error", None))
            return
        self._send_json(200, result)

    def _faults(self) -> JSON:
        persistent = self.owner.persistent_fault
        return {
            "pending": [f.to_json() for f in self.owner.pending_faults],
            "persistent": persistent.to_json() if persistent else None,
        }

    # API -------------------------------------------------------------------------------------

    def _api(self, path: str, query: dict[str, str], raw: bytes) -> None:
        route, deployment, azure = "unknown", None, False
        for pattern, is_azure in _CHAT_ROUTES:
            match = pattern.match(path)
            if match:
                route, azure = "chat", is_azure
                deployment = match.groupdict().get("deployment")
                break
        else:
            if _MODELS_ROUTES.match(path) and self.command == "GET":
                route = "models"
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
            if route == "chat":
                route = "invalid"
        config = self.owner.config
        error = self._check(route, path, query, body, config, deployment)
        fault = self.owner._take_fault() if route == "chat" and error is None else None
        self.owner._record(
            RecordedRequest(
                method=self.command,
                path=path,
                query=query,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                route=route,
                deployment=deployment,
                api_version=query.get("api-version"),
                fault=fault.kind.value if fault else None,
                timestamp=time.time(),
            )
        )
        if error is not None:
            self._send_json(*error)
        elif route == "models":
            created = int(time.time())
            models = [
                {"id": m, "object": "model", "created": created, "owned_by": "fake"}
                for m in config.models
            ]
            self._send_json(200, {"object": "list", "data": models})
        else:
            self._chat(cast(JSON, body), config, fault, deployment, azure)

    def _check(
        self,
        route: str,
        path: str,
        query: dict[str, str],
        body: Any,
        config: ServerConfig,
        deployment: str | None,
    ) -> tuple[int, JSON] | None:
        if route == "unknown":
            return 404, _error_body(f"Unknown request URL: {self.command} {path}", None, "404")
        if route == "invalid":
            return 400, _error_body(
                "We could not parse the JSON body.", "invalid_request_error", None
            )
        if deployment is not None and "api-version" not in query:
            return 404, {"error": {"code": "404", "message": "Resource not found"}}
        if config.api_key is not None:
            key = self.headers.get("api-key")
            authorization = self.headers.get("authorization", "")
            if key is None and authorization.lower().startswith("bearer "):
                key = authorization[7:]
            if key != config.api_key:
                message = f"Incorrect API key provided: {key!r}."
                return 401, _error_body(message, "invalid_request_error", "invalid_api_key")
        if route == "chat":
            messages = body.get("messages") if isinstance(body, dict) else None
            if not isinstance(messages, list) or not messages:
                message = "Missing required parameter: 'messages'."
                return 400, _error_body(message, "invalid_request_error", None, "messages")
        return None

    def _chat(
        self,
        request: JSON,
        config: ServerConfig,
        fault: FaultSpec | None,
        deployment: str | None,
        azure: bool,
    ) -> None:
        kind = fault.kind if fault else None
        if fault is not None and kind in (Fault.HTTP_500, Fault.HTTP_429, Fault.HTTP_ERROR):
            self._http_fault(fault)
            return
        if kind is Fault.PROMPT_FILTERED:
            self._send_json(400, _prompt_filtered_body())
            return
        if fault is not None and kind is Fault.SLOW:
            self._sleep(fault.delay)

        text = self.owner._reply_for(request, config)
        model = config.model or deployment or str(request.get("model") or "fake-model")
        filters = config.prompt_filter_chunk if config.prompt_filter_chunk is not None else azure
        if request.get("stream"):
            self._stream(request, config, fault, text, model, filters)
        else:
            self._complete(request, config, fault, text, model, filters)

    def _http_fault(self, fault: FaultSpec) -> None:
        status = fault.status or _DEFAULT_STATUS.get(fault.kind, 400)
        headers: dict[str, str] = {}
        retry_after = fault.retry_after
        if retry_after is None and fault.kind is Fault.HTTP_429:
            retry_after = 1.0
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = str(fault.retry_after_ms)
        if fault.should_retry is not None:
            headers["x-should-retry"] = "true" if fault.should_retry else "false"
        if fault.kind is Fault.HTTP_429:
            message = fault.message or "Rate limit reached for requests. Please try again later."
            body = _error_body(message, "requests", fault.code or "rate_limit_exceeded")
        elif fault.kind is Fault.HTTP_500 or status >= 500:
            message = fault.message or (
                "The server had an error while processing your request. Sorry about that!"
            )
            body = _error_body(message, "server_error", fault.code)
        else:
            message = fault.message or f"Injected error with status {status}."
            body = _error_body(message, "invalid_request_error", fault.code)
        self._send_json(status, body, headers)

    def _usage(self, request: JSON, config: ServerConfig, completion_text: str) -> JSON:
        if config.usage is not None:
            prompt, completion = config.usage
        else:
            prompt, completion = prompt_tokens(request), count_tokens(completion_text)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _complete(
        self,
        request: JSON,
        config: ServerConfig,
        fault: FaultSpec | None,
        text: str,
        model: str,
        filters: bool,
    ) -> None:
        kind = fault.kind if fault else None
        if fault is not None and kind in (Fault.SLOW_FIRST_TOKEN, Fault.SLOW_STREAM):
            self._sleep(fault.delay)
        self._sleep(config.first_token_delay)
        if fault is not None and kind in (Fault.DISCONNECT, Fault.RESET):
            self._drop(reset=kind is Fault.RESET)
        if fault is not None and kind is Fault.STREAM_ERROR:
            message = fault.message or "The server had an error while processing your request."
            self._send_json(500, _error_body(message, "server_error", None))
            return
        finish_reason = "stop"
        choice: JSON = {"index": 0, "logprobs": None}
        if fault is not None and kind is Fault.CONTENT_FILTER:
            text = "".join(split_chunks(text, config.words_per_chunk)[: fault.after_chunks])
            finish_reason = "content_filter"
            choice["content_filter_results"] = _filter_results("violence")
        elif filters:
            choice["content_filter_results"] = _filter_results()
        choice["message"] = {"role": "assistant", "content": text, "refusal": None}
        choice["finish_reason"] = finish_reason
        payload: JSON = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [choice],
            "usage": self._usage(request, config, text),
        }
        if filters:
            payload["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": _filter_results()}
            ]
        self._send_json(200, payload)

    def _stream(
        self,
        request: JSON,
        config: ServerConfig,
        fault: FaultSpec | None,
        text: str,
        model: str,
        filters: bool,
    ) -> None:
        kind = fault.kind if fault else None
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        chunk_delay = config.chunk_delay
        if fault is not None and kind is Fault.SLOW_STREAM:
            chunk_delay = fault.delay
        first_token_delay = config.first_token_delay
        if fault is not None and kind is Fault.SLOW_FIRST_TOKEN:
            first_token_delay = fault.delay

        def chunk(delta: JSON, finish_reason: str | None = None) -> JSON:
            choice: JSON = {"index": 0, "delta": delta, "logprobs": None}
            choice["finish_reason"] = finish_reason
            if filters and delta.get("content"):
                choice["content_filter_results"] = _filter_results()
            payload: JSON = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [choice],
            }
            if include_usage:
                payload["usage"] = None
            return payload

        self._start_stream()
        if filters:  # Azure sends the prompt's filter results first, with no choices
            self._event(
                {
                    "id": "",
                    "object": "",
                    "created": 0,
                    "model": "",
                    "choices": [],
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": _filter_results()}
                    ],
                }
            )
        self._event(chunk({"role": "assistant", "content": "", "refusal": None}))
        self._sleep(first_token_delay)

        pieces = split_chunks(text, config.words_per_chunk)
        stop_at = len(pieces)
        if kind in (Fault.DISCONNECT, Fault.RESET, Fault.STREAM_ERROR, Fault.CONTENT_FILTER):
            stop_at = min(stop_at, max(0, fault.after_chunks if fault else 0))
        sent = pieces[:stop_at]
        for index, piece in enumerate(sent):
            if index > 0:
                self._sleep(chunk_delay)
            self._event(chunk({"content": piece}))

        if kind in (Fault.DISCONNECT, Fault.RESET):
            self._drop(reset=kind is Fault.RESET)
        if fault is not None and kind is Fault.STREAM_ERROR:
            message = fault.message or "The server had an error while processing your request."
            self._event(_error_body(message, "server_error", None))
            self._event("[DONE]")
            self._write_chunk(b"")
            return
        finish_reason = "content_filter" if kind is Fault.CONTENT_FILTER else "stop"

        final = chunk({}, finish_reason)
        if finish_reason == "content_filter":
            final["choices"][0]["content_filter_results"] = _filter_results("violence")
        self._event(final)
        if include_usage and not config.omit_usage:
            self._event(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": SYSTEM_FINGERPRINT,
                    "choices": [],
                    "usage": self._usage(request, config, "".join(sent)),
                }
            )
        self._event("[DONE]")
        self._write_chunk(b"")  # end of the chunked body


def _prompt_filtered_body() -> JSON:
    results = _filter_results("violence")
    return {
        "error": {
            "message": (
                "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy. Please modify your prompt and retry."
            ),
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": results,
            },
        }
    }


# other processes ---------------------------------------------------------------------------


class RemoteControl:
    """Controls a server running in another process through its `/_control/*` endpoints.

    `url` is the server's root or base URL (a trailing ``/v1`` is ignored).
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        url = url.rstrip("/")
        self.root_url = url[: -len("/v1")] if url.endswith("/v1") else url
        self.timeout = timeout

    def _call(self, action: str, payload: JSON | None = None) -> JSON:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.root_url}/_control/{action}",
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return cast(JSON, json.loads(response.read()))

    def health(self) -> bool:
        try:
            return bool(self._call("health").get("ok"))
        except (OSError, ValueError):
            return False

    def requests(self) -> list[RecordedRequest]:
        return [RecordedRequest.from_json(r) for r in self._call("requests")["requests"]]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while True:
            requests = self.requests()
            if len(requests) >= n:
                return requests
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"expected {n} request(s) within {timeout} s, got {len(requests)}"
                )
            time.sleep(0.05)

    def fail_next(self, kind: Fault | str, times: int = 1, **params: Any) -> None:
        self._call("fault", {"kind": Fault.parse(kind).value, "times": times, **params})

    def set_fault(self, kind: Fault | str | None, **params: Any) -> None:
        name = None if kind is None else Fault.parse(kind).value
        self._call("fault", {"kind": name, "persistent": True, **params})

    def clear_faults(self) -> None:
        self._call("fault", {"kind": None})

    def configure(self, **changes: Any) -> JSON:
        return cast(JSON, self._call("config", changes)["config"])

    def reply_next(self, *texts: str) -> None:
        self._call("replies", {"replies": list(texts)})

    def clear(self) -> None:
        self._call("clear", {})

    def reset(self) -> None:
        self._call("reset", {})


class ServerProcess:
    """Runs the CLI in a subprocess (for browser tests); a context manager.

    `base_url` is known once `start()` returns; `control` drives the running server.
    """

    def __init__(self, port: int = 0, extra_args: list[str] | None = None) -> None:
        self.port = port
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self, timeout: float = 15.0) -> ServerProcess:
        repo_root = Path(__file__).resolve().parents[2]
        command = [sys.executable, "-m", "tests.support.openai_server", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command + self.extra_args,
            cwd=repo_root,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = found[0].strip() if found else ""
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"fake model server did not start: {line!r}")
        self.base_url = line
        return self

    @property
    def root_url(self) -> str:
        return self.base_url[: -len("/v1")]

    @property
    def azure_endpoint(self) -> str:
        return f"{self.root_url}/"

    @property
    def control(self) -> RemoteControl:
        return RemoteControl(self.base_url)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# CLI ---------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.openai_server",
        description="Fake OpenAI / Azure OpenAI chat-completions server for tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reply", default=None, help="fixed reply (default: echo)")
    parser.add_argument("--delay-first-token", type=float, default=0.0, metavar="S")
    parser.add_argument("--chunk-delay", type=float, default=0.0, metavar="S")
    parser.add_argument("--words-per-chunk", type=int, default=1, metavar="N")
    parser.add_argument(
        "--prompt-filter-chunk",
        choices=("auto", "always", "never"),
        default="auto",
        help="Azure's `choices: []` first chunk; auto: on Azure paths only",
    )
    parser.add_argument("--omit-usage", action="store_true", help="ignore include_usage")
    parser.add_argument("--api-key", default=None, help="require this key (else 401)")
    parser.add_argument("--model", default=None, help="model name reported in responses")
    return parser.parse_args(argv)


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    filters = {"auto": None, "always": True, "never": False}[args.prompt_filter_chunk]
    config = ServerConfig(
        reply=args.reply,
        words_per_chunk=args.words_per_chunk,
        chunk_delay=args.chunk_delay,
        first_token_delay=args.delay_first_token,
        prompt_filter_chunk=filters,
        omit_usage=args.omit_usage,
        api_key=args.api_key,
        model=args.model,
    )
    server = ChatCompletionsServer(port=args.port, host=args.host, config=config).start()
    signal.signal(signal.SIGTERM, _stop_on_signal)
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
