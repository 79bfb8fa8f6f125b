"""A message about to be stored: checked, counted and keyed before the first write attempt,
and passed to the scripts as the ARGV block common.lua `message_at` reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memory.keys import KeyLayout, check_message_id, conversation_tag, new_message_id
from memory.models import InvalidInput, Message, Role, StorageLimitReached, StorageLimits, Usage
from memory.tokens import TokenCounter

MAX_MESSAGE_CHARS = 1_000_000
MAX_CREATED_AT = 2**33  # seconds: the latest message time stored (the year 2242)


@dataclass(frozen=True)
class NewMessage:
    role: Role
    content: str
    message_id: str
    key: str
    token_count: int
    metadata: str
    args: tuple[Any, ...]  # common.lua `message_at`

    def stored(self, seq: int, created_ms: int) -> Message:
        return Message(
            role=self.role,
            content=self.content,
            seq=seq,
            created_at=created_ms / 1000,
            token_count=self.token_count,
            metadata=self.metadata,
            key=self.key,
        )


@dataclass(frozen=True)
class MessageWriter:
    """Builds NewMessages for one deployment (its key layout, token counter and caps)."""

    layout: KeyLayout
    tokens: TokenCounter
    limits: StorageLimits

    def new(
        self,
        user_id: str,
        tag: str,
        cid: str,
        role: Role | str,
        content: str,
        *,
        message_id: str | None = None,
        usage: Usage | None = None,
        created_at: float | None = None,
    ) -> NewMessage:
        """Raises InvalidInput for a bad role, content, id or time. Usage of an imported
        message (`created_at` given) stays on it but is not added to the user's totals."""
        checked_role = check_role(role)
        check_content(content)
        message_id = check_message_id(message_id or new_message_id())
        key = self.layout.message_key(tag, message_id)
        created_ms = check_created_at(created_at)
        token_count = self.tokens.count_message(checked_role.value, content)
        metadata = usage.as_metadata() if usage is not None else ""
        counted = usage if created_at is None else None
        args = (
            checked_role.value,
            content,
            conversation_tag(tag, cid),
            token_count,
            self.tokens.encoding_name,
            metadata,
            counted.prompt_tokens if counted else "",
            counted.completion_tokens if counted else "",
            user_id,
            key.removeprefix(self.layout.message_prefix + ":"),  # redisvl's entry_id
            tag,
            "" if created_ms is None else created_ms,
            self.limits.max_messages,
            self.limits.max_bytes,
        )
        return NewMessage(checked_role, content, message_id, key, token_count, metadata, args)


def check_content(content: str) -> str:
    if not isinstance(content, str):
        raise InvalidInput("Message content must be text.")
    if not content.strip():
        raise InvalidInput("Message content must not be empty.")
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"A message may have at most {MAX_MESSAGE_CHARS:,} characters.")
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidInput(
            f"The text holds {content[error.start]!r} at character {error.start + 1:,}: half of "
            "a character pair (an unpaired surrogate), which is not text. Nothing was saved."
        ) from None
    return content


def check_role(role: Role | str) -> Role:
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


def check_created_at(created_at: float | None) -> int | None:
    """An imported message's time (seconds) as ms; None = now."""
    if created_at is None:
        return None
    if isinstance(created_at, bool) or not isinstance(created_at, int | float):
        raise InvalidInput("A message time must be a number of seconds since 1970.")
    if not 0 <= created_at < MAX_CREATED_AT:
        raise InvalidInput("A message time must be between 1970 and the year 2242.")
    return round(created_at * 1000)


def limit_reached(limit: str, maximum: int) -> StorageLimitReached:
    if limit == "conversations":
        return StorageLimitReached(
            f"You have as many conversations as your storage allows ({maximum:,}: "
            "MAX_MESSAGES_PER_USER caps conversations too, empty ones included), so this "
            "message was not saved. Delete conversations you no longer need, then send it "
            "again.",
            limit="MAX_MESSAGES_PER_USER",
            value=maximum,
        )
    what = "messages" if limit == "MAX_MESSAGES_PER_USER" else "bytes of messages"
    return StorageLimitReached(
        f"Your stored history is full ({maximum:,} {what}, {limit}), so this message was not "
        "saved. Clear your history or set a shorter retention, then send it again.",
        limit=limit,
        value=maximum,
    )
