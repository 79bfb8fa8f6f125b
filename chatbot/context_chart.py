"""The sidebar's context chart: one bar of the model's whole context, in labelled parts (the
instruction, the memories, the summary, the recalled messages, the history, the room kept for
the reply, what is free), each part's tokens in its legend label, each message of the history
its own segment with the message on hover.

The parts are `PARTS`, in the order they are drawn; a new part of the request is one more
`Part` and one more row builder in `SENT` (its rows name the part).

The bar is plain HTML and CSS for `st.html` (no script): the browser lays out a row of boxes
instead of embedding Vega, which cost the page ~20 ms of paint and the server a spec and an Arrow
table on every slider move. Each segment carries `data-part`, `data-role` and `data-tokens`; its
`title` is the hover text. Every text a user wrote (messages, memories, the summary) is escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from chatbot.budget import PlannedRequest, TokenBudget
from memory import SystemInstruction

PREVIEW_CHARS = 80
Row = dict[str, Any]


@dataclass(frozen=True)
class Part:
    """One labelled part of the bar: its legend name and colour."""

    name: str
    color: str


INSTRUCTION = Part("instruction", "#6c6c6c")
MEMORIES = Part("memories", "#27ae60")
SUMMARY = Part("summary", "#b0b0b0")
RECALLED = Part("recalled", "#9b59b6")
HISTORY = Part("history", "#1c83e1")
REPLY_ROOM = Part("room for the reply", "#ffbd45")
FREE = Part("free", "#e6eaf1")
PARTS: tuple[Part, ...] = (INSTRUCTION, MEMORIES, SUMMARY, RECALLED, HISTORY, REPLY_ROOM, FREE)


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _row(part: Part, role: str, message: str, tokens: int, text: str = "") -> Row:
    return {"part": part.name, "role": role, "message": message, "tokens": tokens, "text": text}


def _instruction(request: PlannedRequest, instruction: SystemInstruction) -> list[Row]:
    return [
        _row(
            INSTRUCTION,
            "system",
            "system instruction",
            instruction.token_count,
            preview(instruction.text),
        )
    ]


def _summary(request: PlannedRequest, instruction: SystemInstruction) -> list[Row]:
    if request.summary is None:
        return []
    added = request.recall_tokens + request.memory_tokens
    tokens = request.system.token_count - instruction.token_count - added
    message = f"summary of messages up to #{request.summary.covers_seq}"
    return [_row(SUMMARY, "summary", message, tokens, preview(request.summary.text))]


def _memories(request: PlannedRequest, instruction: SystemInstruction) -> list[Row]:
    if not request.memories:
        return []
    message = f"{len(request.memories)} of your memories"
    text = preview(" · ".join(m.text for m in request.memories))
    return [_row(MEMORIES, "memories", message, request.memory_tokens, text)]


def _recalled(request: PlannedRequest, instruction: SystemInstruction) -> list[Row]:
    if not request.recalled:
        return []
    message = f"{len(request.recalled)} earlier messages recalled"
    text = preview(" · ".join(m.content for m in request.recalled))
    return [_row(RECALLED, "recalled", message, request.recall_tokens, text)]


def _history(request: PlannedRequest, instruction: SystemInstruction) -> list[Row]:
    count = len(request.messages)
    return [
        _row(
            HISTORY,
            message.role.value,
            f"message {index} of {count} ({message.role.value})",
            message.token_count,
            preview(message.content),
        )
        for index, message in enumerate(request.messages, start=1)
    ]


RowBuilder = Callable[[PlannedRequest, SystemInstruction], list[Row]]
SENT: tuple[RowBuilder, ...] = (_instruction, _memories, _summary, _recalled, _history)


def chart_rows(request: PlannedRequest, instruction: SystemInstruction) -> list[Row]:
    """A segment per part sent, in order: the instruction, the memories (if any), the summary
    (if any), the earlier messages recalled (if any), then the history message by message."""
    return [row for build in SENT for row in build(request, instruction)]


def budget_rows(
    request: PlannedRequest, instruction: SystemInstruction, budget: TokenBudget
) -> list[Row]:
    """`chart_rows` and the rest of the context: the reply's room and what is free. Their
    tokens add up to the model's context (less the 3 that prime the reply)."""
    rows = chart_rows(request, instruction)
    free = max(budget.prompt_limit - request.token_count, 0)
    reply = f"kept for the reply (LLM_MAX_TOKENS {budget.reply_tokens:,})"
    rows.append(_row(REPLY_ROOM, "reply", reply, budget.reply_tokens))
    rows.append(_row(FREE, "free", "free: room for more history", free))
    return rows


