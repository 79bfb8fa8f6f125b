"""Faults, concurrency and hostile input: nothing acknowledged is ever lost."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from chatbot.config import Environment
from chatbot.llm import ModelConfig, OpenAIChatModel, create_openai_client
from memory import (
    ChatMemory,
    InvalidInput,
    RedisTarget,
    Role,
    StorageUnavailable,
    create_redis_client,
)
from memory.embedded import EmbeddedRedis, free_port
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.conversations import opened_messages
from tests.support.openai_server import ChatCompletionsServer
from tests.support.tokens import count_message_tokens
from tests.test_app import unsent_key

CONV = "c0ffee"  # the conversation these tests write to

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_kill_9_loses_no_acknowledged_message(own_redis: EmbeddedRedis) -> None:
    client = create_redis_client(RedisTarget(url=own_redis.url))
    memory = ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name="chat")
    memory.set_system_instruction("luke", "Be brief.", preset="brief")
    memory.set_retention("luke", 3600)
    written = []
    for number in range(200):
        memory.append("luke", Role.USER, f"message {number}", conversation_id=CONV)
        written.append(f"message {number}")
    own_redis.kill()
    with pytest.raises(StorageUnavailable):
        memory.append("luke", Role.USER, "while down", conversation_id=CONV)
    own_redis.ensure_running()
    assert [m.content for m in memory.messages("luke", CONV)] == written
    assert memory.system_instruction("luke").text == "Be brief."
    assert memory.retention("luke").ttl_seconds == 3600
    assert [
        m["content"] for m in memory.context_window("luke", CONV, 3).as_openai()[1:]
    ] == written[-3:]
    memory.append("luke", Role.USER, "after restart", conversation_id=CONV)
    assert memory.count("luke", CONV) == 201


def test_the_app_survives_redis_dying_and_coming_back(
    own_redis: EmbeddedRedis, app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    app = AppTest.from_file(APP, default_timeout=30).run()
    app.chat_input[0].set_value("first, acknowledged").run()
    assert next(m.text[0].value for m in app.chat_message) == "first, acknowledged"

    own_redis.kill()
    app.chat_input[0].set_value("typed while Redis is down").run()
    assert not app.exception
    assert "Storage unavailable" in app.error[0].value
    assert any("NOT saved" in warning.value for warning in app.warning)
    assert app.text_area(key=unsent_key("Luke")).value == "typed while Redis is down"

    own_redis.ensure_running()
    app.run()
    assert not app.exception
    shown = [m.text[0].value for m in app.chat_message if m.text]
    assert shown[0] == "first, acknowledged"

    memory = ChatMemory(
        create_redis_client(RedisTarget(url=own_redis.url)),
        default_system=DEFAULT_TEST_SYSTEM,
        index_name=app_env,
    )
    assert next(m.content for m in opened_messages(memory, "Luke")) == "first, acknowledged"
    assert "typed while Redis is down" not in [m.content for m in opened_messages(memory, "Luke")]
    assert app.text_area(key=unsent_key("Luke")).value == "typed while Redis is down"
    next(b for b in app.button if b.label == "Send").click().run()
    assert not app.exception
    assert [m.content for m in opened_messages(memory, "Luke")][2] == "typed while Redis is down"


def test_many_users_and_two_tabs_turning_at_once_lose_nothing(
    memory: ChatMemory, model_server: ChatCompletionsServer
) -> None:
    config = ModelConfig.from_env(
        Environment({"OPENAI_BASE_URL": model_server.base_url, "LLM_MAX_RETRIES": "2"})
    )
    model = OpenAIChatModel(config, create_openai_client(config, None))
    errors: list[BaseException] = []

    def turns(user: str, tab: str, count: int) -> None:
        try:
            for number in range(count):
                prompt = f"{tab} prompt {number}"
                memory.append(user, Role.USER, prompt, conversation_id=CONV)
                window = memory.context_window(user, CONV, 5)
                reply = model.stream(window.as_openai())
                text = "".join(reply)
                memory.append(user, Role.ASSISTANT, text, usage=reply.usage, conversation_id=CONV)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=turns, args=(f"user{n}", f"u{n}", 5)) for n in range(20)]
    workers += [
        threading.Thread(target=turns, args=("shared", tab, 10)) for tab in ("tabA", "tabB")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors

    shared = memory.messages("shared", CONV)
    assert len(shared) == 40
    assert len({m.seq for m in shared}) == 40
    for tab in ("tabA", "tabB"):
        prompts = [m.content for m in shared if m.role is Role.USER and m.content.startswith(tab)]
        assert prompts == [f"{tab} prompt {n}" for n in range(10)]
    replies = [m.content for m in shared if m.role is Role.ASSISTANT]
    all_prompts = {m.content for m in shared if m.role is Role.USER}
    assert len(replies) == 20 and all(r.removeprefix("Echo: ") in all_prompts for r in replies)
    for n in range(20):
        stored = memory.messages(f"user{n}", CONV)
        assert [m.content for m in stored if m.role is Role.USER] == [
            f"u{n} prompt {i}" for i in range(5)
        ]
        for message in stored:
            recount = count_message_tokens(message.role.value, message.content)
            assert message.token_count == recount
        totals = memory.conversation(f"user{n}", CONV).usage_totals
        assert totals.replies == 5
        assert totals.completion_tokens == sum(
            m.usage.completion_tokens for m in stored if m.usage is not None
        )


HOSTILE = [
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ [a](javascript:alert(1)) ![x](http://127.0.0.1/x.png) `code` $$x^2$$",
    "@session_tag:{luke} | -foo* (bar) ~baz \"quoted\" 'single' %fuzzy% =>[KNN 3 @v $b]",
    "\x00\x01\x02\x1b[31mred\x1b[0m\x7f",
    "مرحبا بالعالم — שלום עולם \u202etxet desrever\u202c",
    "👩‍👩‍👧‍👦🏳️‍🌈🇺🇦 ẞ İ ǅ",
    "line one\r\nline two\n\n\ttabbed",
    "x" * 200_000,
]


@pytest.mark.parametrize("content", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_content_is_stored_verbatim(memory: ChatMemory, content: str) -> None:
    memory.append("luke", Role.USER, content, conversation_id=CONV)
    assert memory.messages("luke", CONV)[0].content == content
    assert memory.context_window("luke", CONV, 50).messages[0].content == content


@pytest.mark.parametrize("preset", ["brief", "préset ✨", "a:b{c}|d*", "空", "x" * 500])
def test_preset_names_of_every_kind_round_trip(memory: ChatMemory, preset: str) -> None:
    memory.set_system_instruction("luke", "Text.", preset=preset)
    assert memory.system_instruction("luke").preset == preset


@pytest.mark.parametrize("ttl", [1, 5, 2_592_000, 315_360_000])
def test_retention_at_its_ends_is_accepted(memory: ChatMemory, ttl: int) -> None:
    memory.append("luke", Role.USER, "hi", conversation_id=CONV)
    assert memory.set_retention("luke", ttl).ttl_seconds == ttl


@pytest.mark.parametrize("ttl", [0, -1, -(2**63), 315_360_001, 2**64])
def test_retention_beyond_its_ends_is_refused(memory: ChatMemory, ttl: int) -> None:
    with pytest.raises(InvalidInput):
        memory.set_retention("luke", ttl)


USER_IDS = st.one_of(
    st.text(min_size=1, max_size=60).filter(lambda s: s.strip() != ""),
    st.sampled_from(["luke", "Luke", "luke ", "a@b.c", "{x}", "*", "ü", "🚀"]),
)
CONTENTS = st.text(min_size=1, max_size=300).filter(lambda s: s.strip() != "")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    writes=st.lists(
        st.tuples(USER_IDS, st.sampled_from([Role.USER, Role.ASSISTANT]), CONTENTS),
        min_size=1,
        max_size=40,
    )
)
def test_what_is_read_back_is_what_was_written_per_user_in_order(
    memory: ChatMemory, writes: list[tuple[str, Role, str]]
) -> None:
    run = uuid.uuid4().hex
    expected: dict[str, list[tuple[Role, str]]] = {}
    for user, role, content in writes:
        memory.append(run + user, role, content, conversation_id=CONV)
        expected.setdefault(run + user, []).append((role, content))
    for user, messages in expected.items():
        assert [(m.role, m.content) for m in memory.messages(user, CONV)] == messages
        assert memory.count(user, CONV) == len(messages)
        window = memory.context_window(user, CONV, 3).messages
        assert [(m.role, m.content) for m in window] == messages[-3:]


def test_a_redis_that_is_not_there_at_start_is_reported(
    redis_client: redis.Redis, index_name: str
) -> None:
    client = create_redis_client(RedisTarget(url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(StorageUnavailable):
        ChatMemory(client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)
