"""The fake model's strict-server behaviours, which the app's tests rely on to be real."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.support.openai_server import ChatCompletionsServer
from tests.support.tokens import count_request_tokens

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "日本語で"}]


def ask(server: ChatCompletionsServer, messages: list, **kwargs: Any) -> list:
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    return list(client.chat.completions.create(model="m", messages=messages, stream=True, **kwargs))


def test_counts_in_its_own_tokenizer_and_stops_at_max_tokens(
    model_server: ChatCompletionsServer,
) -> None:
    model_server.configure(reply="one two three four five six")
    chunks = ask(model_server, MESSAGES, max_tokens=3, stream_options={"include_usage": True})
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[-2].choices[0].finish_reason == "length"
    usage = chunks[-1].usage
    assert usage.completion_tokens == 3
    assert usage.prompt_tokens == count_request_tokens(MESSAGES, "cl100k_base")
    assert usage.prompt_tokens != count_request_tokens(MESSAGES)  # drifts from o200k


def test_strict_roles_and_context_overflow_are_refused(
    model_server: ChatCompletionsServer,
) -> None:
    model_server.configure(strict_roles=True, context_tokens=20)
    with pytest.raises(openai.BadRequestError, match="alternate"):
        ask(model_server, [MESSAGES[0], {"role": "assistant", "content": "Hi"}, MESSAGES[1]])
    with pytest.raises(openai.BadRequestError) as refused:
        ask(model_server, MESSAGES, max_tokens=10)
    assert refused.value.code == "context_length_exceeded"
    model_server.configure(overflow_as_empty_stream=True)
    assert ask(model_server, MESSAGES, max_tokens=10) == []
