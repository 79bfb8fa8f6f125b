"""The figures of each load level, the verdicts against issue 31's targets, and the tables."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.load.stage import StageResult
from bench.report import table

OVERHEAD_TARGET_MS = 300.0
IDLE_SESSION_TARGET_MB = 5.0
TWO_INSTANCES_TARGET = 1.8


def p50_p95(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return cuts[9], cuts[18]


@dataclass(frozen=True)
class Figures:
    """One stage, in ms, MB, % of one core (CPU of a process) and per second."""

    variant: str
    users: int
    instances: int
    split: str
    turns_ok: int
    turns_failed: int
    not_stored: int
    turns_per_minute: float
    first_token: tuple[float, float]
    first_token_overhead: tuple[float, float]
    stored: tuple[float, float]
    stored_overhead: tuple[float, float]
    model_first_token: tuple[float, float]
    app_cpu: float
    app_rss_mb: float
    idle_mb_per_session: float
    chatting_mb_per_session: float
    app_threads: int
    redis_commands_per_second: float
    redis_cpu: float
    model_cpu: float
    client_cpu: float
    machine_busy: float
    others: float
    load_average: float
    errors: dict[str, int]  # why turns failed, most frequent first

    @property
    def held(self) -> bool:
        """The overhead target met with every turn answered and stored."""
        over = self.first_token_overhead[1]
        return self.turns_failed == 0 and self.not_stored == 0 and over <= OVERHEAD_TARGET_MS


def figures(result: StageResult) -> Figures:
    counted = [r for r in result.turns if r.in_window]
    ok = [r for r in counted if r.turn.ok and r.model_first_token is not None]
    ms = 1000.0

    def spread(values: list[float]) -> tuple[float, float]:
        low, high = p50_p95(values)
        return low * ms, high * ms

    first = [r.turn.first_token for r in ok if r.turn.first_token is not None]
    first_over = [
        r.turn.first_token - r.model_first_token
        for r in ok
        if r.turn.first_token is not None and r.model_first_token is not None
    ]
    stored = [r.turn.stored for r in ok if r.turn.stored is not None]
    stored_over = [
        r.turn.stored - r.model_finished
        for r in ok
        if r.turn.stored is not None and r.model_finished is not None
    ]
    processes = result.window.processes
    apps = [f for name, f in processes.items() if name.startswith("app")]
    grown_idle = [i - b for i, b in zip(result.idle_mb, result.baseline_mb, strict=True)]
    grown_chat = [a.rss_mb_peak - b for a, b in zip(apps, result.baseline_mb, strict=True)]
    users = max(1, sum(result.split))
    return Figures(
        variant=result.spec.variant,
        users=result.spec.users,
        instances=result.spec.instances,
        split="/".join(str(n) for n in result.split),
        turns_ok=len(ok),
        turns_failed=sum(not r.turn.ok for r in counted) + result.open_failures,
        not_stored=sum(r.turn.ok and not r.stored_in_redis for r in result.turns),
        turns_per_minute=60 * len(ok) / result.window.seconds,
        first_token=spread(first),
        first_token_overhead=spread(first_over),
        stored=spread(stored),
        stored_overhead=spread(stored_over),
        model_first_token=spread([r.model_first_token for r in ok if r.model_first_token]),
        app_cpu=sum(a.cpu_percent for a in apps),
        app_rss_mb=sum(a.rss_mb_peak for a in apps),
        idle_mb_per_session=sum(grown_idle) / users,
        chatting_mb_per_session=sum(grown_chat) / users,
        app_threads=max(a.threads_peak for a in apps),
        redis_commands_per_second=result.window.redis_commands_per_second,
        redis_cpu=processes["redis"].cpu_percent,
        model_cpu=processes["model"].cpu_percent,
        client_cpu=processes["client"].cpu_percent,
        machine_busy=result.window.machine_busy_percent,
        others=result.window.others_percent,
        load_average=result.window.load_average,
        errors=dict(Counter(r.turn.error or "" for r in counted if not r.turn.ok).most_common(3)),
    )


def latency_table(rows: list[Figures]) -> str:
    headers = ["variant", "users", "inst", "split", "ok", "failed", "turns/min", "first p50",
               "first p95", "over p50", "over p95", "stored p50", "stored p95", "st.over p50",
               "st.over p95", "held"]  # fmt: skip
    cells: list[list[Any]] = [
        [f.variant, f.users, f.instances, f.split, f.turns_ok, f.turns_failed + f.not_stored,
         f.turns_per_minute, *f.first_token, *f.first_token_overhead, *f.stored,
         *f.stored_overhead, "yes" if f.held else "no"]
        for f in rows
    ]  # fmt: skip
    title = (
        "ENTER -> FIRST TOKEN and ENTER -> REPLY STORED (ms); over = minus the model's own time "
        f"(its first token, its last token); held: p95 over <= {OVERHEAD_TARGET_MS:.0f} ms, "
        "nothing failed or lost"
    )
    failures = [
        f"  {f.variant}, {f.users} users: {n} x {why}" for f in rows for why, n in f.errors.items()
    ]
    return table(title, headers, cells) + "".join(f"\n{line}" for line in failures)


def resources_table(rows: list[Figures]) -> str:
    headers = ["variant", "users", "inst", "app CPU %", "app RSS MB", "MB/idle sess",
               "MB/chat sess", "threads", "redis cmd/s", "redis CPU %", "model CPU %",
               "client CPU %", "machine busy %", "others %", "load"]  # fmt: skip
    cells: list[list[Any]] = [
        [f.variant, f.users, f.instances, f.app_cpu, f.app_rss_mb, f"{f.idle_mb_per_session:.2f}",
         f"{f.chatting_mb_per_session:.2f}", f.app_threads, f.redis_commands_per_second,
         f.redis_cpu, f.model_cpu, f.client_cpu, f.machine_busy, f.others,
         f"{f.load_average:.2f}"]
        for f in rows
    ]  # fmt: skip
    title = (
        "RESOURCES during the chat window (CPU: % of one core; machine and others: % of all "
        "cores; others = processes outside this run)"
    )
    return table(title, headers, cells)


def verdicts(rows: list[Figures]) -> list[str]:
    single = [f for f in rows if f.instances == 1]
    lines = []
    hundred = next((f for f in single if f.users == 100), None)
    if hundred is not None:
        over = hundred.first_token_overhead[1]
        lines.append(
            f"{'PASS' if hundred.held else 'FAIL'} 100 users on one instance: p95 overhead "
            f"{over:.0f} ms (target <= {OVERHEAD_TARGET_MS:.0f} ms)"
        )
    if single:
        worst = (
            max(f.idle_mb_per_session for f in single if f.users >= 10)
            if any(f.users >= 10 for f in single)
            else single[-1].idle_mb_per_session
        )
        verdict = "PASS" if worst <= IDLE_SESSION_TARGET_MB else "FAIL"
        lines.append(
            f"{verdict} RSS per idle session: {worst:.2f} MB at worst (target <= "
            f"{IDLE_SESSION_TARGET_MB:.0f} MB)"
        )
    lines.extend(_scaling(rows))
    return lines


def _scaling(rows: list[Figures]) -> list[str]:
    pair = next((f for f in rows if f.instances == 2), None)
    if pair is None:
        return []
    one = next((f for f in rows if f.instances == 1 and f.users == pair.users // 2), None)
    if one is None or not one.turns_per_minute:
        return []
    ratio = pair.turns_per_minute / one.turns_per_minute
    same_p95 = pair.first_token_overhead[1] <= max(OVERHEAD_TARGET_MS, one.first_token_overhead[1])
    passed = ratio >= TWO_INSTANCES_TARGET and same_p95
    return [
        f"{'PASS' if passed else 'FAIL'} two instances, {pair.users} users: {ratio:.2f}x the "
        f"turns/min of one with {one.users} (target >= {TWO_INSTANCES_TARGET}x at the same "
        f"p95: {pair.first_token_overhead[1]:.0f} vs {one.first_token_overhead[1]:.0f} ms)"
    ]
