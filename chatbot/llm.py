"""The chat model: which provider, which credential, and one streaming call.

Provider choice (from the environment, here and nowhere else):
- `AZURE_OPENAI_ENDPOINT` set: Azure OpenAI, with `AZURE_OPENAI_API_KEY` if given, otherwise
  keyless through Microsoft Entra ID;
- else `OPENAI_BASE_URL` or `OPENAI_API_KEY` set: OpenAI or any OpenAI-compatible server;
- else offline: a built-in responder, plainly labelled, so every memory feature still works.

Time limits: `LLM_TIMEOUT_SECONDS` bounds each read (the longest the model may stay silent);
`LLM_REPLY_DEADLINE_SECONDS` bounds the whole reply, every attempt and retry wait included.
Retries (429, 5xx, failed connections) are ours, not the openai client's, so that a timeout is
never retried: each retry would make the server generate the whole reply again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Protocol

import openai
from azure.core.credentials import TokenCredential
from azure.identity import (
    AzureCliCredential,
    AzureDeveloperCliCredential,
    ChainedTokenCredential,
    ManagedIdentityCredential,
    get_bearer_token_provider,
)

from chatbot.config import ConfigError, Environment
from chatbot.model_errors import (
    TOO_LONG,
    ContextOverflow,
    ModelError,
    is_context_overflow,
    plain_text,
    retry_after_seconds,
    server_reason,
)
from memory import Usage
from memory.tokens import ENCODINGS, TokenCounter

if TYPE_CHECKING:
    import httpx2

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
LOST = "The connection to the model was lost before the reply was complete."
UNREADABLE = "The model server sent a reply the app could not read (a malformed event)."


class Provider(StrEnum):
    AZURE_OPENAI = "azure-openai"
    OPENAI_COMPATIBLE = "openai-compatible"
    OFFLINE = "offline"


@dataclass(frozen=True)
class ModelConfig:
    provider: Provider
    model: str
    tokenizer_model: str
    endpoint: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 2
    deadline_seconds: float = 180.0
    max_tokens: int = 1024
    encoding: str = ""  # LLM_TOKENIZER: the model's own encoding, when known
    strict_roles: bool = False  # LLM_STRICT_ROLES: the server needs a prompt first, alternating

    @property
    def url(self) -> str:
        return self.endpoint or "https://api.openai.com/v1"

    @property
    def keyless(self) -> bool:
        return self.provider is Provider.AZURE_OPENAI and not self.api_key

    def describe(self) -> str:
        if self.provider is Provider.AZURE_OPENAI:
            auth = "key" if self.api_key else "Microsoft Entra ID"
            return f"Azure OpenAI · {self.model} ({auth})"
        if self.provider is Provider.OPENAI_COMPATIBLE:
            return f"{self.model} at {self.endpoint or 'api.openai.com'}"
        return "Offline responder (no model configured)"

    @classmethod
    def from_env(cls, env: Environment) -> ModelConfig:
        encoding = env.get("LLM_TOKENIZER")
        if encoding and encoding not in ENCODINGS:
            raise ConfigError(f"LLM_TOKENIZER must be one of {', '.join(ENCODINGS)}: {encoding!r}")
        provider = cls._provider_from_env(env)
        return dataclasses.replace(
            provider,
            strict_roles=_strict_roles(env, provider),
            timeout_seconds=float(env.get_int("LLM_TIMEOUT_SECONDS", minimum=1)),
            max_retries=env.get_int("LLM_MAX_RETRIES", minimum=0),
            deadline_seconds=float(env.get_int("LLM_REPLY_DEADLINE_SECONDS", minimum=1)),
            max_tokens=env.get_int("LLM_MAX_TOKENS", minimum=1),
        )

    @classmethod
    def _provider_from_env(cls, env: Environment) -> ModelConfig:
        if env.is_set("AZURE_OPENAI_ENDPOINT"):
            return cls(
                provider=Provider.AZURE_OPENAI,
                model=env.get("AZURE_OPENAI_DEPLOYMENT"),
                tokenizer_model=env.get("AZURE_OPENAI_MODEL"),
                endpoint=env.get("AZURE_OPENAI_ENDPOINT"),
                api_key=env.get("AZURE_OPENAI_API_KEY") or None,
                api_version=env.get("AZURE_OPENAI_API_VERSION"),
            )
        if env.is_set("OPENAI_BASE_URL") or env.is_set("OPENAI_API_KEY"):
            return cls(
                provider=Provider.OPENAI_COMPATIBLE,
                model=env.get("OPENAI_MODEL"),
                tokenizer_model=env.get("OPENAI_MODEL"),
                endpoint=env.get("OPENAI_BASE_URL") or None,
                api_key=env.get("OPENAI_API_KEY") or None,
                encoding=env.get("LLM_TOKENIZER"),
            )
        return cls(provider=Provider.OFFLINE, model="offline", tokenizer_model="gpt-4o")


def _strict_roles(env: Environment, config: ModelConfig) -> bool:
    """LLM_STRICT_ROLES, or by provider: OpenAI and Azure OpenAI accept a request that starts
    with a reply or holds two prompts in a row; other servers' chat templates (llama.cpp,
    vLLM with Mistral or Gemma templates) may refuse one, so they get strict alternation."""
    if env.get("LLM_STRICT_ROLES").lower() != "auto":
        return env.get_bool("LLM_STRICT_ROLES")
    hosted = config.provider is Provider.AZURE_OPENAI or (
        config.provider is Provider.OPENAI_COMPATIBLE and "api.openai.com" in config.url
    )
    return config.provider is not Provider.OFFLINE and not hosted


def create_azure_credential(env: Environment) -> TokenCredential:
    """The app's managed identity in Azure (AZURE_CLIENT_ID is set only there), else the
    developer's own `azd auth login` / `az login`."""
    if env.is_set("AZURE_CLIENT_ID"):
        return ManagedIdentityCredential(client_id=env.get("AZURE_CLIENT_ID"))
    tenant_id = env.get("AZURE_TENANT_ID")
    return ChainedTokenCredential(
        AzureDeveloperCliCredential(tenant_id=tenant_id, process_timeout=30),
        AzureCliCredential(tenant_id=tenant_id, process_timeout=30),
    )


