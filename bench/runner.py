"""Orchestrates a run: server, layout checks, loading, the sweep, turns, writes, concurrency."""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import memory_usage
from bench.concurrency import run_concurrency
from bench.config import BenchConfig, Phase
from bench.contenders import Floor, ProjectApp
from bench.corpus import SYSTEM_TEXT, Corpus
from bench.demo import DemoApp
from bench.loader import load_demo, load_project
from bench.machine import describe_machine
from bench.population import Population
from bench.report import build_report, format_report
from bench.server import (
    bulk_load_durability,
    drop_bench_data,
    redis_target,
    server_versions,
    tune_owned_server,
)
from bench.sweep import measure_cell, measure_flatness, measure_turns, store_window_size
from bench.verify import verify_demo_layout, verify_project_layout, verify_read_back
from bench.writes import measure_writes
from memory import (
    ChatMemory,
    RedisTarget,
    StorageLimits,
    SystemInstruction,
    TokenCounter,
    create_redis_client,
)
from memory.keys import KeyLayout

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(
    config: BenchConfig, redis_url: str | None, json_path: Path | None, log: Log = _stderr
) -> dict[str, Any]:
    """Run the benchmark, print the tables to stdout, write JSON; return the report."""
    config.validate()
    started, started_unix = time.monotonic(), int(time.time())
    load_before = _load_average()
    with redis_target(redis_url) as target:
        client = create_redis_client(RedisTarget(url=target.url))
        suffix = "" if target.owned else uuid.uuid4().hex[:6]
        names = (f"benchchat{suffix}", f"benchdemo{suffix}")
        demo: DemoApp | None = None
        try:
            server_config = tune_owned_server(client) if target.owned else {}
            memory = ChatMemory(
                client,
                default_system=SystemInstruction(text=SYSTEM_TEXT, preset="standard"),
                index_name=names[0],
                token_counter=TokenCounter(),
                limits=StorageLimits(max_messages=10**9, max_bytes=10**12),  # histories > caps
            )
            demo = DemoApp(target.url, names[1])
            raw = _Run(config, client, memory, demo, names[0], target.owned, log).measure()
        finally:
            if demo is not None:
                demo.close()
            if not target.owned:
                drop_bench_data(client, names)
            client.close()
    raw["meta"] = {
        "mode": config.mode,
        "elapsed_s": round(time.monotonic() - started, 1),
        "started_unix": started_unix,
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "server_owned": target.owned,
        "server_config": server_config,
        "project_index": names[0],
        "demo_index": names[1],
    }
    report = build_report(config, raw)
    print(format_report(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        log(f"wrote {json_path}")
    return report


def _load_average() -> float:
    """1-minute load average: other work on the machine during a run shows here."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


class _Run:
    """The measurements of one run, stage by stage, collecting raw figures in `raw`."""

    def __init__(
        self,
        config: BenchConfig,
        client: redis.Redis,
        memory: ChatMemory,
        demo: DemoApp,
        index_name: str,
        owned: bool,
        log: Log,
    ) -> None:
        self.config, self.client, self.memory, self.demo = config, client, memory, demo
        self.owned, self.log = owned, log
        self.rng = random.Random(config.seed)
        self.layout = KeyLayout(index_name)
        self.corpus = Corpus(config.seed, memory.token_counter)
        self.project = ProjectApp(memory, config.page_size)
        self.floor = Floor(client, index_name)
        self.population = Population()
        self.raw: dict[str, Any] = {
            "machine": describe_machine() | server_versions(client),
            "loading": [],
            "memory": [],
            "verified_users": 0,
            "cells": [],
            "flat": [],
            "turns": [],
        }

    def measure(self) -> dict[str, Any]:
        self.log("checking the loader against ChatMemory.append and MessageHistory.add_message")
        verify_project_layout(self.client, self.memory, self.layout, self.corpus)
        verify_demo_layout(self.client, self.demo.session_manager, self.corpus)
        for phase in self.config.phases:
            self.load(phase)
            self.sweep(phase)
        self.turns()
        self.log("write throughput")
        self.raw["writes"] = measure_writes(
            self.client,
            self.layout,
            self.project,
            self.demo,
            self.corpus,
            self.population,
            self.config.write_warmup,
            self.config.write_iterations,
            self.rng,
        )
        self.concurrency()
        self.raw["messages_total"] = self.population.messages
        self.raw["mean_content_chars"] = round(self.corpus.mean_content_chars(), 1)
        return self.raw

    def load(self, phase: Phase) -> None:
        """Add the phase's users in both layouts, note the memory they took, read them back."""
        added = self.population.grow(phase)
        self.log(f"[{phase.name}] loading {sum(u.history for u in added):,} messages x2")
        client, demo_index = self.client, self.demo.session_manager._index
        with bulk_load_durability(client, self.owned):
            before = memory_usage.used_memory(client)
            clock = time.perf_counter()
            project_count = load_project(
                client, self.layout, self.corpus, added, self.memory.token_counter.encoding_name
            )
            project_s = time.perf_counter() - clock
            middle = memory_usage.used_memory(client)
            clock = time.perf_counter()
            demo_count = load_demo(client, demo_index.prefix, self.corpus, added)
            demo_s = time.perf_counter() - clock
            after = memory_usage.used_memory(client)
        self.raw["loading"].append(
            {
                "phase": phase.name,
                "messages": project_count,
                "project_load_s": round(project_s, 2),
                "demo_load_s": round(demo_s, 2),
                "project_msgs_per_s": round(project_count / project_s, 1),
                "demo_msgs_per_s": round(demo_count / demo_s, 1),
            }
        )
        samples = self.config.memory_samples
        project_sample = memory_usage.sample_project(
            client, self.layout, self.population.users(), samples, self.rng
        )
        project_index = memory_usage.index_bytes_per_doc(client, self.layout.index_name)
        demo_index_bytes = memory_usage.index_bytes_per_doc(client, demo_index.name)
        self.raw["memory"].append(
            {
                "phase": phase.name,
                "messages_loaded": project_count,
                "project": {
                    "bytes_per_message_used_memory": round((middle - before) / project_count, 1),
                    **project_sample,
                    "index_bytes_per_message": round(project_index, 1),
                },
                "demo": {
                    "bytes_per_message_used_memory": round((after - middle) / demo_count, 1),
                    **memory_usage.sample_demo(client, demo_index.prefix, samples),
                    "index_bytes_per_message": round(demo_index_bytes, 1),
                },
            }
        )
        self.raw["verified_users"] += verify_read_back(
            self.memory,
            self.demo.session_manager,
            self.corpus,
            self.population,
            self.config.verify_users_per_group,
            self.rng,
            max(self.config.windows),
        )
        self.log(f"[{phase.name}] loaded and read back; measuring")

    def sweep(self, phase: Phase) -> None:
        config, population = self.config, self.population
        for history in config.histories:
            for window in config.windows:
                store_window_size(self.client, self.layout, population.by_history[history], window)
                cell = measure_cell(
                    config,
                    self.project,
                    self.floor,
                    self.demo,
                    population,
                    history,
                    window,
                    self.rng,
                )
                self.raw["cells"].append(
                    {
                        "phase": phase.name,
                        "users": phase.users,
                        "messages_total": population.messages,
                        "history": history,
                        "window": window,
                        "stats": cell,
                    }
                )
                read = cell["read"]
                self.log(
                    f"  history {history:>6,} N {window:>2}: read p50 project "
                    f"{read['project'].p50_us:8.1f}us floor {read['floor'].p50_us:8.1f}us "
                    f"demo {read['demo'].p50_us:9.1f}us"
                )
        for window in config.windows:
            flat = measure_flatness(config, self.project, population, window, self.rng)
            self.raw["flat"].append(
                {"phase": phase.name, "users": phase.users, "window": window, "stats": flat}
            )
            self.log(
                f"  flatness N {window:>2}: "
                + ", ".join(f"history {h:,} {s.p50_us:.1f}us" for h, s in flat.items())
            )

    def turns(self) -> None:
        self.log("turns (writes included), project against demo")
        window = self.config.turn_window
        for history in self.config.histories:
            users = self.population.by_history[history]
            store_window_size(self.client, self.layout, users, window)
            stats = measure_turns(
                self.config,
                self.project,
                self.demo,
                self.population,
                self.corpus,
                history,
                self.rng,
            )
            self.raw["turns"].append({"history": history, "window": window, "stats": stats})

    def concurrency(self) -> None:
        count = self.config.concurrency_users
        self.log(f"concurrency: {count} users in threads, one shared client")
        users = self.rng.sample(self.population.users(), count)
        self.raw["concurrency"] = run_concurrency(
            self.project, self.corpus, users, self.config.concurrency_turns, self.config.turn_window
        )
