"""Ratios (p50 over p50 of two contenders in the same loop), the targets' verdicts, the one
table printer and the JSON document of a run."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from bench.timing import Row

if TYPE_CHECKING:
    from bench.runner import Results

READ_VS_FLOOR_MAX = 1.5
FLAT_MAX = 1.2
DEMO_SPEEDUP_MIN = 5.0


@dataclass(frozen=True)
class Verdict:
    target: str
    threshold: float
    worst: float
    where: str
    passed: bool


class Figures:
    """The rows of a run, looked up by (measure, history, window, contender)."""

    def __init__(self, results: Results) -> None:
        self.config = results.config
        self.by_key = {(r.measure, r.history, r.window, r.contender): r for r in results.rows}

    def row(self, measure: str, history: int, window: int, contender: str) -> Row:
        return self.by_key[(measure, history, window, contender)]

    def ratio(self, measure: str, history: int, window: int, top: str, bottom: str) -> float:
        top_us, bottom_us = (self.row(measure, history, window, c).p50_us for c in (top, bottom))
        return round(top_us / bottom_us, 3)

    def cells(self) -> list[tuple[int, int]]:
        return [(h, n) for h in self.config.histories for n in self.config.windows]

    def flat(self, window: int, against: int | None = None) -> float:
        """The read at the longest history over the read at `against` (default: the shortest)
        in the side-by-side loop; `filled(window)` gives the same messages returned."""
        longest = self.row("flat", max(self.config.histories), window, "project").p50_us
        base = self.row("flat", against or min(self.config.histories), window, "project")
        return round(longest / base.p50_us, 3)

    def filled(self, window: int) -> int:
        """The shortest history that fills a window of N (returns as many messages)."""
        return min(h for h in self.config.histories if h >= window)

    def verdicts(self) -> list[Verdict]:
        read_floor = {
            f"history {h:,}, N {n}": self.ratio("read", h, n, "project", "floor")
            for h, n in self.cells()
        }
        flat = {f"N {n}": self.flat(n) for n in self.config.windows}
        reference = self.config.demo_reference_history
        demo = {
            f"history {reference:,}, N {n}": self.ratio("read", reference, n, "demo", "project")
            for n in self.config.windows
        }
        shortest, longest = min(self.config.histories), max(self.config.histories)
        return [
            _verdict(f"project read <= {READ_VS_FLOOR_MAX}x the floor (every cell)",
                     READ_VS_FLOOR_MAX, read_floor, higher_is_worse=True),
            _verdict(f"project read at history {longest:,} within {FLAT_MAX}x of history "
                     f"{shortest:,} (same N, side by side)", FLAT_MAX, flat, higher_is_worse=True),
            _verdict(f"project read >= {DEMO_SPEEDUP_MIN}x faster than the demo's at history "
                     f"{reference:,} (every N)", DEMO_SPEEDUP_MIN, demo, higher_is_worse=False),
        ]  # fmt: skip


def _verdict(target: str, threshold: float, values: dict[str, float], *,
             higher_is_worse: bool) -> Verdict:  # fmt: skip
    where = (max if higher_is_worse else min)(values, key=values.__getitem__)
    worst = values[where]
    passed = worst <= threshold if higher_is_worse else worst >= threshold
    return Verdict(target, threshold, worst, where, passed)


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    """The one printer: right-aligned columns; floats as times (us) unless they are ratios
    (given as strings ending in x)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [title, " | ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _compare(f: Figures, title: str, measure: str, keys: list[tuple[int, int]],
             contenders: tuple[str, ...], ratios: list[tuple[str, str]]) -> str:  # fmt: skip
    """Contenders side by side per (history, N): p50 and p99 of each, then the ratios."""
    headers = ["history", "N", *(f"{c} {q}" for c in contenders for q in ("p50", "p99"))]
    rows = [[h, n, *(v for c in contenders for v in _p(f.row(measure, h, n, c))),
             *(_x(f.ratio(measure, h, n, a, b)) for a, b in ratios)] for h, n in keys]  # fmt: skip
    return table(title, headers + [f"{a}/{b}" for a, b in ratios], rows)