def create_openai_client(config: ModelConfig, credential: TokenCredential | None) -> openai.OpenAI:
    """The openai client for the configured provider; retries are `OpenAIChatModel`'s."""
    if config.provider is Provider.AZURE_OPENAI:
        if not config.endpoint:
            raise ValueError("Azure OpenAI needs AZURE_OPENAI_ENDPOINT.")
        if config.api_key:
            return openai.AzureOpenAI(
                azure_endpoint=config.endpoint,
                api_version=config.api_version,
                api_key=config.api_key,
                timeout=config.timeout_seconds,
                max_retries=0,
            )
        if credential is None:
            raise ValueError("Keyless Azure OpenAI needs an Azure credential.")
        return openai.AzureOpenAI(
            azure_endpoint=config.endpoint,
            api_version=config.api_version,
            azure_ad_token_provider=get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE),
            timeout=config.timeout_seconds,
            max_retries=0,
        )
    if config.provider is Provider.OPENAI_COMPATIBLE:
        return openai.OpenAI(
            base_url=config.endpoint,
            api_key=config.api_key or "not-needed",
            timeout=config.timeout_seconds,
            max_retries=0,
        )
    raise ValueError("The offline responder has no OpenAI client.")


@dataclass
class Attempts:
    """How long one reply has taken so far, over how many attempts."""

    config: ModelConfig
    started: float = dataclasses.field(default_factory=time.monotonic)
    count: int = 0

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started

    @property
    def remaining(self) -> float:
        return self.config.deadline_seconds - self.waited

    def describe(self) -> str:
        plural = "s" if self.count != 1 else ""
        return f"waited {self.waited:.0f} s in total over {self.count} attempt{plural}"

    def past_deadline(self) -> ModelError:
        return ModelError(
            f"The reply took longer than {self.config.deadline_seconds:.0f} seconds, the limit "
            f"per reply ({self.describe()}). Nothing was stored.",
            location=self.config.url,
        )


