"""Chat memory: per-user history, system instruction, retention and token counts in Redis."""

from memory.connection import (
    RedisClient,
    RedisTarget,
    create_client,
    create_entra_credential_provider,
    create_redis_client,
)
from memory.keys import new_message_id
from memory.models import (
    ChatMemoryError,
    ContextWindow,
    Conversation,
    IndexUnavailable,
    InvalidInput,
    Message,
    Retention,
    Role,
    StorageFull,
    StorageLimitReached,
    StorageLimits,
    StorageReadOnly,
    StorageUnavailable,
    SystemInstruction,
    Usage,
    UsageTotals,
    WriteOutcomeUnknown,
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
    "IndexUnavailable",
    "InvalidInput",
    "Message",
    "RedisClient",
    "RedisTarget",
    "Retention",
    "Role",
    "StorageFull",
    "StorageLimitReached",
    "StorageLimits",
    "StorageReadOnly",
    "StorageUnavailable",
    "SystemInstruction",
    "TokenCounter",
    "Usage",
    "UsageTotals",
    "WriteOutcomeUnknown",
    "create_client",
    "create_entra_credential_provider",
    "create_redis_client",
    "new_message_id",
]
