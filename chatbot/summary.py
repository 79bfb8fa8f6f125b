"""The rolling summary's requests to the model and, offline, its plainly labelled extraction
(chatbot.context folds messages into it, each request admitted by the user's limits)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from memory import Message, TokenCounter

INSTRUCTION = (
    "You keep the running summary of a conversation for an assistant that can no longer see "
    "its older messages. Keep every fact, name, number and decision from them, most important "
    "first. Answer with the updated summary only."
)
EXTRACTIVE_LABEL = "📝 Extractive summary (offline: no model wrote it; first sentence of each):"


def summary_request(previous: str | None, messages: Sequence[Message]) -> list[dict[str, str]]:
    transcript = "\n".join(f"{m.role.value}: {m.content}" for m in messages)
    return [
        {"role": "system", "content": INSTRUCTION},
        {
            "role": "user",
            "content": f"Summary so far:\n{previous or '(none)'}\n\nMessages to add:\n{transcript}",
        },
    ]


def extractive_summary(
    previous: str | None, messages: Sequence[Message], counter: TokenCounter, limit: int
) -> str:
    """The label, then the first sentence of each message, oldest first, while `limit` tokens
    allow (the earliest facts stay; what does not fit is said to be left out)."""
    kept = (previous or "").removeprefix(EXTRACTIVE_LABEL).strip().splitlines()
    lines = [line for line in kept if not line.startswith("- (")]
    for message in messages:
        first = re.split(r"(?<=[.!?])\s", message.content.strip(), maxsplit=1)[0]
        lines.append(f"- {message.role.value}: {first[:200]}")
    text = EXTRACTIVE_LABEL
    for index, line in enumerate(lines):
        candidate = f"{text}\n{line}"
        if counter.count_text(candidate) > limit:
            return f"{text}\n- ({len(lines) - index} later messages left out)"
        text = candidate
    return text