def _explain(error: Exception, attempts: Attempts, streaming: bool) -> ModelError:
    """The error in words for the person chatting: no server location (that is the error's
    `location`, for admins), and whatever the server said made plain text."""
    config = attempts.config
    retried = f", {attempts.describe()}" if attempts.count > 1 else ""
    if isinstance(error, openai.BadRequestError) and is_context_overflow(error):
        return ContextOverflow.from_error(error, config.url)
    if isinstance(error, openai.APITimeoutError):
        text = (
            f"The model did not answer within {config.timeout_seconds:.0f} seconds "
            f"({attempts.describe()})."
        )
    elif isinstance(error, openai.RateLimitError):
        text = f"The model is rate-limited right now (HTTP 429{retried})."
    elif isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        text = (
            f"The app is not allowed to call the model (HTTP {error.status_code}). "
            "Check the key or the identity's role assignment."
        )
    elif isinstance(error, openai.BadRequestError) and error.code == "content_filter":
        text = "The prompt was blocked by the content filter."
    elif isinstance(error, openai.APIStatusError):
        text = f"The model service failed (HTTP {error.status_code}{retried})."
    elif isinstance(error, openai.APIConnectionError) and streaming:
        text = LOST
    elif isinstance(error, openai.APIConnectionError):
        text = f"Could not reach the model ({attempts.describe()})."
    elif isinstance(error, openai.APIError):
        text = f"The model service reported an error: {plain_text(error.message)}"
    else:
        text = f"The model call failed ({type(error).__name__})."
    if isinstance(error, openai.APIStatusError) and error.code != "content_filter":
        said = server_reason(error)
        text = f"{text} The server said: {said}" if said else text
    return ModelError(text, location=config.url)


def _retry_wait(error: openai.APIError, attempt: int) -> float | None:
    """Seconds to wait before retrying, or None when retrying cannot help (or costs a whole
    generation, as after a timeout)."""
    backoff = min(0.5 * 2 ** (attempt - 1), 8.0)
    if isinstance(error, openai.RateLimitError):
        return retry_after_seconds(error.response.headers.get("retry-after"), backoff)
    if isinstance(error, openai.APIStatusError):
        return backoff if error.status_code >= 500 else None
    if isinstance(error, openai.APITimeoutError):
        return None
    return backoff if isinstance(error, openai.APIConnectionError) else None


