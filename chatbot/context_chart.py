"""The sidebar's context chart: one bar of the tokens the next request sends, a segment per
message, with the message on hover.

A fixed Vega-Lite spec and the rows as an Arrow table: `st.vega_lite_chart` sends both without
Altair building and validating a chart, and without pandas converting the rows, on every run
(`st.bar_chart` cost ~10 ms a run; rows as Python dicts went through pandas, ~5 ms).
"""

from __future__ import annotations

from typing import Any

import pyarrow

from chatbot.budget import PlannedRequest
from memory import SystemInstruction

PREVIEW_CHARS = 80
ROLE_COLORS = {
    "system": "#8c8c8c",
    "memories": "#27ae60",
    "summary": "#b8b8b8",
    "recalled": "#9b59b6",
    "user": "#1c83e1",
    "assistant": "#ff4b4b",
}


def preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


# The chart's spec; only the axis end changes from run to run (a copy of x with its domain).
SPEC: dict[str, Any] = {
    # Without a y channel the bar's thickness must be set, or it is drawn 0 px high.
    "mark": {"type": "bar", "size": 24, "stroke": "white", "strokeWidth": 1},
    "encoding": {
        "x": {
            "field": "tokens",
            "type": "quantitative",
            "stack": "zero",
            "axis": {"title": None, "tickCount": 4, "format": "~s"},
        },
        "color": {
            "field": "role",
            "type": "nominal",
            "scale": {"domain": list(ROLE_COLORS), "range": list(ROLE_COLORS.values())},
            "legend": {"orient": "bottom", "title": None},
        },
        "order": {"field": "order", "type": "quantitative"},
        "tooltip": [
            {"field": "message", "title": "Message"},
            {"field": "tokens", "title": "Tokens", "format": ","},
            {"field": "text", "title": "Text"},
        ],
    },
}


def context_chart(
    request: PlannedRequest, instruction: SystemInstruction, budget: int | None = None
) -> tuple[pyarrow.Table, dict[str, Any]]:
    """The rows and the spec of the chart of `request` (whose system message is `instruction`
    plus the summary, if any); the axis ends at `budget` (the tokens a request may use) when
    the request uses a tenth of it or more, else at the tokens used: below that the bar would
    be a sliver with segments too thin to see or hover."""
    used = max(request.token_count, 1)
    end = budget if budget and used * 10 >= budget else used
    encoding = SPEC["encoding"]
    x = {**encoding["x"], "scale": {"domain": [0, end]}}
    spec = {**SPEC, "encoding": {**encoding, "x": x}}
    return pyarrow.Table.from_pylist(chart_rows(request, instruction)), spec


def memories_rows(request: PlannedRequest) -> list[dict[str, Any]]:
    """The memories' segment, right after the instruction (none when none were sent)."""
    if not request.memories:
        return []
    text = preview(" · ".join(m.text for m in request.memories))
    message = f"{len(request.memories)} of your memories"
    return [
        {"order": 0.25, "message": message, "role": "memories",
         "tokens": request.memory_tokens, "text": text}
    ]  # fmt: skip


def chart_rows(request: PlannedRequest, instruction: SystemInstruction) -> list[dict[str, Any]]:
    """A segment per part sent: the instruction, the memories (if any), the summary (if any),
    the earlier messages recalled (if any), then the messages."""
    rows: list[dict[str, Any]] = [
        {
            "order": 0,
            "message": "system instruction",
            "role": "system",
            "tokens": instruction.token_count,
            "text": preview(instruction.text),
        }
    ]
    rows += memories_rows(request)
    if request.summary is not None:
        rows.append(
            {
                "order": 0.5,
                "message": f"summary of messages up to #{request.summary.covers_seq}",
                "role": "summary",
                "tokens": request.system.token_count
                - instruction.token_count
                - request.recall_tokens
                - request.memory_tokens,
                "text": preview(request.summary.text),
            }
        )
    if request.recalled:
        rows.append(
            {
                "order": 0.75,
                "message": f"{len(request.recalled)} earlier messages recalled",
                "role": "recalled",
                "tokens": request.recall_tokens,
                "text": preview(" · ".join(m.content for m in request.recalled)),
            }
        )
    count = len(request.messages)
    for index, message in enumerate(request.messages, start=1):
        rows.append(
            {
                "order": index,
                "message": f"message {index} of {count} ({message.role.value})",
                "role": message.role.value,
                "tokens": message.token_count,
                "text": preview(message.content),
            }
        )
    return rows
