"""Hybrid ranking of one user's messages: BM25 over the words, vectors by meaning, fused.

The words part is an OR of the text's content words: every word is cut where RediSearch's
tokenizer cuts stored content and kept only if it holds a letter or digit, so `_`, `(_)`,
`\\_` or any query syntax gives no word; RediSearch's stopwords are dropped first (an OR with
two stopwords inside a field query crashes RediSearch 2.10.5, and a query of stopwords alone
would match everything). Text with no content word finds nothing.

Fusion (measured on LoCoMo, bench/README.md): each list's scores scaled to 0..1 (BM25 by its
best, cosine similarity min-max over the candidates), averaged; then each candidate gains a
share of the score of a candidate next to it in the same conversation (evidence comes in
runs of turns). Vector candidates below a similarity floor are not candidates at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from redis.commands.search.query import Query
from redisvl.utils.token_escaper import TokenEscaper

from memory.connection import RedisClient
from memory.vectors import VECTOR_DTYPE

MAX_QUERY_WORDS = 20
CANDIDATES = 50  # per list
WORDS_WEIGHT = 0.5
NEIGHBOUR_SHARE = 0.3
MIN_SIMILARITY = 0.25  # cosine: below it a message is not "about" the query
# RediSearch's default stopword list (the index is created with it).
_DEFAULT_STOPWORDS = (
    "a is the an and are as at be but by for if in into it no not of on or such that their "
    "then there these they this to was will with"
)
STOPWORDS = frozenset(_DEFAULT_STOPWORDS.split(" "))
_WORD = re.compile(r"[^\W_]+(?:_+[^\W_]+)*")
_ESCAPER = TokenEscaper()
_FIELDS = ("content", "session_tag", "timestamp", "role", "created_at", "token_count")


@dataclass(frozen=True)
class Candidate:
    """One message as ranked: its key, where it lives, what it says, its fused score."""

    key: str
    session_tag: str
    seq: int
    role: str
    content: str
    created_at: float
    token_count: int
    score: float = 0.0


def content_words(text: str) -> list[str]:
    """The words of `text` a words query searches: lower-cased, no stopwords, at most 20."""
    words = [word.casefold() for word in _WORD.findall(text)]
    unique = dict.fromkeys(word for word in words if word not in STOPWORDS)
    return list(unique)[:MAX_QUERY_WORDS]


def words_query(scope: str, words: Sequence[str]) -> str:
    """`scope` (a tag filter) and any of `words` in `content`. Every word is escaped and none
    is a stopword, so the OR never takes the shape that crashes RediSearch 2.10.5."""
    alternatives = " | ".join(_ESCAPER.escape(word) for word in words)
    return f"{scope} @content:({alternatives})"


def user_scope(tag: str) -> str:
    """Every message of the user (legacy ones carry only the user tag as session tag)."""
    return f"(@user_tag:{{{tag}}} | @session_tag:{{{tag}}})"


def conversation_scope(session_tag: str) -> str:
    return f"@session_tag:{{{_ESCAPER.escape(session_tag)}}}"


class HybridSearch:
    def __init__(self, redis_client: RedisClient, index_name: str) -> None:
        self._redis = redis_client
        self._index = index_name

    def ranked(
        self,
        scope: str,
        text: str,
        *,
        vector: np.ndarray | None = None,
        vector_field: str | None = None,
        limit: int = 10,
        exclude: Iterable[str] = (),
    ) -> list[Candidate]:
        """The best `limit` messages in `scope` for `text`, best first, none of `exclude`."""
        words = content_words(text)
        if not words or not limit:
            return []
        lexical = self._words(scope, words)
        semantic: dict[str, Candidate] = {}
        if vector is not None and vector_field is not None:
            semantic = self._vectors(scope, vector, vector_field)
        return _best(_smoothed(_fused(lexical, semantic)), limit, exclude)

    def by_words(self, scope: str, text: str, limit: int) -> list[Candidate]:
        """BM25 alone (the benchmark's "words" method)."""
        words = content_words(text)
        return _best(self._words(scope, words), limit) if words else []

    def by_vector(
        self, scope: str, vector: np.ndarray, vector_field: str, limit: int
    ) -> list[Candidate]:
        """Nearest in meaning alone (the benchmark's "vectors" method)."""
        return _best(self._vectors(scope, vector, vector_field), limit)

    def _words(self, scope: str, words: list[str]) -> dict[str, Candidate]:
        query = (
            Query(words_query(scope, words))
            .scorer("BM25")
            .with_scores()
            .return_fields(*_FIELDS)
            .paging(0, CANDIDATES)
            .dialect(2)
        )
        found = self._redis.ft(self._index).search(query)
        return {doc.id: _candidate(doc, float(doc.score)) for doc in found.docs}

    def _vectors(self, scope: str, vector: np.ndarray, field: str) -> dict[str, Candidate]:
        query = (
            Query(f"({scope})=>[KNN {CANDIDATES} @{field} $vector AS vector_distance]")
            .sort_by("vector_distance")
            .return_fields(*_FIELDS, "vector_distance")
            .paging(0, CANDIDATES)
            .dialect(2)
        )
        params: dict[str, str | int | float | bytes] = {
            "vector": np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()
        }
        found = self._redis.ft(self._index).search(query, query_params=params)
        hits = {}
        for doc in found.docs:
            similarity = 1 - float(doc.vector_distance)
            if similarity >= MIN_SIMILARITY:
                hits[doc.id] = _candidate(doc, similarity)
        return hits


def _best(
    candidates: dict[str, Candidate], limit: int, exclude: Iterable[str] = ()
) -> list[Candidate]:
    skip = set(exclude)
    ranked = sorted(candidates.values(), key=lambda c: (-c.score, -c.seq))
    return [candidate for candidate in ranked if candidate.key not in skip][:limit]


def _candidate(doc: object, score: float) -> Candidate:
    def field(name: str) -> str:
        return str(getattr(doc, name, "") or "")

    return Candidate(
        key=str(getattr(doc, "id", "")),
        session_tag=field("session_tag"),
        seq=int(field("timestamp") or 0),
        role=field("role"),
        content=field("content"),
        created_at=float(field("created_at") or 0),
        token_count=int(field("token_count") or 0),
        score=score,
    )


def _fused(lexical: dict[str, Candidate], semantic: dict[str, Candidate]) -> dict[str, Candidate]:
    scores: dict[str, float] = {}
    best_words = max((c.score for c in lexical.values()), default=0.0) or 1.0
    for key, candidate in lexical.items():
        scores[key] = WORDS_WEIGHT * candidate.score / best_words
    if semantic:
        low = min(c.score for c in semantic.values())
        span = (max(c.score for c in semantic.values()) - low) or 1.0
        for key, candidate in semantic.items():
            part = (1 - WORDS_WEIGHT) * (candidate.score - low) / span
            scores[key] = scores.get(key, 0.0) + part
    everything = semantic | lexical
    return {key: replace(everything[key], score=score) for key, score in scores.items()}


def _smoothed(candidates: dict[str, Candidate]) -> dict[str, Candidate]:
    """Each candidate gains NEIGHBOUR_SHARE of the score of each candidate right before or
    after it in the same conversation (consecutive sequence numbers)."""
    at = {(c.session_tag, c.seq): c.score for c in candidates.values()}
    result = {}
    for key, c in candidates.items():
        near = at.get((c.session_tag, c.seq - 1), 0.0) + at.get((c.session_tag, c.seq + 1), 0.0)
        result[key] = replace(c, score=c.score + NEIGHBOUR_SHARE * near)
    return result