class ReplyStream:
    """Iterate for the reply's text as it arrives; afterwards `text`, `usage`, `complete`.

    `chunks` are the server's events as parsed JSON (chat.completion.chunk objects): reading
    them as plain dicts, not as the openai package's models, is what keeps one process able to
    stream for many people at once (building a model per token was a third of the app's
    Python time at 100 users; bench/README.md "Load through the websocket").
    Skips Azure's chunks with empty `choices`, records the usage chunk when the server sends
    one, and raises ModelError for a filtered, lost, unreadable or over-deadline reply, so a
    partial reply is never mistaken for a complete one. A reply cut by its length limit is
    complete and `cut_off`. The deadline holds even while the server sends nothing but SSE
    keep-alive comments (which reach no chunk): a timer closes the stream when it passes.
    `processed`: the server took the request in (it began answering), so the prompt counts.
    """

    def __init__(
        self,
        chunks: Iterator[object],
        attempts: Attempts,
        close: Callable[[], object] | None = None,
        hang_up: Callable[[], object] | None = None,
    ) -> None:
        self._chunks = chunks
        self._attempts = attempts
        self._close = close
        self._hang_up = hang_up or close
        self._expired = threading.Event()
        self._parts: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.processed = False

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def complete(self) -> bool:
        return self.finish_reason in {"stop", "length"}

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"

    def __iter__(self) -> Iterator[str]:
        watchdog = threading.Timer(max(self._attempts.remaining, 0.0), self._expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            yield from self._read()
        except (openai.APIError, ValueError) as error:
            if self._expired.is_set():
                raise self._attempts.past_deadline() from error
            if isinstance(error, openai.APIError):
                raise _explain(error, self._attempts, streaming=True) from error
            raise ModelError(UNREADABLE, location=self._attempts.config.url) from error
        finally:
            watchdog.cancel()
        if self._expired.is_set():
            raise self._attempts.past_deadline()
        where = self._attempts.config.url
        if not self.processed:  # what a server answers when the prompt overflows its context
            raise ContextOverflow(f"{TOO_LONG} (The model sent an empty reply.)", location=where)
        if self.finish_reason == "content_filter":
            raise ModelError("The reply was stopped by the content filter.", location=where)
        if not self.complete:
            raise ModelError(LOST, location=where)

    def _read(self) -> Iterator[str]:
        for chunk in self._chunks:
            self.processed = True
            if self._attempts.remaining < 0:
                raise self._attempts.past_deadline()
            if not isinstance(chunk, dict):
                raise ValueError(f"a chunk that is not a JSON object: {chunk!r:.80}")
            if usage := chunk.get("usage"):
                self.usage = Usage(
                    prompt_tokens=int(usage["prompt_tokens"]),
                    completion_tokens=int(usage["completion_tokens"]),
                )
            for choice in chunk.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    text = str(content)
                    self._parts.append(text)
                    yield text
                if choice.get("finish_reason"):
                    self.finish_reason = str(choice["finish_reason"])

    def hang_up(self) -> None:
        """Hang up on the model now, from any thread (more than once is fine): the read in
        progress ends at once, even while the model is silent, and the server stops generating
        what nobody will read. The reading thread still closes the stream (close())."""
        if self._hang_up is not None:
            with contextlib.suppress(Exception):
                self._hang_up()

    def close(self) -> None:
        """Hang up and release the stream: by the thread that reads it, or once none does."""
        self.hang_up()
        if self._close is not None:
            with contextlib.suppress(Exception):
                self._close()

    def _expire(self) -> None:
        """The reply's deadline passed: stop reading (the read in progress ends at once)."""
        self._expired.set()
        self.hang_up()


def tokens_spent(reply: Reply | None, prompt_tokens: int, counter: TokenCounter) -> int:
    """What one model request cost, for the user's limits, complete or not: the server's
    usage when it reported one; else, once the server took the request in, the prompt (the
    app's count) plus what it produced so far; 0 when it answered nothing (refused, or never
    reached: `reply` None)."""
    if reply is None:
        return 0
    if reply.usage is not None:
        return reply.usage.prompt_tokens + reply.usage.completion_tokens
    if not reply.processed:
        return 0
    return prompt_tokens + counter.count_text(reply.text)


class Reply(Protocol):
    """A reply being streamed: iterate for text; then read the outcome. `processed`: the
    server took the request in (it began answering), so its prompt was paid for."""

    usage: Usage | None
    processed: bool

    def __iter__(self) -> Iterator[str]: ...

    @property
    def text(self) -> str: ...

    @property
    def complete(self) -> bool: ...

    @property
    def cut_off(self) -> bool: ...

    def hang_up(self) -> None: ...

    def close(self) -> None: ...


class ChatModel(Protocol):
    config: ModelConfig

    def stream(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> Reply: ...


@dataclass
class OpenAIChatModel:
    config: ModelConfig
    client: openai.OpenAI

    def stream(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> ReplyStream:
        """Start a streamed reply of at most `max_tokens` (default LLM_MAX_TOKENS), retrying
        what is worth retrying while the reply's deadline allows."""
        attempts = Attempts(self.config)
        while True:
            attempts.count += 1
            try:
                chunks = self.client.post(
                    "/chat/completions",
                    body={
                        "model": self.config.model,
                        "messages": messages,
                        "max_tokens": max_tokens or self.config.max_tokens,
                        "stream": True,
                        "stream_options": {"include_usage": True},
                    },
                    options={
                        "timeout": max(0.1, min(self.config.timeout_seconds, attempts.remaining))
                    },
                    cast_to=object,  # each event's JSON as it is (see ReplyStream)
                    stream=True,
                    stream_cls=openai.Stream[object],
                )
            except openai.APIError as error:
                wait = _retry_wait(error, attempts.count)
                if (
                    wait is None
                    or attempts.count > self.config.max_retries
                    or wait >= attempts.remaining
                ):
                    raise _explain(error, attempts, streaming=False) from error
                time.sleep(wait)
                continue
            hang_up = partial(shut_down, chunks.response)
            return ReplyStream(iter(chunks), attempts, close=chunks.close, hang_up=hang_up)


def shut_down(response: httpx2.Response) -> None:
    """End a streaming response's connection from any thread, at once: shut its socket down.
    The read blocked on it returns (end of stream) and the server sees the client leave.

    Closing it instead (`response.close()`) from a thread other than the reader's does not
    wake that read: it waits for the server's next bytes, and once the socket's file number is
    reused by the next connection the process opens (a Redis one, say) it waits on that one,
    silent, until the read timeout (LLM_TIMEOUT_SECONDS): Stop then hung the page for a
    minute. A response already read to its end (its connection back in the pool) is left
    alone; without a socket to reach (another transport), the response is closed."""
    if response.is_closed:
        return
    network = response.extensions.get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if not isinstance(sock, socket.socket):
        response.close()
        return
    with contextlib.suppress(OSError):  # already shut down, or closed by its reader
        # the plain socket's call: an SSLSocket's own shutdown() resets its TLS state, which
        # the reading thread is using
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
