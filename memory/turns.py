"""The chat turn's two scripts (memory/lua/begin_turn.lua, finish_turn.lua): what they are
sent and what their replies mean. ChatMemory.begin_turn / finish_turn run them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memory.branches import MAX_BRANCH_TAIL, not_a_prompt, too_long_to_edit
from memory.limits import LimitPolicy, refusal
from memory.models import (
    ChatMemoryError,
    InvalidInput,
    Reservation,
    StaleTarget,
    TurnStart,
    summary_state,
)
from memory.reading import MessageReader, pairs
from memory.tokens import TOKENS_REPLY_PRIMER
from memory.writing import NewMessage, limit_reached

MAX_REPLACED = 2  # an edit replaces a prompt and its reply; a regenerate, the reply


@dataclass(frozen=True)
class TurnAsk:
    """What begin_turn was asked, checked: the ARGV of begin_turn.lua but the batch."""

    conversation_id: str
    request_id: str
    window_size: int | str  # '' = the user's stored size
    replace_from: int | str  # '' = nothing replaced
    expect_last_seq: int | str  # '' = no check
    policy: LimitPolicy
    reply_tokens: int
    prompt: NewMessage | None
    keep_replaced: bool = False  # an edit that keeps what it replaces as a branch

    def args(self, batch: int, default_window: int, default_system_tokens: int) -> list[Any]:
        return [
            self.conversation_id,
            self.request_id,
            self.window_size,
            default_window,
            batch,
            self.replace_from,
            self.expect_last_seq,
            MAX_BRANCH_TAIL if self.keep_replaced else MAX_REPLACED,
            *self.policy.as_args(),
            self.reply_tokens,
            default_system_tokens,
            TOKENS_REPLY_PRIMER,
            "1" if self.keep_replaced else "",
            *(self.prompt.args if self.prompt else ()),
        ]


def begin_refusal(reply: list[Any], ask: TurnAsk) -> ChatMemoryError | None:
    """Why begin_turn.lua refused the turn (nothing of it was stored or reserved), or None."""
    kind = reply[0]
    if kind == "stale":
        return StaleTarget(int(ask.expect_last_seq or 0), int(reply[1]))
    if kind == "too_many" and ask.keep_replaced:
        return too_long_to_edit()
    if kind == "not_prompt":
        return not_a_prompt()
    if kind == "too_many":
        return InvalidInput(
            f"Only the last {MAX_REPLACED} messages can be replaced; nothing was removed."
        )
    if kind == "limit":
        return limit_reached(str(reply[1]), int(reply[3]))
    if kind in ("requests", "tokens"):
        return refusal(reply, ask.policy, int(reply[4]))
    return None


def turn_start(
    reader: MessageReader, user_id: str, ask: TurnAsk, reply: list[Any], reply_id: str
) -> TurnStart:
    """begin_turn.lua's 'ok' reply as a TurnStart."""
    _, reserved, day, seq, created_ms, removed, _, rows, settings, window, enabled, summary = reply
    messages = tuple(reader.messages(rows))
    prompt = ask.prompt.stored(int(seq), int(created_ms)) if ask.prompt and int(seq) else None
    return TurnStart(
        user_id=user_id,
        conversation_id=ask.conversation_id,
        reservation=Reservation(user_id, int(reserved), int(day), ask.request_id),
        prompt=prompt,
        removed=int(removed),
        window=reader.window(reader.system_from(pairs(settings)), messages),
        window_size=int(window),
        summary=summary_state(enabled, pairs(summary)),
        reply_id=reply_id,
    )
