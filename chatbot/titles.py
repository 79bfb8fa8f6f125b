"""Conversation titles: written by the model from the first exchange, or its first words.

A title is asked for once, after the first reply is stored, so a slow or failing title call
never delays or loses a reply. Offline, or when the model fails, the first words of the
first prompt stand in (source "words"); a model title later replaces those, never one the
user typed (memory.ChatMemory.set_auto_title keeps that rule).
"""

from __future__ import annotations

import logging
import re

from chatbot.llm import ChatModel, ModelError, Provider
from memory.tokens import TokenCounter

INSTRUCTION = (
    "Write a short title (at most six words) for the conversation below, in its language. "
    "Answer with the title only: no quotes, no markdown, no ending punctuation."
)
MAX_TITLE_CHARS = 60  # a model's title longer than this is refused (the first words stay)
MAX_TITLE_WORDS = 8
TITLE_MAX_TOKENS = 24
_EXCERPT_CHARS = 1500
_log = logging.getLogger(__name__)
_QUOTES = " \t\"'\u201c\u201d\u2018\u2019\u00ab\u00bb"  # straight, curly and angle quotes
# A word after which a phrase may end: a title of first words stops there, not mid-phrase.
_PHRASE_END = re.compile(r"[.!?;:,)]$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*_`~#>|\\]")


def first_words(text: str, count: int = MAX_TITLE_WORDS) -> str:
    """The prompt's first words, on one line, as a stand-in title: whole phrases where the
    prompt goes on (up to the last word of the first `count` that ends one, past the first
    word), else the first `count` words and "…". The same rule as memory/lua's first_words."""
    words = text.split()
    if len(words) <= count and len(" ".join(words)) <= MAX_TITLE_CHARS:
        return " ".join(words).rstrip(".,;:") or "New chat"
    kept: list[str] = []
    for word in words[:count]:
        if len(" ".join([*kept, word])) > MAX_TITLE_CHARS:
            break
        kept.append(word)
    ends = [i for i, word in enumerate(kept) if i >= 1 and _PHRASE_END.search(word)]
    if ends:
        return " ".join(kept[: ends[-1] + 1]).rstrip(".,;:")
    return (" ".join(kept) or words[0][:MAX_TITLE_CHARS]) + "…"


def clean_title(raw: str) -> str:
    """A model's answer as a title: its first line without markdown, wrapping quotes, a
    "Title:" label or ending punctuation; "" when that is not a title (longer than
    MAX_TITLE_WORDS words or MAX_TITLE_CHARS characters, or an introduction ending in ':')."""
    line = next((line for line in raw.strip().splitlines() if line.strip()), "")
    line = _MARKUP.sub("", _LINK.sub(r"\1", line)).strip()
    line = re.sub(r"^(?:[-+]\s+|\d+[.)]\s+)", "", line)  # a list item's marker
    line = re.sub(r"^(title\s*:\s*)", "", line, flags=re.IGNORECASE)
    if line.endswith(":"):
        return ""
    line = " ".join(line.strip(_QUOTES).rstrip(".").split())
    if len(line) > MAX_TITLE_CHARS or len(line.split()) > MAX_TITLE_WORDS:
        return ""
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
    usable (logged, with what it answered). Tokens are the server's usage, else counted with
    `tokens` (0 without it)."""
    if model.config.provider is Provider.OFFLINE:
        return first_words(prompt), "words", 0
    request = title_request(prompt, reply)
    try:
        answer = model.stream(request, TITLE_MAX_TOKENS)
    except ModelError as error:
        _log.warning("The model's title failed (the first words stay): %s", error)
        return first_words(prompt), "words", 0  # nothing was generated
    try:
        title = clean_title("".join(answer))
    except ModelError as error:
        _log.warning("The model's title failed part way (the first words stay): %s", error)
        title = ""
    else:
        if not title:
            _log.warning("The model's title was refused (the first words stay): %r", answer.text)
    if answer.usage is not None:
        used = answer.usage.prompt_tokens + answer.usage.completion_tokens
    else:
        used = tokens.count_request(request) + tokens.count_text(answer.text) if tokens else 0
    return (title, "model", used) if title else (first_words(prompt), "words", used)
