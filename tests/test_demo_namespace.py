"""Demo data never shares a namespace with signed-in users' data, and a demo (where anyone may
clear everything) never starts on a Redis holding signed-in users' data: what happens with
`azd env set PUBLIC_DEMO true` on a private environment, and what happens to demo data from
before this release. The app's services on a Redis of each test's own."""

from __future__ import annotations

import threading

import pytest

from chatbot.config import ConfigError, Environment
from chatbot.services import Services, build_services
from memory import ChatMemory, RedisTarget, Role, create_redis_client
from memory.embedded import EmbeddedRedis
from tests.conftest import DEFAULT_TEST_SYSTEM

SIGNED_IN_DATA = "holds signed-in users' data"
CONV = "c0ffee"


def app(redis: EmbeddedRedis, mode: str, index: str = "chat") -> Services:
    return build_services(
        Environment({"AUTH_MODE": mode, "REDIS_URL": redis.url, "CHAT_INDEX_NAME": index})
    )


def written_before_this_release(redis: EmbeddedRedis, user: str, index: str = "chat") -> None:
    """Data an earlier release wrote: the memory layer alone, no app claimed anything."""
    memory = ChatMemory(
        create_redis_client(RedisTarget(url=redis.url)),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=index,
    )
    memory.append(user, Role.USER, f"{user}'s message", conversation_id=CONV)


def test_a_demo_refuses_the_namespace_of_signed_in_users(own_redis: EmbeddedRedis) -> None:
    private = app(own_redis, "easyauth")
    private.memory.append("0000-oid-of-ann", Role.USER, "private", conversation_id=CONV)
    with pytest.raises(ConfigError, match=SIGNED_IN_DATA) as refused:
        app(own_redis, "demo")
    assert "CHAT_INDEX_NAME=chat" in str(refused.value)
    assert private.memory.messages("0000-oid-of-ann", CONV)[0].content == "private"


def test_public_demo_on_a_private_environment_does_not_start(own_redis: EmbeddedRedis) -> None:
    """`azd env set PUBLIC_DEMO true`: the demo gets its own namespace (chat-demo), and still
    refuses, since the same Redis holds the private environment's users."""
    app(own_redis, "easyauth").memory.append("oid-ann", Role.USER, "hi", conversation_id=CONV)
    with pytest.raises(ConfigError, match=SIGNED_IN_DATA):
        app(own_redis, "demo", "chat-demo")


def test_a_private_environment_of_an_earlier_release_is_recognised(
    own_redis: EmbeddedRedis,
) -> None:
    written_before_this_release(own_redis, "9f1c-oid-of-bob")
    with pytest.raises(ConfigError, match=SIGNED_IN_DATA):
        app(own_redis, "demo")
    with pytest.raises(ConfigError, match=SIGNED_IN_DATA):
        app(own_redis, "demo", "chat-demo")
    app(own_redis, "easyauth")  # its own users go on as before


def test_demo_data_of_an_earlier_release_stays_the_demos_and_is_kept(
    own_redis: EmbeddedRedis,
) -> None:
    written_before_this_release(own_redis, "Luke")
    demo = app(own_redis, "demo")
    assert demo.memory.messages("Luke", CONV)[0].content == "Luke's message"  # nothing lost
    with pytest.raises(ConfigError, match="holds the data of a demo"):
        app(own_redis, "oidc")  # signed-in users never share its keys
    app(own_redis, "oidc", "private")  # but may have a namespace of their own


def test_signed_in_users_never_move_in_with_demo_data_of_an_earlier_release(
    own_redis: EmbeddedRedis,
) -> None:
    written_before_this_release(own_redis, "Leia")
    with pytest.raises(ConfigError, match="holds the data of a demo"):
        app(own_redis, "easyauth")
    assert app(own_redis, "demo").memory.messages("Leia", CONV)  # still the demo's


def test_a_private_environment_made_public_and_private_again(own_redis: EmbeddedRedis) -> None:
    """A public demo first (its own namespace, as the deployment names it), then private."""
    demo = app(own_redis, "demo", "chat-demo")
    demo.memory.append("Luke", Role.USER, "demo talk", conversation_id=CONV)
    private = app(own_redis, "easyauth")
    private.memory.append("oid-ann", Role.USER, "private", conversation_id=CONV)
    demo.memory.clear_all()  # a demo still running: its clear-all reaches its own data only
    assert private.memory.messages("oid-ann", CONV)[0].content == "private"
    with pytest.raises(ConfigError, match=SIGNED_IN_DATA):
        app(own_redis, "demo", "chat-demo")  # made public again: refused


def test_two_instances_starting_at_once_cannot_both_claim_it(own_redis: EmbeddedRedis) -> None:
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def run(mode: str) -> None:
        start.wait()
        try:
            app(own_redis, mode, "fresh")
            outcomes.append(mode)
        except ConfigError:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(m,)) for m in ["demo", "easyauth"] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    served = {mode for mode in outcomes if mode != "refused"}
    assert len(served) == 1 and outcomes.count("refused") == 3
