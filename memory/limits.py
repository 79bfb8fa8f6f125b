"""Per-user limits on model use, kept in Redis so they hold across app instances.

Two limits, checked and recorded together by one Lua script before a request is sent:

- requests per minute: a sliding window over the user's last 60 seconds of requests;
- tokens per day (UTC): each request first *reserves* what it may cost (its prompt plus the
  most it may write back) and, once the reply is in, is *settled* to the usage the model
  reported, so concurrent requests can never together overspend the day's budget.

The script also writes on every admitted request, so a Redis that refuses writes (full, or a
read-only replica) refuses the request here, before the model is called and paid for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from memory.connection import RedisClient
from memory.errors import storage_errors
from memory.keys import KeyLayout, user_tag
from memory.models import ChatMemoryError, Reservation
from memory.scripts import lua_script

__all__ = ["Limit", "LimitExceeded", "LimitPolicy", "Reservation", "UsageLimits", "refusal"]


class Limit(StrEnum):
    REQUESTS_PER_MINUTE = "requests"
    TOKENS_PER_DAY = "tokens"


@dataclass(frozen=True)
class LimitPolicy:
    """How much one user may use; 0 means no limit."""

    requests_per_minute: int = 20
    tokens_per_day: int = 200_000

    def scaled(self, factor: int) -> LimitPolicy:
        """These limits times `factor`; a factor of 0 lifts them (e.g. for admins)."""
        return LimitPolicy(self.requests_per_minute * factor, self.tokens_per_day * factor)

    @property
    def unlimited(self) -> bool:
        return not self.requests_per_minute and not self.tokens_per_day

    def as_args(self) -> list[int]:
        """The two limits as limits.lua takes them (0: none)."""
        return [max(self.requests_per_minute, 0), max(self.tokens_per_day, 0)]


class LimitExceeded(ChatMemoryError):
    """A request was refused by a per-user limit; nothing was recorded for it."""

    def __init__(self, limit: Limit, allowed: int, resets_in: float, needed: int = 0) -> None:
        self.limit = limit
        self.allowed = allowed
        self.resets_in = resets_in
        self.needed = needed
        super().__init__(self.describe())

    def describe(self) -> str:
        wait = _wait(self.resets_in)
        if self.limit is Limit.REQUESTS_PER_MINUTE:
            return (
                f"You have reached your limit of {self.allowed:,} requests per minute. "
                f"It resets in {wait}."
            )
        if self.needed > self.allowed:
            return (
                f"This request may use up to {self.needed:,} tokens, more than your daily "
                f"limit of {self.allowed:,}: shorten the chat history or the message."
            )
        return (
            f"You have reached your limit of {self.allowed:,} tokens per day "
            f"(this request may use up to {self.needed:,}). It resets at midnight UTC, in {wait}."
        )


class UsageLimits:
    """Admits or refuses each user's model requests (see the module docstring)."""

    def __init__(self, redis_client: RedisClient, *, index_name: str = "chat") -> None:
        self._layout = KeyLayout(index_name)
        self._acquire = lua_script(
            redis_client, "limits.lua", "limits_acquire.lua", all_or_nothing=True
        )
        self._settle = lua_script(
            redis_client, "limits.lua", "limits_settle.lua", all_or_nothing=True
        )

    def _keys(self, user_id: str) -> list[str]:
        tag = user_tag(user_id)
        return [self._layout.request_log_key(tag), self._layout.token_budget_key(tag)]

    @storage_errors
    def acquire(self, user_id: str, tokens: int, policy: LimitPolicy) -> Reservation:
        """Admit one request that may use up to `tokens`, or raise LimitExceeded."""
        request_id = uuid.uuid4().hex
        verdict = self._acquire(
            keys=self._keys(user_id), args=[*policy.as_args(), max(tokens, 0), request_id]
        )
        refused = refusal(verdict, policy, tokens)
        if refused is not None:
            raise refused
        return Reservation(user_id, max(tokens, 0), int(verdict[3]), request_id)

    @storage_errors
    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Count what the request really used instead of what it reserved (0 when the model
        call failed before any usage); a second settle of the same request changes nothing."""
        self._settle(
            keys=self._keys(reservation.user_id)[1:],
            args=[
                reservation.day,
                reservation.request_id,
                max(used_tokens, 0),
                reservation.tokens,
            ],
        )


def refusal(verdict: list[Any], policy: LimitPolicy, tokens: int) -> LimitExceeded | None:
    """The refusal a limits.lua `limit_verdict` names, or None when it admits."""
    kind, _used, resets_in_ms = verdict[0], verdict[1], int(verdict[2]) / 1000
    if kind == "requests":
        return LimitExceeded(Limit.REQUESTS_PER_MINUTE, policy.requests_per_minute, resets_in_ms)
    if kind == "tokens":
        return LimitExceeded(Limit.TOKENS_PER_DAY, policy.tokens_per_day, resets_in_ms, tokens)
    return None


def _wait(seconds: float) -> str:
    """Time until a limit resets, rounded up to what a person plans with."""
    whole = max(1, int(-(-seconds // 1)))
    if whole < 120:
        return f"{whole} s"
    minutes = -(-whole // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
