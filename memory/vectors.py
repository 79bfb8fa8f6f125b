"""Embeddings as the memory stores them: the embedder's contract, and a vector's bytes.

A message's vector lives in its own hash, so retention, clear, delete and erase remove it
with the message. It is stored as float16 (384 dimensions: 768 bytes) in a field named after
the embedding space (`vec_<digest>`, indexed with INDEXMISSING, so the messages lacking it
are the backlog): vectors of two models never meet in one query, because each query names
the space it searches, and a model change simply makes every message "not yet embedded in
this space" until the background worker has re-embedded it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

VECTOR_DTYPE = np.float16
MAX_EMBED_CHARS = 2000  # the model reads ~256 tokens: more text only costs time


class EmbedderUnavailable(Exception):
    """The embedder cannot answer now (a remote server down, a model that failed to load);
    messages wait in the backlog and are embedded later."""


class Embedder(Protocol):
    """Turns texts into unit-length vectors of `dimensions` floats, in one space (`model`)."""

    @property
    def model(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, L2-normalised. Raises EmbedderUnavailable when it cannot."""
        ...


def space_of(embedder: Embedder) -> str:
    """The id of an embedder's vector space: model and dimension, as a tag-safe word."""
    readable = re.sub(r"[^0-9a-z]+", "_", embedder.model.lower()).strip("_")[:40]
    digest = hashlib.sha256(f"{embedder.model}|{embedder.dimensions}".encode()).hexdigest()[:8]
    return f"{readable}_{embedder.dimensions}_{digest}"


def vector_field(space: str) -> str:
    """The hash field (and index attribute) holding a message's vector in `space`: short,
    since every message hash repeats it (the space's digest alone)."""
    return f"vec_{space.rsplit('_', 1)[-1]}"


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def text_to_embed(content: str) -> str:
    """What of a message is embedded: its start, whitespace folded."""
    return " ".join(content[: MAX_EMBED_CHARS * 2].split())[:MAX_EMBED_CHARS]
