"""Ratios, targets, the printed tables and the JSON document of a run."""

from __future__ import annotations

import math
from typing import Any

from bench.concurrency import ConcurrencyResult
from bench.config import BenchConfig
from bench.timing import Stats

DEFINITIONS = {
    "read": (
        "Headline, the read side of a turn: what is needed to render and assemble one request "
        "of window N and show its token count. project = memory.conversation(user, "
        "window_size=N, page_size=N) -> window.as_openai(), window.token_count (one Lua round "
        "trip, stored token counts). floor = one FT.SEARCH <index> @session_tag:{tag} SORTBY "
        "timestamp DESC LIMIT 0 N on the project's index (hiredis). demo = get_recent(top_k=100) "
        "for the system message + 2 x (get_recent(top_k=N) re-encoded with tiktoken o200k_base)."
    ),
    "render": (
        "One page render exactly as app.py does it: project = memory.conversation(user, "
        "page_size=50) with the user's stored window N (page of 50 shown + window + token "
        "metric). floor = FT.SEARCH ... LIMIT 0 50 (the page). demo = one whole script rerun "
        "without a prompt (get_recent 5 + get_recent 100 raw + HSET + 2 x window read & encode)."
    ),
    "turn": (
        "One whole turn with its writes: project = render, append(user), context_window(N), "
        "append(assistant, usage), render (Streamlit rerun); demo = one rerun with a prompt. "
        "Model call excluded. Every write is fsynced (appendfsync always)."
    ),
    "flat": (
        "The project's read (as in 'read') at every history length side by side in one "
        "interleaved loop, per phase and N: the only difference between contenders is the "
        "history length of the user read. filled_history = the shortest history that fills a "
        "window of N (same messages returned)."
    ),
    "memory": (
        "bytes_per_message_used_memory = (INFO memory used_memory after loading a phase - "
        "before) / messages loaded: hash + timeline entry + index share + allocator overhead. "
        "hash_bytes_memory_usage = mean MEMORY USAGE <key> SAMPLES 0 of random message hashes. "
        "timeline_bytes_per_message = MEMORY USAGE of sampled users' timelines / entries. "
        "index_bytes_per_message = FT.INFO total_index_memory_sz_mb / num_docs."
    ),
    "ratios": "p50 over p50 (and p99 over p99 where named _p99), same run, interleaved",
}
READ_VS_FLOOR_MAX = 1.5
FLAT_MAX = 1.2
DEMO_SPEEDUP_MIN = 5.0


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator > 0 else math.inf


def _stats(group: dict[str, Stats]) -> dict[str, dict[str, float | int]]:
    return {name: value.as_dict() for name, value in group.items()}


def _cell(raw: dict[str, Any]) -> dict[str, Any]:
    read, render = raw["stats"]["read"], raw["stats"]["render"]
    ratios = {
        "read_vs_floor": _ratio(read["project"].p50_us, read["floor"].p50_us),
        "read_vs_floor_p99": _ratio(read["project"].p99_us, read["floor"].p99_us),
        "demo_vs_read": _ratio(read["demo"].p50_us, read["project"].p50_us),
        "demo_vs_read_p99": _ratio(read["demo"].p99_us, read["project"].p99_us),
        "render_vs_floor_page": _ratio(render["project"].p50_us, render["floor"].p50_us),
        "render_vs_floor_page_p99": _ratio(render["project"].p99_us, render["floor"].p99_us),
        "demo_vs_render": _ratio(render["demo"].p50_us, render["project"].p50_us),
        "demo_vs_render_p99": _ratio(render["demo"].p99_us, render["project"].p99_us),
    }
    return {key: raw[key] for key in ("phase", "users", "messages_total", "history", "window")} | {
        "read": _stats(read),
        "render": _stats(render),
        "ratios": ratios,
    }


