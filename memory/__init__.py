"""Chat memory: per-user history, system instruction, retention and token counts in Redis."""

from memory.connection import (
    RedisTarget,
    create_entra_credential_provider,
    create_redis_client,
)
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
from memory.store import MAX_TTL_SECONDS, MAX_WINDOW, ChatMemory
from memory.tokens import TokenCounter

__all__ = [
    "MAX_TTL_SECONDS",
    "MAX_WINDOW",
    "ChatMemory",
    "ChatMemoryError",
    "ContextWindow",
    "Conversation",
    "InvalidInput",
    "Message",
    "RedisTarget",
    "Retention",
    "Role",
    "StorageUnavailable",
    "SystemInstruction",
    "TokenCounter",
    "Usage",
    "UsageTotals",
    "create_entra_credential_provider",
    "create_redis_client",
]
