"""One run: the Redis, the data (written by the real writers), then every timed comparison."""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import redis
from redis.typing import EncodableT, FieldT

from bench import conversations
from bench.config import BenchConfig
from bench.contenders import CONVERSATION, Floor, ProjectApp
from bench.corpus import SYSTEM_TEXT, WORDS, Corpus, SyntheticMessage
from bench.demo import DemoApp
from bench.server import bulk_loading, drop_indexes, redis_url
from bench.timing import Interleaved, Row
from memory import ChatMemory, RedisTarget, StorageLimits, SystemInstruction, create_redis_client
from memory.keys import user_tag

LOAD_THREADS = 4


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BenchUser:
    index: int
    user_id: str
    tag: str
    history: int


@dataclass
class Results:
    config: BenchConfig
    rows: list[Row]
    bytes_per_message: dict[str, float]
    """`used_memory` growth per message loaded, per contender (hash, timeline, index share)."""
    mean_chars: float
    server: str
    indexes: tuple[str, str]
    elapsed_s: float = 0.0


def run(config: BenchConfig, url: str | None) -> Results:
    started = time.monotonic()
    suffix = uuid.uuid4().hex[:6]
    names = (f"benchchat{suffix}", f"benchdemo{suffix}")
    with redis_url(url) as (target, owned):
        client = create_redis_client(RedisTarget(url=target))
        demo: DemoApp | None = None
        try:
            memory = ChatMemory(
                client,
                default_system=SystemInstruction(text=SYSTEM_TEXT),
                index_name=names[0],
                limits=StorageLimits(max_messages=10**9, max_bytes=10**12),  # histories > caps
            )
            demo = DemoApp(target, names[1])
            results = _Run(config, client, memory, demo).measure(owned, names)
        finally:
            if demo is not None:
                demo.close()
            if not owned:
                drop_indexes(client, names)
            client.close()
    results.elapsed_s = time.monotonic() - started
    return results


