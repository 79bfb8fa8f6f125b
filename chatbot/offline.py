"""The offline responder: what answers when no model is configured.

It is not a model and never pretends to be one: every reply starts with a label and says, in
one line, what the app would have sent (the page's banner says how to configure a model). Its
usage is counted like a model's, so the usage totals move in offline mode too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from chatbot.llm import ModelConfig, Provider
from memory import TokenCounter, Usage

OFFLINE_LABEL = "🔌 **Offline responder** (no model configured)"


@dataclass
class OfflineReply:
    words: list[str]
    usage: Usage | None = None
    _sent: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        for word in self.words:
            self._sent.append(word)
            yield word

    @property
    def text(self) -> str:
        return "".join(self._sent)

    @property
    def complete(self) -> bool:
        return len(self._sent) == len(self.words)

    cut_off = False
    processed = True

    def hang_up(self) -> None:
        """Nothing to hang up on."""

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class OfflineChatModel:
    config: ModelConfig = field(
        default_factory=lambda: ModelConfig(
            provider=Provider.OFFLINE, model="offline", tokenizer_model="gpt-4o"
        )
    )
    counter: TokenCounter = field(default_factory=TokenCounter)

    def stream(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> OfflineReply:
        history = len(messages) - 1
        prompt_tokens = self.counter.count_request(messages)
        text = (
            f"{OFFLINE_LABEL}: stored. A model would get the instruction and {history} "
            f"message{'s' if history != 1 else ''} ({prompt_tokens:,} tokens)."
        )
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=self.counter.count_text(text),
            estimated=True,
        )
        return OfflineReply(words=re.findall(r"\S+\s*", text), usage=usage)
