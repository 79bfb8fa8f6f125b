"""Actions that remove messages, against a real Redis (single server and 3-master cluster):
each names the newest message the page showed and is refused when that is no longer the
newest (issue 25 item 2), and each takes the conversation's summary checkpoint with it in the
same script (issue 26 item 4)."""

from __future__ import annotations

import pytest

from memory import ChatMemory, RedisClient, Role, StaleTarget, new_conversation_id
from memory.keys import KeyLayout, user_tag
from memory.summary import Summary, SummaryStore
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.command_log import commands_during
from tests.support.delay_proxy import DelayProxy
from tests.test_memory import SINGLE_ONLY, short_timeout_client
from tests.test_memory import proxy as delay_proxy
from tests.test_memory import redis_client as single_and_cluster

redis_client = single_and_cluster
proxy = delay_proxy
USER = "leia@alderaan.example"


def say(memory: ChatMemory, cid: str, *texts: str) -> None:
    for number, text in enumerate(texts):
        role = Role.USER if number % 2 == 0 else Role.ASSISTANT
        memory.append(USER, role, text, conversation_id=cid)


def contents(memory: ChatMemory, cid: str) -> list[str]:
    return [message.content for message in memory.messages(USER, cid)]


@pytest.fixture
def summaries(redis_client: RedisClient, index_name: str) -> SummaryStore:
    return SummaryStore(redis_client, index_name)


def summarised(summaries: SummaryStore, cid: str, covers_seq: int = 1) -> None:
    summaries.set_enabled(USER, True)
    summaries.save(USER, cid, Summary("They said hello.", covers_seq, 5, "m"), None)
    assert summaries.state(USER, cid).checkpoint is not None


# --- stale targets ------------------------------------------------------------------------


def test_a_stale_regenerate_keeps_the_prompt_sent_since(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    shown = memory.conversation(USER, cid)
    assert shown.last_seq == 2
    say(memory, cid, "B?")  # sent while the page still offered Regenerate under A's reply
    with pytest.raises(StaleTarget, match="changed since the page showed it") as refused:
        memory.remove_last(USER, cid, 2, expect_last_seq=shown.last_seq)
    assert (refused.value.expected, refused.value.actual) == (2, 3)
    assert contents(memory, cid) == ["A?", "reply to A", "B?"]
    with pytest.raises(StaleTarget):  # Edit of A, from the same stale page
        memory.remove_last(USER, cid, 1, expect_last_seq=shown.last_seq)
    assert contents(memory, cid) == ["A?", "reply to A", "B?"]
    assert memory.conversations(USER).recent[0].message_count == 3


def test_a_current_target_is_removed(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    assert memory.remove_last(USER, cid, 2, expect_last_seq=2) == 1
    assert contents(memory, cid) == ["A?"]
    assert memory.conversation(USER, cid).last_seq == 1


def test_a_stale_clear_or_delete_removes_nothing(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    say(memory, cid, "B?")
    for remove in (memory.clear, memory.delete_conversation):
        with pytest.raises(StaleTarget):
            remove(USER, cid, expect_last_seq=2)
    assert contents(memory, cid) == ["A?", "reply to A", "B?"]
    assert memory.clear(USER, cid, expect_last_seq=3) == 3
    with pytest.raises(StaleTarget):  # the page still shows the messages: it is empty now
        memory.delete_conversation(USER, cid, expect_last_seq=3)
    assert memory.delete_conversation(USER, cid, expect_last_seq=0) == 0
    assert memory.conversations(USER).total == 0


@SINGLE_ONLY
def test_a_removal_resent_after_a_stall_removes_once_and_keeps_a_prompt_sent_meanwhile(
    proxy: DelayProxy, redis_client: RedisClient, index_name: str
) -> None:
    """redis-py sends the script again when the answer is late; the prompt another tab sent
    between the two runs must neither be removed nor make the first run look refused."""
    memory = ChatMemory(
        short_timeout_client(proxy.url, retries=2),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=index_name,
    )
    other_tab = ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    proxy.stall(cid.encode(), 1.5, then=lambda: say(other_tab, cid, "B, sent from another tab"))
    assert memory.remove_last(USER, cid, 2, expect_last_seq=2) == 1
    assert contents(memory, cid) == ["A?", "B, sent from another tab"]


# --- the summary goes with the messages -----------------------------------------------------


def test_clear_delete_and_erase_take_the_summary_with_them(
    memory: ChatMemory, summaries: SummaryStore
) -> None:
    cleared, deleted = new_conversation_id(), new_conversation_id()
    for cid in (cleared, deleted):
        say(memory, cid, "hello", "hi")
        summarised(summaries, cid)
    memory.clear(USER, cleared)
    memory.delete_conversation(USER, deleted)
    for cid in (cleared, deleted):
        assert summaries.state(USER, cid).checkpoint is None
    say(memory, cleared, "again", "yes")
    summarised(summaries, cleared)
    memory.erase_user(USER)
    assert summaries.state(USER, cleared).checkpoint is None


def test_clear_all_takes_every_summary_with_it(memory: ChatMemory, summaries: SummaryStore) -> None:
    ids = [new_conversation_id() for _ in range(2)]
    for cid in ids:
        say(memory, cid, "hello", "hi")
        summarised(summaries, cid)
    memory.clear_all()
    assert [summaries.state(USER, cid).checkpoint for cid in ids] == [None, None]
    assert summaries.state(USER, ids[0]).enabled  # the setting is the user's, it stays


def test_removing_a_summarised_message_drops_the_summary_a_later_one_keeps_it(
    memory: ChatMemory, summaries: SummaryStore
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "one", "two", "three", "four")
    summarised(summaries, cid, covers_seq=2)
    memory.remove_last(USER, cid, 3)  # edit "three": the summary covers only 1-2
    assert summaries.state(USER, cid).checkpoint is not None
    memory.remove_last(USER, cid, 2)
    assert summaries.state(USER, cid).checkpoint is None


@SINGLE_ONLY
@pytest.mark.parametrize("action", ["clear", "delete", "erase", "clear_all"])
def test_the_summary_goes_in_the_script_that_removes_the_messages(
    memory: ChatMemory,
    summaries: SummaryStore,
    redis_client: RedisClient,
    index_name: str,
    action: str,
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "hello", "hi")
    summarised(summaries, cid)
    key = KeyLayout(index_name).summary_key(user_tag(USER), cid)
    actions = {
        "clear": lambda: memory.clear(USER, cid),
        "delete": lambda: memory.delete_conversation(USER, cid),
        "erase": lambda: memory.erase_user(USER),
        "clear_all": memory.clear_all,
    }
    log = commands_during(redis_client, actions[action])
    removals = [command for command in log.touching(key) if command.name == "DEL"]
    assert removals and all(command.from_script for command in removals)
    message_prefix = KeyLayout(index_name).message_prefix
    assert any(
        {"DEL"} == {c.name for c in run if key in c.args}
        and any(c.name == "DEL" and c.args[0].startswith(message_prefix) for c in run)
        for run in log.script_runs()
    ), "no script call removed both the messages and the summary"
    assert redis_client.exists(key) == 0
