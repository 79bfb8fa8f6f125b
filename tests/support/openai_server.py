"""A fake OpenAI-protocol model server for tests, on pytest-httpserver: a real socket, so the
app started as a separate process by the browser tests can use it as well as the tests' own
`openai` clients::

    with ChatCompletionsServer() as server:
        openai.OpenAI(base_url=server.base_url, api_key="k").chat.completions.create(...)
        server.last_request.messages

It answers `POST .../chat/completions` (OpenAI, OpenAI-compatible and Azure paths) with
"Echo: <last user message>" or a configured reply, streamed one word per chunk. Like the small
open models of issue 15 it can have a context size, reject non-alternating roles, ignore
`stream_options.include_usage` and stop at `max_tokens` with finish_reason "length"; it counts
tokens in cl100k_base, not the app's o200k_base, so the app's estimates really drift.

`POST .../embeddings` answers deterministic vectors: each word (lower-cased) adds one to a
dimension chosen by its hash, then the vector is L2-normalised, so texts sharing words are
near and nothing else is; `dimensions` (default 64) sets the width unless `embedding_width`
fixes it (a model that cannot shorten); `embeddings_down` makes it answer 503. Embedding
requests are kept in `embedding_requests`.

Conversation-title requests (chatbot.titles' instruction) are recorded apart, in
`title_requests`, so `chat_requests` and `last_request` are the chat's own; they are answered
at once and never take a fault meant for the chat (only `title_fault`). Memory-proposal
requests (chatbot.memory_proposals) likewise, in `memory_requests`, answered `memory_reply`.

Paced like a hosted model (`first_token_delay`, `chunk_delay`, `token_chunks`), it keeps each
streamed chat reply's own timing in `stream_timings` (also served as JSON at `GET
/fake/stream-timings`, for a server in another process), so a benchmark can subtract the
model's time from what a user waited.
"""

from __future__ import annotations

import array
import base64
import dataclasses
import functools
import hashlib
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from chatbot.memory_proposals import INSTRUCTION as MEMORY_INSTRUCTION
from chatbot.titles import INSTRUCTION as TITLE_INSTRUCTION
from tests.support.tokens import (
    count_request_tokens,
    count_text_tokens,
    decode_tokens,
    token_ids,
    truncate_to_tokens,
)

JSON = dict[str, Any]
SERVER_ENCODING = "cl100k_base"  # the server's own tokenizer, deliberately not the app's


class Fault(StrEnum):
    """What goes wrong with one chat request (parameters of `FaultSpec` in brackets)."""

    HTTP_500 = "http_500"
    HTTP_400 = "http_400"  # a request the server refuses, saying why [message]
    HTTP_429 = "http_429"  # with Retry-After [retry_after]
    PROMPT_FILTERED = "prompt_filtered"  # Azure: 400 with code "content_filter"
    SLOW = "slow"  # sleeps before answering [delay]
    DISCONNECT = "disconnect"  # the connection closes after k content chunks [after_chunks]
    CONTENT_FILTER = "content_filter"  # Azure: stops after k chunks with that finish_reason
    EMPTY_STREAM = "empty_stream"  # HTTP 200 and not a single event
    KEEPALIVE_ONLY = "keepalive_only"  # only SSE comments, one every 0.2 s, for [delay] s
    MALFORMED_EVENT = "malformed_event"  # a `data:` line that is not JSON
    ERROR_EVENT = "error_event"  # HTTP 200, then an error event saying [message]


@dataclass(frozen=True)
class FaultSpec:
    kind: Fault
    delay: float = 2.0
    after_chunks: int = 2
    retry_after: float | None = None
    message: str = "The server failed."


