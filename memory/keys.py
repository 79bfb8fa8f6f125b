"""The Redis key layout; the one place that turns a user id into key names.

A user id may be any string a login provider hands us (emails, display names, punctuation,
non-ASCII, very long). It is never put into a key or a query: its SHA-256 is. That makes the
search tag a plain hex word, so no escaping can go wrong and no two ids can collide in practice.
The `{tag}` braces are a Redis Cluster hash tag: a user's settings and messages share one slot,
so one Lua script can touch them atomically on a clustered Azure Managed Redis.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from memory.models import InvalidInput

MAX_USER_ID_LENGTH = 4096
_MESSAGE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_CONVERSATION_ID = re.compile(r"[0-9a-f]{1,32}")
LEGACY_CONVERSATION_ID = "0"
"""The id of the conversation that data from before conversations existed (one timeline per
user) becomes: its keys are the old per-user keys, so upgrading moves nothing."""


NAMESPACE_OWNERS_KEY = "redis-chat-memory:namespaces"
"""Hash of each namespace (CHAT_INDEX_NAME) to the kind of app that claimed it, "demo" or
"signed-in" (memory/namespaces.py): the one key outside every namespace."""


def new_message_id() -> str:
    """A fresh message id: given to a message before its first write attempt, so a retried or
    resent write of the same message is recognised and stored once."""
    return uuid.uuid4().hex


def check_message_id(message_id: str) -> str:
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        raise InvalidInput("A message id must be 1-64 letters, digits, '_' or '-'.")
    return message_id


def new_conversation_id() -> str:
    """A fresh conversation id (16 lowercase hex), minted when a "New chat" opens."""
    return uuid.uuid4().hex[:16]


def check_conversation_id(conversation_id: str) -> str:
    if not isinstance(conversation_id, str) or not _CONVERSATION_ID.fullmatch(conversation_id):
        raise InvalidInput("A conversation id must be 1-32 lowercase hexadecimal characters.")
    return conversation_id


def conversation_tag(tag: str, conversation_id: str) -> str:
    """The redisvl `session_tag` of a conversation's messages: the legacy conversation keeps
    the plain user tag its messages were written with."""
    if conversation_id == LEGACY_CONVERSATION_ID:
        return tag
    return f"{tag}-{conversation_id}"


def conversation_of_tag(tag: str, session_tag: str) -> str | None:
    """The conversation id a stored `session_tag` names, or None when it is not this user's."""
    if session_tag == tag:
        return LEGACY_CONVERSATION_ID
    owner, _, conversation_id = session_tag.partition("-")
    return conversation_id if owner == tag and conversation_id else None


