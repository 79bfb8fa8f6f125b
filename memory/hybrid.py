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

Across conversations, each candidate also gains a share of its conversation's own words score:
BM25 over conversations, a word's frequency being how many of the conversation's messages hold
it (`FT.AGGREGATE ... GROUPBY @session_tag` per word, so RediSearch's stemming applies; the
rarest words within a bounded number of messages), scaled by the best conversation. A
question's words are often spread over the turns of the conversation that answers it rather
than in one turn. And a message written in a period the question names ("in June", "on October
13, 2023": memory/dates.py) gains a fixed share. A ranking takes two pipelined round trips (one
within a conversation).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from redisvl.utils.token_escaper import TokenEscaper

from memory.connection import RedisClient
from memory.dates import Period, named_period
from memory.vectors import VECTOR_DTYPE

MAX_QUERY_WORDS = 20
CANDIDATES = 50  # per list
WORDS_WEIGHT = 0.5
NEIGHBOUR_SHARE = 0.3
MIN_SIMILARITY = 0.25  # cosine: below it a message is not "about" the query
CONVERSATION_SHARE = 0.3  # of the conversation's words score (the best conversation: 1)
PERIOD_SHARE = 0.6  # for a message written in the period the question names
CONVERSATION_WORDS_BUDGET = 100  # messages grouped by conversation per ranking, at most
_BM25_K1 = 1.2  # term-frequency saturation of the conversation-level BM25 (no length norm)
# RediSearch's default stopword list (the index is created with it).
_DEFAULT_STOPWORDS = (
    "a is the an and are as at be but by for if in into it no not of on or such that their "
    "then there these they this to was will with"
)
STOPWORDS = frozenset(_DEFAULT_STOPWORDS.split(" "))
_WORD = re.compile(r"[^\W_]+(?:_+[^\W_]+)*")
_ESCAPER = TokenEscaper()
_FIELDS = ("content", "session_tag", "timestamp", "role", "created_at", "token_count")
_RETURN = ("RETURN", len(_FIELDS), *_FIELDS)


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
        conversations_key: str | None = None,
        dated: bool = False,
    ) -> list[Candidate]:
        """The best `limit` messages in `scope` for `text`, best first, none of `exclude`.
        `conversations_key` (the user's conversations, a sorted set) asks for the
        conversation-level words score, for a scope spanning several conversations;
        `dated` for the boost of messages written in a period `text` names."""
        words = content_words(text)
        if not words or not limit:
            return []
        pipe = self._redis.pipeline(transaction=False)
        pipe.execute_command("FT.SEARCH", self._index, *_words_args(scope, words))
        if vector is not None and vector_field is not None:
            pipe.execute_command(
                "FT.SEARCH", self._index, *_vector_args(scope, vector, vector_field)
            )
        if conversations_key is not None:
            for word in words:
                pipe.execute_command("FT.SEARCH", self._index, *_count_args(scope, word))
            pipe.zcard(conversations_key)
        replies = iter(pipe.execute())
        lexical = _words_hits(next(replies))
        semantic = _vector_hits(next(replies)) if vector is not None and vector_field else {}
        fused = _smoothed(_fused(lexical, semantic))
        if conversations_key is not None:
            holding = {word: _total(next(replies)) for word in words}
            conversations = int(next(replies))
            counts = self._conversation_counts(scope, _within_budget(holding))
            fused = _with_conversations(fused, counts, conversations)
        if dated and (period := named_period(text)) is not None:
            fused = _with_period(fused, period)
        return _best(fused, limit, exclude)

    def by_words(self, scope: str, text: str, limit: int) -> list[Candidate]:
        """BM25 alone (the benchmark's "words" method)."""
        words = content_words(text)
        return _best(self._words(scope, words), limit) if words else []

    def by_vector(
        self, scope: str, vector: np.ndarray, vector_field: str, limit: int
    ) -> list[Candidate]:
        """Nearest in meaning alone (the benchmark's "vectors" method)."""
        return _best(self._vectors(scope, vector, vector_field), limit)

    def _conversation_counts(self, scope: str, words: list[str]) -> list[dict[str, int]]:
        """For each word, how many messages of each conversation in `scope` hold it."""
        pipe = self._redis.pipeline(transaction=False)
        for word in words:
            pipe.execute_command("FT.AGGREGATE", self._index, *_per_conversation(scope, word))
        return [_groups(reply) for reply in pipe.execute()] if words else []

    def _words(self, scope: str, words: list[str]) -> dict[str, Candidate]:
        reply = self._redis.execute_command("FT.SEARCH", self._index, *_words_args(scope, words))
        return _words_hits(reply)

    def _vectors(self, scope: str, vector: np.ndarray, field: str) -> dict[str, Candidate]:
        reply = self._redis.execute_command(
            "FT.SEARCH", self._index, *_vector_args(scope, vector, field)
        )
        return _vector_hits(reply)


def _words_args(scope: str, words: list[str]) -> tuple[object, ...]:
    return (
        words_query(scope, words), "SCORER", "BM25", "WITHSCORES", *_RETURN,
        "LIMIT", 0, CANDIDATES, "DIALECT", 2,
    )  # fmt: skip


def _vector_args(scope: str, vector: np.ndarray, field: str) -> tuple[object, ...]:
    knn = f"({scope})=>[KNN {CANDIDATES} @{field} $vector AS vector_distance]"
    blob = np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()
    return (
        knn, "PARAMS", 2, "vector", blob, "SORTBY", "vector_distance",
        "RETURN", len(_FIELDS) + 1, *_FIELDS, "vector_distance",
        "LIMIT", 0, CANDIDATES, "DIALECT", 2,
    )  # fmt: skip


