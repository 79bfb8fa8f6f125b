"""Behaviour of memory/ against a real Redis with RediSearch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster

from memory import (
    ChatMemory,
    IndexUnavailable,
    InvalidInput,
    RedisClient,
    RedisTarget,
    Role,
    StorageFull,
    StorageLimitReached,
    StorageReadOnly,
    StorageUnavailable,
    SystemInstruction,
    Usage,
    WriteOutcomeUnknown,
    create_client,
    create_redis_client,
    new_message_id,
    store,
)
from memory.connection import OutcomeTrackingRetry
from memory.embedded import EmbeddedRedis, free_port
from memory.keys import conversation_tag, user_tag
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.delay_proxy import DelayProxy
from tests.support.tokens import count_request_tokens

USER = "luke@tatooine.example"
CONV = "c0ffee"  # the conversation these tests write to (tests/test_conversations.py has many)
SINGLE_ONLY = pytest.mark.parametrize("redis_client", ["single"], indirect=True)


@pytest.fixture(params=["single", "cluster"])
def redis_client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[RedisClient]:
    """Every memory test runs on the single server and on a real 3-master Redis Cluster."""
    url = redis_url if request.param == "single" else request.getfixturevalue("redis_cluster_url")
    client = create_client(RedisTarget(url=url))
    yield client
    client.close()


def on_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)


def fill(memory: ChatMemory, user: str, count: int, start: int = 0) -> list[str]:
    contents = []
    for index in range(start, start + count):
        role = Role.USER if index % 2 == 0 else Role.ASSISTANT
        content = f"{user} message {index}"
        memory.append(user, role, content, conversation_id=CONV)
        contents.append(content)
    return contents


def test_messages_come_back_in_the_order_written(memory: ChatMemory) -> None:
    written = fill(memory, USER, 30)
    assert [m.content for m in memory.messages(USER, CONV)] == written
    assert memory.count(USER, CONV) == 30


def test_many_writes_in_the_same_millisecond_keep_their_order(memory: ChatMemory) -> None:
    def burst(tab: int) -> None:
        for index in range(75):
            memory.append(USER, Role.USER, f"tab{tab} burst {index}", conversation_id=CONV)

    tabs = [threading.Thread(target=burst, args=(tab,)) for tab in range(4)]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()
    stored = memory.messages(USER, CONV)
    for number in range(4):
        mine = [m.content for m in stored if m.content.startswith(f"tab{number} ")]
        assert mine == [f"tab{number} burst {index}" for index in range(75)]
    assert [m.seq for m in stored] == list(range(1, 301))
    assert len({int(m.created_at * 1000) for m in stored}) < len(stored)


def test_system_instruction_survives_a_history_longer_than_any_fixed_fetch(
    memory: ChatMemory,
) -> None:
    memory.set_system_instruction(USER, "Answer like a pirate.", preset=None)
    written = fill(memory, USER, 1_205)
    window = memory.context_window(USER, CONV, 5)
    assert window.system.text == "Answer like a pirate."
    assert [m.content for m in window.messages] == written[-5:]
    assert len(memory.messages(USER, CONV)) == 1_205


@pytest.mark.parametrize("size", [1, 2, 5, 50])
def test_window_of_n_is_the_instruction_plus_exactly_the_last_n_messages(
    memory: ChatMemory, size: int
) -> None:
    written = fill(memory, USER, 60)
    payload = memory.context_window(USER, CONV, size).as_openai()
    assert payload[0] == {"role": "system", "content": DEFAULT_TEST_SYSTEM.text}
    assert [m["content"] for m in payload[1:]] == written[-size:]
    assert all(m["role"] in {"user", "assistant"} for m in payload[1:])


def test_window_larger_than_history_returns_all_of_it(memory: ChatMemory) -> None:
    written = fill(memory, USER, 3)
    assert [m.content for m in memory.context_window(USER, CONV, 50).messages] == written
    assert memory.context_window(USER, CONV, 0).as_openai() == [DEFAULT_TEST_SYSTEM.as_openai()]


def test_token_count_equals_an_independent_count_of_the_payload(memory: ChatMemory) -> None:
    memory.set_system_instruction(USER, "Be brief. Très brief! 🚀")
    fill(memory, USER, 12)
    memory.append(
        USER,
        Role.USER,
        "Ünïcödé, <script>alert(1)</script>, 日本語, emoji 👩‍🚀",
        conversation_id=CONV,
    )
    for size in (1, 5, 13):
        window = memory.context_window(USER, CONV, size)
        assert window.token_count == count_request_tokens(window.as_openai())


def test_user_without_a_choice_gets_the_default_instruction(memory: ChatMemory) -> None:
    instruction = memory.system_instruction("han")
    assert instruction.text == DEFAULT_TEST_SYSTEM.text
    assert instruction.preset == "standard"


def test_system_instruction_persists_and_survives_clear_and_retention(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    memory.set_system_instruction(USER, "Be extremely brief.", preset="brief")
    memory.set_retention(USER, 1)
    fill(memory, USER, 4)
    memory.clear(USER, CONV)
    time.sleep(1.2)
    rebuilt = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    instruction = rebuilt.system_instruction(USER)
    assert (instruction.text, instruction.preset) == ("Be extremely brief.", "brief")
    assert rebuilt.reset_system_instruction(USER).text == DEFAULT_TEST_SYSTEM.text
    assert rebuilt.system_instruction(USER).text == DEFAULT_TEST_SYSTEM.text


def test_retention_covers_messages_already_stored_and_written_afterwards(
    memory: ChatMemory, redis_client: redis.Redis
) -> None:
    before = memory.append(USER, Role.USER, "written before", conversation_id=CONV)
    memory.set_retention(USER, 2)
    after = memory.append(USER, Role.ASSISTANT, "written after", conversation_id=CONV)
    assert 0 < redis_client.pttl(before.key) <= 2000
    assert 0 < redis_client.pttl(after.key) <= 2000
    status = memory.retention(USER)
    assert status.ttl_seconds == 2
    assert status.oldest_expires_in is not None and 0 < status.oldest_expires_in <= 2
    time.sleep(2.3)
    assert memory.count(USER, CONV) == 0
    assert memory.messages(USER, CONV) == []
    assert memory.retention(USER).ttl_seconds == 2


def test_keep_forever_removes_expiry_from_every_message(
    memory: ChatMemory, redis_client: redis.Redis
) -> None:
    memory.set_retention(USER, 1)
    kept = memory.append(USER, Role.USER, "keep me", conversation_id=CONV)
    memory.set_retention(USER, None)
    later = memory.append(USER, Role.USER, "and me", conversation_id=CONV)
    time.sleep(1.2)
    assert [m.content for m in memory.messages(USER, CONV)] == ["keep me", "and me"]
    assert redis_client.pttl(kept.key) == -1 and redis_client.pttl(later.key) == -1
    assert memory.retention(USER).ttl_seconds is None


def test_retention_setting_persists_across_memory_objects(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    memory.set_retention(USER, 3600)
    rebuilt = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    assert rebuilt.retention(USER).ttl_seconds == 3600
    message = rebuilt.append(USER, Role.USER, "hello", conversation_id=CONV)
    assert 3590_000 < redis_client.pttl(message.key) <= 3600_000


def test_building_the_memory_object_twice_deletes_nothing(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    written = fill(memory, USER, 7)
    fill(memory, "leia", 3)
    ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    again = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    assert [m.content for m in again.messages(USER, CONV)] == written
    assert again.count("leia", CONV) == 3


ODD_IDS = [
    "luke@tatooine.example",
    "Luke@Tatooine.example",
    "luke@tatooine.example ",
    "Luke Skywalker",
    "luke",
    "user:with:colons",
    "@session_tag:{luke} | -foo* (bar) ~baz",
    "{hash}tag}",
    "Ærøskøbing Ñandú 李小龙 محمد",
    "🚀👩‍🚀",
    "tab\tand\nnewline",
    "x" * 4096,
    "00000000-0000-0000-0000-000000000000",
    "*",
]


def test_distinct_ids_never_see_count_or_clear_each_other(memory: ChatMemory) -> None:
    for number, user in enumerate(ODD_IDS):
        fill(memory, user, number + 1)
    for number, user in enumerate(ODD_IDS):
        stored = memory.messages(user, CONV)
        assert len(stored) == number + 1
        assert all(m.content.startswith(f"{user} message") for m in stored)
        assert memory.count(user, CONV) == number + 1
        assert all(
            m.content.startswith(user) for m in memory.context_window(user, CONV, 50).messages
        )
    memory.set_retention(ODD_IDS[0], 1)
    memory.set_system_instruction(ODD_IDS[0], "only for the first")
    assert memory.clear(ODD_IDS[3], CONV) == 4
    assert memory.count(ODD_IDS[3], CONV) == 0
    for number, user in enumerate(ODD_IDS):
        if user != ODD_IDS[3]:
            assert memory.count(user, CONV) == number + 1
        if user != ODD_IDS[0]:
            assert memory.retention(user).ttl_seconds is None
            assert memory.system_instruction(user).text == DEFAULT_TEST_SYSTEM.text


def test_clear_all_is_explicit_and_empties_every_user(memory: ChatMemory) -> None:
    fill(memory, "luke", 3)
    fill(memory, "leia", 4)
    memory.set_system_instruction("leia", "Be bold.")
    assert memory.clear_all() == 7
    assert memory.count("luke", CONV) == memory.count("leia", CONV) == 0
    assert memory.system_instruction("leia").text == "Be bold."
    fill(memory, "luke", 2)
    assert memory.count("luke", CONV) == 2


def test_usage_is_stored_with_the_reply_and_totalled_per_user(memory: ChatMemory) -> None:
    memory.append(USER, Role.USER, "hi", conversation_id=CONV)
    memory.append(
        USER,
        Role.ASSISTANT,
        "hello",
        usage=Usage(prompt_tokens=20, completion_tokens=3),
        conversation_id=CONV,
    )
    memory.append(USER, Role.USER, "again", conversation_id=CONV)
    memory.append(
        USER,
        Role.ASSISTANT,
        "yes",
        usage=Usage(prompt_tokens=30, completion_tokens=2),
        conversation_id=CONV,
    )
    memory.append(
        "leia",
        Role.ASSISTANT,
        "other",
        usage=Usage(prompt_tokens=99, completion_tokens=9),
        conversation_id=CONV,
    )
    conversation = memory.conversation(USER, CONV, window_size=5)
    assert conversation.last_reply_usage == Usage(prompt_tokens=30, completion_tokens=2)
    totals = conversation.usage_totals
    assert (totals.prompt_tokens, totals.completion_tokens, totals.replies) == (50, 5, 2)


def test_page_is_the_newest_messages_and_knows_there_are_more(memory: ChatMemory) -> None:
    written = fill(memory, USER, 80)
    conversation = memory.conversation(USER, CONV, window_size=5, page_size=50)
    assert [m.content for m in conversation.recent] == written[-50:]
    assert conversation.total_messages == 80 and conversation.has_earlier
    assert [m.content for m in conversation.window.messages] == written[-5:]


def test_redisvl_message_history_reads_the_same_conversation(
    memory: ChatMemory, redis_client: RedisClient
) -> None:
    written = fill(memory, USER, 6)
    if on_cluster(redis_client):
        with pytest.raises(IndexUnavailable, match="cannot span this Redis Cluster"):
            memory.history.get_recent(top_k=4, session_tag=conversation_tag(user_tag(USER), CONV))
        return
    recent = memory.history.get_recent(top_k=4, session_tag=conversation_tag(user_tag(USER), CONV))
    assert [m["content"] for m in recent] == written[-4:]
    assert memory.history.count(session_tag=conversation_tag(user_tag(USER), CONV)) == 6


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda m: m.append("", Role.USER, "hi", conversation_id=CONV), "user id"),
        (lambda m: m.append("   ", Role.USER, "hi", conversation_id=CONV), "user id"),
        (lambda m: m.append("x" * 4097, Role.USER, "hi", conversation_id=CONV), "user id"),
        (lambda m: m.append(USER, "llm", "hi", conversation_id=CONV), "Unknown role"),
        (lambda m: m.append(USER, "system", "hi", conversation_id=CONV), "set_system_instruction"),
        (lambda m: m.append(USER, Role.USER, "  \n ", conversation_id=CONV), "empty"),
        (lambda m: m.append(USER, Role.USER, "x" * 1_000_001, conversation_id=CONV), "at most"),
        (lambda m: m.context_window(USER, CONV, -1), "window size"),
        (lambda m: m.context_window(USER, CONV, 1001), "window size"),
        (lambda m: m.set_retention(USER, 0), "Retention"),
        (lambda m: m.set_retention(USER, -5), "Retention"),
        (lambda m: m.set_retention(USER, 10**12), "Retention"),
        (lambda m: m.set_retention(USER, True), "Retention"),
        (lambda m: m.set_retention(USER, 1.5), "Retention"),
        (lambda m: m.set_system_instruction(USER, ""), "empty"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(
    memory: ChatMemory, call: object, fragment: str
) -> None:
    memory.append(USER, Role.USER, "existing", conversation_id=CONV)
    with pytest.raises(InvalidInput, match=fragment):
        call(memory)  # type: ignore[operator]
    assert [m.content for m in memory.messages(USER, CONV)] == ["existing"]
    assert memory.retention(USER).ttl_seconds is None


def test_unreachable_redis_is_a_storage_error_not_a_traceback(index_name: str) -> None:
    client = create_redis_client(RedisTarget(url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(StorageUnavailable, match="unreachable"):
        ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)


def test_concurrent_writers_lose_and_duplicate_nothing(memory: ChatMemory) -> None:
    def writer(user: str, name: str) -> None:
        for index in range(50):
            memory.append(user, Role.USER, f"{name} {index}", conversation_id=CONV)

    threads = [threading.Thread(target=writer, args=(USER, f"tab{n}")) for n in range(4)]
    threads += [threading.Thread(target=writer, args=(f"user{n}", "solo")) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = [m.content for m in memory.messages(USER, CONV)]
    assert len(stored) == len(set(stored)) == 200
    for tab in range(4):
        assert [c for c in stored if c.startswith(f"tab{tab} ")] == [
            f"tab{tab} {i}" for i in range(50)
        ]
    for n in range(4):
        assert memory.count(f"user{n}", CONV) == 50


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("my-company-chat-deployment", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
    ],
)
def test_encoding_is_chosen_by_model_name(model: str, encoding: str) -> None:
    from memory.tokens import TokenCounter

    assert TokenCounter(model).encoding_name == encoding


def test_custom_instruction_is_returned_without_a_preset(memory: ChatMemory) -> None:
    memory.set_system_instruction(USER, "Speak only in haiku.")
    assert memory.system_instruction(USER) == SystemInstruction(
        text="Speak only in haiku.",
        preset=None,
        token_count=memory.token_counter.count_message("system", "Speak only in haiku."),
    )


# --- exactly-once writes ---------------------------------------------------------------------


def short_timeout_client(url: str, retries: int) -> redis.Redis:
    """Like the app's client, with a 0.5 s socket timeout so a stall can outlast it quickly."""
    return redis.Redis.from_url(
        url,
        socket_timeout=0.5,
        retry=OutcomeTrackingRetry(NoBackoff(), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        decode_responses=True,
    )


@pytest.fixture
def proxy(redis_server: EmbeddedRedis) -> Iterator[DelayProxy]:
    with DelayProxy(redis_server.port) as running:
        yield running


@SINGLE_ONLY
def test_a_write_retried_after_a_stall_is_stored_once(proxy: DelayProxy, index_name: str) -> None:
    memory = ChatMemory(
        short_timeout_client(proxy.url, retries=2),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=index_name,
    )
    memory.append(USER, Role.USER, "question", conversation_id=CONV)
    proxy.stall(b"answer", 1.5)
    answer = memory.append(
        USER,
        Role.ASSISTANT,
        "answer",
        usage=Usage(prompt_tokens=10, completion_tokens=2),
        conversation_id=CONV,
    )
    after = memory.append(USER, Role.USER, "next", conversation_id=CONV)
    assert (answer.seq, after.seq) == (2, 3)
    conversation = memory.conversation(USER, CONV)
    assert [m.content for m in conversation.recent] == ["question", "answer", "next"]
    assert conversation.usage_totals.replies == 1
    assert conversation.usage_totals.prompt_tokens == 10


@SINGLE_ONLY
def test_an_unknown_outcome_is_reported_checked_by_id_and_resent_once(
    proxy: DelayProxy, index_name: str
) -> None:
    memory = ChatMemory(
        short_timeout_client(proxy.url, retries=1),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=index_name,
    )
    memory.append(USER, Role.USER, "warm up", conversation_id=CONV)
    message_id = new_message_id()
    proxy.stall(b"did it arrive?", 1.5, times=2)
    with pytest.raises(WriteOutcomeUnknown, match="may or may not"):
        memory.append(
            USER, Role.USER, "did it arrive?", message_id=message_id, conversation_id=CONV
        )
    time.sleep(1.6)
    saved = memory.saved_message(USER, message_id)
    assert saved is not None and saved.content == "did it arrive?"
    resent = memory.append(
        USER, Role.USER, "did it arrive?", message_id=message_id, conversation_id=CONV
    )
    assert resent.seq == saved.seq == 2
    assert memory.count(USER, CONV) == 2
    assert memory.saved_message(USER, new_message_id()) is None


# --- bounded work: chunked clear, retention, expiry; caps; clear-all --------------------------


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """Batches of 7 so a 30-message history needs several bounded calls."""
    monkeypatch.setattr(store, "WORK_BATCH", 7)
    return 7


def test_chunked_retention_clear_and_expiry_leave_counts_and_timelines_right(
    memory: ChatMemory, redis_client: redis.Redis, small_batches: int
) -> None:
    written = fill(memory, USER, 30)
    memory.set_retention(USER, 3600)
    stored = memory.messages(USER, CONV)
    assert all(0 < redis_client.pttl(m.key) <= 3_600_000 for m in stored)
    memory.set_retention(USER, None)
    assert all(redis_client.pttl(m.key) == -1 for m in stored)
    assert memory.clear(USER, CONV) == 30
    assert memory.conversation(USER, CONV).total_messages == 0
    fill(memory, USER, 30)
    memory.set_retention(USER, 1)
    time.sleep(1.2)
    fresh = fill(memory, USER, 2, start=100)
    conversation = memory.conversation(USER, CONV)
    assert [m.content for m in conversation.recent] == fresh
    assert conversation.total_messages == 2 and not conversation.has_earlier
    assert written[0] not in [m.content for m in memory.messages(USER, CONV)]


def test_a_capped_history_refuses_the_write_whole_and_says_which_limit(
    redis_client: redis.Redis, index_name: str, capped_memory: Callable[..., ChatMemory]
) -> None:
    memory = capped_memory(max_messages=5, max_bytes=60)
    fill(memory, "u", 4)  # 4 x 11 bytes
    with pytest.raises(StorageLimitReached, match="MAX_BYTES_PER_USER") as refused:
        memory.append("u", Role.USER, "x" * 40, conversation_id=CONV)
    assert refused.value.limit == "MAX_BYTES_PER_USER"
    memory.append("u", Role.USER, "fits", conversation_id=CONV)
    with pytest.raises(StorageLimitReached, match="MAX_MESSAGES_PER_USER"):
        memory.append("u", Role.USER, "sixth", conversation_id=CONV)
    assert [m.content for m in memory.messages("u", CONV)][-1] == "fits"
    assert memory.count("u", CONV) == 5
    memory.clear("u", CONV)
    memory.append("u", Role.USER, "x" * 40, conversation_id=CONV)
    memory.set_retention("u", 1)
    time.sleep(1.2)
    memory.append("u", Role.USER, "y" * 40, conversation_id=CONV)
    assert [m.content for m in memory.messages("u", CONV)] == ["y" * 40]


def test_clear_all_keeps_what_is_written_while_it_runs(
    memory: ChatMemory, small_batches: int
) -> None:
    users = [f"user{n}" for n in range(120)]
    for user in users:
        memory.append(user, Role.USER, f"{user} before", conversation_id=CONV)
    fill(memory, users[-1], 20)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(memory.clear_all()))
    worker.start()
    while memory.count(users[0], CONV):
        time.sleep(0.001)
    during = [
        memory.append(users[-1], Role.USER, f"during {n}", conversation_id=CONV).content
        for n in range(5)
    ]
    worker.join()
    assert [m.content for m in memory.messages(users[-1], CONV)] == during
    assert all(memory.count(user, CONV) == 0 for user in users[:-1])
    assert result == [120 + 20]
    assert not memory.conversation(users[-1], CONV).has_earlier


