"""Issue 15 against a strict small model: the fake server with a context size, strict role
alternation, its own tokenizer, no usage chunk, empty streams and `length` replies."""

from __future__ import annotations

import re

import pytest
import redis
import streamlit as st

from chatbot.config import Environment
from chatbot.llm import ModelConfig, ModelError, OpenAIChatModel, create_openai_client
from chatbot.summary import EXTRACTIVE_LABEL, INSTRUCTION
from memory import Role
from memory.embedded import free_port
from memory.summary import SummaryStore
from tests.support.context_bar import context_bar, parts_of
from tests.support.conversations import opened, opened_count, opened_messages
from tests.support.openai_server import ChatCompletionsServer, Fault
from tests.support.tokens import count_request_tokens
from tests.test_app import captions, click, start_app, stored, transcript

LONG_QUESTION = (
    "tell me about Redis streams, sorted sets, hashes, Lua scripts, search indexes and how "
    "they keep a chat history safe."
)
TOO_LONG = "too long for the model: lower Length of chat history or turn on summary"


@pytest.fixture
def small_model(
    online_env: ChatCompletionsServer, monkeypatch: pytest.MonkeyPatch
) -> ChatCompletionsServer:
    """An open model with a 600-token context that counts in its own tokenizer, sends no
    usage and rejects requests a strict chat template would."""
    online_env.configure(context_tokens=600, strict_roles=True, omit_usage=True)
    monkeypatch.setenv("OPENAI_MODEL", "llama3")
    monkeypatch.setenv("MODEL_CONTEXT_TOKENS", "600")
    monkeypatch.setenv("LLM_MAX_TOKENS", "60")
    return online_env


def say(app, text: str) -> None:
    app.chat_input[0].set_value(text).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, app.error[0].value


def summary_toggle(app):
    return next(t for t in app.sidebar.toggle if t.label == "Rolling summary")


def metric(app) -> str:
    return str(next(m for m in app.sidebar.metric if m.label == "Chat history tokens").value)


def fits(server: ChatCompletionsServer, context: int) -> bool:
    return all(r.prompt_tokens + (r.max_tokens or 0) <= context for r in server.chat_requests)


def test_a_long_conversation_keeps_fitting_and_says_what_it_leaves_out(
    small_model: ChatCompletionsServer,
) -> None:
    app = start_app()
    app.sidebar.slider[0].set_value(50).run()
    for number in range(12):
        say(app, f"Question {number}: {LONG_QUESTION}")
    assert fits(small_model, 600) and len(small_model.chat_requests) == 12
    assert all(r.max_tokens == 60 for r in small_model.chat_requests)
    assert small_model.last_request.messages[1]["role"] == "user"
    (line,) = [c for c in captions(app) if "to fit the model's context" in c]
    sent, left_out = map(int, re.findall(r"\d+", line))
    assert sent + left_out == 24 and left_out > 0
    assert metric(app).startswith("≈ ")  # llama3's tokenizer is unknown: an estimate


