"""Deterministic synthetic conversations: message `k` of user `i` is determined by `(i, k)`,
a prompt (10-60 words) at even `k`, a reply (60-240 words, some markdown, with usage) at odd
`k`, from two fixed pools (~600 characters per message on average)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

from memory import Role, Usage

_VOCABULARY = (
    "the a to of and in is it you that for on with as this be are was can how what why when which "
    "redis memory chat message model token window history user assistant reply prompt context "
    "cache index search query store key value hash list stream cluster node azure python "
    "streamlit request response latency throughput server client connection please explain "
    "compare example code function error retry timeout config setting instruction system summary "
    "detail step first then next finally because however also data time second minute hour day "
    "week result number count size limit page order"
)
WORDS = tuple(_VOCABULARY.split())
SYSTEM_TEXT = "You are a helpful assistant."


def _text(rng: random.Random, words: int, markdown: bool) -> str:
    sentences: list[str] = []
    while words > 0:
        length = min(words, rng.randint(6, 18))
        words -= length
        sentence = " ".join(rng.choice(WORDS) for _ in range(length))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice(".?.!.")
        if markdown and rng.random() < 0.25:
            sentence = f"- **{sentence}**"
        sentences.append(sentence)
    return ("\n" if markdown else " ").join(sentences)


@dataclass(frozen=True)
class SyntheticMessage:
    role: Role
    content: str
    usage: Usage | None


@dataclass(frozen=True)
class Corpus:
    seed: int

    @cached_property
    def _pools(self) -> dict[Role, list[str]]:
        rng = random.Random(self.seed)
        return {
            Role.USER: [_text(rng, rng.randint(10, 60), False) for _ in range(97)],
            Role.ASSISTANT: [_text(rng, rng.randint(60, 240), True) for _ in range(101)],
        }

    def message(self, user_index: int, k: int) -> SyntheticMessage:
        role = Role.USER if k % 2 == 0 else Role.ASSISTANT
        pool = self._pools[role]
        content = pool[(user_index * (31 if role is Role.USER else 17) + k // 2) % len(pool)]
        usage = None
        if role is Role.ASSISTANT:
            usage = Usage(prompt_tokens=400 + (k * 37) % 3000, completion_tokens=len(content) // 4)
        return SyntheticMessage(role, content, usage)

    def mean_chars(self) -> float:
        """Mean characters per stored message (prompts and replies alternate)."""
        return sum(sum(map(len, pool)) / len(pool) for pool in self._pools.values()) / 2
