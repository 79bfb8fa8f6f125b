"""The model server's own token count, where the server can tell it.

An OpenAI-compatible server runs a model whose tokenizer the app can only approximate (a real
llama.cpp server counted 1.0x-1.35x the app's o200k estimate). Some servers say their count:
llama.cpp (`POST /apply-template` renders the chat template, `POST /tokenize` counts) and
llama-cpp-python (`POST /extras/tokenize/count`). Which one a server has is probed once, at
the first count, and kept; a server with neither is never asked again. A failed count is None:
the app then goes by its own estimate and margin.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai

from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_REPLY_PRIMER

_TIMEOUT_SECONDS = 5.0


class Endpoint(StrEnum):
    LLAMA_CPP = "/tokenize"
    LLAMA_CPP_PYTHON = "/extras/tokenize/count"


def server_root(base_url: str) -> str:
    """`http://host:8080/v1` -> `http://host:8080`: where the tokenize endpoints live."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return urlunsplit(parts._replace(path=path, query="", fragment="")).rstrip("/")


class ServerTokenCounter:
    """Counts as the server does, through the endpoint it has (see the module docstring)."""

    def __init__(self, client: openai.OpenAI, base_url: str) -> None:
        self._client = client.with_options(max_retries=0, timeout=_TIMEOUT_SECONDS)
        self._root = server_root(base_url)
        self._lock = threading.Lock()
        self._probed = False
        self._endpoint: Endpoint | None = None

    @property
    def endpoint(self) -> Endpoint | None:
        """The endpoint found (probing if not done yet), or None."""
        with self._lock:
            if not self._probed:
                self._endpoint = self._probe()
                self._probed = True
            return self._endpoint

    def count_text(self, text: str) -> int | None:
        endpoint = self.endpoint
        if endpoint is Endpoint.LLAMA_CPP:
            tokens = self._post("/tokenize", {"content": text}).get("tokens")
            return len(tokens) if isinstance(tokens, list) else None
        if endpoint is Endpoint.LLAMA_CPP_PYTHON:
            count = self._post("/extras/tokenize/count", {"input": text}).get("count")
            return count if isinstance(count, int) else None
        return None

    def count_request(self, messages: Sequence[Mapping[str, str]]) -> int | None:
        """A chat request's prompt as the server counts it: its chat template applied, where
        the server can (llama.cpp), else its messages counted with the app's per-message
        overhead."""
        if self.endpoint is Endpoint.LLAMA_CPP:
            prompt = self._post("/apply-template", {"messages": list(messages)}).get("prompt")
            if isinstance(prompt, str) and prompt:
                return self.count_text(prompt)
        text = "\n".join(str(m.get("content", "")) for m in messages)
        counted = self.count_text(text)
        if counted is None:
            return None
        return counted + TOKENS_PER_MESSAGE * len(messages) + TOKENS_REPLY_PRIMER

    def _probe(self) -> Endpoint | None:
        if self._post("/tokenize", {"content": "probe"}).get("tokens") is not None:
            return Endpoint.LLAMA_CPP
        if self._post("/extras/tokenize/count", {"input": "probe"}).get("count") is not None:
            return Endpoint.LLAMA_CPP_PYTHON
        return None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The endpoint's JSON answer, or {} for any failure (absent, down, not JSON)."""
        try:
            answer = self._client.post(self._root + path, cast_to=object, body=body)
        except (openai.APIError, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}