def test_a_prompt_that_can_never_fit_is_refused_with_the_numbers(
    small_model: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    app = start_app()
    app.chat_input[0].set_value("word " * 700).run()
    assert "context of 600 tokens leaves" in app.error[0].value
    assert (
        not small_model.chat_requests and opened_count(stored(redis_client, app_env), "Luke") == 0
    )
    assert app.text_area[0].value == "word " * 700  # kept to shorten and resend


def test_early_facts_reach_the_model_through_the_summary_and_nothing_is_deleted(
    small_model: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    app = start_app()
    summary_toggle(app).set_value(True).run()
    say(app, "My name is Ada Lovelace and my cat is called Babbage.")
    for number in range(8):
        say(app, f"Message {number}: let us talk about something else for a long while now.")
    chats = [r for r in small_model.chat_requests if r.messages[0]["content"] != INSTRUCTION]
    last = chats[-1].messages
    assert "Ada Lovelace" in last[0]["content"]  # in the summary after the instruction
    assert not any("Ada Lovelace" in m["content"] for m in last[1:])
    assert fits(small_model, 600)
    state = SummaryStore(redis_client, app_env).state(
        "Luke", opened(stored(redis_client, app_env), "Luke")
    )
    assert state.checkpoint is not None and state.checkpoint.model == "llama3"
    assert state.checkpoint.covers_seq < opened_count(stored(redis_client, app_env), "Luke") == 18
    assert any(c.startswith("Summary of messages up to #") for c in captions(app))
    assert "summary" in parts_of(context_bar(app))


def test_offline_the_summary_is_extractive_and_labelled(
    app_env: str, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    monkeypatch.setenv("MODEL_CONTEXT_TOKENS", "1200")
    monkeypatch.setenv("LLM_MAX_TOKENS", "200")
    app = start_app()
    summary_toggle(app).set_value(True).run()
    for number in range(6):
        say(app, f"Fact {number} is worth keeping. Filler words follow here.")
    state = SummaryStore(redis_client, app_env).state(
        "Luke", opened(stored(redis_client, app_env), "Luke")
    )
    assert state.checkpoint is not None and state.checkpoint.extractive
    assert state.checkpoint.text.startswith(EXTRACTIVE_LABEL)
    assert "- user: Fact 0 is worth keeping." in state.checkpoint.text
    assert any("extracted offline, no model" in c for c in captions(app))


def test_an_unanswered_prompt_is_left_out_of_the_next_request_visibly(
    small_model: ChatCompletionsServer,
) -> None:
    small_model.fail_next(Fault.HTTP_500)
    small_model.fail_next(Fault.HTTP_500)
    app = start_app()
    app.chat_input[0].set_value("First, unanswered").run()
    app.chat_input[0].set_value("Second, unanswered").run()
    say(app, "Third")
    assert [m["role"] for m in small_model.last_request.messages] == ["system", "user"]
    # each left out once, for its one reason (not also "to fit")
    assert "2 messages sent; left out: 2 earlier prompts that got no reply." in captions(app)
    assert transcript(app)[0] == ("user", "First, unanswered")  # still shown and stored


def test_reported_usage_is_kept_with_the_estimate_and_its_drift(
    online_env: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    app = start_app()
    say(app, "日本語のテキストはトークナイザーによって数え方が違います。")
    usage = opened_messages(stored(redis_client, app_env), "Luke")[-1].usage
    assert usage is not None and not usage.estimated
    assert usage.prompt_tokens == online_env.last_request.prompt_tokens  # the server's count
    assert usage.estimated_prompt_tokens == count_request_tokens(online_env.last_request.messages)
    assert usage.prompt_tokens != usage.estimated_prompt_tokens
    assert any("the server counted +" in c for c in captions(app))
    # not OpenAI's own endpoint: no cost in the usage lines, the reason once, for admins
    assert not any("cost" in c for c in captions(app) if c.startswith(("Last reply", "Your total")))
    assert sum("PRICE_INPUT_PER_MTOK" in c for c in captions(app)) == 1


def test_estimated_usage_is_marked_and_the_tokenizer_setting_makes_it_exact(
    small_model: ChatCompletionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = start_app()
    say(app, "Hello")
    assert any(c.startswith("Last reply: ≈") and "estimated" in c for c in captions(app))
    monkeypatch.setenv("LLM_TOKENIZER", "cl100k_base")  # what this server really counts in
    st.cache_resource.clear()
    app = start_app()
    say(app, "Hello again")
    retry = [
        *small_model.last_request.messages,
        {"role": "assistant", "content": "Echo: Hello again"},
    ]
    # No ≈: the metric counts the next request as this server does.
    assert metric(app) == str(count_request_tokens(retry, "cl100k_base"))


@pytest.mark.parametrize("empty", [False, True], ids=["http-400", "empty-200-stream"])
def test_context_overflow_says_what_to_do(online_env: ChatCompletionsServer, empty: bool) -> None:
    online_env.configure(context_tokens=40, overflow_as_empty_stream=empty)
    app = start_app()
    app.chat_input[0].set_value("A prompt the server finds too long for its context").run()
    # With no history sent, nothing smaller can go: the prompt itself must be shortened
    # (issue 25: never "lower Length of chat history" when there is none to lower).
    error = app.error[0].value
    assert "too long for the model" in error and "Your message is saved" in error
    assert "shorten the message itself" in error and "Length of chat history" not in error


def test_a_reply_cut_by_its_length_is_stored_marked_and_can_continue(
    online_env: ChatCompletionsServer,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
    app_env: str,
) -> None:
    monkeypatch.setenv("LLM_MAX_TOKENS", "4")
    online_env.configure(reply="one two three four five six seven eight")
    app = start_app()
    say(app, "Count")
    reply = opened_messages(stored(redis_client, app_env), "Luke")[-1]
    assert reply.content == "one two three four" and reply.usage and reply.usage.cut_off
    assert "Cut off" in app.chat_message[1].caption[0].value
    click(app, "Continue")
    assert online_env.last_request.messages[-1] == {"role": "user", "content": "Continue"}
    assert [m.role for m in opened_messages(stored(redis_client, app_env), "Luke")] == [
        Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT,
    ]  # fmt: skip


def model(env: dict[str, str]) -> OpenAIChatModel:
    config = ModelConfig.from_env(Environment(env))
    return OpenAIChatModel(config, create_openai_client(config, None))


def test_nothing_listening_says_so_and_keeps_the_url_for_admins() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelError, match="Could not reach the model") as raised:
        model({"OPENAI_BASE_URL": url, "LLM_MAX_RETRIES": "1"}).stream([])
    assert "127.0.0.1" not in str(raised.value)  # what anyone may see
    assert raised.value.location == url  # what an admin's page may add


def test_a_timeout_is_not_retried_and_says_how_long_it_waited(
    model_server: ChatCompletionsServer,
) -> None:
    model_server.set_fault(Fault.SLOW, delay=3)
    env = {"OPENAI_BASE_URL": model_server.base_url, "LLM_TIMEOUT_SECONDS": "1"}
    with pytest.raises(
        ModelError, match=r"within 1 seconds \(waited 1 s in total over 1 attempt\)"
    ):
        model(env).stream([{"role": "user", "content": "Hi"}])
    assert len(model_server.chat_requests) == 1


def test_the_reply_deadline_bounds_a_slow_stream(model_server: ChatCompletionsServer) -> None:
    model_server.configure(reply="a b c d e f g h i j", chunk_delay=0.3)
    env = {"OPENAI_BASE_URL": model_server.base_url, "LLM_REPLY_DEADLINE_SECONDS": "1"}
    with pytest.raises(ModelError, match="longer than 1 seconds, the limit per reply"):
        "".join(model(env).stream([{"role": "user", "content": "Hi"}]))