def format_report(results: Results) -> str:
    f, config = Figures(results), results.config
    three, turns = ("project", "floor", "demo"), [(h, config.turn_window) for h in config.histories]
    vs = [("project", "floor"), ("demo", "project")]
    verdicts = [
        f"  [{'PASS' if v.passed else 'FAIL'}] {v.target}: worst {v.worst} ({v.where})"
        for v in f.verdicts()
    ]
    return "\n\n".join([
        f"redis-chat-memory benchmark ({config.mode}): {platform.machine()}, Python "
        f"{platform.python_version()}, {results.server}; {config.messages:,} messages per "
        f"contender; {results.elapsed_s:.0f} s. Times in us; ratios p50/p50, same loop.",
        _compare(f, "READ SIDE OF A TURN (headline; floor: FT.SEARCH LIMIT N)", "read",
                 f.cells(), three, vs),
        _compare(f, f"PAGE RENDER (app.py; floor: FT.SEARCH LIMIT {config.page_size})", "render",
                 f.cells(), three, vs),
        table("FLAT IN HISTORY (project read, every history side by side; p50 us)",
              ["N", *(f"h {h:,}" for h in config.histories), "longest/shortest", "longest/filled"],
              [[n, *(f.row("flat", h, n, "project").p50_us for h in config.histories),
                _x(f.flat(n)), _x(f.flat(n, f.filled(n)))] for n in config.windows]),
        _compare(f, "WHOLE TURN (writes included)", "turn", turns, ("project", "demo"), vs[1:]),
        table("WRITES (one message per call, sequential, fsync always; floor: a bare HSET)",
              ["contender", "p50", "p99", "/floor"],
              [[c, *_p(f.row("write", 0, 0, c)), _x(f.ratio("write", 0, 0, c, "floor"))]
               for c in three]),
        table(f"MEMORY PER STORED MESSAGE (used_memory growth / messages; mean message "
              f"{results.mean_chars:.0f} characters)",
              ["contender", "bytes"], [list(item) for item in results.bytes_per_message.items()]),
        conversations_table(results.rows),
        "TARGETS\n" + "\n".join(verdicts),
    ])  # fmt: skip


def conversations_table(rows: list[Row]) -> str:
    """bench/conversations.py's rows: each compared contender against its reference, p50 and
    p95 ratios, with issue 16's target where it sets one."""
    by = {(r.measure, r.contender): r for r in rows if r.measure in ("open", "list", "search")}
    groups = [tuple(map(int, name.split("x"))) for kind, name in by if kind == "open"]
    lengths = sorted(m for c, m in groups if c == 1)
    short, long = lengths[0], lengths[-1]
    counts = sorted(c for c, m in groups if m == short)
    pairs = [("open", f"{c}x{short}", f"1x{short}", "<= 1.2x" if c == counts[-1] else "")
             for c in counts[1:]]  # fmt: skip
    pairs += [
        ("open", f"{counts[-1]}x{short}", f"{counts[-2]}x{short}", ""),
        ("open", f"1x{long}", f"1x{short}", "<= 1.2x"),
        ("open", f"1x{long}", f"1x{lengths[-2]}", ""),
        ("list", "project", "zrevrange", "<= 1.5x"),
        ("list", "project", "listing", ""),
        ("search", "project", "floor", ""),
    ]
    return table(
        "CONVERSATIONS (issue 16; open = conversation(); list = conversations(limit=50); name "
        "<conversations>x<messages in the opened one>; us)",
        ["measure", "contender", "p50", "p95", "reference", "p50", "p95", "p50 ratio",
         "p95 ratio", "target"],
        [[m, a, by[m, a].p50_us, by[m, a].p95_us, b, by[m, b].p50_us, by[m, b].p95_us,
          _x(by[m, a].p50_us / by[m, b].p50_us), _x(by[m, a].p95_us / by[m, b].p95_us), t]
         for m, a, b, t in pairs],
    )  # fmt: skip


def _p(row: Row) -> tuple[float, float]:
    return row.p50_us, row.p99_us


def as_json(results: Results) -> dict[str, Any]:
    return {
        "mode": results.config.mode,
        "elapsed_s": round(results.elapsed_s, 1),
        "server": results.server,
        "indexes": list(results.indexes),
        "messages": results.config.messages,
        "bytes_per_message": results.bytes_per_message,
        "rows": [asdict(row) for row in results.rows],
        "verdicts": [asdict(v) for v in Figures(results).verdicts()],
    }
