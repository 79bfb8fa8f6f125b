"""Editing any prompt keeps the earlier version as a branch ("< 1/2 >", issue 28), against a
real Redis (single server and 3-master cluster): the timeline shows one branch, switching
brings the other back with its replies, hidden messages stay out of search, the window and the
summary, every removal takes them, and edits and switches are refused when stale, refused
while a reply streams, and happen once however often redis-py re-sends them."""

from __future__ import annotations

import pytest

from memory import (
    BranchBusy,
    BranchPoint,
    ChatMemory,
    InvalidInput,
    RedisClient,
    Role,
    StaleTarget,
    TurnStart,
    new_conversation_id,
)
from memory.keys import KeyLayout, user_tag
from memory.limits import LimitPolicy
from memory.memories import Memories, MemorySource
from memory.reply_stream import ReplyStreams
from memory.summary import Summary, SummaryStore
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.delay_proxy import DelayProxy
from tests.test_memory import SINGLE_ONLY, short_timeout_client
from tests.test_memory import proxy as delay_proxy
from tests.test_memory import redis_client as single_and_cluster

redis_client = single_and_cluster
proxy = delay_proxy
USER = "rey@jakku.example"
OPEN = LimitPolicy(requests_per_minute=0, tokens_per_day=0)


def say(memory: ChatMemory, cid: str, *texts: str) -> None:
    for number, text in enumerate(texts):
        role = Role.USER if number % 2 == 0 else Role.ASSISTANT
        memory.append(USER, role, text, conversation_id=cid)


def contents(memory: ChatMemory, cid: str) -> list[str]:
    return [message.content for message in memory.messages(USER, cid)]


def edit(memory: ChatMemory, cid: str, seq: int, text: str, reply: str | None = None) -> TurnStart:
    """Edit prompt `seq` as the page does (naming the newest message it showed), then store
    the reply as the worker would."""
    newest = memory.conversation(USER, cid).last_seq
    start = memory.begin_turn(
        USER, cid, policy=OPEN, reply_tokens=100, prompt=text, replace_from=seq,
        expect_last_seq=newest, keep_replaced=True,
    )  # fmt: skip
    if reply is not None:
        memory.finish_turn(start, reply=reply, used_tokens=10)
    return start


def switch(memory: ChatMemory, cid: str, parent: int, to: int) -> int:
    newest = memory.conversation(USER, cid).last_seq
    return memory.switch_branch(USER, cid, parent, to, expect_last_seq=newest)


def user_keys(client: RedisClient, user: str = USER) -> list[str]:
    return sorted(client.scan_iter(match=f"*{{{user_tag(user)}}}*", count=1000))


def stored_messages(client: RedisClient, index_name: str) -> int:
    key = KeyLayout(index_name).settings_key(user_tag(USER))
    return int(client.hget(key, "stored_messages") or 0)


# --- editing any prompt --------------------------------------------------------------------


