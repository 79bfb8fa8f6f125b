"""The token budget: which stored messages the next request can carry so that it fits the model.

The request is the system instruction (with the rolling summary, when there is one, appended
to it) plus the longest run of the last N messages that fits the model's context minus the
reply reserve (`LLM_MAX_TOKENS`). For a server whose chat template is strict (`strict`, see
`ModelConfig.strict_roles`) it starts with a user message after the system message and the
roles alternate, so an earlier prompt that never got a reply, or a reply out of turn, is left
out (and counted, so the page can say so); a provider that accepts any order (OpenAI, Azure
OpenAI) gets exactly the last N that fit.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from chatbot.config import Environment
from memory import ContextWindow, Message, Role, SystemInstruction, TokenCounter
from memory.memories import MemoryRecord
from memory.recall import RecalledMessage
from memory.summary import Summary
from memory.tokens import TOKENS_REPLY_PRIMER

# Context sizes of known models (OpenAI model pages); the longest prefix match wins.
KNOWN_CONTEXT_TOKENS = {
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}
FALLBACK_CONTEXT_TOKENS = 8_192
ESTIMATE_MARGIN = 1.1  # room kept for a tokenizer the app can only approximate
SUMMARY_HEADING = "Summary of the earlier conversation:"


def known_context_tokens(model: str) -> int | None:
    name = model.strip().lower()
    matches = [prefix for prefix in KNOWN_CONTEXT_TOKENS if name.startswith(prefix)]
    return KNOWN_CONTEXT_TOKENS[max(matches, key=len)] if matches else None


@dataclass(frozen=True)
class TokenBudget:
    context_tokens: int
    reply_tokens: int  # sent as max_tokens and kept free in the context
    context_known: bool = True  # False: an assumed size, MODEL_CONTEXT_TOKENS is not set

    @classmethod
    def from_env(cls, env: Environment, model: str) -> TokenBudget:
        reply = env.get_int("LLM_MAX_TOKENS", minimum=1)
        if env.is_set("MODEL_CONTEXT_TOKENS"):
            context = env.get_int("MODEL_CONTEXT_TOKENS", minimum=reply + 16)
            return cls(context_tokens=context, reply_tokens=reply)
        known = known_context_tokens(model)
        return cls(
            context_tokens=known or FALLBACK_CONTEXT_TOKENS,
            reply_tokens=reply,
            context_known=known is not None,
        )

    @property
    def prompt_limit(self) -> int:
        return self.context_tokens - self.reply_tokens

    def oversized_prompt(self, prompt_tokens: int, system_tokens: int) -> str | None:
        """Why a prompt can never fit, with the numbers; None when it can."""
        room = self.prompt_limit - system_tokens - TOKENS_REPLY_PRIMER
        if prompt_tokens <= room:
            return None
        return (
            f"Your message is {prompt_tokens:,} tokens; with the system instruction "
            f"({system_tokens:,}) and room for the reply ({self.reply_tokens:,}) the model's "
            f"context of {self.context_tokens:,} tokens leaves {max(room, 0):,}. "
            "Shorten it; nothing was sent or stored."
        )


@dataclass(frozen=True)
class PlannedRequest:
    """What the next request sends, and what of the last N messages it leaves out."""

    system: SystemInstruction  # the summary, if any, is appended to its text
    summary: Summary | None
    messages: tuple[Message, ...]
    token_count: int  # in the app's encoding
    left_out: int  # of the last N messages, not sent (to fit the context or the template)
    unanswered: int  # of those, earlier prompts that never got a reply (strict templates)
    summarized: int  # of those, already in the summary
    out_of_turn: int = 0  # of those, replies a strict template cannot take where they stand
    recalled: tuple[RecalledMessage, ...] = ()  # sent after the summary, best first
    recall_tokens: int = 0  # what the recalled part adds to the system message
    recall_left_out: int = 0  # recalled but not sent: over RECALL_MAX_TOKENS or the context
    server_token_count: int | None = None  # the server's own count of it, when it said one
    memories: tuple[MemoryRecord, ...] = ()  # sent right after the instruction, best first
    memory_tokens: int = 0  # what the memories part adds to the system message
    memories_left_out: int = 0  # relevant but not sent: over MEMORY_MAX_TOKENS or the context

    @property
    def to_fit(self) -> int:
        """Of the last N messages, those left out only because the context is full."""
        return self.left_out - self.unanswered - self.summarized - self.out_of_turn

    def as_openai(self) -> list[dict[str, str]]:
        return [self.system.as_openai(), *(m.as_openai() for m in self.messages)]


def plan_request(
    window: ContextWindow,
    budget: TokenBudget,
    counter: TokenCounter,
    summary: Summary | None = None,
    margin: float = 1.0,
    strict: bool = True,
) -> PlannedRequest:
    """The longest run of the window's newest messages that fits; with `strict`, roles
    alternating and a prompt first.

    `margin` scales the app's counts (>1 when its tokenizer is only an estimate, or when the
    server has been counting more than the app did).
    """
    system = window.system
    if summary is not None:
        text = f"{system.text}\n\n{SUMMARY_HEADING}\n{summary.text}"
        system = SystemInstruction(text, system.preset, counter.count_message("system", text))
    candidates = [m for m in window.messages if summary is None or m.seq > summary.covers_seq]
    total = TOKENS_REPLY_PRIMER + system.token_count
    chosen: list[Message] = []
    unanswered = out_of_turn = 0
    expected = candidates[-1].role if candidates else Role.USER
    full = False
    for message in reversed(candidates):
        if strict and message.role is not expected:  # a prompt after a prompt: no reply
            unanswered += message.role is Role.USER
            out_of_turn += message.role is not Role.USER
            continue
        if math.ceil((total + message.token_count) * margin) > budget.prompt_limit:
            full = True
            break
        chosen.append(message)
        total += message.token_count
        expected = Role.USER if message.role is Role.ASSISTANT else Role.ASSISTANT
    if strict and chosen and chosen[-1].role is Role.ASSISTANT:  # a prompt first
        total -= chosen.pop().token_count
        out_of_turn += not full  # when full, its prompt did not fit: it is left out to fit
    return PlannedRequest(
        system=system,
        summary=summary,
        messages=tuple(reversed(chosen)),
        token_count=total,
        left_out=len(window.messages) - len(chosen),
        unanswered=unanswered,
        summarized=len(window.messages) - len(candidates),
        out_of_turn=out_of_turn,
    )


class _Counted(Protocol):
    @property
    def token_count(self) -> int: ...


Counted = TypeVar("Counted", bound=_Counted)


def fitted_system(
    plan: PlannedRequest,
    candidates: Sequence[Counted],
    compose: Callable[[Sequence[Counted]], str],
    budget: TokenBudget,
    counter: TokenCounter,
    *,
    max_tokens: int,
    margin: float,
) -> tuple[tuple[Counted, ...], SystemInstruction] | None:
    """The most of `candidates` (best first) whose system message, `compose(chosen)`, adds at
    most `max_tokens` to the plan's and keeps the whole request within the budget (checked
    on its exact count), with that message; None when not even one fits."""
    base = plan.system
    chosen, estimate = [], 0
    for candidate in candidates:  # stored counts first: an oversized one is never encoded
        if estimate + candidate.token_count <= max_tokens:
            chosen.append(candidate)
            estimate += candidate.token_count
    while chosen:
        text = compose(chosen)
        system = SystemInstruction(text, base.preset, counter.count_message("system", text))
        added = system.token_count - base.token_count
        total = plan.token_count + added
        if added <= max_tokens and math.ceil(total * margin) <= budget.prompt_limit:
            return tuple(chosen), system
        chosen.pop()
    return None


def with_recalled(
    plan: PlannedRequest,
    recalled: Sequence[RecalledMessage],
    budget: TokenBudget,
    counter: TokenCounter,
    *,
    max_tokens: int,
    margin: float = 1.0,
) -> PlannedRequest:
    """`plan` with as many of `recalled` (best first) as fit after the summary: the window
    keeps what it had, the recalled part adds at most `max_tokens`, and the whole request
    never passes the budget (checked on the exact count of the final system message).
    What does not fit is left out and counted."""
    base = plan.system

    def compose(chosen: Sequence[RecalledMessage]) -> str:
        return f"{base.text}\n\n{RECALL_HEADING}\n{recalled_block(chosen)}"

    fit = fitted_system(
        plan, recalled, compose, budget, counter, max_tokens=max_tokens, margin=margin
    )
    if fit is None:
        return replace(plan, recall_left_out=len(recalled))
    chosen, system = fit
    added = system.token_count - base.token_count
    return replace(
        plan,
        system=system,
        token_count=plan.token_count + added,
        recalled=chosen,
        recall_tokens=added,
        recall_left_out=len(recalled) - len(chosen),
    )


def with_memories(
    plan: PlannedRequest,
    memories: Sequence[MemoryRecord],
    budget: TokenBudget,
    counter: TokenCounter,
    *,
    instruction: str,
    max_tokens: int,
    margin: float = 1.0,
) -> PlannedRequest:
    """`plan` with as many of `memories` (best first) as fit, right after the `instruction`
    (the start of the system message, before any summary): the window keeps what it had, the
    memories add at most `max_tokens`, and the whole request never passes the budget (checked
    on the exact count of the final system message). What does not fit is counted."""
    base = plan.system
    if not base.text.startswith(instruction):
        return replace(plan, memories_left_out=len(memories))
    rest = base.text[len(instruction) :]

    def compose(chosen: Sequence[MemoryRecord]) -> str:
        return f"{instruction}\n\n{MEMORY_HEADING}\n{memory_block(chosen)}{rest}"

    fit = fitted_system(
        plan, memories, compose, budget, counter, max_tokens=max_tokens, margin=margin
    )
    if fit is None:
        return replace(plan, memories_left_out=len(memories))
    chosen, system = fit
    added = system.token_count - base.token_count
    return replace(
        plan,
        system=system,
        token_count=plan.token_count + added,
        memories=chosen,
        memory_tokens=added,
        memories_left_out=len(memories) - len(chosen),
    )


MEMORY_HEADING = (
    "What this user asked you to remember about them (their saved memories, which they can "
    "see and edit; use them when relevant):"
)


def memory_block(memories: Sequence[MemoryRecord]) -> str:
    return "\n".join(f"- {memory.text}" for memory in memories)


RECALL_HEADING = (
    "Earlier messages of this user that may be relevant (recalled from their stored history; "
    "each line says who wrote it and when):"
)


def recalled_block(messages: Sequence[RecalledMessage]) -> str:
    """One paragraph per recalled message: `[user, 2026-12-01] text`, oldest first."""
    ordered = sorted(messages, key=lambda m: m.seq)
    return "\n".join(f"[{m.role.value}, {_day(m.created_at)}] {m.content}" for m in ordered)


def _day(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d")


def shrink_to_fit(
    window: ContextWindow,
    budget: TokenBudget,
    counter: TokenCounter,
    summary: Summary | None,
    limit_tokens: int,
    strict: bool = True,
) -> PlannedRequest:
    """The longest run of the window's newest messages (roles alternating, a prompt first)
    whose request is at most `limit_tokens` in the app's count: what to send instead of a
    request the server refused as too long. Its `messages` are empty when not even the last
    prompt fits."""
    tight = TokenBudget(
        context_tokens=max(limit_tokens, 0) + budget.reply_tokens,
        reply_tokens=budget.reply_tokens,
        context_known=budget.context_known,
    )
    return plan_request(window, tight, counter, summary, strict=strict)
