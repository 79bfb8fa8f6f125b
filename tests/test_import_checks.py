"""What an import may not do: write text that is not text, times the store refuses or from the
future, titles that break the list, or pile up empty conversations past the storage cap; and
a conversation cleared and continued survives export -> import -> export byte for byte. The
memory API and memory/portable.py against the real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from memory import ChatMemory, Role, StorageLimitReached
from memory.keys import KeyLayout, user_tag
from memory.limits import LimitPolicy
from memory.portable import FORMAT, ImportRejected, export_json, import_file

USER = "ann"


def ours(*conversations: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT, "version": 1, "conversations": list(conversations)})


def conversation(title: str, *messages: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "messages": list(messages)}


def message(content: str = "Hello", created_at: float = 1714557600.5) -> dict[str, Any]:
    return {"role": "user", "content": content, "created_at": created_at}


def settings_of(client: redis.Redis, index_name: str, user: str = USER) -> dict[Any, Any]:
    return dict(client.hgetall(KeyLayout(index_name).settings_key(user_tag(user))))


@pytest.fixture
def user_with_settings(memory: ChatMemory) -> ChatMemory:
    memory.set_window_size(USER, 7)
    memory.append(USER, Role.USER, "what I had before", conversation_id="aaaa")
    return memory


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            '{"format": "redis-chat-memory", "version": 1, "conversations": [{"title": "T", '
            '"messages": [{"role": "user", "content": "ok", "created_at": 1}, '
            '{"role": "user", "content": "bad \\ud800 half", "created_at": 2}]}]}',
            "conversation 1 ('T'), message 2: the content holds '\\ud800'",
        ),
        (
            '[{"title": "\\udfff", "current_node": "a", "mapping": {"a": {"parent": null, '
            '"message": {"author": {"role": "user"}, "content": {"content_type": "text", '
            '"parts": ["hi"]}, "create_time": 1}}}}]',
            "the title holds '\\udfff'",
        ),
        (ours(conversation("Far", message(created_at=9e9))), "conversation 1 ('Far'), message 1"),
        (ours(conversation("2201", message(created_at=7258118400))), "in the future (2200-01-01)"),
    ],
    ids=["lone-surrogate", "chatgpt-title-surrogate", "beyond-the-store", "year-2200"],
)
def test_an_unstorable_record_is_refused_by_the_file_check_and_nothing_changes(
    user_with_settings: ChatMemory,
    redis_client: redis.Redis,
    index_name: str,
    raw: bytes | str,
    named: str,
) -> None:
    memory = user_with_settings
    before = settings_of(redis_client, index_name)
    with pytest.raises(ImportRejected) as refused:
        import_file(memory, USER, raw)
    assert named in str(refused.value)
    assert settings_of(redis_client, index_name) == before
    assert memory.conversation_ids(USER) == ["aaaa"]


def test_an_imported_future_time_does_not_become_every_conversations_last_activity(
    memory: ChatMemory,
) -> None:
    memory.append(USER, Role.USER, "from 2201", conversation_id="f00d", created_at=7.3e9)
    written = memory.append(USER, Role.USER, "today", conversation_id="beef")
    today = memory.conversation(USER, "beef").info
    assert today is not None and today.last_active < time.time() + 5
    assert today.last_active == pytest.approx(written.created_at, abs=1)


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x07", "\n"])
def test_a_control_character_in_a_title_never_cuts_it_in_the_list(
    memory: ChatMemory, control: str
) -> None:
    memory.append(USER, Role.USER, f"first{control}words of the prompt", conversation_id="a1")
    file = ours(conversation(f"Trip{control}to Rome", message()))
    imported = import_file(memory, USER, file).imported
    memory.append(USER, Role.USER, "hello", conversation_id="a2")
    memory.rename_conversation(USER, "a2", f"Renamed{control}title here")
    titles = {info.id: info.title for info in memory.conversations(USER).recent}
    assert titles["a1"] == "first words of the prompt"
    assert titles[imported[0].id] == "Trip to Rome"
    assert titles["a2"] == "Renamed title here"


def test_a_conversation_cleared_and_continued_round_trips_byte_for_byte(
    memory: ChatMemory,
) -> None:
    memory.append(USER, Role.USER, "before the clear", conversation_id="cafe")
    time.sleep(0.01)
    memory.clear(USER, "cafe")
    memory.append(USER, Role.USER, "after the clear", conversation_id="cafe")
    memory.append(USER, Role.ASSISTANT, "and its reply", conversation_id="cafe")
    exported = export_json(memory, USER)
    import_file(memory, "bob", exported)
    assert export_json(memory, "bob") == exported


def test_empty_conversations_count_against_the_storage_cap(
    capped_memory: Callable[..., ChatMemory],
) -> None:
    memory = capped_memory(max_messages=5)
    file = ours(conversation("Imported", message()))
    refused = None
    for _ in range(10):  # import, then clear: the loop of the attack
        try:
            (info,) = import_file(memory, USER, file).imported
        except ImportRejected as error:
            refused = error
            break
        memory.clear(USER, info.id)
    assert refused is not None and "caps conversations too" in str(refused)
    assert len(memory.conversation_ids(USER)) == 5
    with pytest.raises(StorageLimitReached, match="as many conversations as your storage allows"):
        memory.append(USER, Role.USER, "a sixth conversation", conversation_id="abc")
    with pytest.raises(StorageLimitReached, match="as many conversations"):  # a chat turn too
        memory.begin_turn(USER, "abc", policy=LimitPolicy(0, 0), reply_tokens=10, prompt="hi")
    some = memory.conversation_ids(USER)[0]
    memory.append(USER, Role.USER, "an existing one still takes messages", conversation_id=some)
    memory.delete_conversation(USER, some)
    memory.append(USER, Role.USER, "after a delete, a new one", conversation_id="abc")
