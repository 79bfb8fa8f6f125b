"""Export and import of conversations (memory/portable.py): parsing and rendering alone, then
round trips and refusals against the real Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from chatbot.your_data import import_note
from memory import ChatMemory, InvalidInput, Role, StorageLimitReached, Usage
from memory.portable import (
    FORMAT,
    MAX_IMPORT_BYTES,
    ImportRejected,
    PortableConversation,
    PortableMessage,
    download_name,
    export_json,
    export_markdown,
    import_file,
    parse_import,
    render_json,
    render_markdown,
)

CHATGPT_SAMPLE = Path(__file__).parent / "support" / "chatgpt_conversations.json"


def ours(*conversations: dict[str, Any]) -> bytes:
    return json.dumps(
        {"format": FORMAT, "version": 1, "conversations": list(conversations)}
    ).encode()


def conversation(title: str = "Trip", *messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"title": title, "messages": list(messages) or [message()], **fields}


def message(role: str = "user", content: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {"role": role, "content": content, "created_at": 1714557600.5, **fields}


# --- ChatGPT's conversations.json ---------------------------------------------------------


def test_chatgpt_export_keeps_the_current_branch_and_only_user_and_assistant_text() -> None:
    trip, untitled = parse_import(CHATGPT_SAMPLE.read_bytes())  # the system-only chat is left out

    assert trip.title == "Trip to Lisbon"
    assert [(m.role, m.content) for m in trip.messages] == [
        (Role.USER, "Plan three days in Lisbon for me."),
        (Role.ASSISTANT, "Day 1: Alfama and the castle.\nDay 2: Belém.\nDay 3: Sintra."),
        (Role.USER, "Is this tram on the way?"),
        (Role.ASSISTANT, "Yes: tram 28 passes Alfama on day 1."),
    ]
    assert [m.created_at for m in trip.messages] == [
        1714557601.25,
        1714557610.75,
        1714557700.0,
        1714557703.0,
    ]
    assert trip.id is None and not trip.pinned
    # No title and a message without a time: the time falls back to the one before it.
    assert untitled.title == ""
    assert [(m.content, m.created_at) for m in untitled.messages] == [
        ("What is 2+2?", 1714599999.0),
        ("4", 1714600000.0),
    ]


def test_a_chatgpt_mapping_whose_parents_loop_is_refused_by_name() -> None:
    looped: dict[str, Any] = {
        "a": {"message": None, "parent": "b", "children": []},
        "b": {"message": None, "parent": "a", "children": []},
    }
    raw = json.dumps([{"title": "Loop", "mapping": looped, "current_node": "a"}])
    with pytest.raises(ImportRejected, match=r"conversation 1 \('Loop'\): node .* loop"):
        parse_import(raw)
    raw = json.dumps([{"title": "Lost", "mapping": {}, "current_node": "x"}])
    with pytest.raises(ImportRejected, match=r"conversation 1 \('Lost'\): current_node 'x'"):
        parse_import(raw)


# --- our own format -----------------------------------------------------------------------


def test_our_format_parses_every_field() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "cut_off": True}
    raw = ours(
        conversation(
            "Trip",
            message(),
            message("assistant", "Hi!", usage=usage),
            id="0123abcd",
            pinned=True,
        )
    )
    (parsed,) = parse_import(raw)
    assert parsed.id == "0123abcd" and parsed.pinned and parsed.title == "Trip"
    assert parsed.messages[1] == PortableMessage(
        Role.ASSISTANT, "Hi!", 1714557600.5, Usage(12, 3, cut_off=True)
    )


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json", r"not valid JSON"),
        (b'{"hello": 1}', r"Unknown file format"),
        (b"[1, 2]", r"Unknown file format"),
        (json.dumps({"format": FORMAT, "version": 2}).encode(), r"version 2 .* reads version 1"),
        (
            ours(
                conversation(),
                conversation(),
                conversation("Trip", *[message()] * 6, message("robot")),
            ),
            r"^conversation 3 \('Trip'\), message 7: role 'robot' is not user or assistant\.$",
        ),
        (
            ours(conversation("Trip", message(content="  "))),
            r"message 1: content must be non-empty",
        ),
        (ours(conversation("Trip", message(created_at="yesterday"))), r"not a time in seconds"),
        (ours(conversation("x" * 121)), r"at most 120 characters"),
        (
            ours(conversation(id="../etc")),
            r"id '../etc': A conversation id must be 1-32 lowercase hex",
        ),
        (ours(conversation("T", message(usage={"prompt_tokens": -1}))), r"usage needs whole"),
        (ours(conversation("Empty", messages=[])), r"no user or assistant message"),
        (b" " * (MAX_IMPORT_BYTES + 1), r"at most 20 MB"),
    ],
)
def test_bad_files_are_refused_with_the_first_bad_record_named(raw: bytes, error: str) -> None:
    with pytest.raises(ImportRejected, match=error):
        parse_import(raw)


# --- rendering ----------------------------------------------------------------------------


SAMPLE = PortableConversation(
    title="Trip to Lisbon",
    messages=(
        PortableMessage(Role.USER, "Plan three days.", 1714557600.0),
        PortableMessage(Role.ASSISTANT, "Day 1: Alfama.", 1714557660.0, Usage(10, 4)),
    ),
    id="0123abcd",
    created_at=1714557600.0,
    last_active=1714557660.0,
)


def test_markdown_has_a_title_heading_and_each_message_with_its_role_and_time() -> None:
    text = render_markdown([SAMPLE, SAMPLE])
    assert text.startswith("# Trip to Lisbon\n")
    assert "**You** · 2024-05-01 10:00 UTC\n\nPlan three days." in text
    assert "**Assistant** · 2024-05-01 10:01 UTC\n\nDay 1: Alfama." in text
    assert text.count("\n---\n") == 1


def test_rendered_json_parses_back_to_the_same_conversations() -> None:
    text = render_json([SAMPLE])
    assert parse_import(text) == [SAMPLE]
    assert json.loads(text)["conversations"][0]["messages"][1]["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 4,
    }


def test_download_names_say_what_is_inside() -> None:
    assert download_name("Trip to Lisbon!", "md") == "chat-trip-to-lisbon.md"
    assert download_name("☕", "md") == "chat-untitled.md"
    assert download_name(None, "json").startswith("chats-20")


# --- against the real Redis ---------------------------------------------------------------


def snapshot(redis_client: redis.Redis, index_name: str) -> dict[str, bytes | None]:
    """Every key of the test's index with its serialized value."""
    return {key: redis_client.dump(key) for key in redis_client.scan_iter(match=f"{index_name}:*")}


