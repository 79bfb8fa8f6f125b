"""Which kind of app a Redis namespace (CHAT_INDEX_NAME: its keys and index) belongs to.

Demo mode lets anyone be anyone and clear everything, so demo data never shares a namespace
with signed-in users' data, and a demo never starts on a Redis that holds signed-in users'
data. Each namespace is claimed by the first kind of app that starts on it, "demo" or
"signed-in", in one Redis-wide hash (`NAMESPACE_OWNERS_KEY`, HSETNX: two instances starting at
once cannot both win). Data from before claims existed belongs to whoever wrote it: demo data
(every registered user a DEMO_USERS name) to a demo, any other to signed-in users; it is
claimed in place by that kind of app, so upgrading loses and moves nothing. An operator
releases a namespace with `HDEL redis-chat-memory:namespaces <name>`, or gives it to one kind
with `HSET redis-chat-memory:namespaces <name> demo|signed-in`.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from memory.connection import RedisClient
from memory.errors import storage_errors
from memory.keys import NAMESPACE_OWNERS_KEY, KeyLayout
from memory.models import ChatMemoryError

# The namespace of every deployment before namespaces were claimed (CHAT_INDEX_NAME's default):
# a demo also looks there for signed-in users' data no app has claimed yet.
LEGACY_NAMESPACE = "chat"


class Owner(StrEnum):
    DEMO = "demo"
    SIGNED_IN = "signed-in"


class NamespaceRefused(ChatMemoryError):
    """This app may not serve this namespace, or (a demo) this Redis; the message says why
    and what to do. Nothing was written."""


@storage_errors
def claim_namespace(
    client: RedisClient, index_name: str, owner: Owner, demo_users: Collection[str]
) -> None:
    """Claim `index_name` for `owner`, or raise NamespaceRefused (see the module docstring)."""
    claimed = _claimed(client, index_name)
    if claimed is None:
        # Data of before claims is adopted in place by the kind of app that wrote it.
        claimed = _legacy_owner(client, index_name, demo_users)
        if claimed is None or claimed is owner:
            client.hsetnx(NAMESPACE_OWNERS_KEY, index_name, owner.value)
            claimed = _claimed(client, index_name)  # another instance may have been first
    if claimed is not owner:
        raise _signed_in_data(index_name) if owner is Owner.DEMO else _demo_data(index_name)
    if owner is Owner.DEMO:
        _refuse_signed_in_data_elsewhere(client, index_name, demo_users)


def _claimed(client: RedisClient, index_name: str) -> Owner | None:
    value = client.hget(NAMESPACE_OWNERS_KEY, index_name)
    return Owner(value) if value in (Owner.DEMO.value, Owner.SIGNED_IN.value) else None


def _legacy_owner(
    client: RedisClient, index_name: str, demo_users: Collection[str]
) -> Owner | None:
    """Whose the unclaimed data in a namespace is: None when it has no registered user, demo
    when every one is a DEMO_USERS name, else signed-in."""
    layout = KeyLayout(index_name)
    users = int(client.zcard(layout.user_registry_key))
    if users == 0:
        return None
    if users > len(demo_users):
        return Owner.SIGNED_IN
    tags = client.zrange(layout.user_registry_key, 0, -1)
    pipe = client.pipeline(transaction=False)
    for tag in tags:
        pipe.hget(layout.settings_key(str(tag)), "user_id")
    names = pipe.execute()
    return Owner.DEMO if all(name in demo_users for name in names) else Owner.SIGNED_IN


def _refuse_signed_in_data_elsewhere(
    client: RedisClient, index_name: str, demo_users: Collection[str]
) -> None:
    owners = {str(k): str(v) for k, v in client.hgetall(NAMESPACE_OWNERS_KEY).items()}
    for name, owner in owners.items():
        if name != index_name and owner == Owner.SIGNED_IN.value:
            raise _signed_in_data(name)
    legacy = LEGACY_NAMESPACE
    unclaimed = legacy != index_name and legacy not in owners
    if unclaimed and _legacy_owner(client, legacy, demo_users) is Owner.SIGNED_IN:
        raise _signed_in_data(legacy)


def _signed_in_data(index_name: str) -> NamespaceRefused:
    return NamespaceRefused(
        f"AUTH_MODE=demo lets anyone read and clear every conversation, and this Redis holds "
        f"signed-in users' data (CHAT_INDEX_NAME={index_name}), so the demo does not start. "
        "Run the demo on a Redis of its own (for Azure: its own azd environment, "
        "`azd env new`), or sign people in (AUTH_MODE=easyauth or oidc)."
    )


def _demo_data(index_name: str) -> NamespaceRefused:
    return NamespaceRefused(
        f"CHAT_INDEX_NAME={index_name} holds the data of a demo (anyone could write it as "
        "anyone), and signed-in users' data never shares its keys: set CHAT_INDEX_NAME to "
        "another name for signed-in users."
    )
