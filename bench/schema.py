"""Every figure a run emits, quick or full, so a consumer (and the quick test) can check a
results file is complete before comparing it with another."""

from __future__ import annotations

import math
from typing import Any

Spec = dict[str, Any] | tuple[str, ...] | list[Any]

STATS = ("p50_us", "p99_us", "mean_us", "samples")
_CONTENDERS = {"project": STATS, "floor": STATS, "demo": STATS}
_TARGET = ("description", "threshold", "value", "pass", "where", "detail")

SCHEMA: dict[str, Spec] = {
    "meta": (
        "mode", "elapsed_s", "started_unix", "load_average_before", "load_average_after",
        "server_owned", "server_config", "project_index", "demo_index",
    ),
    "machine": {
        "nproc": (), "cpu_model": (), "memory_gib": (), "os": (), "python": (), "redis": (),
        "redisearch": (), "packages": ("redis", "hiredis", "redisvl", "tiktoken"),
    },
    "config": (
        "mode", "phases", "windows", "page_size", "warmup", "iterations", "turn_window",
        "turn_iterations", "write_iterations", "concurrency_users", "concurrency_turns", "seed",
    ),
    "definitions": ("read", "render", "turn", "flat", "memory", "ratios"),
    "data": {
        "messages_total": (), "mean_content_chars": (), "verified_users": (),
        "loading": [(
            "phase", "messages", "project_load_s", "demo_load_s", "project_msgs_per_s",
            "demo_msgs_per_s",
        )],
    },
    "memory": [{
        "phase": (), "messages_loaded": (),
        "project": (
            "bytes_per_message_used_memory", "hash_bytes_memory_usage",
            "timeline_bytes_per_message", "index_bytes_per_message",
        ),
        "demo": (
            "bytes_per_message_used_memory", "hash_bytes_memory_usage", "index_bytes_per_message",
        ),
    }],
    "cells": [{
        "phase": (), "users": (), "messages_total": (), "history": (), "window": (),
        "read": _CONTENDERS, "render": _CONTENDERS,
        "ratios": (
            "read_vs_floor", "read_vs_floor_p99", "demo_vs_read", "demo_vs_read_p99",
            "render_vs_floor_page", "render_vs_floor_page_p99", "demo_vs_render",
            "demo_vs_render_p99",
        ),
    }],
    "flat": [{
        "phase": (), "users": (), "window": (), "filled_history": (), "longest_vs_shortest": (),
        "longest_vs_filled": (), "histories": [("history", *STATS)],
    }],
    "turns": [{
        "history": (), "window": (), "project": STATS, "demo": STATS, "demo_vs_project": (),
    }],
    "writes": {
        "project_append": (*STATS, "msgs_per_s"), "demo_add_message": (*STATS, "msgs_per_s"),
        "floor_hset": (*STATS, "msgs_per_s"), "append_vs_floor": (), "demo_vs_append": (),
    },
    "concurrency": {
        "users": (), "turns_per_user": (), "turns": (), "errors": (), "error_samples": (),
        "wall_s": (), "turns_per_s": (), "appends_per_s": (), "turn": STATS,
    },
    "targets": {
        "read_within_1_5x_floor": _TARGET,
        "flat_in_history": (*_TARGET, "same_messages_returned", "across_sweep_cells"),
        "faster_than_demo_5x": _TARGET, "zero_concurrency_errors": _TARGET,
    },
}  # fmt: skip


def _missing(value: Any, spec: Spec, path: str) -> list[str]:
    if isinstance(spec, list):
        if not isinstance(value, list) or not value:
            return [f"{path}: expected a non-empty list"]
        return [p for i, item in enumerate(value) for p in _missing(item, spec[0], f"{path}[{i}]")]
    if not spec:
        return []
    if not isinstance(value, dict):
        return [f"{path}: expected an object"]
    keys = spec if isinstance(spec, tuple) else tuple(spec)
    problems = [f"{path}.{key}: missing" for key in keys if key not in value]
    if isinstance(spec, dict):
        for key, inner in spec.items():
            if key in value:
                problems += _missing(value[key], inner, f"{path}.{key}")
    return problems


def _not_finite(value: Any, path: str) -> list[str]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [] if math.isfinite(value) else [f"{path}: {value} is not finite"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _not_finite(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _not_finite(v, f"{path}[{i}]")]
    return []


def problems(report: dict[str, Any]) -> list[str]:
    """Missing figures and non-finite numbers; empty when the report is complete."""
    return _missing(report, SCHEMA, "$") + _not_finite(report, "$")