def chat(memory: ChatMemory, user: str, cid: str, *turns: str, usage: Usage | None = None) -> None:
    for n, text in enumerate(turns):
        role = Role.USER if n % 2 == 0 else Role.ASSISTANT
        memory.append(user, role, text, conversation_id=cid, usage=usage if n % 2 else None)


def test_export_import_export_is_byte_identical(memory: ChatMemory) -> None:
    chat(memory, "ana", "a1", "Plan a trip", "Lisbon, 3 days", usage=Usage(120, 40))
    chat(memory, "ana", "b2", "Rust or Go?", "Depends ☕", "On what?", "The team.")
    chat(memory, "ana", "0", "Only a question")  # the conversation adopted from before #16
    memory.rename_conversation("ana", "a1", "Trip to Lisbon")
    memory.pin_conversation("ana", "b2", True)
    exported = export_json(memory, "ana")

    infos = import_file(memory, "bea", exported).imported

    assert export_json(memory, "bea") == exported
    assert [info.id for info in infos] == ["a1", "b2", "0"]
    listing = memory.conversations("bea")
    assert [info.id for info in listing.pinned] == ["b2"]
    assert {info.title for info in infos} >= {"Trip to Lisbon"}
    usage = json.loads(exported)["conversations"][0]["messages"][1]["usage"]
    assert usage == {"prompt_tokens": 120, "completion_tokens": 40}
    # imported usage stays on its message; it was not spent here, so it is not in the totals
    assert memory.conversation("bea", "a1").usage_totals.prompt_tokens == 0
    assert export_markdown(memory, "bea", ["a1"]).startswith("# Trip to Lisbon\n")
    with pytest.raises(InvalidInput, match="No conversation 'ff' to export"):
        export_json(memory, "bea", ["a1", "ff"])


