"""Conversations (issue 16) in memory/ against a real Redis: on the single server and on a real
3-master Redis Cluster (the `redis_client` fixture of tests/test_memory.py)."""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redisvl.extensions.message_history import MessageHistory

from memory import (
    MAX_WINDOW,
    ChatMemory,
    IndexUnavailable,
    InvalidInput,
    RedisClient,
    Role,
    StorageLimitReached,
    TitleSource,
    Usage,
    new_conversation_id,
)
from memory.keys import KeyLayout, conversation_tag, user_tag
from memory.store import WORK_BATCH
from memory.summary import Summary, SummaryStore
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.test_memory import on_cluster
from tests.test_memory import redis_client as single_and_cluster

redis_client = single_and_cluster  # every test here runs on the single server and the cluster

USER = "rey@jakku.example"
SINGLE_ONLY = pytest.mark.parametrize("redis_client", ["single"], indirect=True)


def say(memory: ChatMemory, user: str, cid: str, *texts: str) -> None:
    """Alternate prompt and reply, starting with a prompt."""
    for number, text in enumerate(texts):
        role = Role.USER if number % 2 == 0 else Role.ASSISTANT
        memory.append(user, role, text, conversation_id=cid)


def settings_of(client: RedisClient, index_name: str, user: str) -> dict[Any, Any]:
    return dict(client.hgetall(KeyLayout(index_name).settings_key(user_tag(user))))


def user_keys(client: RedisClient, user: str) -> list[str]:
    return sorted(client.scan_iter(match=f"*{{{user_tag(user)}}}*", count=1000))


def test_a_new_chat_stores_nothing_until_its_first_message(
    memory: ChatMemory, redis_client: RedisClient
) -> None:
    cid = new_conversation_id()
    opened = memory.conversation(USER, cid)
    assert opened.info is None and opened.total_messages == 0 and opened.conversation_id == cid
    assert memory.conversations(USER).total == 0
    assert user_keys(redis_client, USER) == []
    before = time.time()
    say(memory, USER, cid, "What is the Force, in a few words?", "An energy field.")
    info = memory.conversation(USER, cid).info
    assert info is not None and info.id == cid and info.message_count == 2
    assert info.title == "What is the Force, in a few words?" and info.title_source == "words"
    assert before - 1 < info.created_at <= info.last_active < time.time() + 1


def test_list_is_most_recently_active_first_with_pinned_apart(memory: ChatMemory) -> None:
    ids = [new_conversation_id() for _ in range(4)]
    for cid in ids:
        say(memory, USER, cid, f"first words of {cid}")
    say(memory, USER, ids[0], "back to the first")  # now the most recently active
    assert [c.id for c in memory.conversations(USER).recent] == [ids[0], ids[3], ids[2], ids[1]]
    memory.pin_conversation(USER, ids[2], True)
    memory.pin_conversation(USER, ids[1], True)
    listing = memory.conversations(USER, limit=3)  # a page: pinned first, then the rest
    assert [c.id for c in listing.pinned] == [ids[1], ids[2]]  # most recently pinned first
    assert all(c.pinned for c in listing.pinned)
    assert [c.id for c in listing.recent] == [ids[0]] and listing.total == 4
    memory.pin_conversation(USER, ids[1], False)
    assert [c.id for c in memory.conversations(USER).pinned] == [ids[2]]
    counts = {c.id: c.message_count for c in memory.conversations(USER).recent}
    assert counts == {ids[0]: 2, ids[3]: 1, ids[1]: 1}
    with pytest.raises(InvalidInput, match="no such conversation"):
        memory.pin_conversation(USER, new_conversation_id(), True)


def listed_as_opened(memory: ChatMemory, user: str) -> tuple[list[Any], list[Any]]:
    """The list's entries next to what opening each of them reads (record, timeline, score)."""
    listing = memory.conversations(user, limit=50)
    entries = [*listing.pinned, *listing.recent]
    opened = [memory.conversation(user, c.id, window_size=0, page_size=0).info for c in entries]
    return entries, opened


