"""Who is chatting: the demo picker, or the identity the platform vouches for.

- demo: anyone picks a user from DEMO_USERS (the public demo's behaviour);
- easyauth: App Service Authentication signs people in; Streamlit maps its headers into
  `st.user` through `server.trustedUserHeaders` (set only in this mode);
- oidc: Streamlit's own `st.login` with the provider in `.streamlit/secrets.toml`.

The storage id prefers the provider's immutable object id (`oid`) over names and emails,
which people can change.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from chatbot.config import ConfigError

# App Service Authentication's own endpoints, served in front of the app.
EASYAUTH_LOGIN_URL = "/.auth/login/aad?post_login_redirect_uri=/"
EASYAUTH_LOGOUT_URL = "/.auth/logout?post_logout_redirect_uri=/"
DEMO_WARNING = (
    "**Public demo, no sign-in:** anyone who can open this page can pick any user, read every "
    "conversation and clear all of them. Do not type anything private."
)

EASYAUTH_HEADERS = {
    "X-MS-CLIENT-PRINCIPAL-ID": "oid",
    "X-MS-CLIENT-PRINCIPAL-NAME": "name",
}


MIN_COOKIE_SECRET_CHARS = 32
# Where Streamlit reads secrets from by default (its `secrets.files`): global, then project.
STREAMLIT_SECRETS_FILES = (
    Path.home() / ".streamlit" / "secrets.toml",
    Path(".streamlit") / "secrets.toml",
)
_PLACEHOLDER = re.compile(r"<[^<>]*>")
_WORDS_PLACEHOLDER = re.compile(r"<[^<>]* [^<>]*>")  # as in the README: "<tenant id>"


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
    # WEBSITE_AUTH_ENABLED: App Service says its authentication runs in front of the app.
    platform_auth: bool = False

    def __post_init__(self) -> None:
        if self.mode is AuthMode.DEMO and not self.demo_users:
            raise ConfigError("DEMO_USERS must name at least one user in demo mode.")


@dataclass(frozen=True)
class Identity:
    user_id: str
    display_name: str
    is_admin: bool


def _claim(claims: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _identity(user_id: str, name: str | None, settings: AuthSettings) -> Identity:
    return Identity(
        user_id=user_id,
        display_name=name or user_id,
        is_admin=user_id in settings.admin_users,
    )


def identity_from_easyauth(claims: Mapping[str, Any], settings: AuthSettings) -> Identity | None:
    """The person App Service signed in, from the headers Streamlit mapped into `st.user`.
    Without the principal id header nobody is signed in: no name or email stands in for it."""
    user_id = _claim(claims, "oid")
    if user_id is None:
        return None
    return _identity(user_id, _claim(claims, "name"), settings)


def identity_from_oidc(claims: Mapping[str, Any], settings: AuthSettings) -> Identity | None:
    """The person signed in through `st.login`, keyed by `oid` (Entra) or else `sub`."""
    if claims.get("is_logged_in") is not True:
        return None
    user_id = _claim(claims, "oid", "sub")
    if user_id is None:
        return None
    return _identity(user_id, _claim(claims, "name", "preferred_username", "email"), settings)


def check_trusted_headers(mode: AuthMode, mapping: object) -> None:
    """`server.trustedUserHeaders` must be set exactly when the platform supplies identity:
    in easyauth mode to receive it, and never in oidc mode, where a client could send the
    same headers to pose as someone else."""
    mapped = mapping if isinstance(mapping, dict) else {}
    if mode is AuthMode.EASYAUTH and mapped.get("X-MS-CLIENT-PRINCIPAL-ID") != "oid":
        raise ConfigError(
            "AUTH_MODE=easyauth needs Streamlit to read App Service's identity headers: set "
            f"STREAMLIT_SERVER_TRUSTED_USER_HEADERS='{json.dumps(EASYAUTH_HEADERS)}'."
        )
    if mode is AuthMode.OIDC and mapped:
        raise ConfigError(
            "AUTH_MODE=oidc must not trust identity headers: unset "
            "STREAMLIT_SERVER_TRUSTED_USER_HEADERS / server.trustedUserHeaders."
        )


def check_platform_authentication(settings: AuthSettings) -> None:
    """easyauth trusts identity headers only because App Service Authentication strips
    client-sent copies, and App Service does that only while it is on. Without its word
    (WEBSITE_AUTH_ENABLED), anyone could send `X-MS-CLIENT-PRINCIPAL-ID` and be anyone."""
    if settings.mode is AuthMode.EASYAUTH and not settings.platform_auth:
        raise ConfigError(
            "AUTH_MODE=easyauth, but App Service Authentication is not on for this app "
            "(WEBSITE_AUTH_ENABLED is not true), so nobody's identity can be trusted and "
            "nothing is served. Turn Authentication on for the web app (azd provision does), "
            "or use AUTH_MODE=oidc."
        )


def check_oidc_secrets(auth: Mapping[str, Any] | None) -> None:
    """`[auth]` of `.streamlit/secrets.toml` (st.secrets["auth"]) for AUTH_MODE=oidc.
    Streamlit signs the session cookie with `cookie_secret`: one that is still a placeholder
    (the README's `<a long random string>`) or short lets anyone forge a cookie and sign in as
    anyone, admins included. So does a placeholder left in any other field of the section."""
    if not auth:
        return
    secret = auth.get("cookie_secret")
    if not isinstance(secret, str) or _PLACEHOLDER.search(secret):
        raise ConfigError(
            "AUTH_MODE=oidc: [auth] cookie_secret in .streamlit/secrets.toml is missing or "
            "still a placeholder, so anyone could forge a sign-in cookie. Set it to a long "
            'random string, e.g. the output of: python -c "import secrets; '
            'print(secrets.token_urlsafe(48))"'
        )
    if len(secret.strip()) < MIN_COOKIE_SECRET_CHARS:
        raise ConfigError(
            f"AUTH_MODE=oidc: [auth] cookie_secret has {len(secret.strip())} characters; it "
            f"needs at least {MIN_COOKIE_SECRET_CHARS} random ones, or a sign-in cookie could "
            "be guessed or forged."
        )
    for name, value in auth.items():
        if isinstance(value, str) and _WORDS_PLACEHOLDER.search(value):
            raise ConfigError(
                f"AUTH_MODE=oidc: [auth] {name} in .streamlit/secrets.toml is still the "
                f"placeholder {value!r}: put in your provider's value."
            )


def auth_secrets(files: Iterable[Path] = STREAMLIT_SECRETS_FILES) -> dict[str, Any]:
    """The `[auth]` section Streamlit will read from its default secrets files (a later file
    wins, as in Streamlit), so a bad one stops the app before the first page; empty when
    there is none (the page then checks st.secrets itself)."""
    merged: dict[str, Any] = {}
    for path in files:
        try:
            section = tomllib.loads(path.read_text(encoding="utf-8")).get("auth")
        except (OSError, ValueError):
            continue
        if isinstance(section, dict):
            merged.update(section)
    return merged


def demo_identity(user: str) -> Identity:
    """Anyone may be anyone in demo mode, and anyone may clear everything: it is a demo."""
    return Identity(user_id=user, display_name=user, is_admin=True)
