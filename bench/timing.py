"""Fair, interleaved timing: each iteration picks one random subject (a user) and runs every
contender on it once, in a random order, so none always runs first (cold caches) or right
after an expensive one. Warm-up iterations are discarded. Results are flat rows."""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")


def p50_p99(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


@dataclass(frozen=True)
class Row:
    measure: str
    """read, render, flat, turn or write (scale: append, read)."""
    history: int
    """Stored messages of each user read (0 for writes)."""
    window: int
    contender: str
    p50_us: float
    p99_us: float
    samples: int
    p95_us: float


@dataclass
class Interleaved(Generic[S]):
    contenders: Mapping[str, Callable[[S], object]]
    """Named `contender` or `measure.contender` (rows then carry that measure)."""
    pick: Callable[[random.Random], S]
    warmup: int
    iterations: int
    budget_s: float | None = None
    """Stop after this many seconds of measuring if half the iterations are done."""

    def run(self, rng: random.Random, measure: str, history: int, window: int) -> list[Row]:
        names = list(self.contenders)
        durations: dict[str, list[float]] = {name: [] for name in names}
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
                    durations[name].append((clock() - started) / 1e3)
        rows = []
        for name, values in durations.items():
            own_measure, _, contender = name.rpartition(".")
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            rows.append(Row(own_measure or measure, history, window, contender, cuts[49],
                            cuts[98], len(values), cuts[94]))  # fmt: skip
        return rows