def test_the_list_shows_what_each_conversation_holds_after_every_change(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    """The list reads a page of precomputed rows in one call; every way a count, title, time
    or pin changes keeps those rows equal to the conversation itself."""
    rng = random.Random(16)
    ids = [new_conversation_id() for _ in range(6)]
    for step in range(60):
        cid = rng.choice(ids)
        op = rng.choice(["say", "say", "say", "rename", "auto", "pin", "unpin", "clear", "undo"])
        try:
            if op == "say":
                say(memory, USER, cid, f"prompt {step}", f"reply {step}")
            elif op == "rename":
                memory.rename_conversation(USER, cid, f"Name | {step}")
            elif op == "auto":
                memory.set_auto_title(USER, cid, f"Model title {step}", "model")
            elif op in ("pin", "unpin"):
                memory.pin_conversation(USER, cid, op == "pin")
            elif op == "clear":
                memory.clear(USER, cid)
            else:
                last = memory.conversation(USER, cid).recent[-1]
                memory.remove_last(USER, cid, last.seq)
        except (InvalidInput, IndexError):
            pass  # no such conversation yet, or nothing to undo
        entries, opened = listed_as_opened(memory, USER)
        assert entries == opened, f"after {op} on {cid}"
    memory.delete_conversation(USER, ids[0])
    entries, opened = listed_as_opened(memory, USER)
    assert entries == opened and ids[0] not in {c.id for c in entries}
    memory.set_retention(USER, 1)
    time.sleep(1.1)  # every message expires; pruning them rewrites the rows
    entries, opened = listed_as_opened(memory, USER)
    assert entries == opened and {c.message_count for c in entries} == {0}
    memory.set_retention(USER, None)
    layout = KeyLayout(index_name)
    # Rows by id lost: the next write leaves the listing out of step, and it heals.
    redis_client.delete(layout.conversation_rows_key(user_tag(USER)))
    say(memory, USER, ids[1], "after the loss")
    entries, opened = listed_as_opened(memory, USER)
    assert entries == opened and len({c.id for c in entries}) == len(entries) == 5


def test_a_listing_from_before_it_existed_is_rebuilt_on_first_read(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    """Data of the release before the listing: rebuilt in bounded calls, then read natively."""
    ids = [new_conversation_id() for _ in range(2 * WORK_BATCH + 3)]
    for cid in ids:
        say(memory, USER, cid, f"about {cid}")
    memory.pin_conversation(USER, ids[0], True)
    before = memory.conversations(USER, limit=MAX_WINDOW)
    listing = KeyLayout(index_name).listing_key(user_tag(USER))
    redis_client.delete(listing)
    assert memory.conversations(USER, limit=MAX_WINDOW) == before
    assert [c.id for c in before.pinned] == [ids[0]] and before.total == len(ids)
    assert [c.id for c in before.recent][:2] == [ids[-1], ids[-2]]
    assert redis_client.zcard(listing) == len(ids) + 1  # every row, and the head


def test_the_most_recent_conversation_is_found_among_all_pins(memory: ChatMemory) -> None:
    assert memory.most_recent_conversation(USER) is None
    older_pin, newer_pin, plain = (new_conversation_id() for _ in range(3))
    for cid in (older_pin, newer_pin, plain):
        say(memory, USER, cid, "hello")
    memory.pin_conversation(USER, older_pin, True)
    memory.pin_conversation(USER, newer_pin, True)
    assert memory.most_recent_conversation(USER) == plain
    say(memory, USER, older_pin, "back here")  # active last, but not the latest pin
    assert memory.most_recent_conversation(USER) == older_pin


def test_titles_the_user_wrote_are_never_replaced_by_automatic_ones(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, USER, cid, "  tell   me\nabout  droids and their many uses across the galaxy ")
    info = memory.conversations(USER).recent[0]
    assert (info.title, info.title_source) == ("tell me about droids and their many uses…", "words")
    assert not memory.set_auto_title(USER, cid, "other words", TitleSource.WORDS)
    assert memory.set_auto_title(USER, cid, "Droids", TitleSource.MODEL)
    assert not memory.set_auto_title(USER, cid, "Droid talk", TitleSource.MODEL)
    renamed = memory.rename_conversation(USER, cid, "  My   droids ")
    assert (renamed.title, renamed.title_source) == ("My droids", "user")
    assert not memory.set_auto_title(USER, cid, "Model title", TitleSource.MODEL)
    assert memory.conversations(USER).recent[0].title == "My droids"
    for bad in ("", "   ", "x" * 121):
        with pytest.raises(InvalidInput, match="title"):
            memory.rename_conversation(USER, cid, bad)
    with pytest.raises(InvalidInput, match="no such conversation"):
        memory.rename_conversation(USER, new_conversation_id(), "Ghost")
    long_word = new_conversation_id()
    say(memory, USER, long_word, "é" * 100)
    title = memory.conversation(USER, long_word).info.title  # type: ignore[union-attr]
    assert title == "é" * 30 + "…"  # cut at 60 bytes, never inside a character


def test_clearing_one_conversation_leaves_the_others(memory: ChatMemory) -> None:
    kept, cleared = new_conversation_id(), new_conversation_id()
    say(memory, USER, kept, "keep this", "kept")
    say(memory, USER, cleared, "clear this", "cleared", "and this")
    say(memory, "finn", cleared, "same id, other user")
    assert memory.clear(USER, cleared) == 3
    assert memory.count(USER, cleared) == 0 and memory.count(USER, kept) == 2
    assert memory.count("finn", cleared) == 1
    listing = memory.conversations(USER)
    assert {c.id: c.message_count for c in listing.recent} == {kept: 2, cleared: 0}


def test_deleting_a_conversation_removes_every_key_of_it(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    kept, gone = new_conversation_id(), new_conversation_id()
    say(memory, USER, kept, "keep")
    say(memory, USER, gone, "delete", "me")
    memory.pin_conversation(USER, gone, True)
    SummaryStore(redis_client, index_name).save(USER, gone, Summary("s", 1, 1, "m"), None)
    assert memory.delete_conversation(USER, gone) == 2
    assert not [key for key in user_keys(redis_client, USER) if gone in key]
    listing = memory.conversations(USER)
    assert [c.id for c in listing.recent] == [kept] and listing.pinned == () and listing.total == 1
    assert settings_of(redis_client, index_name, USER)["stored_messages"] == "1"


def test_remove_last_takes_the_tail_atomically_and_refuses_more_than_two(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    memory.set_retention(USER, 3600)
    say(memory, USER, cid, "one", "two", "three?", "four!")
    with pytest.raises(InvalidInput, match="last 2"):
        memory.remove_last(USER, cid, 2)
    assert memory.count(USER, cid) == 4
    assert memory.remove_last(USER, cid, 3) == 2  # edit the last prompt: prompt and reply
    assert [m.content for m in memory.messages(USER, cid)] == ["one", "two"]
    stored = settings_of(redis_client, index_name, USER)
    assert (stored["stored_messages"], stored["stored_bytes"]) == ("2", str(len("onetwo")))
    assert redis_client.zcard(KeyLayout(index_name).expiry_key(user_tag(USER))) == 2
    assert memory.remove_last(USER, cid, 2) == 1  # regenerate: the reply
    assert memory.remove_last(USER, cid, 9) == 0
    assert [m.content for m in memory.messages(USER, cid)] == ["one"]


def test_erasing_a_user_leaves_no_key_and_no_index_hit(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    memory.set_system_instruction(USER, "Be kind.")
    memory.set_retention(USER, 3600)
    ids = [new_conversation_id() for _ in range(3)]
    for cid in ids:
        say(memory, USER, cid, f"secret plans {cid}", "noted")
    memory.pin_conversation(USER, ids[0], True)
    SummaryStore(redis_client, index_name).save(USER, ids[1], Summary("s", 1, 1, "m"), None)
    layout, tag = KeyLayout(index_name), user_tag(USER)
    redis_client.hset(layout.token_budget_key(tag), mapping={"day": 1, "used": 5})
    redis_client.zadd(layout.request_log_key(tag), {"r": 1})
    say(memory, "finn", ids[0], "finn's secret plans")
    assert memory.erase_user(USER) == 6
    assert user_keys(redis_client, USER) == []
    assert redis_client.zscore(layout.user_registry_key, tag) is None
    assert memory.count("finn", ids[0]) == 1
    if not on_cluster(redis_client):
        assert memory.search(USER, "secret plans") == []
        found = redis_client.ft(index_name).search(f"@user_tag:{{{tag}}} | @session_tag:{{{tag}}}")
        assert found.total == 0
        assert [hit.conversation_id for hit in memory.search("finn", "secret")] == [ids[0]]


def test_retention_applies_to_every_conversation(
    memory: ChatMemory, redis_client: RedisClient
) -> None:
    ids = [new_conversation_id() for _ in range(3)]
    for cid in ids:
        say(memory, USER, cid, "a", "b")
    memory.set_retention(USER, 1)
    time.sleep(1.2)
    fresh = new_conversation_id()
    say(memory, USER, fresh, "after")
    listing = memory.conversations(USER)
    assert {c.id: c.message_count for c in listing.recent} == {fresh: 1, **dict.fromkeys(ids, 0)}
    assert all(memory.messages(USER, cid) == [] for cid in ids)


def test_caps_count_every_conversation_of_the_user(
    redis_client: RedisClient, index_name: str, capped_memory: Callable[..., ChatMemory]
) -> None:
    memory = capped_memory(max_messages=3, max_bytes=40)
    first, second = new_conversation_id(), new_conversation_id()
    say(memory, USER, first, "one", "two")
    say(memory, USER, second, "three")
    with pytest.raises(StorageLimitReached, match="MAX_MESSAGES_PER_USER"):
        say(memory, USER, new_conversation_id(), "four")
    memory.clear(USER, first)
    say(memory, USER, second, "x" * 30)
    with pytest.raises(StorageLimitReached, match="MAX_BYTES_PER_USER"):
        say(memory, USER, first, "y" * 10)
    say(memory, "finn", first, "another user has caps of their own")
    assert memory.count(USER, first) == 0 and memory.count(USER, second) == 2


def test_redisvl_reads_exactly_one_conversation(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    first, second = new_conversation_id(), new_conversation_id()
    say(memory, USER, first, "first 1", "first 2", "first 3")
    say(memory, USER, second, "second 1", "second 2")
    tag = conversation_tag(user_tag(USER), second)
    if on_cluster(redis_client):
        with pytest.raises(IndexUnavailable, match="cannot span this Redis Cluster"):
            memory.history.get_recent(top_k=10, session_tag=tag)
        return
    history = MessageHistory(name=index_name, session_tag=tag, redis_client=redis_client)
    assert [m["content"] for m in history.get_recent(top_k=10)] == ["second 1", "second 2"]


def test_imported_messages_keep_their_times(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    memory.append(USER, Role.USER, "from 2023", conversation_id=cid, created_at=1_700_000_000.5)
    memory.append(USER, Role.ASSISTANT, "reply", conversation_id=cid, created_at=1_700_000_060)
    info = memory.conversation(USER, cid).info
    assert info is not None
    assert (info.created_at, info.last_active) == (1_700_000_000.5, 1_700_000_060)
    assert [m.created_at for m in memory.messages(USER, cid)] == [1_700_000_000.5, 1_700_000_060]
    with pytest.raises(InvalidInput, match="time"):
        memory.append(USER, Role.USER, "x", conversation_id=cid, created_at=-1)


@pytest.mark.parametrize("bad", ["", "XYZ", "0" * 33, "../x", "abc-def", 7])
def test_a_bad_conversation_id_is_refused_clearly(memory: ChatMemory, bad: Any) -> None:
    with pytest.raises(InvalidInput, match="conversation id"):
        memory.append(USER, Role.USER, "hi", conversation_id=bad)
    with pytest.raises(InvalidInput, match="conversation id"):
        memory.conversation(USER, bad)
    assert memory.conversations(USER).total == 0


def test_clear_all_empties_every_conversation_of_every_user(memory: ChatMemory) -> None:
    ids = [new_conversation_id() for _ in range(3)]
    for user in ("rey", "finn"):
        for cid in ids:
            say(memory, user, cid, "hello", "there")
    assert memory.clear_all() == 12
    for user in ("rey", "finn"):
        listing = memory.conversations(user)
        assert listing.total == 3 and all(c.message_count == 0 for c in listing.recent)


# --- search ------------------------------------------------------------------------------------


def test_search_finds_own_messages_across_conversations_with_a_snippet(
    memory: ChatMemory, redis_client: RedisClient
) -> None:
    first, second = new_conversation_id(), new_conversation_id()
    say(memory, USER, first, "Where is the hyperdrive motivator?", "In the " + "cargo " * 60)
    say(memory, USER, second, "Fix the hyperdrive", "The hyperdrive is fixed.")
    say(memory, "finn", first, "my hyperdrive is not yours")
    if on_cluster(redis_client):
        with pytest.raises(IndexUnavailable, match="cannot span"):
            memory.search(USER, "hyperdrive")
        return
    hits = memory.search(USER, "HyperDrive")
    assert sorted((h.conversation_id, h.seq) for h in hits) == sorted(
        [(first, 1), (second, 3), (second, 4)]
    )
    by_seq = {h.seq: h for h in hits}
    assert by_seq[1].snippet == "Where is the hyperdrive motivator?"
    assert by_seq[1].title == "Where is the hyperdrive motivator?" and by_seq[1].role is Role.USER
    assert by_seq[4].role is Role.ASSISTANT and by_seq[4].created_at > 0
    assert memory.search(USER, "motivator hyperdrive")[0].seq == 1
    assert memory.search(USER, "hyperdrive", limit=1)[0].conversation_id in {first, second}


SYNTAX = '"quotes" @x {y} a|b -z *'


@SINGLE_ONLY
@pytest.mark.parametrize(
    "query", [SYNTAX, "@session_tag:{x}", "(quotes) | -z", '"unclosed', "~x %y%", "a\\b", "x*"]
)
def test_search_text_is_never_parsed_as_query_syntax(memory: ChatMemory, query: str) -> None:
    cid = new_conversation_id()
    say(memory, USER, cid, SYNTAX, "ok")
    say(memory, "finn", cid, SYNTAX)
    hits = memory.search(USER, query)
    assert all(hit.conversation_id == cid and hit.seq == 1 for hit in hits)
    assert [h.snippet for h in memory.search(USER, SYNTAX)] == [SYNTAX]


@SINGLE_ONLY
@pytest.mark.parametrize("query", ["", "   ", "!!!", '"" @{} | - *', "\n\t"])
def test_search_without_a_word_finds_nothing(memory: ChatMemory, query: str) -> None:
    say(memory, USER, new_conversation_id(), "anything at all")
    assert memory.search(USER, query) == []


ALPHABET = string.ascii_letters + string.digits + " \"'@{}|-*()[]:;~%$^!?.,\\/<>=+&#" + "éß日"
USERS = ["rey", "Rey", "rey ", "@session_tag:{rey}", "*", "{x}", "finn|rey", "-rey"]


@SINGLE_ONLY
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user=st.sampled_from(USERS), query=st.text(alphabet=ALPHABET, max_size=40))
def test_search_never_returns_another_users_message(
    memory: ChatMemory, user: str, query: str
) -> None:
    if not memory.conversations(USERS[0]).total:  # written once per test, shared by examples
        rng = random.Random(16)
        words = ["shared", "force", "rey", "session_tag", "x", "y", "a", "b", "z", "quotes"]
        for owner in USERS:
            for number in range(3):
                text = " ".join(rng.choices(words, k=5)) + f" owner:{USERS.index(owner)}"
                say(memory, owner, new_conversation_id(), text + (" " + SYNTAX) * (number % 2))
    mine = {
        m.content for c in memory.conversations(user).recent for m in memory.messages(user, c.id)
    }
    for hit in memory.search(user, query + " shared"):
        assert f"owner:{USERS.index(user)}" in hit.snippet or any(
            hit.snippet.strip("…") in content for content in mine
        )
        assert hit.conversation_id in {c.id for c in memory.conversations(user).recent}


# --- upgrade from the release before conversations ---------------------------------------------


def write_legacy_user(client: RedisClient, index_name: str, user: str, texts: list[str]) -> None:
    """A user exactly as today's append.lua left them: one timeline, no conversation list."""
    layout, tag = KeyLayout(index_name), user_tag(user)
    expire_at = int(time.time() * 1000) + 3_600_000
    stored_bytes = 0
    for seq, text in enumerate(texts, start=1):
        key = f"{index_name}:msg:{{{tag}}}:legacy{seq}"
        metadata = Usage(10, 2).as_metadata() if seq % 2 == 0 else ""
        fields: dict[str, str | int] = {
            "entry_id": key.removeprefix(f"{index_name}:msg:"),
            "role": "user" if seq % 2 else "assistant",
            "content": text,
            "session_tag": tag,
            "timestamp": seq,
            "created_at": f"{1_700_000_000 + seq:.3f}",
            "token_count": 5,
            "token_encoding": "o200k_base",
        } | ({"metadata": metadata} if metadata else {})
        client.hset(key, mapping=fields)  # type: ignore[arg-type]
        client.pexpireat(key, expire_at)
        client.zadd(layout.timeline_key(tag), {key: seq})
        size = len(text.encode()) + len(metadata.encode())
        client.zadd(layout.expiry_key(tag), {f"{size}|{key}": expire_at})
        stored_bytes += size
    legacy_settings: dict[str, str | int] = {
        "seq": len(texts),
        "user_id": user,
        "registered": 1,
        "ttl": 3600,
        "stored_bytes": stored_bytes,
        "usage_prompt_tokens": 10 * (len(texts) // 2),
        "usage_completion_tokens": 2 * (len(texts) // 2),
        "usage_replies": len(texts) // 2,
        "system_text": "Speak like Yoda.",
        "system_preset": "",
        "system_tokens": 9,
        "system_encoding": "o200k_base",
        "window_size": 7,
        "summary_enabled": "1",
    }
    client.hset(layout.settings_key(tag), mapping=legacy_settings)  # type: ignore[arg-type]
    client.hset(
        layout.summary_key(tag),
        mapping={"text": "They talked.", "covers_seq": 2, "token_count": 3, "model": "m"},
    )
    client.zadd(layout.user_registry_key, {tag: 1})


def snapshot(client: RedisClient, user: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key in user_keys(client, user):
        kind = client.type(key)
        if kind == "hash":
            state[key] = client.hgetall(key)
        elif kind == "zset":
            state[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            state[key] = kind
    return state


def test_data_of_the_release_before_conversations_becomes_conversation_0(
    redis_client: RedisClient, index_name: str
) -> None:
    texts = ["How do I fix a hyperdrive?", "Replace the motivator.", "Thanks!", "Anytime."]
    if not on_cluster(redis_client):
        redis_client.execute_command(
            "FT.CREATE",
            index_name,
            "ON",
            "HASH",
            "PREFIX",
            "1",
            f"{index_name}:msg:",
            "SCHEMA",
            "session_tag",
            "TAG",
            "timestamp",
            "NUMERIC",
            "SORTABLE",
            "role",
            "TAG",
        )  # fmt: skip  (today's lean index)
    write_legacy_user(redis_client, index_name, USER, texts)
    write_legacy_user(redis_client, index_name, "finn", ["Finn's hyperdrive question"])
    memory = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)

    listing = memory.conversations(USER)
    assert listing.total == 1 and len(listing.recent) == 1
    (legacy,) = listing.recent
    assert (legacy.id, legacy.message_count) == ("0", 4)
    assert (legacy.title, legacy.title_source) == ("How do I fix a hyperdrive?", "words")
    assert (legacy.created_at, legacy.last_active) == (1_700_000_001, 1_700_000_004)
    opened = memory.conversation(USER, "0")
    assert [m.content for m in memory.messages(USER, "0")] == texts
    assert opened.window.system.text == "Speak like Yoda." and opened.window_size == 7
    assert opened.retention.ttl_seconds == 3600
    totals = opened.usage_totals
    assert (totals.prompt_tokens, totals.completion_tokens, totals.replies) == (20, 4, 2)
    summary = SummaryStore(redis_client, index_name).state(USER, "0")
    assert summary.enabled and summary.checkpoint is not None
    assert summary.checkpoint.text == "They talked."
    assert settings_of(redis_client, index_name, USER)["stored_messages"] == "4"

    before = snapshot(redis_client, USER)
    memory.conversations(USER)
    ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    memory.conversation(USER, "0")
    assert snapshot(redis_client, USER) == before  # running it again changes nothing

    if not on_cluster(redis_client):
        deadline = time.monotonic() + 10
        while not memory.search(USER, "hyperdrive") and time.monotonic() < deadline:
            time.sleep(0.05)  # FT.ALTER re-indexes stored messages in the background
        assert [(h.conversation_id, h.seq) for h in memory.search(USER, "hyperdrive")] == [("0", 1)]
        assert [h.conversation_id for h in memory.search("finn", "hyperdrive")] == ["0"]

    memory.set_retention(USER, None)  # legacy expiry entries are found and removed
    assert redis_client.zcard(KeyLayout(index_name).expiry_key(user_tag(USER))) == 0
    say(memory, USER, "0", "Still here?")
    assert memory.count(USER, "0") == 5
    assert memory.remove_last(USER, "0", 5) == 1
    assert memory.erase_user(USER) == 4 and user_keys(redis_client, USER) == []


def test_the_open_conversation_its_list_entry_and_a_rename_show_the_same_row(
    memory: ChatMemory,
) -> None:
    """One encoding of a conversation: what the page shows for the open conversation, its
    entry in the list and what a change returns are the same value."""
    cid = new_conversation_id()
    say(memory, USER, cid, "first | words, with a bar", "reply")
    memory.pin_conversation(USER, cid, True)
    renamed = memory.rename_conversation(USER, cid, "A | title")
    opened = memory.conversation(USER, cid).info
    assert opened is not None and renamed == opened
    assert memory.conversations(USER).pinned == (opened,)
    assert (opened.title, opened.message_count, opened.pinned) == ("A | title", 2, True)
