"""Why the project's read looks slower at long histories in the sweep, and why it is not.

    python -m bench.diagnose [--redis-url URL]

In the sweep, each cell interleaves the project's read with the floor's and the demo's, and
those neighbours take 0.3 ms at history 10 but 15-45 ms at history 10,000. This loads a small
population and measures the project's read (N=5, five messages returned at every history):

A. at every history side by side (no other neighbour): flat if history does not matter;
B. next to the floor and the demo, one history per loop, as the sweep does;
C. Redis's own time per EVALSHA (INFO commandstats), per history;
D. at history 10 next to neighbours that send Redis nothing at all and only sleep (or spin)
   for as long as the demo's calls take. If D is as slow as B at 10,000, the slowdown comes
   from the pause before the read (idle CPUs waking up, cold caches), not from the history.
"""

from __future__ import annotations

import argparse
import functools
import random
import time
from collections.abc import Callable

import redis

from bench.config import Group, Phase
from bench.contenders import Floor, ProjectApp
from bench.corpus import SYSTEM_TEXT, Corpus
from bench.demo import DemoApp
from bench.loader import load_demo, load_project
from bench.population import BenchUser, Population
from bench.server import (
    bulk_load_durability,
    drop_bench_data,
    redis_target,
    tune_owned_server,
)
from bench.timing import Interleaved, Stats
from memory import ChatMemory, RedisTarget, SystemInstruction, create_redis_client
from memory.keys import KeyLayout

HISTORIES = (10, 100, 1000, 10000)
WINDOW = 5
ITERATIONS = 400
INDEXES = ("diagchat", "diagdemo")


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _show(label: str, stats: dict[str, Stats]) -> None:
    cells = ", ".join(f"{name} {value.p50_us:,.1f}" for name, value in stats.items())
    print(f"{label:<46} p50 us: {cells}", flush=True)


class Diagnosis:
    def __init__(self, memory: ChatMemory, floor: Floor, demo: DemoApp, population: Population):
        self.project = ProjectApp(memory, 50)
        self.floor = floor
        self.demo = demo
        self.population = population
        self.rng = random.Random(7)

    def pick(self, history: int) -> Callable[[random.Random], BenchUser]:
        return functools.partial(self._pick, history=history)

    def _pick(self, rng: random.Random, history: int) -> BenchUser:
        return self.population.pick(rng, history)

    def read(self, user: BenchUser) -> object:
        return self.project.read(user.user_id, WINDOW)

    def side_by_side(self) -> None:
        across: dict[str, Callable[[random.Random], object]] = {
            f"h{h}": functools.partial(self._read_random, history=h) for h in HISTORIES
        }
        _show("A side by side", Interleaved(across, lambda r: r, 40, ITERATIONS).run(self.rng))

    def _read_random(self, rng: random.Random, history: int) -> object:
        return self.read(self.population.pick(rng, history))

    def with_neighbours(self) -> None:
        neighbours: dict[str, Callable[[BenchUser], object]] = {
            "project": self.read,
            "floor": lambda u: self.floor.read(u.tag, WINDOW),
            "demo": lambda u: self.demo.read(u.user_id, WINDOW),
        }
        for history in HISTORIES:
            iterations = ITERATIONS if history < 10000 else ITERATIONS // 3
            loop = Interleaved(neighbours, self.pick(history), 20, iterations)
            _show(f"B history {history:,} with floor+demo", loop.run(self.rng))

    def server_time(self, client: redis.Redis) -> None:
        per_call: list[str] = []
        for history in HISTORIES:
            client.config_resetstat()
            for _ in range(ITERATIONS):
                self.read(self.population.pick(self.rng, history))
            usec = client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
            per_call.append(f"h{history} {float(usec):.1f}")
        print(f"{'C Redis time per EVALSHA':<46} us: " + ", ".join(per_call), flush=True)

    def idle_neighbours(self) -> None:
        pauses: dict[str, Callable[[], None]] = {
            "sleep 1 ms": functools.partial(time.sleep, 0.001),
            "sleep 15 ms": functools.partial(time.sleep, 0.015),
            "sleep 40 ms": functools.partial(time.sleep, 0.040),
            "spin 15 ms": functools.partial(_spin, 0.015),
        }
        for label, pause in pauses.items():
            idle: dict[str, Callable[[BenchUser], object]] = {
                "project": self.read,
                label: lambda _user, wait=pause: wait(),  # type: ignore[misc]
            }
            loop = Interleaved(idle, self.pick(10), 20, 150)
            _show(f"D history 10 next to '{label}'", loop.run(self.rng))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.diagnose", description=__doc__)
    parser.add_argument("--redis-url")
    args = parser.parse_args(argv)
    with redis_target(args.redis_url) as target:
        client = create_redis_client(RedisTarget(url=target.url))
        if target.owned:
            tune_owned_server(client)
        memory = ChatMemory(
            client, default_system=SystemInstruction(text=SYSTEM_TEXT), index_name=INDEXES[0]
        )
        demo = DemoApp(target.url, INDEXES[1])
        try:
            population = Population()
            groups = tuple(Group(h, max(5, 10_000 // h)) for h in HISTORIES)
            users = population.grow(Phase("diagnose", groups))
            corpus = Corpus(1, memory.token_counter)
            with bulk_load_durability(client, target.owned):
                encoding = memory.token_counter.encoding_name
                load_project(client, KeyLayout(INDEXES[0]), corpus, users, encoding)
                load_demo(client, INDEXES[1], corpus, users)
            diagnosis = Diagnosis(memory, Floor(client, INDEXES[0]), demo, population)
            diagnosis.side_by_side()
            diagnosis.with_neighbours()
            diagnosis.server_time(client)
            diagnosis.idle_neighbours()
        finally:
            demo.close()
            if not target.owned:
                drop_bench_data(client, INDEXES)
            client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
