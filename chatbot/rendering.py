"""Durations, token counts and costs written for people."""

from __future__ import annotations

from chatbot.budget import PlannedRequest
from chatbot.pricing import Prices
from memory import Usage, UsageTotals

NO_PRICE = "no cost shown: unknown price (set PRICE_INPUT_PER_MTOK / PRICE_OUTPUT_PER_MTOK)"


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
    if prices is None:
        return NO_PRICE
    return f"${prices.cost(prompt_tokens, completion_tokens):.4f} ({prices.source})"


def usage_line(usage: Usage, prices: Prices | None) -> str:
    """Reported numbers plain, with the app's prompt estimate and its drift beside them;
    estimated numbers marked ≈ and said to be estimates."""
    cost = _cost(prices, usage.prompt_tokens, usage.completion_tokens)
    if usage.estimated:
        return (
            f"≈{usage.prompt_tokens:,} in / ≈{usage.completion_tokens:,} out (estimated: the "
            f"server reported no usage) · {'≈' if prices else ''}{cost}"
        )
    line = f"{usage.prompt_tokens:,} in / {usage.completion_tokens:,} out"
    if usage.prompt_drift is not None:
        line += (
            f" (the app estimated ≈{usage.estimated_prompt_tokens:,} in: the server counted "
            f"{usage.prompt_drift:+.0%})"
        )
    return f"{line} · {cost}"


def totals_line(totals: UsageTotals, prices: Prices | None) -> str:
    replies = "reply" if totals.replies == 1 else "replies"
    cost = _cost(prices, totals.prompt_tokens, totals.completion_tokens)
    return (
        f"{totals.prompt_tokens:,} in / {totals.completion_tokens:,} out over "
        f"{totals.replies} {replies} · {cost}"
    )


def request_line(request: PlannedRequest) -> str:
    """What the next request carries of the last N messages."""
    sent = len(request.messages)
    line = f"{sent} message{'s' if sent != 1 else ''} sent, {request.left_out} left out to fit"
    if request.summarized:
        line += f" ({request.summarized} of them in the summary)"
    if request.unanswered:
        line += f"; {request.unanswered} earlier prompt(s) with no reply left out"
    return line + "."