def _flat(config: BenchConfig, raw: dict[str, Any]) -> dict[str, Any]:
    stats: dict[int, Stats] = raw["stats"]
    shortest, longest = min(stats), max(stats)
    filled = min(h for h in stats if h >= raw["window"])
    return {
        "phase": raw["phase"],
        "users": raw["users"],
        "window": raw["window"],
        "histories": [{"history": h, **s.as_dict()} for h, s in sorted(stats.items())],
        "longest_vs_shortest": _ratio(stats[longest].p50_us, stats[shortest].p50_us),
        "filled_history": filled,
        "longest_vs_filled": _ratio(stats[longest].p50_us, stats[filled].p50_us),
    }


def _label(cell: dict[str, Any]) -> str:
    return f"{cell['phase']}, history {cell['history']:,}, N {cell['window']}"


def _target(
    description: str, threshold: float, value: float, passed: bool, where: str, detail: list
) -> dict[str, Any]:
    return {
        "description": description,
        "threshold": threshold,
        "value": value,
        "pass": passed,
        "where": where,
        "detail": detail,
    }


def _targets(
    config: BenchConfig, cells: list[dict[str, Any]], flat: list[dict[str, Any]], errors: int
) -> dict[str, Any]:
    worst = max(cells, key=lambda c: c["ratios"]["read_vs_floor"])
    read_floor = _target(
        f"project read <= {READ_VS_FLOOR_MAX}x the floor (p50, every cell)",
        READ_VS_FLOOR_MAX,
        worst["ratios"]["read_vs_floor"],
        all(c["ratios"]["read_vs_floor"] <= READ_VS_FLOOR_MAX for c in cells),
        _label(worst),
        [{"cell": _label(c), "value": c["ratios"]["read_vs_floor"]} for c in cells],
    )

    shortest, longest = min(config.histories), max(config.histories)
    flat_detail = [
        {"cell": f"{f['phase']}, N {f['window']}", "value": f["longest_vs_shortest"]} for f in flat
    ]
    worst_flat = max(flat_detail, key=lambda d: d["value"])
    flat_target = _target(
        f"project read at history {longest:,} within {FLAT_MAX}x of history {shortest:,} "
        "(p50, same N, side by side, every phase)",
        FLAT_MAX,
        worst_flat["value"],
        all(d["value"] <= FLAT_MAX for d in flat_detail),
        worst_flat["cell"],
        flat_detail,
    )
    flat_target["same_messages_returned"] = [
        {
            "cell": f"{f['phase']}, N {f['window']}: {longest:,} vs {f['filled_history']:,}",
            "value": f["longest_vs_filled"],
        }
        for f in flat
    ]
    by_key = {(c["phase"], c["history"], c["window"]): c for c in cells}
    flat_target["across_sweep_cells"] = [
        {
            "cell": f"{f['phase']}, N {f['window']}",
            "value": _ratio(
                by_key[(f["phase"], longest, f["window"])]["read"]["project"]["p50_us"],
                by_key[(f["phase"], shortest, f["window"])]["read"]["project"]["p50_us"],
            ),
        }
        for f in flat
    ]

    reference = config.demo_reference_history
    at_reference = [c for c in cells if c["history"] == reference]
    slowest = min(at_reference, key=lambda c: c["ratios"]["demo_vs_read"])
    demo_target = _target(
        f"project read >= {DEMO_SPEEDUP_MIN}x faster than the demo's at history {reference:,} "
        "(p50, every phase and N)",
        DEMO_SPEEDUP_MIN,
        slowest["ratios"]["demo_vs_read"],
        all(c["ratios"]["demo_vs_read"] >= DEMO_SPEEDUP_MIN for c in at_reference),
        _label(slowest),
        [{"cell": _label(c), "value": c["ratios"]["demo_vs_read"]} for c in at_reference],
    )
    concurrency = _target(
        "zero errors in the concurrency run", 0, errors, errors == 0, "concurrency", []
    )
    return {
        "read_within_1_5x_floor": read_floor,
        "flat_in_history": flat_target,
        "faster_than_demo_5x": demo_target,
        "zero_concurrency_errors": concurrency,
    }


