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


def new_message_id() -> str:
    """A fresh message id: given to a message before its first write attempt, so a retried or
    resent write of the same message is recognised and stored once."""
    return uuid.uuid4().hex


def check_message_id(message_id: str) -> str:
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        raise InvalidInput("A message id must be 1-64 letters, digits, '_' or '-'.")
    return message_id


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

    def timeline_key(self, tag: str) -> str:
        return f"{self.index_name}:timeline:{{{tag}}}"

    def expiry_key(self, tag: str) -> str:
        return f"{self.index_name}:expiry:{{{tag}}}"

    def summary_key(self, tag: str) -> str:
        """The user's rolling-summary setting and checkpoint (memory/summary.py)."""
        return f"{self.index_name}:summary:{{{tag}}}"

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

    def request_log_key(self, tag: str) -> str:
        """Sorted set of the user's model requests in the last minute (the rate limit)."""
        return f"{self.index_name}:limits:requests:{{{tag}}}"

    def token_budget_key(self, tag: str) -> str:
        """Hash of the user's tokens counted today (UTC day number and total)."""
        return f"{self.index_name}:limits:tokens:{{{tag}}}"