def searched(memory: ChatMemory, user: str, text: str, expected: int) -> int:
    """Hits for `text` once the index has (re)indexed `expected` of them, or after 10 s."""
    deadline = time.monotonic() + 10
    while len(hits := memory.search(user, text)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(hits)


@SINGLE_ONLY
def test_clear_all_pauses_search_and_indexes_what_was_written_meanwhile(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str, small_batches: int
) -> None:
    """Clear-all drops the index (deleting through it stalls Redis in its garbage collector)
    and creates it again at the end; meanwhile search says so, and no other instance
    recreates the index under it."""
    users = [f"user{n}" for n in range(150)]
    for user in users:
        memory.append(user, Role.USER, f"{user} before the clear", conversation_id=CONV)
    other = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    worker = threading.Thread(target=memory.clear_all)
    worker.start()
    while memory.count(users[0], CONV):
        time.sleep(0.001)
    with pytest.raises(IndexUnavailable, match="paused while an administrator clears"):
        other.search(users[-1], "clear")
    assert index_name not in redis_client.execute_command("FT._LIST")
    memory.append(users[-1], Role.USER, "written during the clear", conversation_id=CONV)
    worker.join()
    assert searched(other, users[-1], "during", 1) == 1
    assert searched(other, users[0], "before", 0) == 0


def test_clear_all_waits_while_redis_has_a_forked_child(tmp_path: Path) -> None:
    """Deleting while a child of Redis is alive (RediSearch's GC, an AOF rewrite, a snapshot)
    makes Redis copy every page touched: hundreds of ms for everyone, measured. Clear-all
    waits for the child, here a snapshot slowed to 0.1 s per key."""
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "forked")
    server.ensure_running()
    client = create_redis_client(RedisTarget(url=server.url))
    try:
        memory = ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name="forked")
        fill(memory, USER, 4)
        client.config_set("rdb-key-save-delay", 100_000)
        client.bgsave()
        assert int(client.info("persistence")["rdb_bgsave_in_progress"])
        assert memory.clear_all() == 4
        assert not int(client.info("persistence")["rdb_bgsave_in_progress"])
    finally:
        client.close()
        server.stop()


