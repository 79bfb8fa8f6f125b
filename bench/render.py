"""A page render of a 10-message conversation (issue 26 item 5), side by side in one loop:
`ChatMemory.page_view` (one script call: the page, the window, settings, the list, the summary
state), the three reads it replaces (`conversation`, `conversations`, `SummaryStore.state`),
and redisvl's `MessageHistory.get_recent` page read of the same 10 messages (what a redisvl
chat page reads, nothing else). Then the memory work of a chat turn (model call left out):
`begin_turn` + `finish_turn` against the six calls they replace (admit, append the prompt,
read the window and the summary state, append the reply, settle), in one loop.

    python -m bench.render [--users 200] [--iterations 2000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import random
import uuid
from collections.abc import Callable

import redis
from redisvl.extensions.message_history import MessageHistory

from bench.corpus import SYSTEM_TEXT, Corpus
from bench.report import table
from bench.server import drop_indexes, redis_url
from bench.timing import Interleaved, Row
from memory import ChatMemory, Role, StorageLimits, SystemInstruction, new_conversation_id
from memory.limits import LimitPolicy, UsageLimits
from memory.summary import SummaryStore

MESSAGES, OTHER_CONVERSATIONS, PAGE = 10, 4, 50
TARGET = 1.0  # page_view no slower than get_recent (p50 ratio)


def load(memory: ChatMemory, history: MessageHistory, users: list[str]) -> dict[str, str]:
    """Each user: the opened conversation of 10 messages and four others of two; redisvl gets
    the same 10 messages under the user's session tag. Returns the opened id per user."""
    corpus, opened = Corpus(7), {}
    for number, user in enumerate(users):
        for _ in range(OTHER_CONVERSATIONS):
            cid = new_conversation_id()
            for k in range(2):
                message = corpus.message(number, k)
                memory.append(user, message.role, message.content, conversation_id=cid)
        opened[user] = new_conversation_id()
        texts = [corpus.message(number, k) for k in range(MESSAGES)]
        for message in texts:
            memory.append(user, message.role, message.content, usage=message.usage,
                          conversation_id=opened[user])  # fmt: skip
        history.add_messages(
            [{"role": m.role.value, "content": m.content} for m in texts], session_tag=user
        )
    return opened


def measure(client: redis.Redis, index: str, users: int, iterations: int) -> list[Row]:
    memory = ChatMemory(client, default_system=SystemInstruction(text=SYSTEM_TEXT),
                        index_name=index, limits=StorageLimits(10**9, 10**12))  # fmt: skip
    summaries = SummaryStore(client, index)
    history = MessageHistory(name=f"{index}rvl", prefix=f"{index}rvl", redis_client=client)
    names = [f"user{n}@example.com" for n in range(users)]
    opened = load(memory, history, names)

    def three_reads(user: str) -> object:
        cid = opened[user]
        page = memory.conversation(user, cid, page_size=PAGE)
        return page, memory.conversations(user, limit=PAGE), summaries.state(user, cid)

    contenders: dict[str, Callable[[str], object]] = {
        "page_view": lambda u: memory.page_view(u, opened[u], page_size=PAGE, list_limit=PAGE),
        "three_reads": three_reads,
        "get_recent": lambda u: history.get_recent(top_k=MESSAGES, session_tag=u),
    }
    timing = Interleaved(contenders, lambda rng: rng.choice(names), 50, iterations)
    rows = timing.run(random.Random(11), "render", MESSAGES, 0)
    return rows + measure_turns(memory, UsageLimits(client, index_name=index), summaries, names,
                                iterations // 2)  # fmt: skip


def measure_turns(memory: ChatMemory, limits: UsageLimits, summaries: SummaryStore,
                  users: list[str], iterations: int) -> list[Row]:  # fmt: skip
    """Each contender in its own conversation per user, so both grow alike."""
    policy, prompt, reply = LimitPolicy(0, 0), "What changed since then?", "Nothing much."
    before = {user: new_conversation_id() for user in users}
    now = {user: new_conversation_id() for user in users}

    def six_calls(user: str) -> object:
        cid = before[user]
        held = limits.acquire(user, 1_000, policy)
        memory.append(user, Role.USER, prompt, conversation_id=cid)
        window = memory.context_window(user, cid, 5), summaries.state(user, cid)
        memory.append(user, Role.ASSISTANT, reply, conversation_id=cid)
        limits.settle(held, 200)
        return window

    def two_calls(user: str) -> object:
        start = memory.begin_turn(user, now[user], policy=policy, reply_tokens=800,
                                  prompt=prompt, window_size=5)  # fmt: skip
        return memory.finish_turn(start, reply=reply, used_tokens=200)

    contenders: dict[str, Callable[[str], object]] = {
        "turn.begin+finish": two_calls,
        "turn.six_calls": six_calls,
    }
    timing = Interleaved(contenders, lambda rng: rng.choice(users), 20, iterations)
    return timing.run(random.Random(12), "turn", MESSAGES, 5)


def render_table(rows: list[Row]) -> str:
    """The render against get_recent, the turn against the six calls; p50/p95/p99 in us."""
    tables = []
    for measure, reference, title in (
        ("render", "get_recent", f"PAGE RENDER, {MESSAGES} MESSAGES (page_view = one script "
                                 f"call; target page_view/get_recent p50 <= {TARGET}x; us)"),
        ("turn", "six_calls", "CHAT TURN, MEMORY WORK (begin+finish = two script calls; us)"),
    ):  # fmt: skip
        by = {row.contender: row for row in rows if row.measure == measure}
        base = by[reference]
        tables.append(table(
            title, ["contender", "p50", "p95", "p99", f"p50 / {reference}", f"p95 / {reference}"],
            [[name, row.p50_us, row.p95_us, row.p99_us, f"{row.p50_us / base.p50_us:.2f}x",
              f"{row.p95_us / base.p95_us:.2f}x"] for name, row in by.items()],
        ))  # fmt: skip
    return "\n\n".join(tables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.render", description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--redis-url", help="this Redis instead of an embedded one")
    args = parser.parse_args(argv)
    index = f"benchrender{uuid.uuid4().hex[:6]}"
    with redis_url(args.redis_url) as (url, owned):
        # protocol 2: redisvl's index reads need it on redis-py 8 (the app's client, RESP3,
        # measured the same for page_view)
        client = redis.Redis.from_url(url, decode_responses=True, protocol=2)
        try:
            rows = measure(client, index, args.users, args.iterations)
        finally:
            if not owned:
                drop_indexes(client, (index, f"{index}rvl"))
            client.close()
    print(render_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
