"""Fair, interleaved timing of several contenders.

Each iteration picks one random subject (a user) and runs every contender on it once, in an
order that rotates from one iteration to the next, so no contender always runs first (cold
caches) or right after an expensive one. Warm-up iterations are run and discarded.
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class Stats:
    p50_us: float
    p99_us: float
    mean_us: float
    samples: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "p50_us": round(self.p50_us, 2),
            "p99_us": round(self.p99_us, 2),
            "mean_us": round(self.mean_us, 2),
            "samples": self.samples,
        }


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    weight = position - low
    return sorted_values[low] * (1 - weight) + sorted_values[high] * weight


def summarize(durations_ns: list[int]) -> Stats:
    ordered = sorted(durations_ns)
    mean = sum(ordered) / len(ordered) if ordered else math.nan
    return Stats(
        p50_us=percentile(ordered, 0.50) / 1000,
        p99_us=percentile(ordered, 0.99) / 1000,
        mean_us=mean / 1000,
        samples=len(ordered),
    )


@dataclass
class Interleaved(Generic[S]):
    contenders: Mapping[str, Callable[[S], object]]
    pick: Callable[[random.Random], S]
    warmup: int
    iterations: int
    budget_s: float | None = None
    """Stop early once this many seconds of measuring have passed, if at least half of
    `iterations` are done (keeps the slowest cells from dominating a run's duration)."""

    def run(self, rng: random.Random) -> dict[str, Stats]:
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
            shift = iteration % len(names)
            for name in names[shift:] + names[:shift]:
                contender = self.contenders[name]
                started = clock()
                contender(subject)
                elapsed = clock() - started
                if iteration >= self.warmup:
                    durations[name].append(elapsed)
        return {name: summarize(values) for name, values in durations.items()}