def user_tag(user_id: str) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidInput("A user id must be a non-empty string.")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidInput(f"A user id may have at most {MAX_USER_ID_LENGTH} characters.")
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class KeyLayout:
    """Names of the index and keys for one deployment (`index_name` is CHAT_INDEX_NAME)."""

    index_name: str

    @property
    def message_prefix(self) -> str:
        return f"{self.index_name}:msg"

    def settings_key(self, tag: str) -> str:
        return f"{self.index_name}:user:{{{tag}}}"

    def conversations_key(self, tag: str) -> str:
        """Sorted set of the user's conversation ids scored by last activity (ms)."""
        return f"{self.index_name}:convs:{{{tag}}}"

    def pinned_key(self, tag: str) -> str:
        """Sorted set of the user's pinned conversation ids scored by pin time (ms)."""
        return f"{self.index_name}:pinned:{{{tag}}}"

    def conversation_key(self, tag: str, conversation_id: str) -> str:
        """Hash of one conversation: title, title_source, created_ms."""
        return f"{self.conversation_key_base(tag)}:{conversation_id}"

    def conversation_key_base(self, tag: str) -> str:
        return f"{self.index_name}:conv:{{{tag}}}"

    def conversation_rows_key(self, tag: str) -> str:
        """Hash of each conversation's current row in `listing_key`, by id (so a script that
        rewrites a row knows which member to replace)."""
        return f"{self.index_name}:convrows:{{{tag}}}"

    def listing_key(self, tag: str) -> str:
        """Sorted set of the sidebar's list: one row per conversation (memory/listing.py),
        `<id>|<messages>|<created s>|<last active s>|<pinned 0/1>|<title source>|<title>`,
        pinned ones first (most recently pinned first), then the rest, most recently active
        first, under a head `#|<conversations>|<next expiry ms>`. Derived from the records,
        timelines, activity and pins by every script that changes them (common.lua
        `refresh_row`, `refresh_head`), so a page of the list is one native ZREVRANGE
        whatever the number of conversations."""
        return f"{self.index_name}:listing:{{{tag}}}"

    def timeline_key(self, tag: str, conversation_id: str = LEGACY_CONVERSATION_ID) -> str:
        """Sorted set of one conversation's message keys scored by the user's sequence."""
        return _per_conversation(f"{self.index_name}:timeline:{{{tag}}}", conversation_id)

    def hidden_key(self, tag: str, conversation_id: str = LEGACY_CONVERSATION_ID) -> str:
        """Sorted set of the conversation's messages in branches not shown (an edited
        prompt's earlier versions and what followed them), by seq (memory/branches.py)."""
        return _per_conversation(f"{self.index_name}:hidden:{{{tag}}}", conversation_id)

    def forks_key(self, tag: str, conversation_id: str = LEGACY_CONVERSATION_ID) -> str:
        """Hash of the conversation's fork points: parent seq -> `<shown>|<count>|<head>`."""
        return _per_conversation(f"{self.index_name}:forks:{{{tag}}}", conversation_id)

    def alternatives_key(self, tag: str, conversation_id: str = LEGACY_CONVERSATION_ID) -> str:
        """Hash of `<parent seq>:<n>` -> JSON list of the keys of alternative n while hidden."""
        return _per_conversation(f"{self.index_name}:alts:{{{tag}}}", conversation_id)

    def expiry_key(self, tag: str) -> str:
        return f"{self.index_name}:expiry:{{{tag}}}"

    def summary_key(self, tag: str, conversation_id: str = LEGACY_CONVERSATION_ID) -> str:
        """One conversation's rolling-summary checkpoint (memory/summary.py)."""
        return _per_conversation(f"{self.index_name}:summary:{{{tag}}}", conversation_id)

    def user_keys(self, tag: str) -> list[str]:
        """The keys every per-user script gets first, in this order (memory/lua/common.lua
        names them): settings, expiry, conversation list, pinned, the bases the scripts
        derive per-conversation keys from (legacy timeline, record, legacy summary), the
        limit counters, the list's rows by id and in list order."""
        return [
            self.settings_key(tag),
            self.expiry_key(tag),
            self.conversations_key(tag),
            self.pinned_key(tag),
            self.timeline_key(tag),
            self.conversation_key_base(tag),
            self.summary_key(tag),
            self.request_log_key(tag),
            self.token_budget_key(tag),
            self.conversation_rows_key(tag),
            self.listing_key(tag),
        ]

    def message_key(self, tag: str, message_id: str) -> str:
        return f"{self.message_prefix}:{{{tag}}}:{message_id}"

    def new_message_key(self, tag: str) -> str:
        """A key for a message with a fresh id (bulk loaders; the app passes its id)."""
        return self.message_key(tag, new_message_id())

    @property
    def user_registry_key(self) -> str:
        """Sorted set of every user tag that ever stored a message, scored by the time (ms) of
        their first message: clear-all walks it instead of scanning the keyspace."""
        return f"{self.index_name}:users"

    @property
    def index_pause_key(self) -> str:
        """Set (with a TTL the holder keeps renewing) while clear-all runs with the search
        index dropped: no app instance recreates the index meanwhile; if clear-all dies, the
        key expires and the next instance to check recreates it over what is stored."""
        return f"{self.index_name}:index-paused"

    @property
    def embedding_spaces_key(self) -> str:
        """Hash of every embedding space the index has had: `vec_<digest>` field name ->
        `{"model": ..., "dimensions": ...}`, so the model and width of stored vectors are
        known without the embedder that wrote them."""
        return f"{self.index_name}:embedding-spaces"

    @property
    def embedding_lease_key(self) -> str:
        """String (with a TTL its holder renews) naming the app instance whose background
        worker embeds the backlog: one at a time, so two instances never embed twice."""
        return f"{self.index_name}:embedding-lease"

    @property
    def memory_prefix(self) -> str:
        """Prefix of every memory record (memory/memories.py); its own small search index
        (`memory_index_name`) covers them."""
        return f"{self.index_name}:mem:"

    @property
    def memory_index_name(self) -> str:
        return f"{self.index_name}-memories"

    def memory_key(self, tag: str, memory_id: str) -> str:
        """Hash of one memory; common.lua `memory_key` builds the same name."""
        return f"{self.memory_prefix}{{{tag}}}:{memory_id}"

    def memories_key(self, tag: str) -> str:
        """Sorted set of the user's memory ids scored by creation time (ms)."""
        return f"{self.index_name}:mems:{{{tag}}}"

    def memory_sources_key(self, tag: str) -> str:
        """Hash of message key -> ids of the memories that came from it (space-separated):
        removing a message finds its memories here, in the same script."""
        return f"{self.index_name}:memsrc:{{{tag}}}"

    def reply_key(self, tag: str, conversation_id: str) -> str:
        """Hash of the conversation's latest reply in flight (memory/reply_stream.py): id,
        state, owner, lease, stop flag, its text so far, why it failed."""
        return f"{self.index_name}:reply:{{{tag}}}:{conversation_id}"

    def reply_chunks_key(self, tag: str, conversation_id: str) -> str:
        """Stream of that reply's chunks as they arrive (bounded; expires after it ends)."""
        return f"{self.reply_key(tag, conversation_id)}:chunks"

    def request_log_key(self, tag: str) -> str:
        """Sorted set of the user's model requests in the last minute (the rate limit)."""
        return f"{self.index_name}:limits:requests:{{{tag}}}"

    def token_budget_key(self, tag: str) -> str:
        """Hash of the user's tokens counted today (UTC day number and total)."""
        return f"{self.index_name}:limits:tokens:{{{tag}}}"


def _per_conversation(legacy_key: str, conversation_id: str) -> str:
    """The legacy conversation keeps today's per-user key; the rest add their id (common.lua's
    `conv_key` applies the same rule inside the scripts)."""
    if conversation_id == LEGACY_CONVERSATION_ID:
        return legacy_key
    return f"{legacy_key}:{conversation_id}"
