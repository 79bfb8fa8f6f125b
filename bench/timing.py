"""Fair, interleaved timing of several contenders, and the flat result row it produces.

Each iteration picks one random subject (a user) and runs every contender on it once, in a
random order, so no contender always runs first (cold caches) or right after an expensive one (a
call that follows a 20 ms demo call is slower, whatever it does: idle CPUs wake up, caches are
cold). Warm-up iterations are run and discarded.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class Row:
    """One contender's timing in one measured situation."""

    measure: str
    """read, render, flat, turn or write."""
    history: int
    """Stored messages of each user read (0 for writes)."""
    window: int
    contender: str
    p50_us: float
    p99_us: float
    samples: int


@dataclass
class Interleaved(Generic[S]):
    contenders: Mapping[str, Callable[[S], object]]
    pick: Callable[[random.Random], S]
    warmup: int
    iterations: int
    budget_s: float | None = None
    """Stop once this many seconds of measuring have passed, if half the iterations are done
    (keeps the slowest cells from dominating a run's duration)."""

    def run(self, rng: random.Random, measure: str, history: int, window: int) -> list[Row]:
        names = list(self.contenders)
        durations: dict[str, list[int]] = {name: [] for name in names}
        gc.collect()
        clock = time.perf_counter_ns
        deadline: int | None = None
        for iteration in range(self.warmup + self.iterations):
            if iteration == self.warmup and self.budget_s is not None:
                deadline = clock() + int(self.budget_s * 1e9)
            measured = iteration - self.warmup
            if deadline is not None and measured >= self.iterations // 2 and clock() > deadline:
                break
            subject = self.pick(rng)
            for name in rng.sample(names, len(names)):
                started = clock()
                self.contenders[name](subject)
                if measured >= 0:
                    durations[name].append(clock() - started)
        rows = []
        for name, values in durations.items():
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            rows.append(
                Row(measure, history, window, name, cuts[49] / 1e3, cuts[98] / 1e3, len(values))
            )
        return rows
