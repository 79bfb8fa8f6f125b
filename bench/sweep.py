"""The timed comparisons: sweep cells (read and render), flatness in history, whole turns."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bench.config import BenchConfig
from bench.contenders import Floor, ProjectApp
from bench.corpus import Corpus, SyntheticMessage
from bench.demo import DemoApp
from bench.population import BenchUser, Population
from bench.timing import Interleaved, Stats
from memory.keys import KeyLayout


@dataclass(frozen=True)
class TurnSubject:
    user: BenchUser
    prompt: SyntheticMessage
    reply: SyntheticMessage


def store_window_size(
    client: redis.Redis, layout: KeyLayout, users: list[BenchUser], window: int
) -> None:
    """What `ChatMemory.set_window_size` writes, for many users in one pipeline, so the
    render reads the user's stored window as app.py does."""
    pipe = client.pipeline(transaction=False)
    for user in users:
        pipe.hset(layout.settings_key(user.tag), "window_size", window)
    pipe.execute()


def measure_cell(
    config: BenchConfig,
    project: ProjectApp,
    floor: Floor,
    demo: DemoApp,
    population: Population,
    history: int,
    window: int,
    rng: random.Random,
) -> dict[str, dict[str, Stats]]:
    """`read`: the headline (request + token count); `render`: app.py's page render."""
    page = config.page_size
    contenders: dict[str, Callable[[BenchUser], object]] = {
        "read.project": lambda u: project.read(u.user_id, window),
        "read.floor": lambda u: floor.read(u.tag, window),
        "read.demo": lambda u: demo.read(u.user_id, window),
        "render.project": lambda u: project.render(u.user_id),
        "render.floor": lambda u: floor.read(u.tag, page),
        "render.demo": lambda u: demo.rerun(u.user_id, window),
    }
    stats = Interleaved(
        contenders,
        lambda r: population.pick(r, history),
        config.warmup,
        config.iterations,
        config.cell_budget_s,
    ).run(rng)
    result: dict[str, dict[str, Stats]] = {"read": {}, "render": {}}
    for name, value in stats.items():
        measure, contender = name.split(".")
        result[measure][contender] = value
    return result


def measure_turns(
    config: BenchConfig,
    project: ProjectApp,
    demo: DemoApp,
    population: Population,
    corpus: Corpus,
    history: int,
    rng: random.Random,
) -> dict[str, Stats]:
    """Whole turns (writes included), project against demo, interleaved. Each turn stores a
    new prompt and reply; both contenders get the same texts."""
    window = config.turn_window
    positions = iter(range(2_000_000, 10**9, 2))

    def pick(r: random.Random) -> TurnSubject:
        user = population.pick(r, history)
        position = next(positions)
        return TurnSubject(
            user, corpus.message(user.index, position), corpus.message(user.index, position + 1)
        )

    def project_turn(s: TurnSubject) -> object:
        assert s.reply.usage is not None
        return project.turn(
            s.user.user_id, window, s.prompt.content, s.reply.content, s.reply.usage
        )

    def demo_turn(s: TurnSubject) -> object:
        return demo.rerun(s.user.user_id, window, prompt=s.prompt.content, reply=s.reply.content)

    contenders: dict[str, Callable[[TurnSubject], object]] = {
        "project": project_turn,
        "demo": demo_turn,
    }
    return Interleaved(contenders, pick, config.turn_warmup, config.turn_iterations).run(rng)


def measure_flatness(
    config: BenchConfig,
    project: ProjectApp,
    population: Population,
    window: int,
    rng: random.Random,
) -> dict[int, Stats]:
    """The project's read at every history length, side by side in one interleaved loop.

    Comparing sweep cells with each other would compare numbers taken minutes apart next to
    different neighbours: a read that follows a 40 ms demo call is slower than one that follows
    a 0.3 ms floor call, whatever the history (see `python -m bench.diagnose`). Here the only
    thing that differs between contenders is the history length of the user read.
    """

    def reader(history: int) -> Callable[[random.Random], object]:
        return lambda r: project.read(population.pick(r, history).user_id, window)

    contenders = {str(history): reader(history) for history in config.histories}
    stats = Interleaved(contenders, lambda r: r, config.warmup, config.iterations).run(rng)
    return {int(history): value for history, value in stats.items()}
