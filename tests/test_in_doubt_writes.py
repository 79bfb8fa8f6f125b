"""Writes whose outcome is unknown (Redis stalled past the client's timeout, or killed before
it answered, and then unreachable): reported as outcome unknown, never as "not saved", and a
user whose first message was such a write is still found by "Clear ALL history". A real
Redis behind a real TCP proxy that holds replies back (tests/support/delay_proxy.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff

from memory import (
    ChatMemory,
    RedisTarget,
    Role,
    StorageUnavailable,
    WriteOutcomeUnknown,
    create_redis_client,
)
from memory.connection import OutcomeTrackingRetry
from memory.embedded import EmbeddedRedis
from memory.keys import KeyLayout, new_message_id, user_tag
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.delay_proxy import DelayProxy

CONV = "c0ffee"


def app_like_client(url: str, retries: int = 2) -> redis.Redis:
    """The app's client (create_redis_client), with a 0.5 s socket timeout so a stall can
    outlast it quickly."""
    return redis.Redis.from_url(
        url,
        socket_timeout=0.5,
        retry=OutcomeTrackingRetry(NoBackoff(), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        decode_responses=True,
    )


@pytest.fixture
def proxied(own_redis: EmbeddedRedis) -> Iterator[tuple[DelayProxy, ChatMemory, ChatMemory]]:
    """(the proxy, a memory through it, a memory straight to Redis), on one index."""
    direct = create_redis_client(RedisTarget(url=own_redis.url))
    with DelayProxy(own_redis.port) as proxy:
        through = ChatMemory(
            app_like_client(proxy.url), default_system=DEFAULT_TEST_SYSTEM, index_name="chat"
        )
        yield proxy, through, ChatMemory(direct, default_system=DEFAULT_TEST_SYSTEM)
    direct.close()


def registered(memory: ChatMemory, user: str) -> bool:
    client = memory._redis  # the registry is an operator's view, read as such
    return client.zscore(KeyLayout("chat").user_registry_key, user_tag(user)) is not None


def test_the_app_client_tracks_whether_a_write_may_have_been_sent() -> None:
    client = create_redis_client(RedisTarget(url="redis://127.0.0.1:1/0"))
    assert isinstance(client.connection_pool.connection_kwargs["retry"], OutcomeTrackingRetry)


def test_a_write_sent_then_unanswered_and_unreachable_is_in_doubt_not_unsaved(
    proxied: tuple[DelayProxy, ChatMemory, ChatMemory],
) -> None:
    proxy, memory, direct = proxied
    memory.append("ann", Role.USER, "warm up", conversation_id=CONV)
    message_id = new_message_id()
    proxy.stall(b"in doubt", 2.0)  # Redis stores it; its answer is held back...
    threading.Timer(0.2, proxy.refuse_connections).start()  # ...and Redis becomes unreachable
    with pytest.raises(WriteOutcomeUnknown):
        memory.append("ann", Role.USER, "in doubt", message_id=message_id, conversation_id=CONV)
    saved = direct.saved_message("ann", message_id)
    assert saved is not None and saved.content == "in doubt"


def test_a_write_redis_died_before_answering_is_in_doubt_and_there_after_restart(
    proxied: tuple[DelayProxy, ChatMemory, ChatMemory], own_redis: EmbeddedRedis
) -> None:
    proxy, memory, direct = proxied
    memory.append("ann", Role.USER, "warm up", conversation_id=CONV)
    message_id = new_message_id()

    def kill() -> None:  # Redis dies before answering, and stays unreachable
        proxy.refuse_connections()
        own_redis.kill()

    proxy.stall(b"killed mid-append", 2.0)
    threading.Timer(0.2, kill).start()
    with pytest.raises(WriteOutcomeUnknown):
        memory.append(
            "ann", Role.USER, "killed mid-append", message_id=message_id, conversation_id=CONV
        )
    own_redis.ensure_running()
    saved = direct.saved_message("ann", message_id)
    assert saved is not None and saved.content == "killed mid-append"


def test_a_write_to_a_redis_already_gone_is_still_not_saved(
    proxied: tuple[DelayProxy, ChatMemory, ChatMemory],
) -> None:
    proxy, _, _ = proxied
    client = app_like_client(proxy.url)
    memory = ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM)
    memory.append("ann", Role.USER, "warm up", conversation_id=CONV)
    client.connection_pool.disconnect()  # the next command connects afresh...
    proxy.refuse_connections()  # ...and is refused: it never reached Redis
    with pytest.raises(StorageUnavailable) as raised:
        memory.append("ann", Role.USER, "never sent", conversation_id=CONV)
    assert not isinstance(raised.value, WriteOutcomeUnknown)


def test_a_registry_write_that_times_out_is_in_doubt_and_completed_by_the_check(
    proxied: tuple[DelayProxy, ChatMemory, ChatMemory],
) -> None:
    proxy, memory, direct = proxied
    memory.append("ann", Role.USER, "warm up the scripts", conversation_id=CONV)
    message_id = new_message_id()
    proxy.stall(b"$4\r\nZADD\r\n", 1.0, times=3)  # every attempt at the registry stalls
    with pytest.raises(WriteOutcomeUnknown):
        memory.append("bob", Role.USER, "first words", message_id=message_id, conversation_id=CONV)
    # Say the stalled ZADD never took effect (lost in a failover): bob is not in the registry.
    direct._redis.zrem(KeyLayout("chat").user_registry_key, user_tag("bob"))
    assert not registered(direct, "bob")
    assert direct.saved_message("bob", message_id) is not None  # "saved after all"...
    assert registered(direct, "bob")  # ...and now clear-all finds bob
    direct.clear_all()
    assert direct.saved_message("bob", message_id) is None


def test_a_first_message_stored_by_a_retry_is_registered_for_clear_all(
    proxied: tuple[DelayProxy, ChatMemory, ChatMemory],
) -> None:
    proxy, memory, direct = proxied
    memory.append("ann", Role.USER, "warm up the scripts", conversation_id=CONV)
    proxy.stall(b"my first prompt", 1.0, times=1)  # the first attempt times out, stored
    stored = memory.append("carl", Role.USER, "my first prompt", conversation_id=CONV)
    assert stored.seq == 1  # the retry was deduplicated
    assert registered(direct, "carl")
    direct.clear_all()
    assert direct.messages("carl", CONV) == []
