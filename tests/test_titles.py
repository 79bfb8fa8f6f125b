"""Conversation titles through the real openai client against the fake model server."""

from __future__ import annotations

import logging

import pytest

from chatbot.llm import ModelConfig, OpenAIChatModel, Provider, create_openai_client
from chatbot.offline import OfflineChatModel
from chatbot.titles import MAX_TITLE_CHARS, clean_title, first_words, write_title
from tests.support.openai_server import ChatCompletionsServer, Fault


def model_at(server: ChatCompletionsServer) -> OpenAIChatModel:
    config = ModelConfig(
        provider=Provider.OPENAI_COMPATIBLE,
        model="gpt-4o",
        tokenizer_model="gpt-4o",
        endpoint=server.base_url,
        api_key="test-key",
        max_retries=0,
    )
    return OpenAIChatModel(config, create_openai_client(config, None))


def test_the_model_titles_the_first_exchange_in_a_few_tokens(
    model_server: ChatCompletionsServer,
) -> None:
    model_server.configure(title_reply='"Planning a trip to Lisbon."')
    title, source, used = write_title(model_at(model_server), "Help me plan Lisbon", "Sure: 1…")
    assert (title, source) == ("Planning a trip to Lisbon", "model") and used > 0
    (request,) = model_server.title_requests  # recorded apart from the chat's requests
    assert request.max_tokens == 24
    assert "Help me plan Lisbon" in request.messages[-1]["content"]


def test_a_failing_or_empty_title_reply_falls_back_to_the_first_words(
    model_server: ChatCompletionsServer,
) -> None:
    model = model_at(model_server)
    model_server.configure(title_fault=Fault.HTTP_500)
    assert write_title(model, "why is my redis cluster slow today at noon, again", "…") == (
        "why is my redis cluster slow today at…",
        "words",
        0,
    )
    model_server.configure(title_fault=None, title_reply="   ")
    assert write_title(model, "hello", "hi")[1] == "words"


def test_offline_titles_are_the_first_words_and_never_call_anything() -> None:
    assert write_title(OfflineChatModel(), "  tell\nme   a joke ", "…") == (
        "tell me a joke",
        "words",
        0,
    )


def test_titles_are_one_clean_line_of_a_few_words() -> None:
    assert clean_title("Title: **Redis streams**\nmore text") == "Redis streams"
    assert clean_title("# [Redis](https://redis.io) `basics`") == "Redis basics"
    assert clean_title("word " * 100) == ""  # not a title: refused, never cut
    assert len(clean_title("a" * MAX_TITLE_CHARS)) == MAX_TITLE_CHARS
    assert first_words("") == "New chat"


def test_first_words_end_with_a_whole_phrase() -> None:
    """Was: "Hi! My name is Ana. What is the", cut mid-phrase."""
    assert first_words("Hi! My name is Ana. What is the capital of France?") == (
        "Hi! My name is Ana"
    )
    assert first_words("What is Redis?") == "What is Redis?"
    assert first_words("one two three four five six seven eight nine") == (
        "one two three four five six seven eight…"
    )


def test_a_long_markdown_answer_is_refused_and_logged(
    model_server: ChatCompletionsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: a 75-character markdown reply accepted as the "short title"."""
    answer = "**Redis Overview**: A discussion of Redis data structures and their use cases"
    model_server.configure(title_reply=answer)
    with caplog.at_level(logging.WARNING, logger="chatbot.titles"):
        title, source, _ = write_title(model_at(model_server), "Tell me about Redis", "Redis…")
    assert (title, source) == ("Tell me about Redis", "words")
    assert "title was refused" in caplog.text and "Redis Overview" in caplog.text


def test_a_failed_title_is_logged(
    model_server: ChatCompletionsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: with a small real model the title never came and nothing said why."""
    model_server.configure(title_fault=Fault.DISCONNECT)
    with caplog.at_level(logging.WARNING, logger="chatbot.titles"):
        assert write_title(model_at(model_server), "hello there", "hi")[1] == "words"
    assert "title failed" in caplog.text


@pytest.mark.parametrize("raw", ["", "\n\n", '""'])
def test_nothing_usable_is_an_empty_title(raw: str) -> None:
    assert clean_title(raw) == ""
