"""Building the one Redis client a process shares.

Three ways in, decided here and nowhere else:
- `REDIS_URL` (redis:// or rediss://, password in the URL);
- `REDIS_HOST` + `REDIS_PORT` with no password: Azure Managed Redis over TLS with Microsoft
  Entra ID tokens from the Azure credential the app already uses for its model;
- neither: the embedded local Redis (memory.embedded), started on demand.

An open-source Redis Cluster (`REDIS_CLUSTER=true`, or a `redis+cluster://` /
`rediss+cluster://` URL) gets redis-py's `RedisCluster`, on RESP2: redisvl's index calls need
it. Azure Managed Redis with the Enterprise clustering policy is one endpoint: a plain client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from azure.core.credentials import TokenCredential
from redis.auth.token_manager import RetryPolicy, TokenManagerConfig
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider
from redis.retry import Retry
from redis_entraid.cred_provider import (
    DEFAULT_DELAY_IN_MS,
    DEFAULT_EXPIRATION_REFRESH_RATIO,
    DEFAULT_LOWER_REFRESH_BOUND_MILLIS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TOKEN_REQUEST_EXECUTION_TIMEOUT_IN_MS,
    EntraIdCredentialsProvider,
)
from redis_entraid.identity_provider import DefaultAzureCredentialProvider

REDIS_SCOPE = "https://redis.azure.com/.default"
_CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}

RedisClient: TypeAlias = redis.Redis | RedisCluster
T = TypeVar("T")


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is. Exactly one of `url` or `host` is set."""

    url: str | None = None
    host: str | None = None
    port: int = 10000
    ssl: bool = True
    label: str = "REDIS_URL"
    cluster: bool = False

    @property
    def uses_entra_id(self) -> bool:
        return self.host is not None

    @property
    def is_cluster(self) -> bool:
        return self.cluster or any(self.url and self.url.startswith(s) for s in _CLUSTER_SCHEMES)

    @property
    def plain_url(self) -> str | None:
        """The URL with a `+cluster` scheme turned into the one redis-py parses."""
        if self.url is None:
            return None
        for scheme, plain in _CLUSTER_SCHEMES.items():
            if self.url.startswith(scheme):
                return plain + self.url.removeprefix(scheme)
        return self.url

    @property
    def safe_url(self) -> str | None:
        """The URL to print or log: its password (the only secret in a Redis URL) masked."""
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))

    def describe(self) -> str:
        kind = ", cluster" if self.is_cluster else ""
        if self.plain_url is not None:
            host = redis.connection.parse_url(self.plain_url).get("host", "?")
            return f"{host} ({self.label}{kind})"
        return f"{self.host}:{self.port} (Microsoft Entra ID{kind})"


def create_entra_credential_provider(
    credential: TokenCredential,
    *,
    expiration_refresh_ratio: float = DEFAULT_EXPIRATION_REFRESH_RATIO,
) -> EntraIdCredentialsProvider:
    """A redis-entraid provider fed by an Azure credential; it renews tokens in the background
    and re-authenticates open connections, so hour-long token lifetimes never drop a user."""
    return EntraIdCredentialsProvider(
        identity_provider=DefaultAzureCredentialProvider(app=credential, scopes=(REDIS_SCOPE,)),
        token_manager_config=TokenManagerConfig(
            expiration_refresh_ratio,
            DEFAULT_LOWER_REFRESH_BOUND_MILLIS,
            DEFAULT_TOKEN_REQUEST_EXECUTION_TIMEOUT_IN_MS,
            RetryPolicy(DEFAULT_MAX_ATTEMPTS, DEFAULT_DELAY_IN_MS),
        ),
    )


def connect_failure(error: BaseException) -> bool:
    """redis-py failed to connect (refused, or timed out connecting): nothing was sent."""
    return "connecting to" in str(error)


class OutcomeTrackingRetry(Retry):
    """redis-py's Retry that marks the error it finally raises with whether any attempt may
    have reached Redis (`maybe_sent`). The error alone says only how the last attempt failed:
    after a write was sent and timed out (or Redis died before answering), a reconnect that is
    refused reads "Error ... connecting to", which would pass a write that may be stored off
    as one never sent."""

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        reached = False

        def attempt() -> T:
            nonlocal reached
            try:
                return do()
            except self._supported_errors as error:
                reached = reached or not connect_failure(error)
                error.maybe_sent = reached  # type: ignore[attr-defined]
                raise

        return super().call_with_retry(attempt, fail, is_retryable, with_failure_count)


def may_have_reached_redis(error: BaseException) -> bool:
    """Whether a command that failed for good may have reached Redis on some attempt, so a
    write's outcome is unknown (the mark OutcomeTrackingRetry leaves, else the error's own)."""
    marked = getattr(error, "maybe_sent", None)
    return marked if isinstance(marked, bool) else not connect_failure(error)


# Connections one app process may open. redis-py 8 caps its pool at 100 and then fails every
# call at once (MaxConnectionsError); a page following a reply holds one for its blocking read,
# so at ~100 people chatting on one instance storage looked "unavailable" and replies were cut
# off (bench/README.md, "Load through the websocket"). Redis's own default limit is 10,000.
MAX_CONNECTIONS = 1_000


def _resilience() -> dict[str, Any]:
    return {
        "max_connections": MAX_CONNECTIONS,
        "retry": OutcomeTrackingRetry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
        "socket_connect_timeout": 3,
        "socket_timeout": 5,
        "health_check_interval": 30,
        "decode_responses": True,
    }


def create_client(
    target: RedisTarget, credential_provider: CredentialProvider | None = None
) -> RedisClient:
    """The client the app uses: a RedisCluster for a cluster target, else a plain client."""
    if target.is_cluster:
        return _create_cluster_client(target, target.plain_url, credential_provider)
    return create_redis_client(target, credential_provider)


def create_redis_client(
    target: RedisTarget, credential_provider: CredentialProvider | None = None
) -> redis.Redis:
    """A client with hiredis parsing, retries with jittered backoff and string replies."""
    url = target.plain_url
    if url is not None:
        return redis.Redis.from_url(url, **_resilience())
    if credential_provider is None or target.host is None:
        raise ValueError(
            f"Redis at {target.host} uses Microsoft Entra ID: pass a credential provider."
        )
    return redis.Redis(
        host=target.host,
        port=target.port,
        ssl=target.ssl,
        credential_provider=credential_provider,
        **_resilience(),
    )


def _create_cluster_client(
    target: RedisTarget, url: str | None, credential_provider: CredentialProvider | None
) -> RedisCluster:
    options = _resilience() | {"protocol": 2}
    if url is not None:
        return RedisCluster.from_url(url, **options)
    if credential_provider is None or target.host is None:
        raise ValueError(
            f"Redis at {target.host} uses Microsoft Entra ID: pass a credential provider."
        )
    return RedisCluster(
        host=target.host,
        port=target.port,
        ssl=target.ssl,
        credential_provider=credential_provider,
        **options,
    )
