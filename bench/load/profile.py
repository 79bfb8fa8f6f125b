"""Where an app instance spends its interpreter under load: py-spy samples the running process
from outside (no change to the app, little overhead), keeping only the thread that holds the
GIL, so the samples add up to how busy the GIL was (`gil_share`). The raw stacks are summed per
function: "inclusive" counts a function in every sample it is on the stack of, "self" only
where it was running (C code, such as a garbage collection, counts for its Python caller)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 50  # samples per second


@dataclass(frozen=True)
class Hotspot:
    function: str  # "name (file:line)" as py-spy writes it, without the line
    inclusive: float  # share of all samples
    own: float


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def start(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording `pid` for `seconds` into `output` (raw stacks); None without py-spy."""
    binary = py_spy()
    if binary is None:
        return None
    command = [
        binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
        "--rate", str(RATE), "--format", "raw", "--output", str(output), "--gil",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _function(frame: str) -> str:
    """`name (path/file.py:123)` -> `name (file.py)`: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def gil_share(samples: int, seconds: float) -> float:
    """Of the window, the share in which some thread of the app held the GIL."""
    return samples / (RATE * seconds)


def hotspots(raw: Path, limit: int = 25) -> tuple[int, list[Hotspot]]:
    """(samples, the functions with the largest inclusive share)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")[1:]]  # [0] is the thread
        total += count
        for function in set(frames):
            inclusive[function] += count
        if frames:
            own[frames[-1]] += count
    top = [
        Hotspot(function, share / total, own[function] / total)
        for function, share in inclusive.most_common(limit)
    ]
    return total, top