def _writes(stats: dict[str, Stats]) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: value.as_dict() | {"msgs_per_s": round(1e6 / value.mean_us, 1)}
        for name, value in stats.items()
    }
    out["append_vs_floor"] = _ratio(stats["project_append"].p50_us, stats["floor_hset"].p50_us)
    out["demo_vs_append"] = _ratio(stats["demo_add_message"].p50_us, stats["project_append"].p50_us)
    return out


def build_report(config: BenchConfig, raw: dict[str, Any]) -> dict[str, Any]:
    cells = [_cell(cell) for cell in raw["cells"]]
    flat = [_flat(config, entry) for entry in raw["flat"]]
    concurrency: ConcurrencyResult = raw["concurrency"]
    turns = [
        {
            "history": t["history"],
            "window": t["window"],
            "project": t["stats"]["project"].as_dict(),
            "demo": t["stats"]["demo"].as_dict(),
            "demo_vs_project": _ratio(t["stats"]["demo"].p50_us, t["stats"]["project"].p50_us),
        }
        for t in raw["turns"]
    ]
    return {
        "meta": raw["meta"],
        "machine": raw["machine"],
        "config": {
            "mode": config.mode,
            "phases": [
                {
                    "name": p.name,
                    "users": p.users,
                    "messages": p.messages,
                    "groups": [{"history": g.history, "users": g.users} for g in p.groups],
                }
                for p in config.phases
            ],
            "windows": list(config.windows),
            "page_size": config.page_size,
            "warmup": config.warmup,
            "iterations": config.iterations,
            "turn_window": config.turn_window,
            "turn_iterations": config.turn_iterations,
            "write_iterations": config.write_iterations,
            "concurrency_users": config.concurrency_users,
            "concurrency_turns": config.concurrency_turns,
            "seed": config.seed,
        },
        "definitions": DEFINITIONS,
        "data": {
            "messages_total": raw["messages_total"],
            "mean_content_chars": raw["mean_content_chars"],
            "verified_users": raw["verified_users"],
            "loading": raw["loading"],
        },
        "memory": raw["memory"],
        "cells": cells,
        "flat": flat,
        "turns": turns,
        "writes": _writes(raw["writes"]),
        "concurrency": concurrency.as_dict(),
        "targets": _targets(config, cells, flat, concurrency.errors),
    }


# --- printing ------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"


