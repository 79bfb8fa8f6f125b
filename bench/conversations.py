"""Conversations (issue 16), side by side in one loop: opening one (its page read) for
users with 1 to 1,000 conversations and for a conversation of 10 or 10,000 messages; the list
against a raw ZREVRANGE of its ids (and a raw ZREVRANGE of the rows it reads); search against a raw
FT.SEARCH of the same query string. `python -m bench --quick` runs it small; at scale (not in CI):

    python -m bench.conversations [--users 10000] [--messages 100]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable, Sequence

import redis

from bench.config import FULL, ConversationSizes
from bench.contenders import CONVERSATION
from bench.corpus import SYSTEM_TEXT
from bench.report import conversations_table
from bench.server import embedded_redis
from bench.timing import Interleaved, Row
from memory import ChatMemory, StorageLimits, SystemInstruction
from memory.keys import conversation_tag, user_tag
from memory.search import search_query, search_terms
from memory.store import _HIT_FIELDS, WORK_BATCH

WORDS = [f"w{n:x}" for n in range(5000)]  # a full-text index gets a realistic number of terms
OPENED, PAGE, HITS = 10, 50, 20  # messages in the opened conversation; list page; search hits


def load(memory: ChatMemory, client: redis.Redis, plan: list[tuple[str, str, int]],
         chars: int) -> None:  # fmt: skip
    """(user, conversation id, messages): the project's append script, 1,000 per pipeline."""
    rng, layout = random.Random(7), memory._layout
    pipe = client.pipeline(transaction=False)
    for user, cid, count in plan:
        tag = user_tag(user)
        for index in range(count):
            key = layout.message_key(tag, uuid.uuid4().hex)
            content = " ".join(rng.choices(WORDS, k=max(1, chars // 5)))
            entry = key.removeprefix(layout.message_prefix + ":")
            # append.lua's ARGV: conversation, batch, then memory/writing.py's message block
            args = [cid, WORK_BATCH, "user" if index % 2 == 0 else "assistant", content,
                    conversation_tag(tag, cid), 150, "o200k_base", "", "", "", user, entry, tag,
                    "", 10**9, 10**12]  # fmt: skip
            memory._append(keys=[*memory._user_keys(tag), key], args=args, client=pipe)
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.zadd(layout.user_registry_key, {tag: 0}, nx=True)
        pipe.hset(layout.settings_key(tag), "registered", 1)
    pipe.execute()


def populate(memory: ChatMemory, client: redis.Redis, sizes: ConversationSizes
             ) -> dict[str, list[str]]:  # fmt: skip
    """Users with each count of conversations, and with one conversation of each length, by
    group name `<conversations>x<messages in the opened one>`."""
    groups = {f"{c}x{OPENED}": [f"convs{c}-{i}" for i in range(sizes.users)] for c in sizes.counts}
    for length in sizes.lengths[1:]:
        groups[f"1x{length}"] = [f"long{length}-{i}" for i in range(sizes.users)]
    plan = [(user, CONVERSATION, int(name.split("x")[1])) for name, users in groups.items()
            for user in users]  # fmt: skip
    plan += [(f"convs{c}-{i}", f"{k:x}", 2) for c in sizes.counts for i in range(sizes.users)
             for k in range(1, c)]  # fmt: skip
    load(memory, client, plan, 600)
    return groups


def measure(memory: ChatMemory, client: redis.Redis, sizes: ConversationSizes,
            search_users: list[str], words: Sequence[str]) -> list[Row]:  # fmt: skip
    """Every contender on a user of its group, in one interleaved loop."""
    groups, layout = populate(memory, client, sizes), memory._layout
    most = f"{max(sizes.counts)}x{OPENED}"
    Draw = tuple[dict[str, str], str, str]

    def pick(rng: random.Random) -> Draw:
        users = {name: rng.choice(members) for name, members in groups.items()}
        return users, rng.choice(search_users), " ".join(rng.sample(words, 2))

    def raw_list(draw: Draw, rows: bool) -> object:
        tag = user_tag(draw[0][most])
        if rows:
            return client.zrevrange(layout.listing_key(tag), 0, PAGE)
        key = layout.conversations_key(tag)
        return client.execute_command("ZREVRANGE", key, 0, PAGE - 1, "WITHSCORES")

    def raw_search(draw: Draw) -> object:
        query = search_query(user_tag(draw[1]), search_terms(draw[2]))
        return client.execute_command("FT.SEARCH", layout.index_name, query, "RETURN",
                                      len(_HIT_FIELDS), *_HIT_FIELDS, "LIMIT", 0, HITS,
                                      "DIALECT", 2)  # fmt: skip

    contenders: dict[str, Callable[[Draw], object]] = {
        f"open.{name}": lambda d, g=name: memory.conversation(d[0][g], CONVERSATION)
        for name in groups
    } | {
        "list.project": lambda d: memory.conversations(d[0][most], limit=PAGE),
        "list.zrevrange": lambda d: raw_list(d, False),
        "list.listing": lambda d: raw_list(d, True),
        "search.project": lambda d: memory.search(d[1], d[2], limit=HITS),
        "search.floor": raw_search,
    }
    timing = Interleaved(contenders, pick, sizes.warmup, sizes.iterations)
    return timing.run(random.Random(3), "", 0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.conversations", description=__doc__)
    parser.add_argument("--users", type=int, default=10_000, help="users searched")
    parser.add_argument("--messages", type=int, default=100, help="messages per searched user")
    args = parser.parse_args()
    with embedded_redis() as server:
        client = redis.Redis(port=server.port, decode_responses=True, protocol=2)
        client.config_set("appendfsync", "everysec")
        memory = ChatMemory(client, default_system=SystemInstruction(text=SYSTEM_TEXT),
                            index_name="convbench",
                            limits=StorageLimits(max_messages=10**9, max_bytes=10**12))  # fmt: skip
        users = [f"user{n}@example.com" for n in range(args.users)]
        started = time.perf_counter()
        load(memory, client, [(user, CONVERSATION, args.messages) for user in users], 600)
        while int(client.ft("convbench").info().get("indexing", 0)):
            time.sleep(0.2)
        took, total = time.perf_counter() - started, args.users * args.messages
        rows = measure(memory, client, FULL.conversations, users, WORDS)
    print(f"{args.users:,} users x {args.messages} messages ({total:,}, ~600 chars each) loaded "
          f"and indexed in {took:.0f} s ({total / took:,.0f} messages/s)\n")  # fmt: skip
    print(conversations_table(rows))


if __name__ == "__main__":
    main()