@dataclass(frozen=True)
class ServerConfig:
    """How the server answers when no fault applies; change it with `configure(...)`."""

    reply: str | None = None  # None echoes the last user message
    first_token_delay: float = 0.0  # seconds from a chat request's arrival to its first chunk
    chunk_delay: float = 0.0  # seconds between streamed content chunks
    token_chunks: bool = False  # one token (server's encoding) per chunk, as hosted models do
    quote_prompt: bool = False  # the reply ends with "(re: <last user message>)": all unique
    omit_usage: bool = False  # ignore stream_options.include_usage, as many local servers do
    context_tokens: int | None = None  # prompt + max_tokens above it: 400 context_length_exceeded
    overflow_as_empty_stream: bool = False  # ... or, streaming, HTTP 200 with an empty body
    strict_roles: bool = False  # 400 unless user/assistant alternate after the system message
    title_reply: str | None = None  # a title request's answer (None echoes, as chat does)
    title_fault: Fault | None = None  # applied to every title request
    memory_reply: str = '{"memories": []}'  # a memory-proposal request's answer
    embeddings_down: bool = False  # POST .../embeddings answers 503
    embedding_width: int | None = None  # a fixed width, whatever `dimensions` asks
    token_factor: float = 1.0  # its tokenizer counts this many times cl100k (llama.cpp: ~1.35)
    tokenize: bool = False  # llama.cpp's POST /apply-template and /tokenize, agreeing with it
    llama_cpp_errors: bool = False  # a 400 overflow as llama.cpp words it (n_ctx, n_prompt_tokens)


@dataclass(frozen=True)
class RecordedRequest:
    """One chat request as the server received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    json: JSON
    token_factor: float = 1.0  # the server's ServerConfig.token_factor when it came

    @property
    def messages(self) -> list[JSON]:
        return list(self.json.get("messages") or [])

    @property
    def model(self) -> str | None:
        return self.json.get("model")

    @property
    def is_title(self) -> bool:
        """A conversation-title request of the app (chatbot.titles)."""
        first = self.messages[0] if self.messages else {}
        return first.get("role") == "system" and first.get("content") == TITLE_INSTRUCTION

    @property
    def is_memory(self) -> bool:
        """A memory-proposal request of the app (chatbot.memory_proposals)."""
        first = self.messages[0] if self.messages else {}
        return first.get("role") == "system" and str(first.get("content", "")).startswith(
            MEMORY_INSTRUCTION
        )

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream"))

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    @property
    def max_tokens(self) -> int | None:
        return self.json.get("max_tokens") or self.json.get("max_completion_tokens")

    @property
    def prompt_tokens(self) -> int:
        """What this server counts for the prompt, in its own tokenizer."""
        return server_count(count_request_tokens(self.messages, SERVER_ENCODING), self.token_factor)


def server_count(cl100k_tokens: int, factor: float) -> int:
    return math.ceil(cl100k_tokens * factor)


_CHATML = re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>\n", re.DOTALL)
_CHATML_PRIMER = "<|im_start|>assistant\n"


def chatml(messages: list[JSON]) -> str:
    """The prompt its chat template makes of messages (what /apply-template returns)."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + _CHATML_PRIMER


def tokens_of(text: str, factor: float) -> int:
    """/tokenize: a prompt its template made counts as the request it came from does."""
    turns = _CHATML.findall(text)
    messages = [{"role": role, "content": content} for role, content in turns]
    if turns and text == chatml(messages):
        return server_count(count_request_tokens(messages, SERVER_ENCODING), factor)
    return server_count(count_text_tokens(text, SERVER_ENCODING), factor)


@dataclass(frozen=True)
class StreamTiming:
    """One streamed chat reply as the server paced it: seconds after the request arrived."""

    prompt: str  # the last user message
    first_token: float
    finished: float
    chunks: int


def _error(status: int, message: str, code: str | None, **headers: str) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return Response(json.dumps(body), status, headers, mimetype="application/json")


def _words(text: str) -> list[str]:
    """Chunks of one word each, whitespace kept in front, joining back to `text`."""
    return [piece for piece in re.split(r"(?<=\S)(?=\s)", text) if piece]


@functools.lru_cache(maxsize=64)
def _tokens(text: str) -> tuple[str, ...]:
    """Chunks of one token each of the server's encoding (text that splits inside a
    multi-byte character keeps that character whole in one chunk)."""
    pieces: list[str] = []
    pending: list[int] = []
    for token in token_ids(text, SERVER_ENCODING):
        pending.append(token)
        piece = decode_tokens(pending, SERVER_ENCODING)
        if "\ufffd" not in piece:
            pieces.append(piece)
            pending = []
    return tuple(pieces)


def quoted_reply(reply: str, prompt: str) -> str:
    """The reply of a server with `quote_prompt`."""
    return f"{reply}\n\n(re: {prompt})"


