"""Microsoft Entra ID for Redis, wired for real: a fake Azure credential mints JWTs, redis-entraid
turns them into AUTH <oid> <token>, and the real local Redis checks them against an ACL user."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from chatbot.config import Environment
from chatbot.services import resolve_redis_target
from memory import (
    ChatMemory,
    RedisTarget,
    Role,
    create_entra_credential_provider,
    create_redis_client,
)
from memory.embedded import EmbeddedRedis
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.fakes import FakeCredential

CONV = "c0ffee"  # the conversation these tests write to

OID = "app-identity-oid"


@pytest.fixture
def acl_user(redis_client: redis.Redis) -> Iterator[str]:
    yield OID
    redis_client.acl_deluser(OID)


def allow(redis_client: redis.Redis, *tokens: str) -> None:
    redis_client.acl_setuser(
        OID, enabled=True, reset_passwords=True, passwords=[f"+{t}" for t in tokens],
        keys=["*"], channels=["*"], commands=["+@all"],
    )  # fmt: skip


def test_entra_token_authenticates_as_the_identity(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, acl_user: str, index_name: str
) -> None:
    credential = FakeCredential(OID)
    allow(redis_client, credential.get_token("any").token)
    provider = create_entra_credential_provider(credential)
    client = create_redis_client(
        RedisTarget(host="127.0.0.1", port=redis_server.port, ssl=False), provider
    )
    assert client.acl_whoami() == OID
    memory = ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    memory.append("luke", Role.USER, "over Entra ID", conversation_id=CONV)
    assert [m.content for m in memory.messages("luke", CONV)] == ["over Entra ID"]
    assert credential.scopes[1:] and all(
        s == ("https://redis.azure.com/.default",) for s in credential.scopes[1:]
    )


def test_a_wrong_token_is_refused(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, acl_user: str
) -> None:
    allow(redis_client, "some-other-token")
    client = create_redis_client(
        RedisTarget(host="127.0.0.1", port=redis_server.port, ssl=False),
        create_entra_credential_provider(FakeCredential(OID)),
    )
    with pytest.raises(redis.AuthenticationError):
        client.ping()


def test_expiring_tokens_are_refreshed_and_connections_reauthenticated(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, acl_user: str, index_name: str
) -> None:
    def register(token: str) -> None:
        redis_client.acl_setuser(
            OID, enabled=True, passwords=[f"+{token}"], keys=["*"], channels=["*"],
            commands=["+@all"],
        )  # fmt: skip

    credential = FakeCredential(OID, lifetime=4, reuse_for=0.5, on_issue=register)
    provider = create_entra_credential_provider(credential, expiration_refresh_ratio=0.25)
    client = create_redis_client(
        RedisTarget(host="127.0.0.1", port=redis_server.port, ssl=False), provider
    )
    memory = ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
    memory.append("luke", Role.USER, "before refresh", conversation_id=CONV)
    first_token = credential.issued[0]
    deadline = time.monotonic() + 10
    while len(credential.issued) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(credential.issued) >= 2, "the provider never asked for a new token"
    redis_client.acl_setuser(OID, enabled=True, passwords=[f"-{first_token}"])
    redis_client.client_kill_filter(user=OID)
    memory.append("luke", Role.USER, "after refresh", conversation_id=CONV)
    assert [m.content for m in memory.messages("luke", CONV)] == ["before refresh", "after refresh"]
    assert client.acl_whoami() == OID


def test_redis_host_selects_entra_and_redis_url_wins() -> None:
    target = resolve_redis_target(Environment({"REDIS_HOST": "cache.example.redis.azure.net"}))
    assert target.uses_entra_id and target.port == 10000 and target.ssl
    both = resolve_redis_target(Environment({"REDIS_HOST": "h", "REDIS_URL": "redis://x:1/0"}))
    assert not both.uses_entra_id and both.url == "redis://x:1/0"
    with pytest.raises(ValueError, match="credential provider"):
        create_redis_client(RedisTarget(host="h"))
