"""What one rerun of the page costs the server: the app vs a minimal Streamlit chat page showing
the same 50 messages, run in turn through AppTest with one shared script cache (so neither
page pays for parsing and compiling its script on every run), on an embedded Redis.

`python -m bench.ui_rerun [--rounds N] [--settings] [--profile]` prints the medians and their
ratio (`--settings`: with the app's settings panel open, as a user who opened it has it); with
`--profile`, cProfile of the app's reruns: where the time goes, by part of the page.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any
from unittest import mock

from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
from streamlit.testing.v1 import AppTest

from bench.report import table
from bench.server import embedded_redis
from bench.ui_settle import INDEX, MINIMAL_PAGE, REPO, USER, store_conversation
from chatbot.config import SETTINGS
from ui.sidebar import SETTINGS_KEY

# Where the app's time goes: cProfile's cumulative time of these functions, per rerun.
PARTS = {
    "whole rerun (main)": ("app.py", "main"),
    "page read (Redis)": ("chatbot/page_read.py", "read_page"),
    "identity (demo picker, warning)": ("ui/identity.py", "current_identity"),
    "sidebar": ("ui/sidebar.py", "sidebar"),
    "  search": ("ui/search.py", "search_section"),
    "  conversation list": ("ui/conversation_list.py", "conversations_section"),
    "  context (fragment, chart)": ("ui/context.py", "context_section"),
    "  instruction": ("ui/instruction.py", "instruction_section"),
    "  retention": ("ui/retention.py", "retention_section"),
    "  usage": ("ui/usage.py", "usage_section"),
    "  history": ("ui/history.py", "history_section"),
    "  your data": ("ui/your_data.py", "your_data_section"),
    "messages (50 bubbles)": ("ui/chat.py", "show_messages"),
    "under the messages": ("ui/editing.py", "edit_and_regenerate"),
    "prompt box": ("ui/turn_view.py", "prompt_box"),
    "frame (title, banner, scripts)": ("ui/frame.py", "header"),
    "prompt echo script": ("ui/prompt_echo.py", "install_prompt_echo"),
}


@contextmanager
def shared_script_cache() -> Iterator[None]:
    """AppTest makes a new ScriptCache for every run; one for all runs instead."""
    cache = ScriptCache()
    with mock.patch("streamlit.testing.v1.local_script_runner.ScriptCache", lambda: cache):
        yield


@contextmanager
def profiled_runs(profile: cProfile.Profile, script: Path) -> Iterator[None]:
    """cProfile each run of `script` (AppTest runs the script on a thread of its own)."""
    run_script = ScriptRunner._run_script

    def run(runner: ScriptRunner, *args: Any, **kwargs: Any) -> None:
        if Path(runner._main_script_path) != script:
            run_script(runner, *args, **kwargs)
            return
        profile.enable()
        try:
            run_script(runner, *args, **kwargs)
        finally:
            profile.disable()

    with mock.patch.object(ScriptRunner, "_run_script", run):
        yield


def page(script: Path, settings: bool = False, **query: str) -> AppTest:
    app = AppTest.from_file(str(script), default_timeout=60)
    app.query_params.update(query)
    if settings:
        app.session_state[SETTINGS_KEY] = True
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def rerun_ms(app: AppTest) -> float:
    started = time.perf_counter()
    app.run()
    return (time.perf_counter() - started) * 1000


def measure(rounds: int, minimal: Path, settings: bool = False) -> dict[str, list[float]]:
    """Reruns of each page in turn (two warm-up rounds discarded)."""
    app = page(REPO / "app.py", settings, user=USER, c="0")
    pages = {"app": app, "minimal": page(minimal)}
    times: dict[str, list[float]] = {name: [] for name in pages}
    gc.collect()
    for round_ in range(rounds + 2):
        for name, app in pages.items():
            elapsed = rerun_ms(app)
            if round_ >= 2:
                times[name].append(elapsed)
    assert pages["app"].chat_message and len(pages["app"].chat_message) == 50
    return times


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return ordered[0], ordered[len(ordered) // 4], median(ordered)


def where_the_time_goes(profile: cProfile.Profile, rounds: int) -> list[list[object]]:
    stats = pstats.Stats(profile)
    cumulative: dict[tuple[str, str], float] = {}
    for (path, _, name), (_, _, _, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        for part in PARTS.values():
            if path.endswith(part[0]) and name == part[1]:
                cumulative[part] = cumulative.get(part, 0.0) + total
    whole = cumulative.get(PARTS["whole rerun (main)"], 0.0) or 1.0
    return [
        [
            label,
            cumulative.get(part, 0.0) * 1000 / rounds,
            f"{cumulative.get(part, 0.0) / whole:.0%}",
        ]
        for label, part in PARTS.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_rerun", description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--settings", action="store_true", help="the settings panel open")
    parser.add_argument("--profile", action="store_true", help="cProfile the app's reruns")
    args = parser.parse_args(argv)
    with embedded_redis() as server, shared_script_cache():
        store_conversation(server.url)
        minimal = server.data_dir / "minimal_chat.py"
        minimal.write_text(MINIMAL_PAGE)
        for setting in SETTINGS:
            os.environ[setting.name] = ""
        os.environ.update(REDIS_URL=server.url, CHAT_INDEX_NAME=INDEX)
        times = measure(args.rounds, minimal, args.settings)
        if args.profile:
            profile = cProfile.Profile()
            with profiled_runs(profile, REPO / "app.py"):
                measure(args.rounds, minimal, args.settings)
    rows = [[name, *quartiles(samples)] for name, samples in times.items()]
    print(table(f"ONE RERUN WITH 50 MESSAGES (ms; {args.rounds} interleaved, AppTest)",
                ["page", "min", "p25", "median"], rows))  # fmt: skip
    print(f"ratio app / minimal (median): {median(times['app']) / median(times['minimal']):.2f}x")
    if args.profile:
        parts = where_the_time_goes(profile, args.rounds)
        print(table("WHERE THE APP'S RERUN GOES (cProfile, cumulative ms per rerun)",
                    ["part", "ms", "share"], parts))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
