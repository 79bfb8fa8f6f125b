"""What the read scripts return, turned into typed values: messages, the system instruction,
the context window and a page's conversation (common.lua `read_conversation`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from memory.branches import branch_points
from memory.listing import conversation_info
from memory.models import (
    ContextWindow,
    Conversation,
    Message,
    Retention,
    Role,
    SystemInstruction,
    UsageTotals,
)
from memory.tokens import TOKENS_REPLY_PRIMER, TokenCounter

ROLES = {role.value: role for role in Role}
MESSAGE_FIELDS = (  # common.lua MESSAGE_FIELDS: each row of a read, in this order
    "role",
    "content",
    "timestamp",
    "created_at",
    "token_count",
    "token_encoding",
    "metadata",
)


class MessageReader:
    """Parses read replies with this deployment's token counter and default instruction."""

    def __init__(self, tokens: TokenCounter, default_system: SystemInstruction) -> None:
        self._tokens = tokens
        self._default_text = default_system.text
        self._default_preset = default_system.preset

    def default_system(self) -> SystemInstruction:
        return SystemInstruction(
            text=self._default_text,
            preset=self._default_preset,
            token_count=count_system(self._tokens, self._default_text),
        )

    def system_from(self, settings: dict[str, str]) -> SystemInstruction:
        text = settings.get("system_text")
        if text is None:
            return self.default_system()
        tokens = int(settings.get("system_tokens", 0))
        if settings.get("system_encoding") != self._tokens.encoding_name:
            tokens = count_system(self._tokens, text)
        return SystemInstruction(
            text=text, preset=settings.get("system_preset") or None, token_count=tokens
        )

    def window(self, system: SystemInstruction, messages: tuple[Message, ...]) -> ContextWindow:
        tokens = TOKENS_REPLY_PRIMER + system.token_count + sum(m.token_count for m in messages)
        return ContextWindow(system=system, messages=messages, token_count=tokens)

    def messages(self, rows: list[Any]) -> list[Message]:
        """`{key, fields, key, fields, ...}` (common.lua `message_rows`) as messages; a count
        made with another encoding is made again with this one."""
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
                    role=ROLES[role],
                    content=content,
                    seq=int(seq),
                    created_at=float(created_at),
                    token_count=token_count,
                    metadata=metadata or "",
                    key=key,
                )
            )
        return messages

    def conversation(
        self, user_id: str, cid: str, reply: list[Any], page_size: int
    ) -> Conversation:
        """common.lua `read_conversation`'s reply as the page's conversation."""
        total, settings_flat, rows, now_ms, oldest, window, _, row, last_seq, forks = reply
        settings = pairs(settings_flat)
        window_size = int(window)
        recent = self.messages(rows)
        window_messages = tuple(recent[-window_size:]) if window_size else ()
        return Conversation(
            user_id=user_id,
            recent=tuple(recent[-page_size:]) if page_size else (),
            total_messages=int(total),
            window=self.window(self.system_from(settings), window_messages),
            window_size=window_size,
            retention=retention(settings.get("ttl"), int(now_ms), oldest),
            usage_totals=UsageTotals(
                prompt_tokens=int(settings.get("usage_prompt_tokens", 0)),
                completion_tokens=int(settings.get("usage_completion_tokens", 0)),
                replies=int(settings.get("usage_replies", 0)),
                estimated_replies=int(settings.get("usage_estimated_replies", 0)),
            ),
            conversation_id=cid,
            info=conversation_info(row) if row else None,
            last_seq=int(last_seq),
            branches=branch_points(pairs(forks)),
        )


def retention(ttl: str | None, now_ms: int, oldest: str) -> Retention:
    if ttl is None:
        return Retention(ttl_seconds=None)
    remaining = max(0.0, (float(oldest) - now_ms) / 1000) if oldest else None
    return Retention(ttl_seconds=int(ttl), oldest_expires_in=remaining)


def pairs(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@lru_cache(maxsize=64)
def count_system(counter: TokenCounter, text: str) -> int:
    return counter.count_message("system", text)
