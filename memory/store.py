"""ChatMemory: every read and write of chat history, per user, over redisvl's MessageHistory.

Each message is a redisvl `MessageHistory` document (a hash under the index's prefix, with
`role`, `content`, `session_tag`, `timestamp`, ...), so the search index and any redisvl reader
see the conversation. Two things redisvl does not give us are added beside it:

- a per-user *timeline* (sorted set of message keys scored by a per-user sequence number), so
  reading the last N messages costs the same for 10 or 10,000 stored messages and several
  messages written in one millisecond keep their order (`timestamp` holds that sequence);
- a per-user *settings* hash (system instruction, retention, usage totals) that no trimming or
  expiry ever touches.

Writes and reads are Lua scripts over keys that share the user's hash tag: one round trip each,
atomic, and valid on a clustered Azure Managed Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import redis
from redisvl.exceptions import RedisVLError
from redisvl.extensions.message_history import MessageHistory

from memory.keys import KeyLayout, user_tag
from memory.models import (
    ChatMemoryError,
    ContextWindow,
    Conversation,
    InvalidInput,
    Message,
    Retention,
    Role,
    StorageUnavailable,
    SystemInstruction,
    Usage,
    UsageTotals,
)
from memory.tokens import TOKENS_REPLY_PRIMER, TokenCounter

MAX_MESSAGE_CHARS = 1_000_000
MAX_WINDOW = 1000
DEFAULT_WINDOW = 5
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
_READ_BATCH = 500
_LUA_DIR = Path(__file__).parent / "lua"

_ROLES = {role.value: role for role in Role}

P = ParamSpec("P")
T = TypeVar("T")


def _storage_errors(method: Callable[P, T]) -> Callable[P, T]:
    """Turn redis-py's errors into the memory layer's own, with a message a person can act on."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise StorageUnavailable(f"Chat storage (Redis) is unreachable: {error}") from error
        except RedisVLError as error:
            if isinstance(error.__cause__, redis.ConnectionError | redis.TimeoutError):
                raise StorageUnavailable(
                    f"Chat storage (Redis) is unreachable: {error.__cause__}"
                ) from error
            raise ChatMemoryError(f"Chat storage (Redis) refused the operation: {error}") from error
        except redis.RedisError as error:
            raise ChatMemoryError(f"Chat storage (Redis) refused the operation: {error}") from error

    return wrapper


def _validate_window(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_WINDOW:
        raise InvalidInput(f"The window size must be a whole number from 0 to {MAX_WINDOW}.")
    return size


def _validate_ttl(ttl_seconds: int | None) -> int | None:
    if ttl_seconds is None:
        return None
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise InvalidInput("Retention must be a whole number of seconds, or None to keep forever.")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidInput(
            f"Retention must be between 1 second and {MAX_TTL_SECONDS} seconds (10 years), "
            "or None to keep forever."
        )
    return ttl_seconds


def _validate_content(content: str) -> str:
    if not isinstance(content, str):
        raise InvalidInput("Message content must be text.")
    if not content.strip():
        raise InvalidInput("Message content must not be empty.")
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"A message may have at most {MAX_MESSAGE_CHARS:,} characters.")
    return content


def _role(role: Role | str) -> Role:
    if role == "system":
        raise InvalidInput(
            "The system instruction is a setting, not a message: use set_system_instruction()."
        )
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(
            f"Unknown role {role!r}; expected one of {[r.value for r in Role]}."
        ) from None


