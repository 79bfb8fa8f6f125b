"""Sizes of a run: the synthetic population, the sweep and the iteration counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConversationSizes:
    """bench/conversations.py: users per group with each count of conversations (the opened
    one holds 10 messages, each other one 2), and with one conversation of each length."""

    counts: tuple[int, ...]
    lengths: tuple[int, ...]
    users: int
    warmup: int = 20
    iterations: int = 300


@dataclass(frozen=True)
class BenchConfig:
    mode: str
    users_by_history: dict[int, int]
    """How many users have exactly that many stored messages."""
    windows: tuple[int, ...]
    warmup: int
    iterations: int
    turn_iterations: int
    write_iterations: int
    conversations: ConversationSizes
    cell_budget_s: float | None = None
    """A sweep cell stops after this many seconds once half its iterations are done."""
    turn_window: int = 5
    page_size: int = 50
    seed: int = 20240611

    @property
    def histories(self) -> tuple[int, ...]:
        return tuple(sorted(self.users_by_history))

    @property
    def messages(self) -> int:
        return sum(history * users for history, users in self.users_by_history.items())

    @property
    def demo_reference_history(self) -> int:
        """The "faster than the demo" target reads 1,000 messages, or the largest history up
        to 1,000 in a run that has none (quick mode)."""
        return max(history for history in self.histories if history <= 1000)


# 10,000 users, 970,300 messages (and as many again in the demo's layout).
FULL = BenchConfig(
    mode="full", users_by_history={10: 7030, 100: 2500, 1000: 450, 10000: 20}, windows=(5, 20, 50),
    warmup=40, iterations=400, turn_iterations=150, write_iterations=1500, cell_budget_s=40.0,
    conversations=ConversationSizes(counts=(1, 50, 1000), lengths=(10, 100, 10_000), users=3),
)  # fmt: skip
# Small sizes for CI: every table of the full run, in seconds.
QUICK = BenchConfig(
    mode="quick", users_by_history={10: 40, 200: 10}, windows=(5,), warmup=20, iterations=150,
    turn_iterations=30, write_iterations=200,
    conversations=ConversationSizes((1, 50, 200), (10, 100, 1000), users=2, iterations=100),
)  # fmt: skip
