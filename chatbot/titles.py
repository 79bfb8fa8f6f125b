"""Conversation titles: written by the model from the first exchange, or its first words.

A title is asked for once, after the first reply is stored, so a slow or failing title call
never delays or loses a reply. Offline, or when the model fails, the first words of the
first prompt stand in (source "words"); a model title later replaces those, never one the
user typed (memory.ChatMemory.set_auto_title keeps that rule).
"""

from __future__ import annotations

import re

from chatbot.llm import ChatModel, ModelError, Provider
from memory.tokens import TokenCounter

INSTRUCTION = (
    "Write a short title (at most six words) for the conversation below, in its language. "
    "Answer with the title only: no quotes, no ending punctuation."
)
MAX_TITLE_CHARS = 80
TITLE_MAX_TOKENS = 24
_EXCERPT_CHARS = 1500


def first_words(text: str, count: int = 6) -> str:
    """The first `count` words of a prompt, on one line, as a stand-in title."""
    words = text.split()
    title = " ".join(words[:count])
    if len(words) > count:
        title += "…"
    return clean_title(title) or "New chat"


def clean_title(raw: str) -> str:
    """One line, no wrapping quotes or markdown, at most MAX_TITLE_CHARS."""
    line = next((line for line in raw.strip().splitlines() if line.strip()), "")
    line = re.sub(r"^(title\s*:\s*)", "", line.strip(), flags=re.IGNORECASE)
    line = line.strip(" \t\"'`*#").rstrip(".")
    if len(line) > MAX_TITLE_CHARS:
        line = line[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return line


def title_request(prompt: str, reply: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": INSTRUCTION},
        {
            "role": "user",
            "content": f"User: {prompt[:_EXCERPT_CHARS]}\n\nAssistant: {reply[:_EXCERPT_CHARS]}",
        },
    ]


def write_title(
    model: ChatModel, prompt: str, reply: str, tokens: TokenCounter | None = None
) -> tuple[str, str, int]:
    """The title, who made it and the tokens the model request used: ("…", "model", n), or
    the prompt's first words ("words") offline, when the model fails or answers nothing
    usable. Tokens are the server's usage, else counted with `tokens` (0 without it)."""
    if model.config.provider is Provider.OFFLINE:
        return first_words(prompt), "words", 0
    request = title_request(prompt, reply)
    try:
        answer = model.stream(request, TITLE_MAX_TOKENS)
    except ModelError:
        return first_words(prompt), "words", 0  # nothing was generated
    try:
        title = clean_title("".join(answer))
    except ModelError:
        title = ""
    if answer.usage is not None:
        used = answer.usage.prompt_tokens + answer.usage.completion_tokens
    else:
        used = tokens.count_request(request) + tokens.count_text(answer.text) if tokens else 0
    return (title, "model", used) if title else (first_words(prompt), "words", used)