def format_report(report: dict[str, Any]) -> str:
    lines: list[str] = []
    machine = report["machine"]
    lines.append(
        f"redis-chat-memory benchmark ({report['meta']['mode']}): {machine['cpu_model']}, "
        f"{machine['nproc']} CPUs, {machine['memory_gib']} GiB, Python {machine['python']}, "
        f"Redis {machine['redis']}, RediSearch {machine['redisearch']}"
    )
    meta = report["meta"]
    lines.append(
        "Times are microseconds; ratios are p50/p50 from the same interleaved run. "
        f"Run took {meta['elapsed_s']:.0f} s; 1-min load average "
        f"{meta['load_average_before']} before, {meta['load_average_after']} after."
    )
    for measure, title, floor_name, ratio_floor, ratio_demo in (
        ("read", "READ SIDE OF A TURN (headline)", "floor N", "read_vs_floor", "demo_vs_read"),
        (
            "render",
            "PAGE RENDER (app.py, page 50)",
            "floor 50",
            "render_vs_floor_page",
            "demo_vs_render",
        ),
    ):
        lines.append("")
        lines.append(title)
        lines.append(
            f"{'users':>6} {'history':>7} {'N':>3} | {'project p50':>11} {'p99':>7} | "
            f"{floor_name + ' p50':>12} {'p99':>7} | {'demo p50':>9} {'p99':>7} | "
            f"{'proj/floor':>10} {'demo/proj':>9}"
        )
        for cell in report["cells"]:
            row = cell[measure]
            lines.append(
                f"{cell['users']:>6,} {cell['history']:>7,} {cell['window']:>3} | "
                f"{_f(row['project']['p50_us']):>11} {_f(row['project']['p99_us']):>7} | "
                f"{_f(row['floor']['p50_us']):>12} {_f(row['floor']['p99_us']):>7} | "
                f"{_f(row['demo']['p50_us']):>9} {_f(row['demo']['p99_us']):>7} | "
                f"{cell['ratios'][ratio_floor]:>9.2f}x {cell['ratios'][ratio_demo]:>8.1f}x"
            )
    lines.append("")
    lines.append("FLAT IN HISTORY (project read, all histories side by side; p50 us)")
    histories = [h["history"] for h in report["flat"][0]["histories"]]
    lines.append(
        f"{'users':>6} {'N':>3} | "
        + " ".join(f"{'h ' + format(h, ','):>9}" for h in histories)
        + f" | {'longest/shortest':>16} {'longest/filled':>14}"
    )
    for entry in report["flat"]:
        lines.append(
            f"{entry['users']:>6,} {entry['window']:>3} | "
            + " ".join(f"{_f(h['p50_us']):>9}" for h in entry["histories"])
            + f" | {entry['longest_vs_shortest']:>15.2f}x {entry['longest_vs_filled']:>13.2f}x"
        )
    lines.append("")
    lines.append(f"WHOLE TURN (writes included, N {report['config']['turn_window']}, last phase)")
    lines.append(
        f"{'history':>7} | {'project p50':>11} {'p99':>7} | {'demo p50':>9} {'p99':>7} | "
        f"{'demo/proj':>9}"
    )
    for turn in report["turns"]:
        lines.append(
            f"{turn['history']:>7,} | {_f(turn['project']['p50_us']):>11} "
            f"{_f(turn['project']['p99_us']):>7} | {_f(turn['demo']['p50_us']):>9} "
            f"{_f(turn['demo']['p99_us']):>7} | {turn['demo_vs_project']:>8.1f}x"
        )
    writes = report["writes"]
    lines.append("")
    lines.append("WRITES (one message per call, sequential, fsync always)")
    for name in ("project_append", "demo_add_message", "floor_hset"):
        w = writes[name]
        lines.append(
            f"  {name:<17} p50 {_f(w['p50_us']):>7} us  p99 {_f(w['p99_us']):>7} us  "
            f"{w['msgs_per_s']:>8,.0f} msgs/s"
        )
    lines.append("")
    lines.append("MEMORY PER STORED MESSAGE (bytes)")
    lines.append(
        "  used_memory delta / messages loaded (hash + timeline + index + overhead); "
        "MEMORY USAGE sample of one hash; FT.INFO index bytes/doc"
    )
    for entry in report["memory"]:
        for side in ("project", "demo"):
            m = entry[side]
            timeline = (
                f", timeline {m['timeline_bytes_per_message']:.0f}" if side == "project" else ""
            )
            lines.append(
                f"  {entry['phase']:<10} {side:<8} "
                f"used_memory {m['bytes_per_message_used_memory']:>7,.0f}   "
                f"hash {m['hash_bytes_memory_usage']:>6,.0f}   "
                f"index {m['index_bytes_per_message']:>5,.0f}{timeline}"
            )
    lines.append(f"  (mean message {report['data']['mean_content_chars']:.0f} characters)")
    c = report["concurrency"]
    lines.append("")
    lines.append(
        f"CONCURRENCY: {c['users']} users x {c['turns_per_user']} turns in threads, one client: "
        f"{c['turns']} turns in {c['wall_s']:.1f}s = {c['turns_per_s']:.0f} turns/s "
        f"({c['appends_per_s']:.0f} appends/s), turn p50 {_f(c['turn']['p50_us'])} us "
        f"p99 {_f(c['turn']['p99_us'])} us, errors {c['errors']}"
    )
    lines.append("")
    lines.append("TARGETS")
    for target in report["targets"].values():
        verdict = "PASS" if target["pass"] else "FAIL"
        lines.append(
            f"  [{verdict}] {target['description']}: worst {target['value']} ({target['where']})"
        )
        for extra, label in (
            ("same_messages_returned", "same messages returned"),
            ("across_sweep_cells", "across sweep cells"),
        ):
            if extra in target:
                values = ", ".join(f"{d['cell']} {d['value']}x" for d in target[extra])
                lines.append(f"         {label}: {values}")
    return "\n".join(lines)