class ChatMemory:
    """Per-user chat history, system instruction, retention and usage, stored in Redis.

    Building it creates the search index when absent and never deletes anything.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        default_system: SystemInstruction,
        index_name: str = "chat",
        token_counter: TokenCounter | None = None,
    ) -> None:
        self._redis = redis_client
        self._layout = KeyLayout(index_name)
        self._tokens = token_counter or TokenCounter()
        self._default_text = default_system.text
        self._default_preset = default_system.preset
        self._history = self._create_history(index_name)
        self._append = redis_client.register_script((_LUA_DIR / "append.lua").read_text())
        self._read = redis_client.register_script((_LUA_DIR / "read.lua").read_text())
        self._retention = redis_client.register_script((_LUA_DIR / "retention.lua").read_text())
        self._clear = redis_client.register_script((_LUA_DIR / "clear.lua").read_text())

    @_storage_errors
    def _create_history(self, index_name: str) -> MessageHistory:
        return MessageHistory(
            name=index_name, prefix=self._layout.message_prefix, redis_client=self._redis
        )

    @property
    def token_counter(self) -> TokenCounter:
        return self._tokens

    @property
    def history(self) -> MessageHistory:
        """The redisvl MessageHistory over the same documents (search, interop)."""
        return self._history

    def _user_keys(self, tag: str) -> list[str]:
        return [
            self._layout.settings_key(tag),
            self._layout.timeline_key(tag),
            self._layout.expiry_key(tag),
        ]

    # --- writing -------------------------------------------------------------------------

    @_storage_errors
    def append(
        self, user_id: str, role: Role | str, content: str, *, usage: Usage | None = None
    ) -> Message:
        """Store one message at the end of the user's conversation and return it."""
        tag = user_tag(user_id)
        checked_role = _role(role)
        _validate_content(content)
        token_count = self._tokens.count_message(checked_role.value, content)
        metadata = usage.as_metadata() if usage is not None else ""
        key = self._layout.new_message_key(tag)
        seq, now_ms = self._append(
            keys=[*self._user_keys(tag), key],
            args=[
                checked_role.value,
                content,
                tag,
                token_count,
                self._tokens.encoding_name,
                metadata,
                usage.prompt_tokens if usage else "",
                usage.completion_tokens if usage else "",
                user_id,
                key.removeprefix(self._layout.message_prefix + ":"),
            ],
        )
        return Message(
            role=checked_role,
            content=content,
            seq=int(seq),
            created_at=int(now_ms) / 1000,
            token_count=token_count,
            metadata=metadata,
            key=key,
        )

    @_storage_errors
    def set_system_instruction(
        self, user_id: str, text: str, *, preset: str | None = None
    ) -> SystemInstruction:
        """Replace the user's system instruction; `preset` names it when it came from one."""
        tag = user_tag(user_id)
        _validate_content(text)
        instruction = SystemInstruction(
            text=text, preset=preset, token_count=self._tokens.count_message("system", text)
        )
        self._redis.hset(
            self._layout.settings_key(tag),
            mapping={
                "user_id": user_id,
                "system_text": text,
                "system_preset": preset or "",
                "system_tokens": instruction.token_count,
                "system_encoding": self._tokens.encoding_name,
            },
        )
        return instruction

    @_storage_errors
    def reset_system_instruction(self, user_id: str) -> SystemInstruction:
        """Forget the user's choice so the default preset applies again."""
        tag = user_tag(user_id)
        self._redis.hdel(
            self._layout.settings_key(tag),
            "system_text",
            "system_preset",
            "system_tokens",
            "system_encoding",
        )
        return self._default_system()

    @_storage_errors
    def set_window_size(self, user_id: str, size: int) -> None:
        """Remember how many messages this user wants in the context window."""
        tag = user_tag(user_id)
        _validate_window(size)
        self._redis.hset(self._layout.settings_key(tag), mapping={"window_size": size})

    @_storage_errors
    def set_retention(self, user_id: str, ttl_seconds: int | None) -> Retention:
        """Messages already stored and all written later live `ttl_seconds`; None keeps them."""
        tag = user_tag(user_id)
        ttl = _validate_ttl(ttl_seconds)
        self._retention(keys=self._user_keys(tag), args=["" if ttl is None else ttl])
        return self.retention(user_id)

    @_storage_errors
    def clear(self, user_id: str) -> int:
        """Delete the user's messages; their instruction, retention and usage totals stay."""
        tag = user_tag(user_id)
        return int(self._clear(keys=self._user_keys(tag)[1:]))

    @_storage_errors
    def clear_all(self) -> int:
        """Admin only: delete every user's messages. Settings stay. Returns messages deleted."""
        deleted = 0
        for key in self._redis.scan_iter(match=self._layout.timeline_key("*"), count=1000):
            deleted += int(self._redis.zcard(key))
            self._redis.delete(key)
        for key in self._redis.scan_iter(match=self._layout.expiry_key("*"), count=1000):
            self._redis.delete(key)
        self._history.clear()
        return deleted

    # --- reading -------------------------------------------------------------------------

    @_storage_errors
    def conversation(
        self, user_id: str, *, window_size: int | None = None, page_size: int = 50
    ) -> Conversation:
        """What a page render needs, read in one round trip: the newest `page_size` messages,
        the context window (of `window_size`, or the user's stored size when None), counts,
        settings and usage."""
        tag = user_tag(user_id)
        if window_size is not None:
            _validate_window(window_size)
        _validate_window(page_size)
        total, settings_flat, rows, now_ms, oldest, window = self._read(
            keys=self._user_keys(tag),
            args=[
                "recent",
                page_size,
                0,
                "" if window_size is None else window_size,
                DEFAULT_WINDOW,
            ],
        )
        settings = _pairs(settings_flat)
        window_size = int(window)
        recent = self._parse_rows(rows)
        window_messages = tuple(recent[-window_size:]) if window_size else ()
        system = self._system_from(settings)
        return Conversation(
            user_id=user_id,
            recent=tuple(recent[-page_size:]) if page_size else (),
            total_messages=int(total),
            window=self._window(system, window_messages),
            window_size=window_size,
            retention=_retention(settings.get("ttl"), int(now_ms), oldest),
            usage_totals=UsageTotals(
                prompt_tokens=int(settings.get("usage_prompt_tokens", 0)),
                completion_tokens=int(settings.get("usage_completion_tokens", 0)),
                replies=int(settings.get("usage_replies", 0)),
            ),
        )

    def context_window(self, user_id: str, size: int) -> ContextWindow:
        """The system instruction plus the last `size` messages, exactly as the model gets them."""
        return self.conversation(user_id, window_size=size, page_size=0).window

    def count(self, user_id: str) -> int:
        return self.conversation(user_id, window_size=0, page_size=0).total_messages

    def system_instruction(self, user_id: str) -> SystemInstruction:
        return self.context_window(user_id, 0).system

    @_storage_errors
    def messages(self, user_id: str) -> list[Message]:
        """The whole conversation, oldest first, read in batches."""
        tag = user_tag(user_id)
        keys = self._user_keys(tag)
        result: list[Message] = []
        after = 0
        while True:
            rows = self._read(keys=keys, args=["after", _READ_BATCH, after, 0, 0])[2]
            batch = self._parse_rows(rows)
            result.extend(batch)
            if len(rows) < 2 * _READ_BATCH:
                return result
            after = batch[-1].seq if batch else after + _READ_BATCH

    def retention(self, user_id: str) -> Retention:
        """The user's policy and, with one set, when their oldest and newest messages expire."""
        return self.conversation(user_id, window_size=0, page_size=0).retention

    # --- helpers -------------------------------------------------------------------------

    def _window(self, system: SystemInstruction, messages: tuple[Message, ...]) -> ContextWindow:
        tokens = TOKENS_REPLY_PRIMER + system.token_count + sum(m.token_count for m in messages)
        return ContextWindow(system=system, messages=messages, token_count=tokens)

    def _default_system(self) -> SystemInstruction:
        return SystemInstruction(
            text=self._default_text,
            preset=self._default_preset,
            token_count=_count_system(self._tokens, self._default_text),
        )

    def _system_from(self, settings: dict[str, str]) -> SystemInstruction:
        text = settings.get("system_text")
        if text is None:
            return self._default_system()
        tokens = int(settings.get("system_tokens", 0))
        if settings.get("system_encoding") != self._tokens.encoding_name:
            tokens = _count_system(self._tokens, text)
        return SystemInstruction(
            text=text, preset=settings.get("system_preset") or None, token_count=tokens
        )

    def _parse_rows(self, rows: list[Any]) -> list[Message]:
        messages = []
        encoding = self._tokens.encoding_name
        for index in range(0, len(rows), 2):
            key = rows[index]
            role, content, seq, created_at, tokens, token_encoding, metadata = rows[index + 1]
            token_count = int(tokens)
            if token_encoding != encoding:
                token_count = self._tokens.count_message(role, content)
            messages.append(
                Message(
                    role=_ROLES[role],
                    content=content,
                    seq=int(seq),
                    created_at=float(created_at),
                    token_count=token_count,
                    metadata=metadata or "",
                    key=key,
                )
            )
        return messages


def _retention(ttl: str | None, now_ms: int, oldest: str) -> Retention:
    if ttl is None:
        return Retention(ttl_seconds=None)

    def remaining(expires_at_ms: str) -> float | None:
        return max(0.0, (float(expires_at_ms) - now_ms) / 1000) if expires_at_ms else None

    return Retention(ttl_seconds=int(ttl), oldest_expires_in=remaining(oldest))


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


@lru_cache(maxsize=64)
def _count_system(counter: TokenCounter, text: str) -> int:
    return counter.count_message("system", text)
