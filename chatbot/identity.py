"""Who is chatting: the demo picker, or the identity the platform vouches for.

- demo: anyone picks a user from DEMO_USERS (the public demo's behaviour);
- easyauth: App Service Authentication signs people in; Streamlit maps its headers into
  `st.user` through `server.trustedUserHeaders` (set only in this mode);
- oidc: Streamlit's own `st.login` with the provider in `.streamlit/secrets.toml`.

The storage id prefers the provider's immutable object id (`oid`) over names and emails,
which people can change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chatbot.config import ConfigError

EASYAUTH_HEADERS = {
    "X-MS-CLIENT-PRINCIPAL-ID": "oid",
    "X-MS-CLIENT-PRINCIPAL-NAME": "name",
}


class AuthMode(StrEnum):
    DEMO = "demo"
    EASYAUTH = "easyauth"
    OIDC = "oidc"

    @classmethod
    def parse(cls, value: str) -> AuthMode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ConfigError(
                f"AUTH_MODE must be one of {[mode.value for mode in cls]}, got {value!r}"
            ) from None


@dataclass(frozen=True)
class AuthSettings:
    mode: AuthMode = AuthMode.DEMO
    demo_users: tuple[str, ...] = ("Luke", "Leia", "Han")
    admin_users: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.mode is AuthMode.DEMO and not self.demo_users:
            raise ConfigError("DEMO_USERS must name at least one user in demo mode.")


@dataclass(frozen=True)
class Identity:
    user_id: str
    display_name: str
    is_admin: bool


def identity_from_claims(claims: Mapping[str, Any], settings: AuthSettings) -> Identity | None:
    """The signed-in person from `st.user`'s claims, or None when nobody is signed in."""
    stable = next(
        (str(claims[key]).strip() for key in ("oid", "sub") if str(claims.get(key) or "").strip()),
        None,
    )
    name = next(
        (
            str(claims[key]).strip()
            for key in ("name", "preferred_username", "email")
            if str(claims.get(key) or "").strip()
        ),
        None,
    )
    user_id = stable or name
    if user_id is None:
        return None
    admins = settings.admin_users
    is_admin = user_id in admins or (name is not None and stable is None and name in admins)
    return Identity(user_id=user_id, display_name=name or user_id, is_admin=is_admin)


def demo_identity(user: str, settings: AuthSettings) -> Identity:
    """Anyone may be anyone in demo mode, and anyone may clear everything: it is a demo."""
    return Identity(user_id=user, display_name=user, is_admin=True)