def test_editing_an_earlier_prompt_keeps_the_old_version_and_switching_brings_it_back(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A", "B?", "reply to B")
    start = edit(memory, cid, 1, "A, better put?", "reply to the better A")
    assert start.window.messages[-1].content == "A, better put?"
    assert [m.content for m in start.window.messages] == ["A, better put?"]  # nothing hidden
    shown = memory.conversation(USER, cid)
    assert contents(memory, cid) == ["A, better put?", "reply to the better A"]
    assert shown.total_messages == 2 and shown.info is not None and shown.info.message_count == 2
    assert shown.branches == (BranchPoint(parent_seq=0, shown=2, count=2, head_seq=5),)
    assert shown.branch_at(5) == shown.branches[0] and shown.branch_at(1) is None
    assert stored_messages(redis_client, index_name) == 6  # the old version is still stored

    switch(memory, cid, 0, 1)
    assert contents(memory, cid) == ["A?", "reply to A", "B?", "reply to B"]
    back = memory.conversation(USER, cid)
    assert back.branches == (BranchPoint(0, 1, 2, 1),) and back.last_seq == 4
    switch(memory, cid, 0, 2)
    assert contents(memory, cid) == ["A, better put?", "reply to the better A"]


def test_editing_a_middle_prompt_forks_after_the_message_before_it(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A", "B?", "reply to B", "C?", "reply to C")
    start = edit(memory, cid, 3, "B2?", "reply to B2")
    assert [m.content for m in start.window.messages] == ["A?", "reply to A", "B2?"]
    assert contents(memory, cid) == ["A?", "reply to A", "B2?", "reply to B2"]
    assert memory.conversation(USER, cid).branches == (BranchPoint(2, 2, 2, 7),)
    edit(memory, cid, 7, "B3?", "reply to B3")  # the edited prompt edited again: a third
    assert memory.conversation(USER, cid).branches == (BranchPoint(2, 3, 3, 9),)
    switch(memory, cid, 2, 1)
    assert contents(memory, cid)[2:] == ["B?", "reply to B", "C?", "reply to C"]
    switch(memory, cid, 2, 2)
    assert contents(memory, cid)[2:] == ["B2?", "reply to B2"]


def test_a_branch_inside_a_hidden_version_comes_back_with_it(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A", "B?", "reply to B")
    edit(memory, cid, 3, "B2?", "reply to B2")  # fork after 2
    edit(memory, cid, 1, "A2?", "reply to A2")  # fork at the start: hides A..B2
    shown = memory.conversation(USER, cid)
    assert contents(memory, cid) == ["A2?", "reply to A2"]
    assert [m.seq for m in shown.recent if shown.branch_at(m.seq)] == [7]  # B2's is hidden
    switch(memory, cid, 0, 1)
    assert contents(memory, cid) == ["A?", "reply to A", "B2?", "reply to B2"]
    assert memory.conversation(USER, cid).branch_at(5) == BranchPoint(2, 2, 2, 5)
    switch(memory, cid, 2, 1)
    assert contents(memory, cid) == ["A?", "reply to A", "B?", "reply to B"]


def test_a_new_prompt_after_switching_continues_the_shown_version(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    edit(memory, cid, 1, "A2?", "reply to A2")
    switch(memory, cid, 0, 1)
    say(memory, cid, "then C?", "reply to C")
    assert contents(memory, cid) == ["A?", "reply to A", "then C?", "reply to C"]
    switch(memory, cid, 0, 2)
    assert contents(memory, cid) == ["A2?", "reply to A2"]
    switch(memory, cid, 0, 1)
    assert contents(memory, cid) == ["A?", "reply to A", "then C?", "reply to C"]


def test_only_a_prompt_of_the_shown_version_can_be_edited(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    with pytest.raises(InvalidInput, match="no longer a prompt"):
        edit(memory, cid, 2, "a reply is not a prompt")
    edit(memory, cid, 1, "A2?", "reply to A2")
    with pytest.raises(InvalidInput, match="no longer a prompt"):
        edit(memory, cid, 1, "the hidden A")  # hidden now: not in the shown version
    assert contents(memory, cid) == ["A2?", "reply to A2"]


# --- refused when stale, busy or gone; exactly once ----------------------------------------


def test_a_stale_edit_or_switch_changes_nothing(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    edit(memory, cid, 1, "A2?", "reply to A2")
    page = memory.conversation(USER, cid)
    say(memory, cid, "C?")  # sent from another tab after the page was drawn
    with pytest.raises(StaleTarget):
        memory.switch_branch(USER, cid, 0, 1, expect_last_seq=page.last_seq)
    with pytest.raises(StaleTarget):
        memory.begin_turn(
            USER, cid, policy=OPEN, reply_tokens=100, prompt="A3?", replace_from=3,
            expect_last_seq=page.last_seq, keep_replaced=True,
        )  # fmt: skip
    assert contents(memory, cid) == ["A2?", "reply to A2", "C?"]
    assert memory.conversation(USER, cid).branches == (BranchPoint(0, 2, 2, 3),)


def test_a_switch_clicked_twice_switches_once(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    edit(memory, cid, 1, "A2?", "reply to A2")
    page = memory.conversation(USER, cid)
    memory.switch_branch(USER, cid, 0, 1, expect_last_seq=page.last_seq)
    with pytest.raises(StaleTarget):  # the second click, from the same page
        memory.switch_branch(USER, cid, 0, 1, expect_last_seq=page.last_seq)
    assert contents(memory, cid) == ["A?", "reply to A"]


def test_no_switch_while_a_reply_streams(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    edit(memory, cid, 1, "A2?")
    replies = ReplyStreams(redis_client, KeyLayout(index_name))
    assert replies.claim(USER, cid, "r1", "instance-1") is None
    with pytest.raises(BranchBusy, match="still being written"):
        switch(memory, cid, 0, 1)
    assert contents(memory, cid) == ["A2?"]


def test_a_switch_to_no_such_version_is_refused(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    with pytest.raises(InvalidInput, match="no longer there"):
        switch(memory, cid, 0, 2)
    edit(memory, cid, 1, "A2?", "reply to A2")
    with pytest.raises(InvalidInput, match="no longer there"):
        switch(memory, cid, 0, 3)
    assert contents(memory, cid) == ["A2?", "reply to A2"]


@SINGLE_ONLY
def test_a_switch_resent_after_a_stall_switches_once(
    proxy: DelayProxy, redis_client: RedisClient, index_name: str
) -> None:
    memory = ChatMemory(
        short_timeout_client(proxy.url, retries=2),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=index_name,
    )
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    edit(memory, cid, 1, "A2?", "reply to A2")
    newest = memory.conversation(USER, cid).last_seq
    proxy.stall(b"branch", 1.5)  # never matched: the stall is on the script's own bytes below
    proxy.stall(cid.encode(), 1.5)
    assert memory.switch_branch(USER, cid, 0, 1, expect_last_seq=newest) == 2
    assert contents(memory, cid) == ["A?", "reply to A"]
    assert memory.conversation(USER, cid).branches == (BranchPoint(0, 1, 2, 1),)


@SINGLE_ONLY
def test_an_edit_resent_after_a_stall_forks_once(proxy: DelayProxy, index_name: str) -> None:
    memory = ChatMemory(
        short_timeout_client(proxy.url, retries=2),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=index_name,
    )
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    proxy.stall(cid.encode(), 1.5)
    edit(memory, cid, 1, "A2?")
    assert contents(memory, cid) == ["A2?"]
    assert memory.conversation(USER, cid).branches == (BranchPoint(0, 2, 2, 3),)
    switch(memory, cid, 0, 1)
    assert contents(memory, cid) == ["A?", "reply to A"]


# --- hidden messages stay out of search, window and summary ---------------------------------


@SINGLE_ONLY  # search needs one index over every message (README "Redis Cluster")
def test_search_finds_only_the_shown_version(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "Tell me about zebras", "Zebras are striped")
    assert {hit.seq for hit in memory.search(USER, "zebras")} == {1, 2}
    edit(memory, cid, 1, "Tell me about okapis", "Okapis are shy")
    assert memory.search(USER, "zebras") == []
    assert {hit.seq for hit in memory.search(USER, "okapis")} == {3, 4}
    switch(memory, cid, 0, 1)
    assert {hit.seq for hit in memory.search(USER, "zebras")} == {1, 2}
    assert memory.search(USER, "okapis") == []


@SINGLE_ONLY
def test_recall_of_this_conversation_sees_only_the_shown_version(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "Tell me about zebras", "Zebras are striped")
    found = memory.ranked_messages(USER, "zebras", conversation_id=cid)
    assert {c.seq for c in found} == {1, 2}
    edit(memory, cid, 1, "Tell me about okapis", "Okapis are shy")
    assert memory.ranked_messages(USER, "zebras", conversation_id=cid) == []
    assert memory.ranked_messages(USER, "zebras") == []


def test_the_summary_goes_when_it_covers_a_message_no_longer_shown(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    summaries = SummaryStore(redis_client, index_name)
    summaries.set_enabled(USER, True)
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A", "B?", "reply to B")
    summaries.save(USER, cid, Summary("A was asked.", 2, 5, "m"), None)
    edit(memory, cid, 3, "B2?")  # fork after 2: the summary covers only what is still shown
    assert summaries.state(USER, cid).checkpoint is not None
    summaries.save(USER, cid, Summary("A and B2.", 5, 5, "m"), None)
    switch(memory, cid, 2, 1)  # covers 5, hidden now
    assert summaries.state(USER, cid).checkpoint is None


# --- clear, delete, retention and erase take the hidden versions ----------------------------


def test_clear_delete_and_erase_leave_no_hidden_message_or_branch_key(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cleared, deleted = new_conversation_id(), new_conversation_id()
    for cid in (cleared, deleted):
        say(memory, cid, "A?", "reply to A")
        edit(memory, cid, memory.conversation(USER, cid).recent[0].seq, "A2?", "reply to A2")
    assert stored_messages(redis_client, index_name) == 8
    memory.clear(USER, cleared)
    assert [k for k in user_keys(redis_client) if cleared in k and ":conv:" not in k] == []
    assert memory.conversation(USER, cleared).branches == ()
    memory.delete_conversation(USER, deleted)
    assert [k for k in user_keys(redis_client) if deleted in k] == []
    assert stored_messages(redis_client, index_name) == 0
    say(memory, cleared, "again", "yes")
    edit(memory, cleared, memory.conversation(USER, cleared).last_seq - 1, "again, edited", "ok")
    memory.erase_user(USER)
    assert user_keys(redis_client) == []


def test_retention_covers_the_hidden_versions_and_pruning_takes_them(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    edit(memory, cid, 1, "A2?", "reply to A2")
    layout, tag = KeyLayout(index_name), user_tag(USER)
    hidden = [str(key) for key in redis_client.zrange(layout.hidden_key(tag, cid), 0, -1)]
    assert len(hidden) == 2
    memory.set_retention(USER, 3600)
    assert all(0 < int(redis_client.pttl(key)) <= 3_600_000 for key in hidden)
    expiry = layout.expiry_key(tag)
    members = [str(member) for member in redis_client.zrange(expiry, 0, -1)]
    assert sum(key in member for member in members for key in hidden) == 2
    for member in members:  # every message's time runs out now
        redis_client.zadd(expiry, {member: 1})
    memory.conversation(USER, cid)  # a read prunes
    assert redis_client.zcard(layout.hidden_key(tag, cid)) == 0
    assert stored_messages(redis_client, index_name) == 0


def test_a_memory_from_a_hidden_prompt_stays_with_its_source_marked_until_it_is_shown(
    memory: ChatMemory,
) -> None:
    memories = Memories(memory)
    cid = new_conversation_id()
    say(memory, cid, "My dog is Rex", "Nice dog")
    added = memories.add(USER, "My dog is Rex", conversation_id=cid, seq=1)
    edit(memory, cid, 1, "My cat is Tom", "Nice cat")

    def sources() -> list[MemorySource]:
        (record,) = (m for m in memories.listed(USER) if m.id == added.memory_id)
        return list(record.sources)

    assert sources() == [MemorySource(cid, 1, expired=False, hidden=True)]
    switch(memory, cid, 0, 1)
    assert sources() == [MemorySource(cid, 1, expired=False, hidden=False)]
    switch(memory, cid, 0, 2)
    memory.clear(USER, cid)  # the hidden source goes: so does the memory that came from it
    assert [m.id for m in memories.listed(USER)] == []
