"""A model server that misbehaves: keep-alive comments only, unreadable events, error events
holding Markdown and links, nonsense Retry-After headers, replies cut part way. The real openai
client against the fake server; every failure is a ModelError in plain words, never an
exception of another kind, and a request is counted for what the server processed."""

from __future__ import annotations

import re
import time

import pytest

from chatbot.config import Environment
from chatbot.llm import (
    ModelConfig,
    ModelError,
    OpenAIChatModel,
    Reply,
    create_openai_client,
    tokens_spent,
)
from memory import TokenCounter
from tests.support.openai_server import ChatCompletionsServer, Fault

HI = [{"role": "user", "content": "Hi"}]


def model(server: ChatCompletionsServer, **env: str) -> OpenAIChatModel:
    config = ModelConfig.from_env(
        Environment({"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k", **env})
    )
    return OpenAIChatModel(config, create_openai_client(config, None))


def read(reply: Reply) -> str:
    return "".join(reply)


def test_the_reply_deadline_holds_while_the_server_sends_only_keep_alive_comments(
    model_server: ChatCompletionsServer,
) -> None:
    model_server.set_fault(Fault.KEEPALIVE_ONLY, delay=20)
    chat = model(model_server, LLM_REPLY_DEADLINE_SECONDS="2", LLM_TIMEOUT_SECONDS="1")
    started = time.monotonic()
    with pytest.raises(ModelError, match="longer than 2 seconds, the limit per reply"):
        read(chat.stream(HI))
    assert time.monotonic() - started < 20 / 2  # the server would have gone on for 20 s


def test_an_unreadable_event_is_a_model_error_in_words(
    model_server: ChatCompletionsServer,
) -> None:
    model_server.set_fault(Fault.MALFORMED_EVENT)
    with pytest.raises(ModelError, match="could not read"):
        read(model(model_server).stream(HI))


@pytest.mark.parametrize("retry_after", [float("nan"), -5.0, float("inf")])
def test_a_nonsense_retry_after_falls_back_to_the_backoff(
    model_server: ChatCompletionsServer, retry_after: float
) -> None:
    model_server.fail_next(Fault.HTTP_429, retry_after=retry_after)
    assert read(model(model_server, LLM_MAX_RETRIES="1").stream(HI)) == "Echo: Hi"
    assert len(model_server.chat_requests) == 2


def test_what_the_server_says_in_an_error_is_plain_text_without_its_links(
    model_server: ChatCompletionsServer,
) -> None:
    image = f"![x]({model_server.base_url}/x.png) <img src=x> **bold**"
    model_server.set_fault(Fault.ERROR_EVENT, message=image)
    with pytest.raises(ModelError) as raised:
        read(model(model_server).stream(HI))
    text = str(raised.value)
    assert "reported an error" in text
    assert "http" not in text and "127.0.0.1" not in text  # no link, no server location
    assert not re.search(r"(?<!\\)[!\[\]<>*]", text)  # each of these escaped: none acts


def test_no_error_anyone_sees_names_the_model_server(model_server: ChatCompletionsServer) -> None:
    for fault in (Fault.HTTP_500, Fault.HTTP_429, Fault.DISCONNECT, Fault.EMPTY_STREAM):
        model_server.set_fault(fault)
        with pytest.raises(ModelError) as raised:
            read(model(model_server, LLM_MAX_RETRIES="0").stream(HI))
        assert model_server.base_url.split("//")[1].split("/")[0] not in str(raised.value)
        assert raised.value.location == model_server.base_url


@pytest.mark.parametrize("fault", [Fault.CONTENT_FILTER, Fault.DISCONNECT])
def test_a_reply_that_fails_part_way_costs_its_prompt_and_what_it_produced(
    model_server: ChatCompletionsServer, fault: Fault
) -> None:
    model_server.configure(reply="one two three four five six", omit_usage=True)
    model_server.set_fault(fault, after_chunks=3)
    counter = TokenCounter()
    reply = model(model_server).stream(HI)
    with pytest.raises(ModelError):
        read(reply)
    assert reply.text == "one two three"
    prompt = counter.count_request(HI)
    assert tokens_spent(reply, prompt, counter) == prompt + counter.count_text("one two three")


def test_a_request_the_server_never_processed_costs_nothing(
    model_server: ChatCompletionsServer,
) -> None:
    counter = TokenCounter()
    model_server.set_fault(Fault.EMPTY_STREAM)  # llama.cpp's answer to an over-long prompt
    reply = model(model_server).stream(HI)
    with pytest.raises(ModelError):
        read(reply)
    assert tokens_spent(reply, 100, counter) == 0
    assert tokens_spent(None, 100, counter) == 0  # refused before any answer (HTTP 500)


def test_reported_usage_is_what_a_reply_costs(model_server: ChatCompletionsServer) -> None:
    reply = model(model_server).stream(HI)
    read(reply)
    assert reply.usage is not None
    spent = tokens_spent(reply, 1, TokenCounter())
    assert spent == reply.usage.prompt_tokens + reply.usage.completion_tokens
