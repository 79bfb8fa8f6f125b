"""Who the user is, in each AUTH_MODE, and that one signed-in user can never reach another's
messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from chatbot.config import ConfigError
from chatbot.identity import (
    EASYAUTH_HEADERS,
    AuthMode,
    AuthSettings,
    check_trusted_headers,
    identity_from_easyauth,
    identity_from_oidc,
)
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory
from tests.support.conversations import SEEDED, opened_count, opened_messages
from ui.sidebar import SETTINGS_KEY

APP = str(Path(__file__).resolve().parent.parent / "app.py")
SETTINGS = AuthSettings(mode=AuthMode.EASYAUTH, admin_users=frozenset({"oid-admin"}))


def memory_of(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return ChatMemory(
        redis_client,
        default_system=load_presets()[DEFAULT_PRESET].instruction(),
        index_name=index_name,
    )


def run_as(user: dict[str, object]) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=30)
    app.session_state[SETTINGS_KEY] = True  # the settings panel open
    app.user = user
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def labels(app: AppTest) -> list[str]:
    return [b.label for b in app.button]


@pytest.fixture
def trusted_headers() -> Iterator[None]:
    streamlit_config.set_option("server.trustedUserHeaders", dict(EASYAUTH_HEADERS))
    yield
    streamlit_config.set_option("server.trustedUserHeaders", {})


@pytest.fixture
def easyauth(app_env: str, monkeypatch: pytest.MonkeyPatch, trusted_headers: None) -> str:
    monkeypatch.setenv("AUTH_MODE", "easyauth")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")  # App Service Authentication is on
    monkeypatch.setenv("ADMIN_USERS", "oid-admin")
    return app_env


@pytest.fixture
def oidc(app_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AUTH_MODE", "oidc")
    return app_env


def test_easyauth_prefers_the_immutable_object_id() -> None:
    identity = identity_from_easyauth({"oid": "0000-1111", "name": "luke@example.com"}, SETTINGS)
    assert identity is not None
    assert (identity.user_id, identity.display_name, identity.is_admin) == (
        "0000-1111",
        "luke@example.com",
        False,
    )


@pytest.mark.parametrize(
    "claims", [{}, {"oid": None, "name": None}, {"oid": "  "}, {"name": "spoofed@example.com"}]
)
def test_easyauth_without_a_principal_id_is_nobody(claims: dict[str, object]) -> None:
    assert identity_from_easyauth(claims, SETTINGS) is None


def test_oidc_identity_needs_a_login_and_prefers_oid_over_sub() -> None:
    assert identity_from_oidc({"is_logged_in": False, "sub": "x"}, SETTINGS) is None
    assert identity_from_oidc({"is_logged_in": True, "email": "a@b.c"}, SETTINGS) is None
    both = identity_from_oidc(
        {"is_logged_in": True, "oid": "o", "sub": "s", "email": "e"}, SETTINGS
    )
    assert both is not None and (both.user_id, both.display_name) == ("o", "e")
    only_sub = identity_from_oidc({"is_logged_in": True, "sub": "s", "name": "Leia"}, SETTINGS)
    assert only_sub is not None and only_sub.user_id == "s"


def test_admins_are_named_by_id_only() -> None:
    admin = identity_from_easyauth({"oid": "oid-admin"}, SETTINGS)
    impostor = identity_from_easyauth({"oid": "someone", "name": "oid-admin"}, SETTINGS)
    assert admin is not None and admin.is_admin
    assert impostor is not None and not impostor.is_admin


def test_header_trust_matches_the_mode() -> None:
    check_trusted_headers(AuthMode.EASYAUTH, dict(EASYAUTH_HEADERS))
    check_trusted_headers(AuthMode.OIDC, {})
    check_trusted_headers(AuthMode.DEMO, {})
    with pytest.raises(ConfigError, match="STREAMLIT_SERVER_TRUSTED_USER_HEADERS"):
        check_trusted_headers(AuthMode.EASYAUTH, {})
    with pytest.raises(ConfigError, match="must not trust"):
        check_trusted_headers(AuthMode.OIDC, dict(EASYAUTH_HEADERS))


def test_demo_mode_has_the_picker(app_env: str) -> None:
    app = run_as({"email": "test@example.com"})
    assert app.sidebar.selectbox[0].label == "User"
    assert "Clear ALL history…" in labels(app)


def test_easyauth_user_has_no_picker_and_only_their_history(
    easyauth: str, redis_client: redis.Redis
) -> None:
    memory = memory_of(redis_client, easyauth)
    memory.append("oid-leia", "user", "Leia's private note", conversation_id=SEEDED)
    app = run_as({"oid": "oid-luke", "name": "luke@example.com"})
    assert all(box.label != "User" for box in app.sidebar.selectbox)
    assert any(t.value == "Signed in as luke@example.com" for t in app.sidebar.text)
    app.chat_input[0].set_value("Luke here").run()
    assert next(m.content for m in opened_messages(memory, "oid-luke")) == "Luke here"
    shown = [m.text[0].value for m in app.chat_message if m.text]
    assert "Leia's private note" not in shown
    assert "Clear ALL history…" not in labels(app)
    next(b for b in app.button if b.label == "Clear this conversation").click().run()
    next(b for b in app.button if b.label == "Yes, clear it").click().run()
    assert opened_count(memory, "oid-luke") == 0 and opened_count(memory, "oid-leia") == 1


def test_easyauth_without_identity_headers_gets_a_sign_in_page(
    easyauth: str, redis_client: redis.Redis
) -> None:
    memory_of(redis_client, easyauth).append("oid-leia", "user", "secret", conversation_id=SEEDED)
    app = run_as({"oid": None, "name": None})
    assert app.title[0].value == "🔒 Sign-in required"
    assert not app.chat_input and not app.chat_message and not app.sidebar.metric


def test_easyauth_without_trusted_headers_configured_is_a_config_error(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_MODE", "easyauth")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    app = run_as({"oid": "oid-luke"})
    assert "STREAMLIT_SERVER_TRUSTED_USER_HEADERS" in app.error[0].value
    assert not app.chat_input


def test_an_admin_can_clear_all(easyauth: str, redis_client: redis.Redis) -> None:
    memory = memory_of(redis_client, easyauth)
    memory.append("oid-leia", "user", "hello", conversation_id=SEEDED)
    app = run_as({"oid": "oid-admin", "name": "Admin"})
    next(b for b in app.button if b.label == "Clear ALL history…").click().run()
    next(b for b in app.button if b.label == "Yes, delete all").click().run()
    assert opened_count(memory, "oid-leia") == 0


def test_oidc_logged_out_sees_only_a_sign_in_button(oidc: str) -> None:
    app = run_as({"is_logged_in": False})
    assert "Sign in" in labels(app)
    assert not app.chat_input and not app.chat_message


def test_oidc_logged_in_chats_under_their_subject(oidc: str, redis_client: redis.Redis) -> None:
    app = run_as({"is_logged_in": True, "sub": "sub-123", "name": "Leia Organa"})
    assert "Sign out" in labels(app)
    assert all(box.label != "User" for box in app.sidebar.selectbox)
    app.chat_input[0].set_value("Hello from Leia").run()
    assert opened_messages(memory_of(redis_client, oidc), "sub-123")[0].content == "Hello from Leia"
    assert "Clear ALL history…" not in labels(app)
