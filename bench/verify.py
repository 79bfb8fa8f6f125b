"""Checks that the bulk-loaded data is what the real writers would have produced and reads
back correctly; any mismatch stops the run (figures over wrong data would be meaningless)."""

from __future__ import annotations

import random
import re
import uuid

import redis
from redisvl.extensions.message_history import MessageHistory

from bench.corpus import SYSTEM_TEXT, Corpus
from bench.loader import load_demo, load_project
from bench.population import BenchUser, Population
from memory import ChatMemory
from memory.keys import KeyLayout, user_tag

_PROBE_INDEX = 999_999
_PROBE_MESSAGES = 6


class LayoutMismatch(AssertionError):
    """The loader and the real writer disagree, or loaded data does not read back."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise LayoutMismatch(what)


def _probe(label: str) -> BenchUser:
    name = f"probe-{label}-{uuid.uuid4().hex[:8]}"
    return BenchUser(_PROBE_INDEX, name, user_tag(name), _PROBE_MESSAGES)


def _message_hashes(client: redis.Redis, layout: KeyLayout, tag: str) -> list[dict[str, str]]:
    keys = [str(key) for key in client.zrange(layout.timeline_key(tag), 0, -1)]
    return [
        {str(k): str(v) for k, v in client.hgetall(key).items()} | {"__key__": key} for key in keys
    ]


def verify_project_layout(
    client: redis.Redis, memory: ChatMemory, layout: KeyLayout, corpus: Corpus
) -> None:
    """The same messages written by ChatMemory.append and by the loader give the same keys,
    fields, values (ids and clocks aside), encodings, timeline scores and settings."""
    written, loaded = _probe("append"), _probe("load")
    for k in range(_PROBE_MESSAGES):
        message = corpus.message(written.index, k)
        memory.append(written.user_id, message.role, message.content, usage=message.usage)
    load_project(client, layout, corpus, [loaded], memory.token_counter.encoding_name)
    try:
        ours, theirs = (_message_hashes(client, layout, u.tag) for u in (loaded, written))
        _check(len(ours) == len(theirs) == _PROBE_MESSAGES, "timeline lengths differ")
        for mine, real in zip(ours, theirs, strict=True):
            _check(mine.keys() == real.keys(), f"fields differ: {sorted(mine)} vs {sorted(real)}")
            for field in mine.keys() - {"__key__", "entry_id", "session_tag", "created_at"}:
                _check(
                    mine[field] == real[field], f"field {field}: {mine[field]!r} vs {real[field]!r}"
                )
            for row, user in ((mine, loaded), (real, written)):
                pattern = re.escape(layout.message_prefix) + r":\{" + user.tag + r"\}:[0-9a-f]{32}"
                _check(re.fullmatch(pattern, row["__key__"]) is not None, "message key format")
                _check(row["entry_id"] == row["__key__"].split(":", 2)[2], "entry_id format")
                _check(row["session_tag"] == user.tag, "session_tag")
                _check(re.fullmatch(r"\d+\.\d{3}", row["created_at"]) is not None, "created_at")
                _check(client.ttl(row["__key__"]) == -1, "message TTL")
            _check(
                client.object("encoding", mine["__key__"])
                == client.object("encoding", real["__key__"]),
                "hash encodings differ",
            )
        scores = [
            [
                entry[1]
                for entry in client.zrange(layout.timeline_key(u.tag), 0, -1, withscores=True)
            ]
            for u in (loaded, written)
        ]
        _check(scores[0] == scores[1], "timeline scores differ")
        settings = [client.hgetall(layout.settings_key(u.tag)) for u in (loaded, written)]
        _check(settings[0].pop("user_id") == loaded.user_id, "settings user_id")
        _check(settings[1].pop("user_id") == written.user_id, "settings user_id")
        _check(settings[0] == settings[1], f"settings differ: {settings[0]} vs {settings[1]}")
        _check(not client.exists(layout.expiry_key(loaded.tag)), "unexpected expiry key")
    finally:
        for user in (written, loaded):
            memory.clear(user.user_id)
            client.delete(layout.settings_key(user.tag))


def verify_demo_layout(client: redis.Redis, history: MessageHistory, corpus: Corpus) -> None:
    """The loader's demo documents have redisvl's key format and fields."""
    written, loaded = _probe("append"), _probe("load")
    prefix = history._index.prefix
    history.add_message({"role": "system", "content": SYSTEM_TEXT}, session_tag=written.user_id)
    for k in range(_PROBE_MESSAGES):
        message = corpus.message(written.index, k)
        history.add_message(
            {"role": message.role.value, "content": message.content}, session_tag=written.user_id
        )
    load_demo(client, prefix, corpus, [loaded])
    try:
        rows = []
        for user in (loaded, written):
            raw = history.get_recent(top_k=100, session_tag=user.user_id, raw=True)
            _check(len(raw) == _PROBE_MESSAGES + 1, "demo history length")
            rows.append([client.hgetall(row["id"]) | {"__key__": row["id"]} for row in raw])
        for mine, real in zip(*rows, strict=True):
            _check(
                mine.keys() == real.keys(), f"demo fields differ: {sorted(mine)} vs {sorted(real)}"
            )
            _check((mine["role"], mine["content"]) == (real["role"], real["content"]), "demo text")
        for row, user in zip(rows[0], [loaded] * len(rows[0]), strict=True):
            pattern = re.escape(user.user_id) + r":\d+\.\d+:[0-9a-f]{8}"
            _check(re.fullmatch(pattern, row["entry_id"]) is not None, "demo entry_id format")
            _check(row["__key__"] == f"{prefix}:{row['entry_id']}", "demo key format")
            _check(float(row["timestamp"]) > 0 and row["session_tag"] == user.user_id, "demo tag")
    finally:
        for user in (written, loaded):
            for row in history.get_recent(top_k=100, session_tag=user.user_id, raw=True):
                client.delete(row["id"])


def verify_read_back(
    memory: ChatMemory,
    history: MessageHistory,
    corpus: Corpus,
    population: Population,
    per_group: int,
    rng: random.Random,
    window: int,
) -> int:
    """Loaded users read back through ChatMemory (and the demo's MessageHistory) exactly as
    written. Returns the number of users checked."""
    checked = 0
    for members in population.by_history.values():
        for user in rng.sample(members, min(per_group, len(members))):
            expected = [corpus.message(user.index, k) for k in range(user.history)]
            conversation = memory.conversation(user.user_id, window_size=window, page_size=50)
            _check(conversation.total_messages == user.history, f"{user.user_id}: total")
            page = expected[-50:]
            got = [(m.role, m.content, m.token_count, m.usage) for m in conversation.recent]
            want = [(m.role, m.content, m.token_count, m.usage) for m in page]
            _check(got == want, f"{user.user_id}: page differs")
            _check(
                [m.content for m in conversation.window.messages]
                == [m.content for m in expected[-window:]],
                f"{user.user_id}: window differs",
            )
            _check(
                [m.seq for m in conversation.recent]
                == list(range(user.history - len(page) + 1, user.history + 1)),
                f"{user.user_id}: sequence numbers",
            )
            totals = conversation.usage_totals
            replies = [m.usage for m in expected if m.usage is not None]
            _check(totals.replies == len(replies), f"{user.user_id}: usage replies")
            _check(
                totals.prompt_tokens == sum(u.prompt_tokens for u in replies),
                f"{user.user_id}: usage totals",
            )
            if checked == 0 or user.history <= 1000:
                everything = memory.messages(user.user_id)
                _check([m.content for m in everything] == [m.content for m in expected], "all")
            demo_expected = [("system", SYSTEM_TEXT)] + [
                (m.role.value, m.content) for m in expected
            ]
            recent = history.get_recent(top_k=5, session_tag=user.user_id)
            _check(
                [(m["role"], m["content"]) for m in recent] == demo_expected[-5:],
                f"{user.user_id}: demo read-back",
            )
            _check(history.count(session_tag=user.user_id) == user.history + 1, "demo count")
            checked += 1
    return checked
