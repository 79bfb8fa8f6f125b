"""What went wrong with a model request, in words for the person chatting.

`str(error)` of every ModelError is safe to show anyone, in any page element: plain text in
which nothing the server said can act as Markdown or HTML (`plain_text`), and no location of
the model server (that is `error.location`, for admins only). A request the server refused as
longer than its context is a `ContextOverflow`, carrying the numbers the server gave.
"""

from __future__ import annotations

import math
import re
from typing import Any

import openai

TOO_LONG = (
    "The conversation is too long for the model: lower Length of chat history or turn on summary."
)
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_SERVER_TEXT_CHARS = 300


def plain_text(text: str) -> str:
    """Text from elsewhere (a model server, a file) for a Markdown page element: URLs
    dropped, control characters and every Markdown, HTML, LaTeX and link character made
    inert (backslash-escaped), bounded in length; it shows as the words it holds."""
    text = _URL.sub("(a link)", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())[:_SERVER_TEXT_CHARS]
    return _MARKDOWN.sub(r"\\\1", text)


class ModelError(Exception):
    """A reply could not be produced; `str(error)` is written for the person chatting (plain
    text, no server location). `location`: the model server's URL, for admins only."""

    def __init__(self, text: str, *, location: str | None = None) -> None:
        super().__init__(text)
        self.location = location


class ContextOverflow(ModelError):
    """The server refused the request as longer than its context: HTTP 400 with a
    context-length error, or (llama.cpp) HTTP 200 with an empty body. What the server said,
    when it said it: its context size (`context_tokens`) and its count of the prompt
    (`prompt_tokens`); None when it said nothing."""

    def __init__(
        self,
        text: str = TOO_LONG,
        *,
        context_tokens: int | None = None,
        prompt_tokens: int | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(text, location=location)
        self.context_tokens = context_tokens
        self.prompt_tokens = prompt_tokens

    @classmethod
    def from_error(cls, error: openai.BadRequestError, location: str) -> ContextOverflow:
        said = _server_numbers(error)
        return cls(
            context_tokens=said.get("context"), prompt_tokens=said.get("prompt"), location=location
        )

    def advice(self, has_history: bool) -> str:
        """What to tell the person once nothing smaller can be sent: lower the history
        length only when history was sent; else the prompt itself is too long."""
        if has_history:
            return TOO_LONG
        counted = f" (the model counts {self.prompt_tokens:,} tokens" if self.prompt_tokens else ""
        if counted and self.context_tokens:
            counted += f"; its context holds {self.context_tokens:,} with the reply"
        return (
            f"Your message is too long for the model{counted + ')' if counted else ''}: no "
            "earlier message was sent with it, so shorten the message itself."
        )


def server_reason(error: openai.APIStatusError) -> str:
    """What the server said was wrong, as plain text: the `message` of its JSON error body
    (OpenAI, Azure, vLLM, llama.cpp, Ollama), else its body's text; "" when it said nothing."""
    body = error.body
    if isinstance(body, dict):
        said = body.get("message") or body.get("detail") or body.get("error")
    else:
        said = body
    return plain_text(said).strip() if isinstance(said, str) else ""


def is_context_overflow(error: openai.BadRequestError) -> bool:
    """OpenAI's and vLLM's `context_length_exceeded`, llama.cpp's `exceed_context_size_error`,
    or words saying so."""
    body = error.body if isinstance(error.body, dict) else {}
    kind = f"{error.code} {body.get('type', '')} {error}".lower()
    return any(
        word in kind
        for word in ("context_length_exceeded", "exceed_context_size", "context length")
    ) or ("context size" in kind and "exceed" in kind)


def _server_numbers(error: openai.BadRequestError) -> dict[str, int]:
    """The context size and prompt count a server put in its refusal, as far as it did:
    llama.cpp's `n_ctx` / `n_prompt_tokens`, or OpenAI's and vLLM's words."""
    body: dict[str, Any] = error.body if isinstance(error.body, dict) else {}
    said: dict[str, int] = {}
    for name, field in (("context", "n_ctx"), ("prompt", "n_prompt_tokens")):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            said[name] = value
    text = str(body.get("message") or error)
    for name, pattern in (
        ("context", r"maximum context length is (\d+)"),
        ("prompt", r"(\d+) (?:tokens )?in the messages"),
        ("prompt", r"messages resulted in (\d+) tokens"),
    ):
        found = re.search(pattern, text)
        if found and name not in said:
            said[name] = int(found.group(1))
    return said


def retry_after_seconds(value: str | None, fallback: float) -> float:
    """A Retry-After header's wait in seconds: a finite, non-negative number, else (absent,
    an HTTP date, `nan`, `-5`, garbage) the fallback backoff."""
    try:
        seconds = float(value) if value is not None else fallback
    except ValueError:
        return fallback
    return seconds if math.isfinite(seconds) and seconds >= 0 else fallback
