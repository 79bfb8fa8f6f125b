"""Sizes of a run: the synthetic population, the sweep and the iteration counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """`users` users who each have exactly `history` stored messages."""

    history: int
    users: int

    @property
    def messages(self) -> int:
        return self.history * self.users


@dataclass(frozen=True)
class Phase:
    """The whole population once this phase is loaded (phases only ever add users)."""

    name: str
    groups: tuple[Group, ...]

    @property
    def users(self) -> int:
        return sum(group.users for group in self.groups)

    @property
    def messages(self) -> int:
        return sum(group.messages for group in self.groups)

    def group(self, history: int) -> Group:
        return next(group for group in self.groups if group.history == history)


@dataclass(frozen=True)
class BenchConfig:
    mode: str
    phases: tuple[Phase, ...]
    windows: tuple[int, ...]
    warmup: int
    iterations: int
    turn_window: int
    turn_warmup: int
    turn_iterations: int
    write_warmup: int
    write_iterations: int
    concurrency_users: int
    concurrency_turns: int
    memory_samples: int
    verify_users_per_group: int
    cell_budget_s: float | None = None
    page_size: int = 50
    seed: int = 20240611

    @property
    def histories(self) -> tuple[int, ...]:
        return tuple(group.history for group in self.phases[-1].groups)

    @property
    def demo_reference_history(self) -> int:
        """The history the "faster than the demo" target reads: 1,000, or the largest history
        up to 1,000 in a run that has none (quick mode)."""
        return max(history for history in self.histories if history <= 1000)

    def validate(self) -> None:
        previous: dict[int, int] = {}
        for phase in self.phases:
            current = {group.history: group.users for group in phase.groups}
            if set(current) != set(self.histories):
                raise ValueError(f"Phase {phase.name} must have a group for every history.")
            if any(current[h] < previous.get(h, 0) for h in current):
                raise ValueError(f"Phase {phase.name} may only add users.")
            previous = current
        if self.concurrency_users > self.phases[-1].users:
            raise ValueError("The concurrency run needs a user of its own per thread.")


def full_config() -> BenchConfig:
    """1,000 then 10,000 users; 970,300 project messages at the end (plus as many for the demo)."""
    return BenchConfig(
        mode="full",
        phases=(
            Phase("1k users", (Group(10, 700), Group(100, 200), Group(1000, 80), Group(10000, 20))),
            Phase(
                "10k users",
                (Group(10, 7030), Group(100, 2500), Group(1000, 450), Group(10000, 20)),
            ),
        ),
        windows=(5, 20, 50),
        warmup=40,
        iterations=400,
        turn_window=5,
        turn_warmup=10,
        turn_iterations=150,
        write_warmup=100,
        write_iterations=1500,
        concurrency_users=100,
        concurrency_turns=20,
        memory_samples=400,
        verify_users_per_group=3,
        cell_budget_s=40.0,
    )


def quick_config() -> BenchConfig:
    """Small sizes for CI: every figure of the full run, in seconds."""
    return BenchConfig(
        mode="quick",
        phases=(Phase("50 users", (Group(10, 40), Group(200, 10))),),
        windows=(5,),
        warmup=20,
        iterations=150,
        turn_window=5,
        turn_warmup=5,
        turn_iterations=30,
        write_warmup=20,
        write_iterations=200,
        concurrency_users=20,
        concurrency_turns=5,
        memory_samples=50,
        verify_users_per_group=2,
    )