def _count_args(scope: str, word: str) -> tuple[object, ...]:
    """FT.SEARCH arguments counting the messages in `scope` that hold `word` (none loaded)."""
    return (f"{scope} @content:{_ESCAPER.escape(word)}", "LIMIT", 0, 0, "DIALECT", 2)


def _total(reply: Any) -> int:
    return int(reply["total_results"] if isinstance(reply, dict) else reply[0])


def _within_budget(holding: dict[str, int]) -> list[str]:
    """The words whose per-conversation counts are worth their cost: the rarest first, while
    the messages they match add up to at most CONVERSATION_WORDS_BUDGET. Grouping costs
    ~5 us per matching message (RediSearch reads each one's conversation from its hash), so
    a word in thousands of messages would cost more than the rest of the ranking; and such a
    word is in most conversations, where its conversation-level weight (idf) is near 0."""
    chosen, spent = [], 0
    for word, matches in sorted(holding.items(), key=lambda item: item[1]):
        if matches and spent + matches <= CONVERSATION_WORDS_BUDGET:
            chosen.append(word)
            spent += matches
    return chosen


def _per_conversation(scope: str, word: str) -> tuple[object, ...]:
    """FT.AGGREGATE arguments: how many messages of each conversation in `scope` hold `word`
    (one word: never an OR, so never the shape that crashes RediSearch 2.10.5)."""
    return (
        f"{scope} @content:{_ESCAPER.escape(word)}", "GROUPBY", 1, "@session_tag",
        "REDUCE", "COUNT", 0, "AS", "n", "DIALECT", 2,
    )  # fmt: skip


def _words_hits(reply: Any) -> dict[str, Candidate]:
    return {key: _candidate(key, fields, score) for key, score, fields in _rows(reply, True)}


def _vector_hits(reply: Any) -> dict[str, Candidate]:
    hits = {}
    for key, _, fields in _rows(reply, False):
        similarity = 1 - float(fields.get("vector_distance") or 1)
        if similarity >= MIN_SIMILARITY:
            hits[key] = _candidate(key, fields, similarity)
    return hits


def _rows(reply: Any, with_scores: bool) -> list[tuple[str, float, dict[str, str]]]:
    """(id, score, fields) of each result of an FT.SEARCH reply, RESP3 or RESP2. The raw
    reply is read here: redis-py's own search result costs ~1 ms per 50 documents to build
    (measured), the queries ~1 ms."""
    if isinstance(reply, dict):  # RESP3
        return [
            (str(row["id"]), float(row.get("score") or 0), _strings(row["extra_attributes"]))
            for row in reply.get("results", [])
        ]
    step = 3 if with_scores else 2
    rows = []
    for at in range(1, len(reply), step):
        score = float(reply[at + 1]) if with_scores else 0.0
        flat = reply[at + step - 1]
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        rows.append((str(reply[at]), score, _strings(fields)))
    return rows


def _groups(reply: Any) -> dict[str, int]:
    """{session tag: messages holding the word} from an FT.AGGREGATE reply, RESP3 or RESP2."""
    if isinstance(reply, dict):
        groups = [_strings(row["extra_attributes"]) for row in reply.get("results", [])]
    else:
        groups = [_strings(dict(zip(row[::2], row[1::2], strict=True))) for row in reply[1:]]
    return {group["session_tag"]: int(group["n"]) for group in groups if "session_tag" in group}


def _strings(fields: dict[Any, Any]) -> dict[str, str]:
    return {str(name): str(value) for name, value in fields.items()}


def _best(
    candidates: dict[str, Candidate], limit: int, exclude: Iterable[str] = ()
) -> list[Candidate]:
    skip = set(exclude)
    ranked = sorted(candidates.values(), key=lambda c: (-c.score, -c.seq))
    return [candidate for candidate in ranked if candidate.key not in skip][:limit]


def _candidate(key: str, fields: dict[str, str], score: float) -> Candidate:
    return Candidate(
        key=key,
        session_tag=fields.get("session_tag", ""),
        seq=int(fields.get("timestamp") or 0),
        role=fields.get("role", ""),
        content=fields.get("content", ""),
        created_at=float(fields.get("created_at") or 0),
        token_count=int(fields.get("token_count") or 0),
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


def _with_conversations(
    candidates: dict[str, Candidate], counts: list[dict[str, int]], conversations: int
) -> dict[str, Candidate]:
    """Each candidate gains CONVERSATION_SHARE of its conversation's words score (BM25 over
    conversations, each word's count in `counts`), scaled by the best conversation's."""
    if not counts:
        return candidates
    scores: dict[str, float] = defaultdict(float)
    total = max([conversations, *(len(per_word) for per_word in counts)])
    for per_word in counts:
        holding = len(per_word)
        if not holding:
            continue
        idf = math.log(1 + (total - holding + 0.5) / (holding + 0.5))
        for tag, n in per_word.items():
            scores[tag] += idf * n * (_BM25_K1 + 1) / (n + _BM25_K1)
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return candidates
    return {
        key: replace(c, score=c.score + CONVERSATION_SHARE * scores.get(c.session_tag, 0.0) / best)
        for key, c in candidates.items()
    }


def _with_period(candidates: dict[str, Candidate], period: Period) -> dict[str, Candidate]:
    return {
        key: replace(c, score=c.score + PERIOD_SHARE) if period.contains(c.created_at) else c
        for key, c in candidates.items()
    }
