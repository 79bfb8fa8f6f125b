"""One load level: fresh app instances, N signed-in users who each open the page (idle), then
chat for a while (prompt, the whole reply, a pause to read, the next prompt), every reply
checked in Redis afterwards.

Memory per session is the RSS an instance grew by per session it holds: idle (each user's page
rendered once) and chatting (the peak while they chat), over a baseline taken after one
warm-up user had chatted once (imports, caches and the model client are paid for by then).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs

import redis

from bench.load import profile
from bench.load.client import PageSession, Turn
from bench.load.instances import Backends, app_instances, base_url, identity_headers, pids
from bench.load.metrics import Sampler, Window, rss_mb
from bench.load.model import ModelProcess, reply_to
from memory import ChatMemory, Role
from tests.support.streamlit_process import StreamlitProcess

OPEN_AT_ONCE = 8  # pages loading at the same time while users arrive


@dataclass(frozen=True)
class StageSpec:
    users: int
    instances: int = 1
    duration: float = 60.0  # seconds during which users press Enter
    think: float = 5.0  # mean pause between a reply and the next prompt (0.5x to 1.5x)
    turn_timeout: float = 60.0
    max_turns: int = 10_000
    seed: int = 31
    profile: bool = False  # py-spy on each instance during the chat window
    variant: str = "app"  # the page and options the instances ran (see __main__)


@dataclass
class TurnRecord:
    user: str
    instance: int
    turn: Turn
    in_window: bool
    model_first_token: float | None = None
    model_finished: float | None = None
    stored_in_redis: bool = False


@dataclass
class StageResult:
    spec: StageSpec
    turns: list[TurnRecord]
    window: Window
    split: list[int]  # users per instance
    baseline_mb: list[float]
    idle_mb: list[float]
    open_failures: int = 0
    profiles: list[Path] = field(default_factory=list)  # py-spy raw stacks, one per instance


@dataclass
class User:
    name: str
    instance: int
    page: PageSession
    opened: bool = False


@dataclass(frozen=True)
class Bench:
    """What every stage of a run shares."""

    backends: Backends
    model: ModelProcess
    memory: ChatMemory
    redis: redis.Redis
    redis_pid: int
    results_dir: Path


def _prompt(user: str, number: int) -> str:
    return f"Question {number} from {user}: how long should a variable name be?"


async def _open(users: Sequence[User], gate: asyncio.Semaphore) -> int:
    """Open every user's page, a few at a time; how many could not be opened."""

    async def one(user: User) -> None:
        async with gate:
            try:
                await user.page.open()
                user.opened = True
            except Exception:  # an unopened page is counted, not fatal
                user.opened = False

    await asyncio.gather(*(one(user) for user in users))
    return sum(not user.opened for user in users)


async def _chat(
    user: User,
    spec: StageSpec,
    window: tuple[float, float],
    record: Callable[[TurnRecord], bool],
    rng: random.Random,
) -> None:
    """Prompt, wait for the whole turn, pause, again: until the window closes."""
    await asyncio.sleep(rng.uniform(0, spec.think))  # nobody presses Enter in step
    number = 0
    while time.monotonic() < window[1]:
        number += 1
        turn = await user.page.chat(_prompt(user.name, number), spec.turn_timeout)
        in_window = window[0] <= turn.entered <= window[1]
        if not record(TurnRecord(user.name, user.instance, turn, in_window)):
            return
        if turn.error == "the websocket closed":
            return
        await asyncio.sleep(spec.think * rng.uniform(0.5, 1.5))


def _verify(memory: ChatMemory, user: str, query: str, records: list[TurnRecord]) -> None:
    """Each turn the page saw stored: its prompt and then its reply, in Redis, in order."""
    conversation = (parse_qs(query).get("c") or [""])[0]
    if not conversation:
        return
    stored = [(m.role, m.content) for m in memory.messages(user, conversation)]
    pairs = set(itertools.pairwise(stored))
    for record in records:
        turn = record.turn
        record.stored_in_redis = (
            (Role.USER, turn.prompt),
            (Role.ASSISTANT, turn.expected),
        ) in pairs