def roles_alternate(messages: list[JSON]) -> bool:
    """The check of strict chat templates: after an optional system message, user first, then
    user and assistant in turn."""
    turns = messages[1:] if messages and messages[0].get("role") == "system" else messages
    return all(m.get("role") == ("user", "assistant")[i % 2] for i, m in enumerate(turns))


class ChatCompletionsServer:
    """The fake model on 127.0.0.1 (a free port); a context manager. Thread-safe."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self._initial = config or ServerConfig()
        self._config = self._initial
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._title_requests: list[RecordedRequest] = []
        self._memory_requests: list[RecordedRequest] = []
        self._timings: list[StreamTiming] = []
        self._queued: deque[FaultSpec] = deque()
        self._persistent: FaultSpec | None = None
        self._tokenize_calls = 0
        self._stopping = threading.Event()
        self._http = HTTPServer(host="127.0.0.1", threaded=True)
        self._http.no_handler_status_code = 404
        chat = re.compile(r".*/chat/completions/?$")
        self._http.expect_request(chat, method="POST").respond_with_handler(self._chat)
        self.embedding_requests: list[JSON] = []
        embeddings = re.compile(r".*/embeddings/?$")
        self._http.expect_request(embeddings, method="POST").respond_with_handler(self._embed)
        for path, handler in (("/apply-template", self._template), ("/tokenize", self._tokenize)):
            self._http.expect_request(path, method="POST").respond_with_handler(handler)
        timings = self._http.expect_request("/fake/stream-timings", method="GET")
        timings.respond_with_handler(self._timings_json)

    def __enter__(self) -> ChatCompletionsServer:
        self._stopping.clear()
        self._http.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()  # wakes handlers sleeping for a fault
        self._http.stop()

    @property
    def base_url(self) -> str:
        """`base_url` of `openai.OpenAI`, or OPENAI_BASE_URL."""
        return self._http.url_for("/v1")

    @property
    def azure_endpoint(self) -> str:
        """`azure_endpoint` of `openai.AzureOpenAI`, or AZURE_OPENAI_ENDPOINT."""
        return self._http.url_for("/")

    # behaviour -----------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Change fields of `ServerConfig` (unknown names raise TypeError)."""
        with self._lock:
            self._config = dataclasses.replace(self._config, **changes)

    def fail_next(self, kind: Fault, times: int = 1, **params: Any) -> None:
        """Apply a fault to the next `times` chat requests."""
        with self._lock:
            self._queued.extend([FaultSpec(kind, **params)] * times)

    def set_fault(self, kind: Fault, **params: Any) -> None:
        """Apply a fault to every chat request that has no queued fault."""
        with self._lock:
            self._persistent = FaultSpec(kind, **params)

    def clear_faults(self) -> None:
        with self._lock:
            self._queued.clear()
            self._persistent = None

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()
            self._title_requests.clear()
            self._memory_requests.clear()
            self._timings.clear()

    def reset(self) -> None:
        """Forget requests and faults; back to the configuration it started with."""
        self.clear_faults()
        self.clear()
        self.configure(**dataclasses.asdict(self._initial))

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def title_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._title_requests)

    @property
    def memory_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._memory_requests)

    @property
    def stream_timings(self) -> list[StreamTiming]:
        """The streamed chat replies that ended, in the order they ended."""
        with self._lock:
            return list(self._timings)

    def _timings_json(self, http: Request) -> Response:
        body = [dataclasses.asdict(timing) for timing in self.stream_timings]
        return Response(json.dumps(body), 200, mimetype="application/json")

    @property
    def last_request(self) -> RecordedRequest:
        requests = self.chat_requests
        if not requests:
            raise LookupError("the server has received no request")
        return requests[-1]

    # answering -----------------------------------------------------------------------------

    def _embed(self, http: Request) -> Response:
        body = json.loads(http.get_data() or b"{}")
        with self._lock:
            self.embedding_requests.append(body)
            down, fixed = self._config.embeddings_down, self._config.embedding_width
        if down:
            return _error(503, "The embedding model is not available.", None)
        texts = body.get("input") or []
        texts = [texts] if isinstance(texts, str) else texts
        width = fixed or int(body.get("dimensions") or 64)
        packed = body.get("encoding_format") == "base64"  # what the openai client asks for
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": encoded(word_vector(str(text), width), packed),
            }
            for i, text in enumerate(texts)
        ]
        answer = {"object": "list", "data": data, "model": body.get("model", ""),
                  "usage": {"prompt_tokens": 0, "total_tokens": 0}}  # fmt: skip
        return Response(json.dumps(answer), content_type="application/json")

    def _template(self, http: Request) -> Response:
        if not self._config.tokenize:
            return Response("Not Found", 404)
        messages = (http.get_json(silent=True) or {}).get("messages") or []
        return Response(json.dumps({"prompt": chatml(messages)}), mimetype="application/json")

    def _tokenize(self, http: Request) -> Response:
        config = self._config
        with self._lock:
            self._tokenize_calls += 1  # answered or not
        if not config.tokenize:
            return Response("Not Found", 404)
        content = str((http.get_json(silent=True) or {}).get("content", ""))
        tokens = [0] * tokens_of(content, config.token_factor)
        return Response(json.dumps({"tokens": tokens}), mimetype="application/json")

    @property
    def tokenize_calls(self) -> int:
        with self._lock:
            return self._tokenize_calls

    def _chat(self, http: Request) -> Response:
        arrived = time.monotonic()
        request = RecordedRequest(
            path=http.path,
            query=dict(http.args),
            headers={name.lower(): value for name, value in http.headers.items()},
            json=http.get_json(silent=True) or {},
            token_factor=self._config.token_factor,
        )
        connection = http.environ["werkzeug.socket"]
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stalls
        with self._lock:
            config = self._config
            if request.is_memory:
                self._memory_requests.append(request)
                fault = None
                config = dataclasses.replace(
                    config, reply=config.memory_reply, chunk_delay=0, first_token_delay=0
                )
            elif request.is_title:
                self._title_requests.append(request)
                fault = FaultSpec(config.title_fault) if config.title_fault else None
                config = dataclasses.replace(
                    config, reply=config.title_reply, chunk_delay=0, first_token_delay=0
                )
            else:
                self._requests.append(request)
                fault = self._queued.popleft() if self._queued else self._persistent
        kind = fault.kind if fault else None
        if fault is not None and kind is Fault.SLOW:
            self._stopping.wait(fault.delay)
        if kind is Fault.HTTP_500:
            return _error(500, "The server had an error processing your request.", None)
        if fault is not None and kind is Fault.HTTP_400:
            return _error(400, fault.message, "invalid_value")
        if fault is not None and kind is Fault.HTTP_429:
            retry = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after else {}
            return _error(429, "Rate limit reached.", "rate_limit_exceeded", **retry)
        if kind is Fault.PROMPT_FILTERED:
            return _error(400, "The prompt triggered the content filter.", "content_filter")
        if kind is Fault.EMPTY_STREAM:
            return Response("", 200, mimetype="text/event-stream")
        if fault is not None and kind in (
            Fault.KEEPALIVE_ONLY,
            Fault.MALFORMED_EVENT,
            Fault.ERROR_EVENT,
        ):
            return Response(self._broken_events(fault), 200, mimetype="text/event-stream")
        return self._refusal(request, config) or self._answer(request, config, fault, arrived)

    def _broken_events(self, fault: FaultSpec) -> Iterator[str]:
        """A stream that never becomes a reply: keep-alive comments, an unreadable event, or
        an error event."""
        if fault.kind is Fault.KEEPALIVE_ONLY:
            ends = time.monotonic() + fault.delay
            while time.monotonic() < ends and not self._stopping.wait(0.2):
                yield ": keep-alive\n\n"
            return
        if fault.kind is Fault.MALFORMED_EVENT:
            yield 'data: {"id": "chatcmpl-fake", "choices": [\n\n'
            return
        error = {"error": {"message": fault.message, "type": "server_error"}}
        yield f"data: {json.dumps(error)}\n\n"

    def _refusal(self, request: RecordedRequest, config: ServerConfig) -> Response | None:
        """The 400s (or empty stream) of a strict server with a small context."""
        if not request.messages:
            return _error(400, "Missing required parameter: 'messages'.", None)
        if config.strict_roles and not roles_alternate(request.messages):
            message = "Conversation roles must alternate user/assistant/user/assistant/..."
            return _error(400, message, None)
        asked = request.prompt_tokens + (request.max_tokens or 0)
        if config.context_tokens is None or asked <= config.context_tokens:
            return None
        if config.overflow_as_empty_stream and request.stream:
            return Response("", 200, mimetype="text/event-stream")
        if config.llama_cpp_errors:
            error = {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": request.prompt_tokens,
                "n_ctx": config.context_tokens,
            }
            return Response(json.dumps({"error": error}), 400, mimetype="application/json")
        message = (
            f"This model's maximum context length is {config.context_tokens} tokens. However, "
            f"you requested {asked} tokens ({request.prompt_tokens} in the messages, "
            f"{request.max_tokens or 0} in the completion)."
        )
        return _error(400, message, "context_length_exceeded")

    def _answer(
        self,
        request: RecordedRequest,
        config: ServerConfig,
        fault: FaultSpec | None,
        arrived: float,
    ) -> Response:
        user_texts = [m.get("content", "") for m in request.messages if m.get("role") == "user"]
        text = config.reply if config.reply is not None else f"Echo: {(user_texts or [''])[-1]}"
        if config.quote_prompt:
            text = quoted_reply(text, (user_texts or [""])[-1])
        limits = [request.max_tokens or 0, (config.context_tokens or 0) - request.prompt_tokens]
        limit = min((n for n in limits if n > 0), default=None)
        finish = "stop"
        if limit is not None and count_text_tokens(text, SERVER_ENCODING) > limit:
            text, finish = truncate_to_tokens(text, limit, SERVER_ENCODING), "length"
        pieces = list(_tokens(text)) if config.token_chunks else _words(text)
        if fault is not None and fault.kind in (Fault.DISCONNECT, Fault.CONTENT_FILTER):
            pieces = pieces[: fault.after_chunks]
            finish = fault.kind.value
        usage = {
            "prompt_tokens": request.prompt_tokens,
            "completion_tokens": count_text_tokens("".join(pieces), SERVER_ENCODING),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {"id": "chatcmpl-fake", "created": int(time.time()), "model": request.model}
        if not request.stream:
            message = {"role": "assistant", "content": "".join(pieces)}
            choice = {"index": 0, "message": message, "finish_reason": finish}
            body = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            return Response(json.dumps(body), 200, mimetype="application/json")
        options = request.json.get("stream_options") or {}
        send_usage = bool(options.get("include_usage")) and not config.omit_usage
        azure = request.path.startswith("/openai/")

        def chunk(delta: JSON, finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            body = {**head, "object": "chat.completion.chunk", "choices": [choice]}
            return f"data: {json.dumps(body)}\n\n"

        def events() -> Iterator[str]:
            start = time.monotonic()

            def paced(index: int) -> bool:
                """Wait until chunk `index` is due (a schedule, so one late chunk does not
                delay the rest); False when the server is stopping."""
                due = start + config.first_token_delay + index * config.chunk_delay
                return not self._stopping.wait(max(0.0, due - time.monotonic()))

            if azure:  # Azure first sends the prompt's filter results, with no choices
                yield f"data: {json.dumps({**head, 'choices': [], 'model': ''})}\n\n"
            yield chunk({"role": "assistant", "content": ""})
            first_token = None
            for index, piece in enumerate(pieces):
                if (index or config.first_token_delay) and not paced(index):
                    return
                yield chunk({"content": piece})
                first_token = first_token or time.monotonic() - arrived  # written by now
            if not request.is_title:
                timing = StreamTiming(
                    prompt=(user_texts or [""])[-1],
                    first_token=first_token or time.monotonic() - arrived,
                    finished=time.monotonic() - arrived,
                    chunks=len(pieces),
                )
                with self._lock:
                    self._timings.append(timing)
            if finish == Fault.DISCONNECT:
                raise ConnectionAbortedError("closed on purpose")  # werkzeug just hangs up
            yield chunk({}, finish)
            if send_usage:
                body = {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                yield f"data: {json.dumps(body)}\n\n"
            yield "data: [DONE]\n\n"

        return Response(events(), 200, mimetype="text/event-stream")


def encoded(vector: list[float], packed: bool) -> list[float] | str:
    """As OpenAI answers: a JSON list, or with `encoding_format: base64` little-endian float32."""
    return base64.b64encode(array.array("f", vector).tobytes()).decode() if packed else vector


def word_vector(text: str, width: int) -> list[float]:
    """The fake embedding: one count per word in a hashed dimension, L2-normalised."""
    vector = [0.0] * width
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % width] += 1.0
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return [x / norm for x in vector]
