"""Text helpers for showing stored content safely and durations readably."""

from __future__ import annotations

import re

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&:])")


def escape_markdown(text: str) -> str:
    """Show a person's own words exactly as typed: no markdown, no HTML, no math, line
    breaks kept. Streamlit never executes HTML in markdown; this also stops links, images
    and formatting tricks from rendering."""
    escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", text)
    return escaped.replace("\r\n", "\n").replace("\n", "  \n")


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
