"""The sidebar's context chart: one bar of the model's whole context, in labelled parts (the
instruction, the memories, the summary, the recalled messages, the history, the room kept for
the reply, what is free), each part's tokens in its legend label, each message of the history
its own segment with the message on hover.

The parts are `PARTS`, in the order they are drawn; a new part of the request is one more
`Part` and one more row builder in `SENT` (its rows name the part).

A fixed Vega-Lite spec and the rows as an Arrow table: `st.vega_lite_chart` sends both without
Altair building and validating a chart, and without pandas converting the rows, on every run
(`st.bar_chart` cost ~10 ms a run; rows as Python dicts went through pandas, ~5 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow

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
    for order, row in enumerate(rows):
        row["order"] = order
    return rows


def legend_labels(rows: list[Row]) -> dict[str, str]:
    """Each part present, in `PARTS` order, labelled with its tokens: "history 1,204"."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["part"]] = totals.get(row["part"], 0) + row["tokens"]
    return {p.name: f"{p.name} {totals[p.name]:,}" for p in PARTS if p.name in totals}


# The chart's spec; the legend's labels and the axis end change from run to run.
SPEC: dict[str, Any] = {
    # Without a y channel the bar's thickness must be set, or it is drawn 0 px high.
    "mark": {"type": "bar", "size": 28, "stroke": "white", "strokeWidth": 1},
    "height": 28,
    # Fit the sidebar's width; the height grows with the axis and the legend below the bar
    # (Streamlit's default "fit" squeezed all of it into the bar's height: a bare strip).
    "autosize": {"type": "fit-x", "contains": "padding"},
    "padding": {"top": 4, "right": 4, "bottom": 0, "left": 2},
    "encoding": {
        "x": {
            "field": "tokens",
            "type": "quantitative",
            "stack": "zero",
            "axis": None,  # the legend says each part's tokens
        },
        "order": {"field": "order", "type": "quantitative"},
        "tooltip": [
            {"field": "message", "title": "Part"},
            {"field": "tokens", "title": "Tokens", "format": ","},
            {"field": "text", "title": "Text"},
        ],
    },
}
LEGEND: dict[str, Any] = {
    "orient": "bottom",
    "title": None,
    "columns": 2,
    "offset": 6,
    "padding": 0,
    "rowPadding": 2,
    "columnPadding": 8,
    "labelPadding": 4,
    "labelLimit": 0,
    "symbolType": "square",
    "symbolSize": 80,
    "labelFontSize": 12,
}


def context_chart(
    request: PlannedRequest, instruction: SystemInstruction, budget: TokenBudget
) -> tuple[pyarrow.Table, dict[str, Any]]:
    """The rows and the spec of the bar of the model's context for `request` (whose system
    message is `instruction` plus the summary and recalled part, if any)."""
    rows = budget_rows(request, instruction, budget)
    labels = legend_labels(rows)
    colors = [p.color for p in PARTS if p.name in labels]
    color = {
        "field": "part",
        "type": "nominal",
        "scale": {"domain": list(labels), "range": colors},
        "legend": {**LEGEND, "labelExpr": _label_expression(labels)},
    }
    x = {**SPEC["encoding"]["x"], "scale": {"domain": [0, budget.context_tokens]}}
    spec = {**SPEC, "encoding": {**SPEC["encoding"], "x": x, "color": color}}
    return pyarrow.Table.from_pylist(rows), spec


def _label_expression(labels: dict[str, str]) -> str:
    """A Vega expression mapping each part's name to its label with tokens."""
    table = ", ".join(f"{_quoted(name)}: {_quoted(label)}" for name, label in labels.items())
    return f"({{{table}}})[datum.label]"


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
