"""A page render in one script call and a chat turn in two (issue 26 item 5), against a real
Redis (single server and 3-master cluster): what they return, what they refuse without writing
anything, exactly-once when redis-py sends a script again, limits exact across two app
instances, and the commands each costs (counted with MONITOR, single server)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from memory import (
    ChatMemory,
    InvalidInput,
    RedisClient,
    Role,
    StaleTarget,
    StorageFull,
    StorageLimitReached,
    TurnStart,
    Usage,
    new_conversation_id,
    new_message_id,
)
from memory.keys import KeyLayout, user_tag
from memory.limits import Limit, LimitExceeded, LimitPolicy
from memory.summary import Summary, SummaryStore
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.command_log import commands_during
from tests.support.delay_proxy import DelayProxy
from tests.test_memory import SINGLE_ONLY, short_timeout_client
from tests.test_memory import proxy as delay_proxy
from tests.test_memory import redis_client as single_and_cluster
from tests.test_security import full_redis  # noqa: F401  (fixture)

redis_client = single_and_cluster
proxy = delay_proxy
USER = "han@corellia.example"
OPEN = LimitPolicy(requests_per_minute=0, tokens_per_day=0)
REPLY_TOKENS = 100


def say(memory: ChatMemory, cid: str, *texts: str) -> None:
    for number, text in enumerate(texts):
        role = Role.USER if number % 2 == 0 else Role.ASSISTANT
        memory.append(USER, role, text, conversation_id=cid)


def contents(memory: ChatMemory, cid: str) -> list[str]:
    return [message.content for message in memory.messages(USER, cid)]


def budget(client: RedisClient, index_name: str, user: str = USER) -> dict[str, str]:
    key = KeyLayout(index_name).token_budget_key(user_tag(user))
    return {str(field): str(value) for field, value in client.hgetall(key).items()}


def requests_logged(client: RedisClient, index_name: str, user: str = USER) -> int:
    return int(client.zcard(KeyLayout(index_name).request_log_key(user_tag(user))))


def begin(
    memory: ChatMemory,
    cid: str,
    policy: LimitPolicy = OPEN,
    *,
    prompt: str | None = None,
    message_id: str | None = None,
    replace_from: int | None = None,
    expect_last_seq: int | None = None,
    window_size: int | None = None,
    user: str = USER,
) -> TurnStart:
    return memory.begin_turn(
        user, cid, policy=policy, reply_tokens=REPLY_TOKENS, prompt=prompt,
        message_id=message_id, replace_from=replace_from, expect_last_seq=expect_last_seq,
        window_size=window_size,
    )  # fmt: skip


# --- the page ---------------------------------------------------------------------------------


def test_a_page_view_is_what_the_three_reads_return(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    summaries = SummaryStore(redis_client, index_name)
    opened, other = new_conversation_id(), new_conversation_id()
    say(memory, other, "other", "chat")
    say(memory, opened, "one", "two", "three")
    memory.pin_conversation(USER, other, True)
    memory.set_retention(USER, 3600)
    summaries.set_enabled(USER, True)
    summaries.save(USER, opened, Summary("They counted.", 1, 4, "m"), 3600)
    view = memory.page_view(USER, opened, page_size=2, list_limit=50)
    alone = memory.conversation(USER, opened, page_size=2)
    assert view.conversation.retention.oldest_expires_in == pytest.approx(
        alone.retention.oldest_expires_in, abs=1
    )  # read a moment apart
    assert replace(view.conversation, retention=alone.retention) == alone
    assert view.conversations == memory.conversations(USER, limit=50)
    assert view.summary == summaries.state(USER, opened)
    assert [m.content for m in view.conversation.recent] == ["two", "three"]
    assert [c.id for c in view.conversations.pinned] == [other]


def test_a_page_without_a_named_conversation_opens_the_most_recent_or_a_fresh_one(
    memory: ChatMemory,
) -> None:
    fresh = memory.page_view(USER, None, page_size=50, list_limit=50)
    assert fresh.conversation.total_messages == 0 and fresh.conversation.info is None
    assert fresh.conversations.total == 0 and memory.conversations(USER).total == 0
    older, newer = new_conversation_id(), new_conversation_id()
    say(memory, newer, "newer")
    say(memory, older, "older, but written last")
    memory.pin_conversation(USER, newer, True)
    view = memory.page_view(USER, None, page_size=50, list_limit=1)
    assert view.conversation.conversation_id == older == memory.most_recent_conversation(USER)
    assert [c.id for c in view.conversations.pinned] == [newer]
    assert view.conversations.recent == () and view.conversations.total == 2


def test_a_page_over_a_list_of_an_earlier_release_rebuilds_it(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "hello")
    redis_client.delete(KeyLayout(index_name).listing_key(user_tag(USER)))
    view = memory.page_view(USER, cid, page_size=50, list_limit=50)
    assert [c.id for c in view.conversations.recent] == [cid]
    assert view.conversation.info == view.conversations.recent[0]


# --- a turn -----------------------------------------------------------------------------------


def test_a_turn_stores_the_prompt_reads_the_window_and_settles_to_the_usage(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "one", "two")
    start = begin(memory, cid, prompt="three?", window_size=2)
    assert start.prompt is not None and start.prompt.seq == 3
    assert [m.content for m in start.window.messages] == ["two", "three?"]
    assert start.window == memory.context_window(USER, cid, 2)
    assert start.reservation.tokens == start.window.token_count + REPLY_TOKENS
    assert budget(redis_client, index_name)["used"] == str(start.reservation.tokens)
    usage = Usage(prompt_tokens=30, completion_tokens=5)
    reply = memory.finish_turn(start, reply="three!", used_tokens=35, usage=usage)
    assert reply is not None and reply.seq == 4 and reply.usage == usage
    assert contents(memory, cid) == ["one", "two", "three?", "three!"]
    assert budget(redis_client, index_name) == {"day": str(start.reservation.day), "used": "35"}
    totals = memory.conversation(USER, cid).usage_totals
    assert (totals.prompt_tokens, totals.completion_tokens, totals.replies) == (30, 5, 1)
    assert memory.conversations(USER).recent[0].message_count == 4


def test_edit_and_regenerate_replace_the_last_exchange_in_the_turn(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A", "B?", "reply to B")
    edited = begin(memory, cid, prompt="B, edited?", replace_from=3, expect_last_seq=4)
    assert edited.removed == 2 and edited.window.messages[-1].content == "B, edited?"
    memory.finish_turn(edited, reply="reply to the edit", used_tokens=1)
    regenerated = begin(memory, cid, replace_from=6, expect_last_seq=6)
    assert regenerated.prompt is None and regenerated.removed == 1
    assert [m.content for m in regenerated.window.messages] == ["A?", "reply to A", "B, edited?"]
    memory.finish_turn(regenerated, reply="another reply", used_tokens=1)
    assert contents(memory, cid) == ["A?", "reply to A", "B, edited?", "another reply"]


def test_a_failed_reply_settles_and_stores_nothing(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    start = begin(memory, cid, prompt="hello?")
    assert memory.finish_turn(start, reply=None, used_tokens=0) is None
    assert budget(redis_client, index_name)["used"] == "0"
    with pytest.raises(InvalidInput, match="empty"):
        memory.finish_turn(begin(memory, cid), reply="  ", used_tokens=7)
    assert budget(redis_client, index_name)["used"] == "7"
    assert contents(memory, cid) == ["hello?"]


# --- refusals write nothing -------------------------------------------------------------------


def assert_nothing_written(
    memory: ChatMemory, client: RedisClient, index_name: str, cid: str, before: list[str]
) -> None:
    """The conversation as it was, no request counted, no token reserved."""
    assert contents(memory, cid) == before
    assert requests_logged(client, index_name) == 0
    assert budget(client, index_name).get("used", "0") == "0"


def test_a_stale_edit_keeps_the_prompt_sent_since(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    shown = memory.page_view(USER, cid, page_size=50, list_limit=50).conversation.last_seq
    say(memory, cid, "B?")  # from another tab, while this page still offers Edit under A
    with pytest.raises(StaleTarget, match="changed since"):
        begin(memory, cid, prompt="A, edited", replace_from=1, expect_last_seq=shown)
    with pytest.raises(StaleTarget):  # Regenerate under A's reply
        begin(memory, cid, replace_from=2, expect_last_seq=shown)
    assert_nothing_written(memory, redis_client, index_name, cid, ["A?", "reply to A", "B?"])


def test_a_limit_refuses_the_turn_and_keeps_nothing_of_it(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    with pytest.raises(LimitExceeded) as refused:
        begin(memory, cid, LimitPolicy(0, 50), prompt="B?", replace_from=2, expect_last_seq=2)
    assert refused.value.limit is Limit.TOKENS_PER_DAY and refused.value.needed > 50
    assert_nothing_written(memory, redis_client, index_name, cid, ["A?", "reply to A"])
    per_minute = LimitPolicy(1, 0)
    memory.finish_turn(begin(memory, cid, per_minute, prompt="B?"), reply="ok", used_tokens=1)
    with pytest.raises(LimitExceeded, match="1 requests per minute"):
        begin(memory, cid, per_minute, prompt="C?")
    assert contents(memory, cid) == ["A?", "reply to A", "B?", "ok"]


def test_a_full_history_refuses_the_prompt_before_anything_is_reserved(
    capped_memory: Callable[..., ChatMemory], redis_client: RedisClient, index_name: str
) -> None:
    memory = capped_memory(max_messages=2)
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    with pytest.raises(StorageLimitReached, match="MAX_MESSAGES_PER_USER"):
        begin(memory, cid, prompt="B?")
    assert_nothing_written(memory, redis_client, index_name, cid, ["A?", "reply to A"])
    edit = begin(memory, cid, prompt="A, edited", replace_from=1)  # what it frees makes room
    assert edit.removed == 2 and contents(memory, cid) == ["A, edited"]


@SINGLE_ONLY
@pytest.mark.usefixtures("full_redis")
def test_a_full_redis_refuses_the_whole_turn_up_front(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    redis_client.config_set("maxmemory", 1)
    with pytest.raises(StorageFull, match="is full"):
        begin(memory, cid, LimitPolicy(5, 10_000), prompt="B?", replace_from=2)
    redis_client.config_set("maxmemory", 0)
    assert_nothing_written(memory, redis_client, index_name, cid, ["A?", "reply to A"])


def test_more_than_the_last_exchange_is_never_replaced(memory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A", "B?", "reply to B")
    with pytest.raises(InvalidInput, match="last 2"):
        begin(memory, cid, prompt="again", replace_from=2)
    assert contents(memory, cid) == ["A?", "reply to A", "B?", "reply to B"]


# --- exactly once -----------------------------------------------------------------------------


def test_a_turn_begun_again_with_the_same_prompt_id_holds_one_reservation(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    cid, message_id = new_conversation_id(), new_message_id()
    first = begin(memory, cid, prompt="once?", message_id=message_id)
    again = begin(memory, cid, prompt="once?", message_id=message_id)
    assert again.reservation == first.reservation and again.window == first.window
    assert again.prompt == first.prompt
    assert requests_logged(redis_client, index_name) == 1
    assert budget(redis_client, index_name)["used"] == str(first.reservation.tokens)
    memory.finish_turn(first, reply="yes", used_tokens=9)
    memory.finish_turn(first, reply="yes", used_tokens=9)
    assert contents(memory, cid) == ["once?", "yes"]
    assert budget(redis_client, index_name)["used"] == "9"


@SINGLE_ONLY
def test_turn_scripts_resent_after_a_stall_store_and_count_once(
    proxy: DelayProxy, redis_client: RedisClient, index_name: str
) -> None:
    memory = ChatMemory(
        short_timeout_client(proxy.url, retries=2),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=index_name,
    )
    cid = new_conversation_id()
    say(memory, cid, "A?", "reply to A")
    proxy.stall(b"stalled prompt", 1.5)
    start = begin(memory, cid, LimitPolicy(5, 10_000), prompt="stalled prompt")
    proxy.stall(b"stalled reply", 1.5)
    memory.finish_turn(start, reply="stalled reply", used_tokens=20)
    assert contents(memory, cid) == ["A?", "reply to A", "stalled prompt", "stalled reply"]
    assert requests_logged(redis_client, index_name) == 1
    assert budget(redis_client, index_name)["used"] == "20"


# --- limits across instances ------------------------------------------------------------------


def race(memories: list[ChatMemory], attempts: int, policy: LimitPolicy) -> list[TurnStart]:
    """`attempts` turns at once, spread over the instances, each its own conversation."""
    admitted: list[TurnStart] = []
    start = threading.Barrier(attempts)

    def run(index: int) -> None:
        cid = new_conversation_id()
        start.wait()
        try:
            turn = begin(memories[index % len(memories)], cid, policy, prompt="the same prompt")
            admitted.append(turn)
        except LimitExceeded:
            pass

    threads = [threading.Thread(target=run, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return admitted


def two_instances(client: RedisClient, index_name: str) -> list[ChatMemory]:
    return [
        ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
        for _ in range(2)
    ]


def test_two_instances_admit_exactly_the_requests_per_minute(
    redis_client: RedisClient, index_name: str
) -> None:
    memories = two_instances(redis_client, index_name)
    admitted = race(memories, 20, LimitPolicy(requests_per_minute=7, tokens_per_day=0))
    assert len(admitted) == 7
    assert memories[0].conversations(USER).total == 7  # a refused prompt is not stored
    assert requests_logged(redis_client, index_name) == 7


def test_two_instances_admit_exactly_the_tokens_per_day(
    redis_client: RedisClient, index_name: str
) -> None:
    memories = two_instances(redis_client, index_name)
    probe = begin(memories[0], new_conversation_id(), prompt="the same prompt", user="probe")
    each = probe.reservation.tokens
    admitted = race(memories, 20, LimitPolicy(requests_per_minute=0, tokens_per_day=5 * each))
    assert len(admitted) == 5
    assert budget(redis_client, index_name)["used"] == str(5 * each)
    for turn in admitted:
        memories[1].finish_turn(turn, reply="ok", used_tokens=each // 2)
    assert budget(redis_client, index_name)["used"] == str(5 * (each // 2))


# --- round trips ------------------------------------------------------------------------------


@SINGLE_ONLY
def test_a_render_is_one_script_call_and_a_turn_two(
    memory: ChatMemory, redis_client: RedisClient, index_name: str
) -> None:
    """Issue 26 item 5: with retention, a summary and a pinned conversation in play."""
    summaries = SummaryStore(redis_client, index_name)
    cid, other = new_conversation_id(), new_conversation_id()
    say(memory, other, "other")
    memory.pin_conversation(USER, other, True)
    say(memory, cid, "A?", "reply to A")
    memory.set_retention(USER, 3600)
    summaries.set_enabled(USER, True)
    summaries.save(USER, cid, Summary("They said A.", 1, 4, "m"), 3600)
    memory.page_view(USER, cid, page_size=50, list_limit=50)  # scripts loaded, index checked

    render = commands_during(
        redis_client,
        lambda: memory.page_view(USER, cid, page_size=50, list_limit=50),
        this_client_only=True,
    )
    assert [c.name for c in render.sent] == ["EVALSHA"]

    def turn(prompt: str = "B?") -> None:
        shown = memory.page_view(USER, cid, page_size=50, list_limit=50).conversation
        start = begin(
            memory, cid, LimitPolicy(20, 200_000), prompt=prompt, expect_last_seq=shown.last_seq
        )
        memory.finish_turn(start, reply=f"reply to {prompt}", used_tokens=start.window.token_count)

    turn("Warm-up?")  # the turn's scripts loaded (a first call may SCRIPT LOAD them)
    measured = commands_during(redis_client, turn, this_client_only=True)
    assert [c.name for c in measured.sent] == ["EVALSHA"] * 3  # render, begin, finish
    assert contents(memory, cid)[-2:] == ["B?", "reply to B?"]
