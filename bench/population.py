"""Which synthetic users exist and how many messages each has."""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.config import Phase
from bench.corpus import user_id
from memory.keys import user_tag


@dataclass(frozen=True)
class BenchUser:
    index: int
    user_id: str
    tag: str
    history: int


class Population:
    """Users grouped by history length; each phase adds users to reach its group sizes."""

    def __init__(self) -> None:
        self.by_history: dict[int, list[BenchUser]] = {}
        self._next_index = 0

    def grow(self, phase: Phase) -> list[BenchUser]:
        added: list[BenchUser] = []
        for group in phase.groups:
            members = self.by_history.setdefault(group.history, [])
            while len(members) < group.users:
                index = self._next_index
                self._next_index += 1
                user = BenchUser(index, user_id(index), user_tag(user_id(index)), group.history)
                members.append(user)
                added.append(user)
        return added

    def users(self) -> list[BenchUser]:
        return [user for members in self.by_history.values() for user in members]

    def pick(self, rng: random.Random, history: int) -> BenchUser:
        return rng.choice(self.by_history[history])

    @property
    def messages(self) -> int:
        return sum(user.history for user in self.users())
