"""Many users chatting at once through the one client a process shares.

`users` threads, one synthetic user each, start together and each run `turns` full turns
(ProjectApp.turn) back to back with no think time. An error is any exception, or a user whose
stored conversation afterwards is not exactly what they wrote, in order.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bench.contenders import ProjectApp
from bench.corpus import Corpus
from bench.population import BenchUser
from bench.timing import Stats, summarize
from memory import Role

_OFFSET = 1_000_000  # corpus positions no loaded user reached, so texts are this run's


@dataclass
class _Outcome:
    durations: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completed: int = 0


@dataclass(frozen=True)
class ConcurrencyResult:
    users: int
    turns_per_user: int
    turns: int
    errors: int
    error_samples: list[str]
    wall_s: float
    turn: Stats

    def as_dict(self) -> dict[str, object]:
        return {
            "users": self.users,
            "turns_per_user": self.turns_per_user,
            "turns": self.turns,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "wall_s": round(self.wall_s, 3),
            "turns_per_s": round(self.turns / self.wall_s, 1) if self.wall_s else 0.0,
            "appends_per_s": round(2 * self.turns / self.wall_s, 1) if self.wall_s else 0.0,
            "turn": self.turn.as_dict(),
        }


def run_concurrency(
    project: ProjectApp, corpus: Corpus, users: list[BenchUser], turns: int, window: int
) -> ConcurrencyResult:
    memory = project.memory
    before = {u.user_id: memory.conversation(u.user_id, page_size=0).total_messages for u in users}
    outcomes = {u.user_id: _Outcome() for u in users}
    barrier = threading.Barrier(len(users) + 1)

    def chat(user: BenchUser) -> None:
        outcome = outcomes[user.user_id]
        barrier.wait()
        for t in range(turns):
            prompt = corpus.message(user.index, _OFFSET + 2 * t)
            reply = corpus.message(user.index, _OFFSET + 2 * t + 1)
            assert reply.usage is not None
            started = time.perf_counter_ns()
            try:
                project.turn(user.user_id, window, prompt.content, reply.content, reply.usage)
            except Exception as error:
                outcome.errors.append(f"{type(error).__name__}: {error}")
                continue
            outcome.durations.append(time.perf_counter_ns() - started)
            outcome.completed += 1

    threads = [threading.Thread(target=chat, args=(u,), daemon=True) for u in users]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started

    for user in users:
        outcome = outcomes[user.user_id]
        problem = _check_stored(project, corpus, user, before[user.user_id], outcome.completed)
        if problem:
            outcome.errors.append(problem)
    errors = [e for o in outcomes.values() for e in o.errors]
    durations = [d for o in outcomes.values() for d in o.durations]
    return ConcurrencyResult(
        users=len(users),
        turns_per_user=turns,
        turns=sum(o.completed for o in outcomes.values()),
        errors=len(errors),
        error_samples=errors[:5],
        wall_s=wall,
        turn=summarize(durations),
    )


def _check_stored(
    project: ProjectApp, corpus: Corpus, user: BenchUser, before: int, completed: int
) -> str | None:
    written = 2 * completed
    conversation = project.memory.conversation(
        user.user_id, window_size=0, page_size=min(max(written, 1), 1000)
    )
    if conversation.total_messages != before + written:
        return f"{user.user_id}: {conversation.total_messages} stored, expected {before + written}"
    expected = [corpus.message(user.index, _OFFSET + k) for k in range(written)]
    stored = list(conversation.recent[-written:]) if written else []
    if [(m.role, m.content) for m in stored] != [(e.role, e.content) for e in expected]:
        return f"{user.user_id}: stored messages differ from those written (order or content)"
    if written and stored[-1].role is not Role.ASSISTANT:
        return f"{user.user_id}: last message is not the reply"
    return None
