"""The Streamlit app driven through AppTest, on the real local Redis and a real local HTTP
server that speaks the OpenAI chat-completions protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from streamlit.testing.v1 import AppTest

from chatbot.offline import OFFLINE_LABEL
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, Role
from memory.embedded import EmbeddedRedis, free_port
from tests.support.conversations import SEEDED, opened_count, opened_messages
from tests.support.delay_proxy import DelayProxy
from tests.support.openai_server import ChatCompletionsServer, Fault
from tests.support.tokens import count_request_tokens, count_text_tokens
from ui.sidebar import SETTINGS_KEY
from ui.state import widget_key

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PRESETS = load_presets()


def start_app(settings: bool = True) -> AppTest:
    """The page, with its settings panel open (closed, it builds none of its controls)."""
    app = AppTest.from_file(APP, default_timeout=30)
    app.session_state[SETTINGS_KEY] = settings
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def say(app: AppTest, text: str) -> AppTest:
    app.chat_input[0].set_value(text).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def click(app: AppTest, label: str) -> AppTest:
    matches = [b for b in app.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in app.button]}"
    matches[0].click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def transcript(app: AppTest) -> list[tuple[str, str]]:
    return [(m.name, m.text[0].value if m.text else m.markdown[0].value) for m in app.chat_message]


def stored(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return ChatMemory(
        redis_client,
        default_system=PRESETS[DEFAULT_PRESET].instruction(),
        index_name=index_name,
    )


user_key = widget_key  # the app's per-user widget key


def unsent_key(user_id: str) -> str:
    return widget_key("draft", user_id)


def captions(app: AppTest) -> list[str]:
    return [caption.value for caption in app.sidebar.caption]


def token_metric(app: AppTest) -> int:
    metric = next(m for m in app.sidebar.metric if m.label == "Chat history tokens")
    return int(str(metric.value).replace(",", ""))


def test_offline_mode_works_and_says_so(app_env: str, redis_client: redis.Redis) -> None:
    app = start_app()
    assert "offline responder" in app.info[0].value
    say(app, "Hello there")
    (user_role, user_text), (bot_role, bot_text) = transcript(app)
    assert (user_role, user_text) == ("user", "Hello there")
    assert bot_role == "assistant" and bot_text.startswith(OFFLINE_LABEL)
    assert [m.content for m in opened_messages(stored(redis_client, app_env), "Luke")] == [
        "Hello there",
        bot_text,
    ]


def test_reply_streams_from_the_model_and_is_stored_with_usage(
    online_env: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    app = start_app()
    assert not app.info
    say(app, "What is Redis?")
    assert transcript(app) == [("user", "What is Redis?"), ("assistant", "Echo: What is Redis?")]
    request = online_env.last_request
    assert request.stream and request.json["stream_options"] == {"include_usage": True}
    messages = opened_messages(stored(redis_client, app_env), "Luke")
    assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT]
    assert messages[1].usage is not None and messages[1].usage.completion_tokens > 0
    assert any("Last reply:" in c.value for c in app.sidebar.caption)


def test_model_gets_the_instruction_and_the_last_n_messages_starting_with_a_prompt(
    online_env: ChatCompletionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECALL_MAX_MESSAGES", "0")  # recall adds older ones: tests/test_recall.py
    app = start_app()
    for number in range(4):
        say(app, f"question {number}")
    app.sidebar.slider[0].set_value(3).run()
    expected_tokens = token_metric(app)
    # The last 3 start with a reply: this server's chat template (not OpenAI's) needs a
    # prompt first, and the page says that is why, not that the context is full.
    assert "2 messages sent; left out: 1 reply out of turn (this model needs a prompt first)." in (
        captions(app)
    )
    say(app, "question 4")
    sent = online_env.last_request.messages
    assert sent[0] == {"role": "system", "content": PRESETS[DEFAULT_PRESET].text}
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "question 3"),
        ("assistant", "Echo: question 3"),
        ("user", "question 4"),
    ]
    assert all(m["role"] != "llm" for m in sent)
    assert expected_tokens == count_request_tokens(
        [{"role": "system", "content": PRESETS[DEFAULT_PRESET].text}]
        + [
            {"role": r, "content": c}
            for r, c in [
                ("user", "question 3"),
                ("assistant", "Echo: question 3"),
            ]
        ]
    )
    assert token_metric(app) == count_request_tokens(
        [sent[0], sent[3], {"role": "assistant", "content": "Echo: question 4"}]
    )


def test_a_provider_that_takes_a_reply_first_gets_exactly_the_last_n_messages(
    online_env: ChatCompletionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECALL_MAX_MESSAGES", "0")
    monkeypatch.setenv("LLM_STRICT_ROLES", "false")  # as OpenAI and Azure OpenAI are
    app = start_app()
    for number in range(3):
        say(app, f"question {number}")
    app.sidebar.slider[0].set_value(4).run()
    assert "4 messages sent." in captions(app)
    say(app, "question 3")
    assert [(m["role"], m["content"]) for m in online_env.last_request.messages[1:]] == [
        ("assistant", "Echo: question 1"),
        ("user", "question 2"),
        ("assistant", "Echo: question 2"),
        ("user", "question 3"),
    ]


def test_token_metric_follows_the_slider_and_the_slider_persists(
    online_env: ChatCompletionsServer,
) -> None:
    app = start_app()
    for number in range(3):
        say(app, f"message {number}")
    app.sidebar.slider[0].set_value(1).run()
    one = token_metric(app)
    app.sidebar.slider[0].set_value(6).run()
    six = token_metric(app)
    assert six > one
    fresh = start_app()
    assert fresh.sidebar.slider[0].value == 6
    assert token_metric(fresh) == six


def test_switching_preset_changes_the_next_request_and_persists(
    online_env: ChatCompletionsServer,
) -> None:
    app = start_app()
    app.sidebar.selectbox[1].set_value("brief").run()
    assert not app.exception
    say(app, "Tell me about Redis")
    assert online_env.last_request.messages[0]["content"] == PRESETS["brief"].text
    fresh = start_app()
    assert fresh.sidebar.selectbox[1].value == "brief"
    fresh.sidebar.selectbox[0].set_value("Leia").run()
    assert fresh.sidebar.selectbox[1].value == DEFAULT_PRESET


def test_custom_instruction_is_saved_and_sent(online_env: ChatCompletionsServer) -> None:
    app = start_app()
    app.sidebar.selectbox[1].set_value("__custom__").run()
    app.sidebar.text_area[0].input("Answer only in French.").run()
    say(app, "Hello")
    assert online_env.last_request.messages[0] == {
        "role": "system",
        "content": "Answer only in French.",
    }


def test_retention_is_applied_with_a_toast_and_shown(
    app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    say(app, "remember me for a while")
    app.sidebar.select_slider[0].set_value(3600).run()
    click(app, "Apply retention")
    assert any("1 h" in t.value for t in app.toast)
    memory = stored(redis_client, app_env)
    assert memory.retention("Luke").ttl_seconds == 3600
    assert all(0 < redis_client.ttl(m.key) <= 3600 for m in opened_messages(memory, "Luke"))
    assert any("oldest message expires in" in c.value for c in app.sidebar.caption)
    app.sidebar.select_slider[0].set_value(0).run()
    assert memory.retention("Luke").ttl_seconds is None


def test_users_in_the_demo_picker_see_only_their_own_conversation(app_env: str) -> None:
    app = start_app()
    assert app.sidebar.selectbox[0].options == ["Luke", "Leia", "Han"]
    say(app, "I am Luke")
    app.sidebar.selectbox[0].set_value("Leia").run()
    assert transcript(app) == []
    say(app, "I am Leia")
    assert [t for r, t in transcript(app) if r == "user"] == ["I am Leia"]
    app.sidebar.selectbox[0].set_value("Luke").run()
    assert [t for r, t in transcript(app) if r == "user"] == ["I am Luke"]


def test_clear_this_conversation_and_clear_all_behind_a_confirmation(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    memory.append("Leia", Role.USER, "Leia's secret", conversation_id=SEEDED)
    app = start_app()
    say(app, "Luke's message")
    click(app, "Clear this conversation")
    click(app, "Yes, clear it")
    assert transcript(app) == []
    assert opened_count(memory, "Leia") == 1
    say(app, "again")
    click(app, "Clear ALL history…")
    assert opened_count(memory, "Leia") == 1
    click(app, "Cancel")
    assert opened_count(memory, "Leia") == 1 and opened_count(memory, "Luke") == 2
    click(app, "Clear ALL history…")
    click(app, "Yes, delete all")
    assert opened_count(memory, "Leia") == 0 and opened_count(memory, "Luke") == 0


def test_history_survives_a_restart_and_shows_all_of_it(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    for number in range(60):
        memory.append(
            "Luke",
            Role.USER if number % 2 == 0 else Role.ASSISTANT,
            f"line {number}",
            conversation_id=SEEDED,
        )
    app = start_app()
    assert len(transcript(app)) == 50
    click(app, "Show earlier messages (10 more)")
    assert [t for _, t in transcript(app)] == [f"line {n}" for n in range(60)]


def test_a_failed_reply_keeps_the_prompt_and_retry_works(
    online_env: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    online_env.set_fault(Fault.HTTP_500)
    app = start_app()
    say(app, "Will this work?")
    assert "HTTP 500" in app.error[0].value and "Your message is saved" in app.error[0].value
    assert not app.exception
    memory = stored(redis_client, app_env)
    assert [m.content for m in opened_messages(memory, "Luke")] == ["Will this work?"]
    online_env.clear_faults()
    click(app, "↻ Retry reply")
    assert transcript(app)[-1] == ("assistant", "Echo: Will this work?")
    assert not app.error
    assert opened_count(memory, "Luke") == 2


@pytest.mark.parametrize(
    ("fault", "fragment"),
    [
        (Fault.CONTENT_FILTER, "content filter"),
        (Fault.DISCONNECT, "lost before the reply was complete"),
        (Fault.HTTP_429, "rate-limited"),
        (Fault.PROMPT_FILTERED, "blocked by the content filter"),
    ],
)
def test_model_failures_show_a_clear_message_and_store_no_partial_reply(
    online_env: ChatCompletionsServer,
    redis_client: redis.Redis,
    app_env: str,
    fault: Fault,
    fragment: str,
) -> None:
    online_env.configure(reply="one two three four five six seven eight nine ten")
    online_env.fail_next(fault, after_chunks=3, retry_after=0.01)
    app = start_app()
    say(app, "Hi")
    assert fragment in app.error[0].value
    assert [m.role for m in opened_messages(stored(redis_client, app_env), "Luke")] == [Role.USER]


def test_a_timeout_is_reported(
    online_env: ChatCompletionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "1")
    online_env.fail_next(Fault.SLOW, delay=3)
    app = start_app()
    say(app, "Hi")
    assert "did not answer within 1 seconds" in app.error[0].value


def test_empty_prompts_are_ignored_without_a_request(online_env: ChatCompletionsServer) -> None:
    app = start_app()
    say(app, "   \n\t ")
    assert transcript(app) == [] and not online_env.chat_requests


def test_an_oversized_prompt_is_refused_before_sending_and_kept(
    online_env: ChatCompletionsServer,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
    app_env: str,
) -> None:
    monkeypatch.setenv("MAX_PROMPT_CHARS", "100")
    app = start_app()
    say(app, "x" * 101)
    assert "the limit is 100" in app.error[0].value
    assert not online_env.chat_requests
    assert opened_count(stored(redis_client, app_env), "Luke") == 0
    assert app.text_area(key=unsent_key("Luke")).value == "x" * 101
    say(app, "y" * 1000)  # far past the limit: only what could be sent is kept
    assert app.text_area(key=unsent_key("Luke")).value == "y" * 100


def test_hostile_text_is_stored_verbatim_and_shown_as_text(
    app_env: str, redis_client: redis.Redis
) -> None:
    hostile = (
        "<script>alert('x')</script> **bold** [link](http://x) ![img](http://x/y.png) "
        "$x$ 🙂 مرحبا \x07"
    )
    app = start_app()
    say(app, hostile)
    assert opened_messages(stored(redis_client, app_env), "Luke")[0].content == hostile
    assert transcript(app)[0] == ("user", hostile)
    assert app.chat_message[0].text and not app.chat_message[0].markdown
    assert all(e.proto.allow_html is False for e in app.markdown)


def test_unreachable_redis_shows_a_clear_message(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert "Storage unavailable" in app.error[0].value


def test_bad_configuration_is_named(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "everyone")
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert "AUTH_MODE" in app.error[0].value


def test_a_reply_without_a_usage_chunk_is_stored_with_an_estimate(
    online_env: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    online_env.configure(omit_usage=True, reply="Short answer.")
    app = start_app()
    say(app, "Question?")
    reply = opened_messages(stored(redis_client, app_env), "Luke")[-1]
    assert reply.content == "Short answer."
    assert reply.usage is not None
    assert reply.usage.completion_tokens == count_text_tokens("Short answer.")
    assert reply.usage.prompt_tokens == count_request_tokens(online_env.last_request.messages)


def test_a_stalled_save_says_may_not_be_saved_then_checks_by_id(
    app_env: str,
    monkeypatch: pytest.MonkeyPatch,
    redis_server: EmbeddedRedis,
    redis_client: redis.Redis,
) -> None:
    with DelayProxy(redis_server.port) as proxy:
        monkeypatch.setenv("REDIS_URL", f"{proxy.url}?socket_timeout=0.5")
        app = say(start_app(), "Hello")
        proxy.stall(b"Did this arrive?", 1.0, times=None)
        say(app, "Did this arrive?")
        assert "Your message was saved after all." in [info.value for info in app.info]
        assert transcript(app)[-1] == ("user", "Did this arrive?")
        assert not app.error and not app.text_area
    assert [m.content for m in opened_messages(stored(redis_client, app_env), "Luke")][-1:] == [
        "Did this arrive?"
    ]
    assert opened_count(stored(redis_client, app_env), "Luke") == 3


def test_a_full_history_refuses_the_prompt_by_name_and_keeps_it(
    app_env: str, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    monkeypatch.setenv("MAX_MESSAGES_PER_USER", "2")
    app = say(start_app(), "one")
    say(app, "two")
    assert "MAX_MESSAGES_PER_USER" in app.error[0].value
    assert app.text_area[0].value == "two"
    assert opened_count(stored(redis_client, app_env), "Luke") == 2


def test_a_refused_request_shows_the_servers_reason_as_plain_text(
    online_env: ChatCompletionsServer,
) -> None:
    reason = "Invalid value for 'temperature': **2.5** is above <b>2</b>, see https://x.example/t"
    online_env.fail_next(Fault.HTTP_400, message=reason)
    app = start_app()
    say(app, "Hi")
    shown = app.error[0].value
    assert shown.startswith("The model service failed (HTTP 400). The server said: ")
    assert "Invalid value for 'temperature'" in shown.replace("\\", "")
    assert "\\*\\*2\\.5\\*\\*" in shown and "\\<b\\>" in shown  # shown as typed, never bold
    assert "x.example" not in shown  # a link the server sent is not repeated
