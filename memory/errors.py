"""Redis errors turned into the memory layer's own, each with a message a person can act on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import redis
from redis.exceptions import RedisClusterException
from redisvl.exceptions import RedisVLError

from memory.models import (
    ChatMemoryError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
)

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


def storage_errors(method: Callable[P, T]) -> Callable[P, T]:
    """Turn redis-py's errors into the memory layer's own, with a message a person can act on."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except RedisVLError as error:
            cause = error.__cause__
            if isinstance(cause, redis.RedisError):
                raise classified(cause) from error
            raise ChatMemoryError(f"Chat storage (Redis) refused the operation: {error}") from error
        except (redis.RedisError, RedisClusterException) as error:
            raise classified(error) from error

    return wrapper


def classified(error: Exception) -> ChatMemoryError:
    if isinstance(error, redis.OutOfMemoryError):
        return StorageFull(
            "Chat storage (Redis) is full, so nothing was saved. Free memory (shorter "
            "retention, clearing old history) or raise the Redis memory limit."
        )
    if isinstance(error, redis.ReadOnlyError):
        return StorageReadOnly(
            "Chat storage (Redis) is read-only right now (a replica, or a failover in "
            "progress), so nothing was saved. Try again in a moment."
        )
    if isinstance(error, redis.ConnectionError | redis.TimeoutError | RedisClusterException):
        logger.warning("Redis did not answer (after the client's retries): %r", error)
        return StorageUnavailable(f"Chat storage (Redis) is unreachable: {error}")
    return ChatMemoryError(f"Chat storage (Redis) refused the operation: {error}")