async def _chat_phase(
    users: Sequence[User], spec: StageSpec, sampler: Sampler, rng: random.Random
) -> tuple[list[TurnRecord], Window]:
    """Every opened page chats until `spec.duration` is over; the figures cover that window,
    the turns still running then are waited for (bounded) and kept, marked outside it."""
    records: list[TurnRecord] = []

    def record(entry: TurnRecord) -> bool:
        records.append(entry)
        return len(records) < spec.max_turns

    start = time.monotonic()
    window = (start, start + spec.duration)
    sampler.start()
    chats = [
        asyncio.create_task(_chat(user, spec, window, record, random.Random(rng.random())))
        for user in users
        if user.opened
    ]
    await asyncio.sleep(spec.duration)
    figures = sampler.stop()
    _, late = await asyncio.wait(chats, timeout=spec.turn_timeout + 2 * spec.think + 10)
    for task in late:
        task.cancel()
    return records, figures


async def _warm_up(servers: Sequence[StreamlitProcess], prefix: str) -> None:
    for number, server in enumerate(servers):
        page = PageSession(base_url(server), identity_headers(f"{prefix}-warm{number}"), reply_to)
        await page.open()
        await page.chat("Warm-up: say anything.")
        await page.close()


async def run_stage(spec: StageSpec, bench: Bench, label: str) -> StageResult:
    rng = random.Random(spec.seed)
    logs = bench.results_dir / "logs" / label
    logs.mkdir(parents=True, exist_ok=True)
    with app_instances(spec.instances, replace(bench.backends, log_dir=logs)) as servers:
        await _warm_up(servers, label)
        await asyncio.sleep(1.0)
        baseline = [rss_mb(server.process.pid) for server in servers]
        users = []
        for number in range(spec.users):  # new sessions in turn, as a balancer spreads them
            name, instance = f"{label}-u{number}", number % spec.instances
            page = PageSession(base_url(servers[instance]), identity_headers(name), reply_to)
            users.append(User(name, instance, page))
        failures = await _open(users, asyncio.Semaphore(OPEN_AT_ONCE))
        await asyncio.sleep(2.0)
        idle = [rss_mb(server.process.pid) for server in servers]
        watched = {**pids(servers), "redis": bench.redis_pid, "model": bench.model.pid}
        sampler = Sampler({**watched, "client": os.getpid()}, bench.redis)
        profiles = _profile(servers, spec, bench.results_dir / label) if spec.profile else []
        records, window = await _chat_phase(users, spec, sampler, rng)
        for recorder, _ in profiles:
            if recorder is not None:
                recorder.wait(timeout=30)
        await asyncio.gather(*(user.page.close() for user in users), return_exceptions=True)
    for user in users:
        mine = [r for r in records if r.user == user.name]
        await asyncio.to_thread(_verify, bench.memory, user.name, user.page.query_string, mine)
    timings = bench.model.timings()
    for entry in records:
        timing = timings.get(entry.turn.prompt)
        if timing is not None:
            entry.model_first_token, entry.model_finished = timing.first_token, timing.finished
    split = [sum(user.instance == i for user in users) for i in range(spec.instances)]
    written = [path for _, path in profiles if path.exists()]
    return StageResult(spec, records, window, split, baseline, idle, failures, written)


def _profile(
    servers: Sequence[StreamlitProcess], spec: StageSpec, prefix: Path
) -> list[tuple[subprocess.Popen[bytes] | None, Path]]:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [prefix.with_name(f"{prefix.name}-app{i}.pyspy.txt") for i in range(len(servers))]
    return [
        (profile.start(server.process.pid, spec.duration, path), path)
        for server, path in zip(servers, paths, strict=True)
    ]