class _Run:
    def __init__(
        self, config: BenchConfig, client: redis.Redis, memory: ChatMemory, demo: DemoApp
    ) -> None:
        self.config, self.client, self.memory, self.demo = config, client, memory, demo
        self.rng = random.Random(config.seed)
        self.corpus = Corpus(config.seed)
        self.project = ProjectApp(memory, config.page_size)
        self.floor = Floor(client, memory._layout.index_name)
        self.users: dict[int, list[BenchUser]] = {}
        self.rows: list[Row] = []
        index = 0
        for history, count in config.users_by_history.items():
            ids = [(i, f"user{i:05d}") for i in range(index, index + count)]
            self.users[history] = [BenchUser(i, u, user_tag(u), history) for i, u in ids]
            index += count

    def measure(self, owned: bool, indexes: tuple[str, str]) -> Results:
        with bulk_loading(self.client, owned):
            bytes_per_message = self.load()
        for history in self.config.histories:
            for window in self.config.windows:
                self.sweep_cell(history, window)
        for window in self.config.windows:
            self.flatness(window)
        log("turns (writes included), then writes")
        for history in self.config.histories:
            self.turns(history)
        self.writes()
        log("conversations (issue 16)")
        searched = [u.user_id for members in self.users.values() for u in members]
        self.rows += conversations.measure(self.memory, self.client, self.config.conversations,
                                           searched, WORDS)  # fmt: skip
        server = f"Redis {self.client.info('server')['redis_version']}"
        mean_chars = self.corpus.mean_chars()
        return Results(self.config, self.rows, bytes_per_message, mean_chars, server, indexes)

    def load(self) -> dict[str, float]:
        """Every user's messages through ChatMemory.append, then the same texts through the
        demo's MessageHistory.add_messages (its system message first)."""
        users = sorted((u for us in self.users.values() for u in us), key=lambda u: -u.history)
        log(f"loading {self.config.messages:,} messages through each writer")

        def project(user: BenchUser) -> None:
            for k in range(user.history):
                message = self.corpus.message(user.index, k)
                self.memory.append(user.user_id, message.role, message.content, usage=message.usage,
                                   conversation_id=CONVERSATION)  # fmt: skip

        def demo(user: BenchUser) -> None:
            messages = [{"role": "system", "content": SYSTEM_TEXT}]
            for k in range(user.history):
                message = self.corpus.message(user.index, k)
                messages.append({"role": message.role.value, "content": message.content})
            self.demo.session_manager.add_messages(messages, session_tag=user.user_id)

        used = {}
        for name, writer in (("project", project), ("demo", demo)):
            before = int(self.client.info("memory")["used_memory"])
            with ThreadPoolExecutor(LOAD_THREADS) as pool:
                list(pool.map(writer, users))  # the longest first
            grown = int(self.client.info("memory")["used_memory"]) - before
            used[name] = grown / self.config.messages
        for user in (us[-1] for us in self.users.values()):
            if self.memory.count(user.user_id, CONVERSATION) != user.history:
                raise RuntimeError(f"{user.user_id} does not hold {user.history} messages")
        return used

    def _store_window(self, history: int, window: int) -> None:
        """The render reads the user's stored window size, as app.py does."""
        for user in self.users[history]:
            self.memory.set_window_size(user.user_id, window)

    def sweep_cell(self, history: int, window: int) -> None:
        """`read`: the headline (the request and its token count); `render`: app.py's page."""
        self._store_window(history, window)
        project, floor, demo, page = self.project, self.floor, self.demo, self.config.page_size
        contenders: dict[str, Callable[[BenchUser], object]] = {
            "read.project": lambda u: project.read(u.user_id, window),
            "read.floor": lambda u: floor.read(u.tag, window),
            "read.demo": lambda u: demo.read(u.user_id, window),
            "render.project": lambda u: project.render(u.user_id),
            "render.floor": lambda u: floor.read(u.tag, page),
            "render.demo": lambda u: demo.rerun(u.user_id, window),
        }
        config, users = self.config, self.users[history]
        timing = Interleaved(
            contenders, lambda rng: rng.choice(users), config.warmup, config.iterations,
            config.cell_budget_s,
        )  # fmt: skip
        rows = timing.run(self.rng, "cell", history, window)
        self.rows += rows
        read = ", ".join(f"{r.contender} {r.p50_us:,.0f}" for r in rows if r.measure == "read")
        log(f"  history {history:,} N {window}: read p50 us {read}")

    def flatness(self, window: int) -> None:
        """The project's read at every history side by side in one loop (sweep cells are
        minutes apart, after different neighbours, so not comparable with each other)."""
        contenders = {
            str(history): lambda rng, h=history: self.project.read(
                rng.choice(self.users[h]).user_id, window
            )
            for history in self.config.histories
        }
        timing = Interleaved(
            contenders, lambda rng: rng, self.config.warmup, self.config.iterations
        )
        for row in timing.run(self.rng, "flat", 0, window):
            self.rows.append(replace(row, history=int(row.contender), contender="project"))

    def turns(self, history: int) -> None:
        """Whole turns, project against demo, each given the same new prompt and reply."""
        window, positions = self.config.turn_window, iter(range(2_000_000, 10**9, 2))
        self._store_window(history, window)
        Turn = tuple[str, SyntheticMessage, SyntheticMessage]

        def pick(rng: random.Random) -> Turn:
            user, k = rng.choice(self.users[history]), next(positions)
            message = self.corpus.message
            return user.user_id, message(user.index, k), message(user.index, k + 1)

        contenders: dict[str, Callable[[Turn], object]] = {
            "project": lambda s: self.project.turn(s[0], window, s[1].content, s[2].content,
                                                   s[2].usage),
            "demo": lambda s: self.demo.rerun(s[0], window, s[1].content, s[2].content),
        }  # fmt: skip
        timing = Interleaved(contenders, pick, 5, self.config.turn_iterations)
        self.rows += timing.run(self.rng, "turn", history, window)

    def writes(self) -> None:
        """One message stored per call: ChatMemory.append (tokenize, one Lua round trip),
        MessageHistory.add_message, and a bare indexed HSET of the demo's fields (the floor)."""
        users = [u for members in self.users.values() for u in members]
        positions, history = iter(range(3_000_000, 10**9)), self.demo.session_manager

        def pick(rng: random.Random) -> tuple[str, SyntheticMessage]:
            user = rng.choice(users)
            return user.user_id, self.corpus.message(user.index, next(positions))

        def floor(s: tuple[str, SyntheticMessage]) -> object:
            key = f"{self.demo.name}:floor:{uuid.uuid4().hex}"
            role, content = s[1].role.value, s[1].content
            fields: dict[FieldT, EncodableT] = {"role": role, "content": content, "timestamp": 1}
            return self.client.hset(key, mapping=fields | {"session_tag": "floor"})

        contenders: dict[str, Callable[[tuple[str, SyntheticMessage]], object]] = {
            "project": lambda s: self.memory.append(s[0], s[1].role, s[1].content,
                                                    usage=s[1].usage,
                                                    conversation_id=CONVERSATION),
            "demo": lambda s: history.add_message({"role": s[1].role.value,
                                                   "content": s[1].content}, s[0]),
            "floor": floor,
        }  # fmt: skip
        timing = Interleaved(contenders, pick, 50, self.config.write_iterations)
        self.rows += timing.run(self.rng, "write", 0, 0)
