"""A fake Azure credential: the one stand-in the tests use for Azure (which is unreachable).
Everything it feeds (the openai client, redis-entraid, a real Redis ACL user) is real."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
from azure.core.credentials import AccessToken


def make_jwt(oid: str, lifetime: float, serial: int) -> str:
    """A token shaped like Entra's: redis-entraid reads `oid` (the Redis user) and `exp`."""
    return jwt.encode(
        {"oid": oid, "exp": int(time.time() + lifetime), "serial": serial}, "k" * 32, "HS256"
    )


class FakeCredential:
    """Hands out JWTs like a real credential: the cached one while it is younger than
    `reuse_for` seconds, then a new one. Remembers which scopes were asked for."""

    def __init__(
        self,
        oid: str = "app-identity-oid",
        lifetime: float = 3600,
        reuse_for: float = 3600,
        on_issue: Callable[[str], None] | None = None,
    ) -> None:
        self.oid = oid
        self.on_issue = on_issue
        self.lifetime = lifetime
        self.reuse_for = reuse_for
        self._issued_at = 0.0
        self.scopes: list[tuple[str, ...]] = []
        self.issued: list[str] = []
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            self.scopes.append(scopes)
            if not self.issued or time.monotonic() - self._issued_at >= self.reuse_for:
                token = make_jwt(self.oid, self.lifetime, next(self._serial))
                if self.on_issue is not None:
                    self.on_issue(token)
                self.issued.append(token)
                self._issued_at = time.monotonic()
            return AccessToken(self.issued[-1], int(time.time() + self.lifetime))

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        token = self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)
