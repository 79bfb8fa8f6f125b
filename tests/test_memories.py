"""Memories (issue 30) against the real Redis with the offline embedder: what a user keeps,
what merges or replaces, what goes with its source, and never another user's."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot.embedders import OfflineEmbedder
from memory import ChatMemory, InvalidInput, Role, new_conversation_id
from memory.keys import KeyLayout, user_tag
from memory.memories import MAX_MEMORY_CHARS, AddStatus, Memories, MemoryFull
from memory.memory_rules import Relation, relation
from tests.conftest import DEFAULT_TEST_SYSTEM

USER, OTHER = "ada@example.org", "grace@example.org"
_EMBEDDER = OfflineEmbedder()


@pytest.fixture
def chat(redis_client: redis.Redis, index_name: str) -> Iterator[ChatMemory]:
    yield ChatMemory(
        redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name,
        embedder=_EMBEDDER,
    )  # fmt: skip


@pytest.fixture
def memories(chat: ChatMemory) -> Memories:
    return Memories(chat)


def said(chat: ChatMemory, user: str, cid: str, text: str) -> int:
    return chat.append(user, Role.USER, text, conversation_id=cid).seq


RESTATEMENTS = [
    ("My daughter is Mia", "my daughter is mia."),
    ("My daughter is Mia", "My daughter's name is Mia"),
    ("I prefer metric units", "Prefers metric units"),  # nearly identical vectors
    ("My favourite colour is blue", "My favorite color is blue"),
    ("I'm 41 years old", "I am 41 years old"),
]
CONTRADICTIONS = [
    ("My daughter is Mia", "My daughter is Emma"),
    ("I live in Berlin", "I live in Paris"),
    ("I work at Contoso", "I work for Fabrikam"),
    ("I am 41 years old", "I am 42 years old"),
]
DIFFERENT = [
    ("My daughter is Mia", "My son is Leo"),
    ("I am vegetarian", "I eat no meat"),  # related, but no rule says it is the same fact
    ("I live in Berlin", "I work at Contoso"),
]


@pytest.mark.parametrize(("first", "second"), RESTATEMENTS)
def test_a_restatement_is_merged_into_the_memory_with_both_sources(
    chat: ChatMemory, memories: Memories, first: str, second: str
) -> None:
    cid = new_conversation_id()
    one = memories.add(USER, first, conversation_id=cid, seq=said(chat, USER, cid, first))
    two = memories.add(USER, second, conversation_id=cid, seq=said(chat, USER, cid, second))
    assert two.status is AddStatus.MERGED and two.memory_id == one.memory_id
    [kept] = memories.listed(USER)
    assert kept.text == first and [s.seq for s in kept.sources] == [1, 2]


@pytest.mark.parametrize(("first", "second"), CONTRADICTIONS)
def test_a_contradiction_replaces_the_memory_and_keeps_the_old_one_superseded(
    chat: ChatMemory, memories: Memories, first: str, second: str
) -> None:
    cid = new_conversation_id()
    old = memories.add(USER, first, conversation_id=cid, seq=said(chat, USER, cid, first))
    new = memories.add(USER, second, conversation_id=cid, seq=said(chat, USER, cid, second))
    assert new.status is AddStatus.REPLACED and new.replaced_id == old.memory_id
    by_id = {m.id: m for m in memories.listed(USER)}
    assert by_id[new.memory_id].active and by_id[new.memory_id].supersedes == old.memory_id
    superseded = by_id[old.memory_id]
    assert not superseded.active and superseded.superseded_by == new.memory_id
    assert [s.seq for s in superseded.sources] == [1]
    assert [s.seq for s in by_id[new.memory_id].sources] == [2]
    assert [m.text for m in memories.relevant(USER, second)] == [second]


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_memories_about_different_things_are_both_kept(
    memories: Memories, first: str, second: str
) -> None:
    memories.add(USER, first)
    assert memories.add(USER, second).status is AddStatus.ADDED
    assert sorted(m.text for m in memories.listed(USER) if m.active) == sorted([first, second])


def test_the_offline_rules_detect_only_what_they_say() -> None:
    assert relation("My car is red", "my car is blue") is Relation.CONTRADICTS
    assert relation("I like tea", "I like coffee") is Relation.DIFFERENT  # not single-valued
    assert relation("I am tall", "I am short") is Relation.DIFFERENT


def test_clearing_or_deleting_the_source_removes_memories_that_came_only_from_it(
    chat: ChatMemory, memories: Memories
) -> None:
    first, second = new_conversation_id(), new_conversation_id()
    memories.add(USER, "My dog is Rex", conversation_id=first,
                        seq=said(chat, USER, first, "My dog is Rex"))  # fmt: skip
    both = memories.add(USER, "I live in Oslo", conversation_id=first,
                        seq=said(chat, USER, first, "I live in Oslo"))  # fmt: skip
    memories.add(USER, "I live in Oslo", conversation_id=second,
                 seq=said(chat, USER, second, "Still in Oslo: I live in Oslo"))  # fmt: skip
    typed = memories.add(USER, "I prefer short answers")
    chat.clear(USER, first)
    left = {m.id: m for m in memories.listed(USER)}
    assert set(left) == {both.memory_id, typed.memory_id}
    assert [s.conversation_id for s in left[both.memory_id].sources] == [second]
    chat.delete_conversation(USER, second)
    assert [m.id for m in memories.listed(USER)] == [typed.memory_id]


def test_editing_the_last_prompt_removes_the_memory_it_gave(
    chat: ChatMemory, memories: Memories
) -> None:
    cid = new_conversation_id()
    seq = said(chat, USER, cid, "My cat is Tom")
    memories.add(USER, "My cat is Tom", conversation_id=cid, seq=seq)
    chat.remove_last(USER, cid, seq)
    assert memories.listed(USER) == []


def test_a_memory_expires_with_its_source_unless_pinned(
    chat: ChatMemory, memories: Memories
) -> None:
    cid = new_conversation_id()
    chat.set_retention(USER, 1)
    kept = memories.add(USER, "My boat is Wave", conversation_id=cid,
                        seq=said(chat, USER, cid, "My boat is Wave"))  # fmt: skip
    memories.add(USER, "My bike is red", conversation_id=cid,
                 seq=said(chat, USER, cid, "My bike is red"))  # fmt: skip
    memories.pin(USER, kept.memory_id, True)
    time.sleep(1.2)
    chat.context_window(USER, cid, 10)  # any read prunes what expired
    [left] = memories.listed(USER)
    assert left.id == kept.memory_id and left.pinned
    assert [s.expired for s in left.sources] == [True]
    memories.pin(USER, kept.memory_id, False)  # unpinned, it expires with its source now
    assert memories.listed(USER) == []


def test_erase_me_removes_every_memory(chat: ChatMemory, memories: Memories) -> None:
    cid = new_conversation_id()
    memories.add(USER, "My dog is Rex", conversation_id=cid, seq=said(chat, USER, cid, "hi"))
    memories.pin(USER, memories.add(USER, "I prefer tea").memory_id, True)
    memories.add(OTHER, "I prefer coffee")
    chat.erase_user(USER)
    assert memories.listed(USER) == []
    assert [m.text for m in memories.listed(OTHER)] == ["I prefer coffee"]
    tag = user_tag(USER)
    layout = KeyLayout(chat.index_name)
    assert not chat.redis_client.exists(layout.memories_key(tag), layout.memory_sources_key(tag))


def test_edit_pin_delete_and_last_used(memories: Memories) -> None:
    added = memories.add(USER, "I prefer metric units")
    memories.edit(USER, added.memory_id, "I prefer imperial units")
    memories.pin(USER, added.memory_id, True)
    memories.mark_used(USER, [added.memory_id])
    [record] = memories.listed(USER)
    assert record.text == "I prefer imperial units" and record.pinned
    assert record.last_used_at is not None and abs(record.last_used_at - time.time()) < 5
    assert [m.id for m in memories.search(USER, "imperial")] == [added.memory_id]
    memories.delete(USER, added.memory_id)
    assert memories.listed(USER) == []
    with pytest.raises(InvalidInput, match="no longer exists"):
        memories.edit(USER, added.memory_id, "again")


def test_memory_off_sends_none(memories: Memories) -> None:
    memories.add(USER, "I prefer metric units")
    memories.set_enabled(USER, False)
    assert memories.relevant(USER, "which units do I prefer") == []
    assert not memories.enabled(USER)
    memories.set_enabled(USER, True)
    assert [m.text for m in memories.relevant(USER, "which units do I prefer")] == [
        "I prefer metric units"
    ]


def test_bad_input_is_refused_with_a_message_and_nothing_is_stored(
    chat: ChatMemory, memories: Memories
) -> None:
    cid = new_conversation_id()
    for text in ["", "   ", "x" * (MAX_MEMORY_CHARS + 1), "My dog is \ud800"]:
        with pytest.raises(InvalidInput):
            memories.add(USER, text)
    with pytest.raises(InvalidInput, match="no longer stored"):
        memories.add(USER, "My dog is Rex", conversation_id=cid, seq=7)
    for bad_id in ["", "../x", "A" * 16, "0" * 17]:
        with pytest.raises(InvalidInput):
            memories.delete(USER, bad_id)
    assert memories.listed(USER) == []


def test_the_cap_per_user_refuses_more(chat: ChatMemory) -> None:
    capped = Memories(chat, max_per_user=2)
    capped.add(USER, "I prefer tea")
    capped.add(USER, "My dog is Rex")
    with pytest.raises(MemoryFull, match="delete some"):
        capped.add(USER, "My cat is Tom")
    assert capped.add(USER, "I prefer tea").status is AddStatus.MERGED  # merging needs no room
    capped.add(OTHER, "I prefer coffee")  # another user's cap is their own


HOSTILE = st.sampled_from(
    ["@user_tag:{*}", "*", "(_)", "is it | the", "ada@example.org", "}{", "%", "-x", "é日"]
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    suffix=st.sampled_from(["", " ", "\u200b", "A"]),
    text=st.tuples(HOSTILE, st.text(min_size=1, max_size=30)).map(" ".join),
)
def test_never_another_users_memory(memories: Memories, suffix: str, text: str) -> None:
    """Users whose ids differ by a character, hostile text: each sees, finds, edits and
    deletes only their own."""
    victim, intruder = "ada@example.org", "ada@example.org" + suffix
    if victim == intruder:
        intruder = "ADA@example.org"
    mine = memories.add(victim, f"My secret is {text}")
    assert all(m.id != mine.memory_id for m in memories.listed(intruder))
    assert all(m.id != mine.memory_id for m in memories.search(intruder, f"secret {text}"))
    assert all(m.id != mine.memory_id for m in memories.relevant(intruder, f"secret {text}"))
    for change in (
        lambda: memories.delete(intruder, mine.memory_id),
        lambda: memories.edit(intruder, mine.memory_id, "taken"),
        lambda: memories.pin(intruder, mine.memory_id, True),
    ):
        with pytest.raises(InvalidInput):
            change()
    intruder_add = memories.add(intruder, f"My secret is {text}")
    assert intruder_add.status is AddStatus.ADDED  # never merged into the victim's
    [kept] = [m for m in memories.listed(victim) if m.id == mine.memory_id]
    assert kept.text == " ".join(f"My secret is {text}".split()) and not kept.pinned
    memories.delete(victim, mine.memory_id)
    memories.delete(intruder, intruder_add.memory_id)


def test_memories_work_on_a_cluster_without_a_search_coordinator(
    redis_cluster_url: str, index_name: str
) -> None:
    """Each user's memories share their slot: scripts run, and relevance falls back to
    shared words over the user's own list (no index can cover every shard)."""
    from memory import RedisTarget, create_client

    client = create_client(RedisTarget(url=redis_cluster_url, cluster=True))
    chat = ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name,
                      embedder=_EMBEDDER)  # fmt: skip
    memories = Memories(chat)
    users = [f"user{n}@example.org" for n in range(6)]  # spread over the shards
    for user in users:
        cid = new_conversation_id()
        seq = said(chat, user, cid, "My dog is Rex")
        memories.add(user, "My dog is Rex", conversation_id=cid, seq=seq)
        memories.add(user, f"I live in {user}")
        assert [m.text for m in memories.relevant(user, "what is my dog called")] == [
            "My dog is Rex"
        ]
        chat.clear(user, cid)
        assert [m.text for m in memories.listed(user)] == [f"I live in {user}"]
        chat.erase_user(user)
        assert memories.listed(user) == []