@SINGLE_ONLY
def test_an_abandoned_clear_all_pause_expires_and_the_index_comes_back(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    fill(memory, USER, 3)
    redis_client.set(f"{index_name}:index-paused", "clear-all", px=400)  # its holder died
    redis_client.ft(index_name).dropindex(delete_documents=False)
    with pytest.raises(IndexUnavailable, match="paused"):
        memory.search(USER, "message")
    time.sleep(0.5)
    assert searched(memory, USER, "message", 3) == 3


@SINGLE_ONLY
def test_clear_all_deletes_messages_even_without_the_search_index(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    fill(memory, "luke", 3)
    fill(memory, "leia", 2)
    redis_client.ft(index_name).dropindex(delete_documents=False)
    assert memory.clear_all() == 5
    assert redis_client.keys(f"{index_name}:msg:*") == []


@SINGLE_ONLY
def test_a_missing_index_is_recreated_on_next_use(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    written = fill(memory, USER, 4)
    redis_client.ft(index_name).dropindex(delete_documents=False)
    history = memory.history
    deadline = time.monotonic() + 10
    while (
        history.count(session_tag=conversation_tag(user_tag(USER), CONV)) < 4
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    recent = history.get_recent(top_k=4, session_tag=conversation_tag(user_tag(USER), CONV))
    assert [m["content"] for m in recent] == written


def test_scripts_flushed_from_redis_are_loaded_again(
    memory: ChatMemory, redis_client: redis.Redis
) -> None:
    memory.append(USER, Role.USER, "before", conversation_id=CONV)
    redis_client.script_flush()
    memory.append(USER, Role.USER, "after", conversation_id=CONV)
    assert [m.content for m in memory.messages(USER, CONV)] == ["before", "after"]


@SINGLE_ONLY
def test_a_full_redis_refuses_with_a_clear_error_and_writes_nothing(
    memory: ChatMemory, redis_client: redis.Redis
) -> None:
    memory.append(USER, Role.USER, "kept", conversation_id=CONV)
    redis_client.config_set("maxmemory", 1)
    try:
        with pytest.raises(StorageFull, match="full"):
            memory.append(USER, Role.USER, "refused", conversation_id=CONV)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert [m.content for m in memory.messages(USER, CONV)] == ["kept"]


@SINGLE_ONLY
def test_a_read_only_replica_refuses_with_a_clear_error(
    redis_server: EmbeddedRedis, tmp_path: Path, index_name: str
) -> None:
    replica = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "replica")
    replica.ensure_running()
    client = create_redis_client(RedisTarget(url=replica.url))
    try:
        memory = ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
        client.replicaof("127.0.0.1", redis_server.port)
        with pytest.raises(StorageReadOnly, match="read-only"):
            memory.append(USER, Role.USER, "refused", conversation_id=CONV)
        assert memory.count(USER, CONV) == 0
    finally:
        client.replicaof("NO", "ONE")
        client.close()
        replica.stop()


def test_users_stored_before_the_registry_are_registered_once_and_cleared(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    fill(memory, "luke", 3)
    fill(memory, "leia", 2)
    redis_client.delete(f"{index_name}:users")
    assert memory.clear_all() == 0
    assert memory.register_existing_users() == 2
    assert memory.clear_all() == 5
    assert memory.count("luke", CONV) == memory.count("leia", CONV) == 0
