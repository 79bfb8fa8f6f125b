"""Deterministic synthetic conversations.

Message `k` of user `i` is fully determined by `(i, k)`, so the loader, the read-back check and
the contenders agree on every text without storing them. Texts come from two fixed pools
(prompts ~35 words, replies ~150 words, like a chat with a helpful model) whose token counts are
computed once with the project's own TokenCounter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

from memory import Role, TokenCounter, Usage

_VOCABULARY = (
    "the a to of and in is it you that for on with as this be are was can how what why "
    "when which redis memory chat message model token window history user assistant "
    "reply prompt context cache index search query store key value hash list stream "
    "cluster node azure python streamlit request response latency throughput server "
    "client connection please explain compare example code function error retry timeout "
    "config setting instruction system summary detail step first then next finally "
    "because however also data time second minute hour day week result number count size "
    "limit page order"
)
_WORDS = tuple(_VOCABULARY.split())
USER_POOL = 97
ASSISTANT_POOL = 101
SYSTEM_TEXT = "You are a helpful assistant."


def _text(rng: random.Random, words: int, markdown: bool) -> str:
    sentences: list[str] = []
    remaining = words
    while remaining > 0:
        length = min(remaining, rng.randint(6, 18))
        remaining -= length
        sentence = " ".join(rng.choice(_WORDS) for _ in range(length))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice(".?.!.")
        if markdown and rng.random() < 0.25:
            sentence = f"- **{sentence}**"
        sentences.append(sentence)
    return ("\n" if markdown else " ").join(sentences)


@dataclass(frozen=True)
class SyntheticMessage:
    role: Role
    content: str
    token_count: int
    usage: Usage | None


@dataclass(frozen=True)
class Corpus:
    """The text pools and their token counts (with the per-message overhead, as stored)."""

    seed: int
    counter: TokenCounter

    @cached_property
    def _pools(self) -> dict[Role, list[tuple[str, int]]]:
        rng = random.Random(self.seed)
        pools: dict[Role, list[tuple[str, int]]] = {}
        for role, size, low, high in (
            (Role.USER, USER_POOL, 10, 60),
            (Role.ASSISTANT, ASSISTANT_POOL, 60, 240),
        ):
            texts = [
                _text(rng, rng.randint(low, high), role is Role.ASSISTANT) for _ in range(size)
            ]
            pools[role] = [(t, self.counter.count_message(role.value, t)) for t in texts]
        return pools

    def message(self, user_index: int, k: int) -> SyntheticMessage:
        """Message `k` (0-based) of user `user_index`: prompts at even k, replies at odd k."""
        role = Role.USER if k % 2 == 0 else Role.ASSISTANT
        pool = self._pools[role]
        multiplier = 31 if role is Role.USER else 17
        content, tokens = pool[(user_index * multiplier + k // 2) % len(pool)]
        usage = None
        if role is Role.ASSISTANT:
            usage = Usage(prompt_tokens=400 + (k * 37) % 3000, completion_tokens=tokens)
        return SyntheticMessage(role=role, content=content, token_count=tokens, usage=usage)

    def mean_content_chars(self) -> float:
        """Mean characters per stored message (prompts and replies alternate)."""
        means = [sum(len(text) for text, _ in pool) / len(pool) for pool in self._pools.values()]
        return sum(means) / len(means)


def user_id(index: int) -> str:
    return f"user{index:05d}"
