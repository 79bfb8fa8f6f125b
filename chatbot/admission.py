"""Admitting a user's model requests under their limits, whatever the request is for.

Every request the app makes to the model on a user's behalf (a reply, a conversation title, a
rolling-summary update) goes through one `Admission`: it is admitted by the user's limits
before it is sent, reserving the most it may cost, and settled afterwards to what it cost.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from memory import ChatMemoryError
from memory.limits import LimitPolicy, Reservation, UsageLimits


@dataclass(frozen=True)
class Admission:
    limits: UsageLimits
    policy: LimitPolicy
    admin_users: frozenset[str] = frozenset()
    admin_factor: int = 10  # ADMIN_USERS get the limits times this; 0: none

    def admit(self, user_id: str, tokens: int) -> Reservation:
        """Admit one request that may use up to `tokens` (its prompt plus the longest answer
        it asks for), or raise memory.limits.LimitExceeded (ChatMemoryError when Redis
        refuses writes)."""
        return self.limits.acquire(user_id, tokens, self.policy_for(user_id))

    def policy_for(self, user_id: str) -> LimitPolicy:
        """The user's limits (an admin's scaled by the admin factor), for a script that admits
        a request itself (ChatMemory.begin_turn)."""
        factor = self.admin_factor if user_id in self.admin_users else 1
        return self.policy.scaled(factor)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Count what an admitted request really used; if Redis refuses now, the (larger)
        reservation simply stands."""
        with contextlib.suppress(ChatMemoryError):
            self.limits.settle(reservation, used_tokens)