def test_reimporting_the_same_export_adds_nothing_and_says_so(memory: ChatMemory) -> None:
    """Was: every re-import duplicated every conversation, pins included."""
    chat(memory, "ana", "a1", "Plan a trip", "Lisbon")
    memory.pin_conversation("ana", "a1", True)
    exported = export_json(memory, "ana")
    again = import_file(memory, "ana", exported)
    assert again.imported == [] and [info.id for info in again.already_here] == ["a1"]
    chat(memory, "ana", "a1", "And Porto?")  # went on since: still recognised
    assert import_file(memory, "ana", exported).imported == []
    listing = memory.conversations("ana")
    assert listing.total == 1 and [info.id for info in listing.pinned] == ["a1"]
    assert import_note(again, "mine.json") == (
        "mine.json holds nothing new: its 1 conversation is already here (imported before). "
        "Nothing was added."
    )


def test_a_chatgpt_export_imported_twice_is_recognised(memory: ChatMemory) -> None:
    first = import_file(memory, "ana", CHATGPT_SAMPLE.read_bytes())
    second = import_file(memory, "ana", CHATGPT_SAMPLE.read_bytes())
    assert second.imported == [] and len(second.already_here) == len(first.imported) == 2
    assert memory.conversations("ana").total == 2


def test_a_conversation_with_the_same_id_but_other_messages_is_imported_as_a_copy(
    memory: ChatMemory,
) -> None:
    chat(memory, "ana", "a1", "Plan a trip", "Lisbon")
    exported = export_json(memory, "ana")
    chat(memory, "bob", "a1", "Something else")
    result = import_file(memory, "bob", exported)
    assert result.already_here == [] and result.imported[0].id != "a1"
    assert memory.conversations("bob").total == 2
    assert "already here" not in import_note(result, "ana.json")


def test_a_chatgpt_export_imports_its_current_branch(memory: ChatMemory) -> None:
    trip, untitled = import_file(memory, "ana", CHATGPT_SAMPLE.read_bytes()).imported
    assert trip.title == "Trip to Lisbon" and trip.message_count == 4
    assert [m.content for m in memory.messages("ana", trip.id)][-1] == (
        "Yes: tram 28 passes Alfama on day 1."
    )
    assert [m.created_at for m in memory.messages("ana", untitled.id)] == [
        1714599999.0,
        1714600000.0,
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"format": "someone-else"}',
        ours(conversation(), conversation("Trip", message("robot"))),
        ours(conversation(), conversation("Trip", message(content=""))),
        b" " * (MAX_IMPORT_BYTES + 1),
        ours(conversation("Long", *[message()] * 5)),  # 2 stored + 5 > the cap of 6
    ],
    ids=["bad-json", "unknown-format", "bad-role", "empty-content", "too-big", "too-many"],
)
def test_a_refused_import_leaves_the_users_data_exactly_as_before(
    redis_client: redis.Redis, index_name: str, raw: bytes, capped_memory: Callable[..., ChatMemory]
) -> None:
    memory = capped_memory(max_messages=6)
    chat(memory, "ana", "a1", "Plan a trip", "Lisbon")
    before = snapshot(redis_client, index_name)

    with pytest.raises(ImportRejected):
        import_file(memory, "ana", raw)

    assert snapshot(redis_client, index_name) == before


def test_a_storage_failure_part_way_leaves_nothing_imported(
    redis_client: redis.Redis, index_name: str, capped_memory: Callable[..., ChatMemory]
) -> None:
    memory = capped_memory(max_bytes=300)
    chat(memory, "ana", "a1", "Plan a trip", "Lisbon")
    before_keys = set(snapshot(redis_client, index_name))
    before = export_json(memory, "ana")
    raw = ours(
        conversation("Fits", message(content="x" * 100)),
        conversation("Fits too", message(content="y" * 100)),
        conversation("Too much", message(content="z" * 100)),
    )

    with pytest.raises(StorageLimitReached, match="MAX_BYTES_PER_USER"):
        import_file(memory, "ana", raw)

    assert export_json(memory, "ana") == before
    assert memory.conversations("ana").total == 1
    assert set(snapshot(redis_client, index_name)) == before_keys
    chat(memory, "ana", "a1", "x" * 200)  # the bytes the failed import took are free again
