"""Sequential write throughput: one message stored per call, the three ways interleaved.

- project: `ChatMemory.append` (tokenizes the content once, one Lua round trip: message hash,
  timeline, sequence and usage totals, atomically);
- demo: redisvl `MessageHistory.add_message` (pydantic model, one HSET);
- floor: one raw HSET of the project's message fields into the project's index (indexed the
  same way, nothing else: no timeline, no sequence, no tokenizing).

Every write is durable before it returns (`appendfsync always`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bench.contenders import ProjectApp
from bench.corpus import Corpus, SyntheticMessage
from bench.demo import DemoApp
from bench.loader import project_fields
from bench.population import BenchUser, Population
from bench.timing import Interleaved, Stats
from memory.keys import KeyLayout, user_tag


@dataclass(frozen=True)
class WriteSubject:
    user: BenchUser
    message: SyntheticMessage


def measure_writes(
    client: redis.Redis,
    layout: KeyLayout,
    project: ProjectApp,
    demo: DemoApp,
    corpus: Corpus,
    population: Population,
    warmup: int,
    iterations: int,
    rng: random.Random,
) -> dict[str, Stats]:
    users = population.users()
    floor_tag = user_tag("bench-floor-writes")
    encoding = project.memory.token_counter.encoding_name
    counter = iter(range(10**9))

    def pick(r: random.Random) -> WriteSubject:
        user = r.choice(users)
        return WriteSubject(user, corpus.message(user.index, next(counter)))

    def project_append(s: WriteSubject) -> object:
        return project.memory.append(
            s.user.user_id, s.message.role, s.message.content, usage=s.message.usage
        )

    def demo_add(s: WriteSubject) -> object:
        demo.session_manager.add_message(
            {"role": s.message.role.value, "content": s.message.content},
            session_tag=s.user.user_id,
        )
        return None

    def floor_hset(s: WriteSubject) -> object:
        key = f"{layout.message_prefix}:{{{floor_tag}}}:{uuid.uuid4().hex}"
        fields = project_fields(s.message, key, layout, floor_tag, 1, 0, encoding)
        return client.hset(key, mapping=fields)

    contenders: dict[str, Callable[[WriteSubject], object]] = {
        "project_append": project_append,
        "demo_add_message": demo_add,
        "floor_hset": floor_hset,
    }
    return Interleaved(contenders, pick, warmup, iterations).run(rng)
