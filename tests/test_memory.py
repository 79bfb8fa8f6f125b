"""Behaviour of memory/ against a real Redis with RediSearch."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from memory import (
    ChatMemory,
    InvalidInput,
    RedisTarget,
    Role,
    StorageUnavailable,
    SystemInstruction,
    Usage,
    create_redis_client,
)
from memory.keys import user_tag
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.ports import free_port
from tests.support.tokens import count_request_tokens

USER = "luke@tatooine.example"


def fill(memory: ChatMemory, user: str, count: int, start: int = 0) -> list[str]:
    contents = []
    for index in range(start, start + count):
        role = Role.USER if index % 2 == 0 else Role.ASSISTANT
        content = f"{user} message {index}"
        memory.append(user, role, content)
        contents.append(content)
    return contents


def test_messages_come_back_in_the_order_written(memory: ChatMemory) -> None:
    written = fill(memory, USER, 30)
    assert [m.content for m in memory.messages(USER)] == written
    assert memory.count(USER) == 30


def test_many_writes_in_the_same_millisecond_keep_their_order(memory: ChatMemory) -> None:
    pipeline_free_burst = [f"burst {i}" for i in range(300)]
    started = time.monotonic()
    for content in pipeline_free_burst:
        memory.append(USER, Role.USER, content)
    assert time.monotonic() - started < 300 / 1000 * 5
    stored = memory.messages(USER)
    assert [m.content for m in stored] == pipeline_free_burst
    assert len({int(m.created_at * 1000) for m in stored}) < len(stored)


def test_system_instruction_survives_a_history_longer_than_any_fixed_fetch(
    memory: ChatMemory,
) -> None:
    memory.set_system_instruction(USER, "Answer like a pirate.", preset=None)
    written = fill(memory, USER, 1_205)
    window = memory.context_window(USER, 5)
    assert window.system.text == "Answer like a pirate."
    assert [m.content for m in window.messages] == written[-5:]
    assert len(memory.messages(USER)) == 1_205


@pytest.mark.parametrize("size", [1, 2, 5, 50])
def test_window_of_n_is_the_instruction_plus_exactly_the_last_n_messages(
    memory: ChatMemory, size: int
) -> None:
    written = fill(memory, USER, 60)
    payload = memory.context_window(USER, size).as_openai()
    assert payload[0] == {"role": "system", "content": DEFAULT_TEST_SYSTEM.text}
    assert [m["content"] for m in payload[1:]] == written[-size:]
    assert all(m["role"] in {"user", "assistant"} for m in payload[1:])


def test_window_larger_than_history_returns_all_of_it(memory: ChatMemory) -> None:
    written = fill(memory, USER, 3)
    assert [m.content for m in memory.context_window(USER, 50).messages] == written
    assert memory.context_window(USER, 0).as_openai() == [DEFAULT_TEST_SYSTEM.as_openai()]


def test_token_count_equals_an_independent_count_of_the_payload(memory: ChatMemory) -> None:
    memory.set_system_instruction(USER, "Be brief. Très brief! 🚀")
    fill(memory, USER, 12)
    memory.append(USER, Role.USER, "Ünïcödé, <script>alert(1)</script>, 日本語, emoji 👩‍🚀")
    for size in (1, 5, 13):
        window = memory.context_window(USER, size)
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
    memory.clear(USER)
    time.sleep(1.2)
    rebuilt = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    instruction = rebuilt.system_instruction(USER)
    assert (instruction.text, instruction.preset) == ("Be extremely brief.", "brief")
    assert rebuilt.reset_system_instruction(USER).text == DEFAULT_TEST_SYSTEM.text
    assert rebuilt.system_instruction(USER).text == DEFAULT_TEST_SYSTEM.text


def test_retention_covers_messages_already_stored_and_written_afterwards(
    memory: ChatMemory, redis_client: redis.Redis
) -> None:
    before = memory.append(USER, Role.USER, "written before")
    memory.set_retention(USER, 2)
    after = memory.append(USER, Role.ASSISTANT, "written after")
    assert 0 < redis_client.pttl(before.key) <= 2000
    assert 0 < redis_client.pttl(after.key) <= 2000
    status = memory.retention(USER)
    assert status.ttl_seconds == 2
    assert status.oldest_expires_in is not None and 0 < status.oldest_expires_in <= 2
    time.sleep(2.3)
    assert memory.count(USER) == 0
    assert memory.messages(USER) == []
    assert memory.retention(USER).ttl_seconds == 2


def test_keep_forever_removes_expiry_from_every_message(
    memory: ChatMemory, redis_client: redis.Redis
) -> None:
    memory.set_retention(USER, 1)
    kept = memory.append(USER, Role.USER, "keep me")
    memory.set_retention(USER, None)
    later = memory.append(USER, Role.USER, "and me")
    time.sleep(1.2)
    assert [m.content for m in memory.messages(USER)] == ["keep me", "and me"]
    assert redis_client.pttl(kept.key) == -1 and redis_client.pttl(later.key) == -1
    assert memory.retention(USER).ttl_seconds is None


def test_retention_setting_persists_across_memory_objects(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    memory.set_retention(USER, 3600)
    rebuilt = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    assert rebuilt.retention(USER).ttl_seconds == 3600
    message = rebuilt.append(USER, Role.USER, "hello")
    assert 3590_000 < redis_client.pttl(message.key) <= 3600_000


def test_building_the_memory_object_twice_deletes_nothing(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    written = fill(memory, USER, 7)
    fill(memory, "leia", 3)
    ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    again = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    assert [m.content for m in again.messages(USER)] == written
    assert again.count("leia") == 3


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
        stored = memory.messages(user)
        assert len(stored) == number + 1
        assert all(m.content.startswith(f"{user} message") for m in stored)
        assert memory.count(user) == number + 1
        assert all(m.content.startswith(user) for m in memory.context_window(user, 50).messages)
    memory.set_retention(ODD_IDS[0], 1)
    memory.set_system_instruction(ODD_IDS[0], "only for the first")
    assert memory.clear(ODD_IDS[3]) == 4
    assert memory.count(ODD_IDS[3]) == 0
    for number, user in enumerate(ODD_IDS):
        if user != ODD_IDS[3]:
            assert memory.count(user) == number + 1
        if user != ODD_IDS[0]:
            assert memory.retention(user).ttl_seconds is None
            assert memory.system_instruction(user).text == DEFAULT_TEST_SYSTEM.text


def test_clear_all_is_explicit_and_empties_every_user(memory: ChatMemory) -> None:
    fill(memory, "luke", 3)
    fill(memory, "leia", 4)
    memory.set_system_instruction("leia", "Be bold.")
    assert memory.clear_all() == 7
    assert memory.count("luke") == memory.count("leia") == 0
    assert memory.system_instruction("leia").text == "Be bold."
    fill(memory, "luke", 2)
    assert memory.count("luke") == 2


def test_usage_is_stored_with_the_reply_and_totalled_per_user(memory: ChatMemory) -> None:
    memory.append(USER, Role.USER, "hi")
    memory.append(USER, Role.ASSISTANT, "hello", usage=Usage(prompt_tokens=20, completion_tokens=3))
    memory.append(USER, Role.USER, "again")
    memory.append(USER, Role.ASSISTANT, "yes", usage=Usage(prompt_tokens=30, completion_tokens=2))
    memory.append(
        "leia", Role.ASSISTANT, "other", usage=Usage(prompt_tokens=99, completion_tokens=9)
    )
    conversation = memory.conversation(USER, window_size=5)
    assert conversation.last_reply_usage == Usage(prompt_tokens=30, completion_tokens=2)
    totals = conversation.usage_totals
    assert (totals.prompt_tokens, totals.completion_tokens, totals.replies) == (50, 5, 2)


def test_page_is_the_newest_messages_and_knows_there_are_more(memory: ChatMemory) -> None:
    written = fill(memory, USER, 80)
    conversation = memory.conversation(USER, window_size=5, page_size=50)
    assert [m.content for m in conversation.recent] == written[-50:]
    assert conversation.total_messages == 80 and conversation.has_earlier
    assert [m.content for m in conversation.window.messages] == written[-5:]


def test_redisvl_message_history_reads_the_same_conversation(memory: ChatMemory) -> None:
    written = fill(memory, USER, 6)
    recent = memory.history.get_recent(top_k=4, session_tag=user_tag(USER))
    assert [m["content"] for m in recent] == written[-4:]
    assert memory.history.count(session_tag=user_tag(USER)) == 6


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda m: m.append("", Role.USER, "hi"), "user id"),
        (lambda m: m.append("   ", Role.USER, "hi"), "user id"),
        (lambda m: m.append("x" * 4097, Role.USER, "hi"), "user id"),
        (lambda m: m.append(USER, "llm", "hi"), "Unknown role"),
        (lambda m: m.append(USER, "system", "hi"), "set_system_instruction"),
        (lambda m: m.append(USER, Role.USER, "  \n "), "empty"),
        (lambda m: m.append(USER, Role.USER, "x" * 1_000_001), "at most"),
        (lambda m: m.context_window(USER, -1), "window size"),
        (lambda m: m.context_window(USER, 1001), "window size"),
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
    memory.append(USER, Role.USER, "existing")
    with pytest.raises(InvalidInput, match=fragment):
        call(memory)  # type: ignore[operator]
    assert [m.content for m in memory.messages(USER)] == ["existing"]
    assert memory.retention(USER).ttl_seconds is None


def test_unreachable_redis_is_a_storage_error_not_a_traceback(index_name: str) -> None:
    client = create_redis_client(RedisTarget(url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(StorageUnavailable, match="unreachable"):
        ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)


def test_concurrent_writers_lose_and_duplicate_nothing(memory: ChatMemory) -> None:
    def writer(user: str, name: str) -> None:
        for index in range(50):
            memory.append(user, Role.USER, f"{name} {index}")

    threads = [threading.Thread(target=writer, args=(USER, f"tab{n}")) for n in range(4)]
    threads += [threading.Thread(target=writer, args=(f"user{n}", "solo")) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = [m.content for m in memory.messages(USER)]
    assert len(stored) == len(set(stored)) == 200
    for tab in range(4):
        assert [c for c in stored if c.startswith(f"tab{tab} ")] == [
            f"tab{tab} {i}" for i in range(50)
        ]
    for n in range(4):
        assert memory.count(f"user{n}") == 50


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