def legend_labels(rows: list[Row]) -> dict[str, str]:
    """Each part present, in `PARTS` order, labelled with its tokens: "history 1,204"."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["part"]] = totals.get(row["part"], 0) + row["tokens"]
    return {p.name: f"{p.name} {totals[p.name]:,}" for p in PARTS if p.name in totals}


BAR_CLASS = "context-bar"
MIN_PART_PX = 3  # a part of a few tokens out of 128k is still a visible sliver
BAR_PX = 28
# A message's segment starts with a thin light line only where it is wide enough to show one
# (at least 4 px of a bar at least this wide); slivers side by side would wash the part out.
NARROWEST_BAR_PX = 250
# One style sheet for every bar: a segment carries only its share, colour and text inline.
STYLE = f"""<style>
.{BAR_CLASS} .cb-bar {{ display: flex; gap: 1px; height: {BAR_PX}px; border-radius: 3px;
  overflow: hidden; }}
.{BAR_CLASS} .cb-part {{ display: flex; flex-basis: 0; min-width: {MIN_PART_PX}px; }}
.{BAR_CLASS} .cb-seg {{ flex-basis: 0; min-width: 0; }}
.{BAR_CLASS} .cb-seg.cb-gap {{ box-shadow: inset 1px 0 rgba(255, 255, 255, 0.6); }}
.{BAR_CLASS} .cb-legend {{ display: flex; flex-wrap: wrap; gap: 2px 12px; margin: 6px 0 0;
  padding: 0; list-style: none; font-size: 12px; line-height: 1.5; }}
.{BAR_CLASS} .cb-legend li {{ display: flex; align-items: center; gap: 4px;
  white-space: nowrap; margin: 0; padding: 0; }}
.{BAR_CLASS} .cb-swatch {{ width: 10px; height: 10px; border-radius: 2px; flex: none; }}
</style>"""


def context_bar(
    request: PlannedRequest, instruction: SystemInstruction, budget: TokenBudget
) -> str:
    """The bar of the model's context for `request` (whose system message is `instruction` plus
    the memories, summary and recalled part, if any), as HTML for `st.html`: a segment per row of
    `budget_rows` grouped by part, widths in proportion to tokens, the legend under it."""
    rows = budget_rows(request, instruction, budget)
    labels = legend_labels(rows)
    colors = {p.name: p.color for p in PARTS}
    wide = budget.context_tokens * 4 / NARROWEST_BAR_PX  # tokens of a 4 px segment
    parts = "".join(
        _part(name, colors[name], [r for r in rows if r["part"] == name], wide) for name in labels
    )
    summary = ", ".join(labels.values())
    name = f"The model's context, {budget.context_tokens:,} tokens: {summary}"
    legend = "".join(
        f'<li data-part="{_attr(part)}"><span class="cb-swatch" '
        f'style="background:{colors[part]}"></span>{escape(label)}</li>'
        for part, label in labels.items()
    )
    return (
        f'{STYLE}<div class="{BAR_CLASS}"><div class="cb-bar" role="img" '
        f'aria-label="{_attr(name)}">{parts}</div>'
        f'<ul class="cb-legend" aria-label="Parts of the context">{legend}</ul></div>'
    )


def _part(name: str, color: str, rows: list[Row], wide: float) -> str:
    tokens = sum(r["tokens"] for r in rows)
    segments = "".join(
        _segment(row, gap=index > 0 and row["tokens"] >= wide) for index, row in enumerate(rows)
    )
    return (
        f'<div class="cb-part" data-part="{_attr(name)}" '
        f'style="flex-grow:{tokens};background:{color}">{segments}</div>'
    )


def _segment(row: Row, gap: bool) -> str:
    hover = f"{row['message']}\n{row['tokens']:,} tokens"
    if row["text"]:
        hover += f"\n{row['text']}"
    kind = "cb-seg cb-gap" if gap else "cb-seg"
    return (
        f'<div class="{kind}" data-part="{_attr(row["part"])}" data-role="{_attr(row["role"])}" '
        f'data-tokens="{row["tokens"]}" title="{_attr(hover)}" '
        f'style="flex-grow:{row["tokens"]}"></div>'
    )


def _attr(text: str) -> str:
    """`text` inside a double-quoted attribute: never markup, never the attribute's end."""
    return escape(text, quote=True)
