"""Durations written for people."""

from __future__ import annotations


def format_duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts = []
    remaining = seconds
    for name, size in units:
        if remaining >= size:
            amount, remaining = divmod(remaining, size)
            parts.append(f"{amount} {name}")
        if len(parts) == 2:
            break
    return " ".join(parts)
