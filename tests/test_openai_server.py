"""The fake model server, exercised through the real `openai` client."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tests.support.openai_server import (
    ChatCompletionsServer,
    Fault,
    RemoteControl,
    ServerConfig,
    ServerProcess,
    count_tokens,
    prompt_tokens,
)

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello there, how are you today?"},
]
REPLY = "Echo: Hello there, how are you today?"


@pytest.fixture
def server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer() as running:
        yield running


@pytest.fixture
def client(server: ChatCompletionsServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as made:
        yield made


def azure_client(server: ChatCompletionsServer, **kwargs: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=server.azure_endpoint, api_version="2024-10-21", api_key="k", **kwargs
    )


def stream_chunks(client: openai.OpenAI, model: str = "gpt-4o", **kwargs: Any) -> list[Any]:
    """Create a streamed completion and collect its chunks."""
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **kwargs)
    return list(stream)


def content_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# happy paths ---------------------------------------------------------------------------------


def test_non_streaming_completion(server: ChatCompletionsServer, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == REPLY
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == prompt_tokens({"messages": MESSAGES}) > 0
    assert completion.usage.completion_tokens == count_tokens(REPLY) > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_streaming_with_include_usage(server: ChatCompletionsServer, client: openai.OpenAI) -> None:
    chunks = stream_chunks(client, stream_options={"include_usage": True})

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 3
    assert content_of(chunks) == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == count_tokens(REPLY)
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_usage_request_or_with_omit_usage(
    server: ChatCompletionsServer, client: openai.OpenAI
) -> None:
    assert all(c.choices and c.usage is None for c in stream_chunks(client))

    server.configure(omit_usage=True, words_per_chunk=3)
    chunks = stream_chunks(client, stream_options={"include_usage": True})
    assert all(c.choices and c.usage is None for c in chunks)
    assert content_of(chunks) == REPLY
    assert len(chunks) == 1 + 3 + 1  # role, 7 words in chunks of 3, finish


def test_replies_fixed_callable_and_queued(
    server: ChatCompletionsServer, client: openai.OpenAI
) -> None:
    def reply(request: dict[str, Any]) -> str:
        return f"{len(request['messages'])} messages"

    def ask() -> str | None:
        return (
            client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
        )

    server.set_reply("Fixed answer.")
    assert ask() == "Fixed answer."
    server.set_reply(reply)
    assert ask() == "2 messages"
    server.reply_next("first", "second")
    assert [ask(), ask(), ask()] == ["first", "second", "2 messages"]
    server.reset()
    assert ask() == REPLY


def test_recording_of_messages_and_headers(
    server: ChatCompletionsServer, client: openai.OpenAI
) -> None:
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0.2)

    request = server.last_request
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.route == "chat"
    assert request.messages == MESSAGES
    assert request.model == "gpt-4o"
    assert request.json["temperature"] == 0.2
    assert request.stream is False
    assert request.last_user_message == "Hello there, how are you today?"
    assert request.headers["authorization"] == "Bearer test"
    assert request.api_key == "test"
    assert request.headers["content-type"] == "application/json"
    assert request.retry_count == 0
    assert request.deployment is None and request.fault is None

    assert len(server.wait_for_requests(1, timeout=1)) == 1
    with pytest.raises(TimeoutError):
        server.wait_for_requests(2, timeout=0.1)
    server.clear()
    assert server.requests == []
    with pytest.raises(LookupError):
        _ = server.last_request


def test_models_list(server: ChatCompletionsServer, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
    assert server.last_request.route == "models"


# Azure OpenAI ----------------------------------------------------------------------------------


def test_azure_stream_starts_with_empty_choices(server: ChatCompletionsServer) -> None:
    with azure_client(server, max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(
                model="chat-deployment",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )

    first = chunks[0]
    assert first.choices == []
    assert first.model_dump()["prompt_filter_results"][0]["prompt_index"] == 0
    assert chunks[1].choices[0].delta.role == "assistant"
    assert content_of(chunks) == REPLY
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[1].model == "chat-deployment"

    request = server.last_request
    assert request.path == "/openai/deployments/chat-deployment/chat/completions"
    assert request.deployment == "chat-deployment"
    assert request.api_version == "2024-10-21"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == "k"
    assert "authorization" not in request.headers


def test_azure_non_streaming_and_options(server: ChatCompletionsServer) -> None:
    with azure_client(server, max_retries=0, azure_deployment="dep") as client:
        completion = client.chat.completions.create(model="ignored", messages=MESSAGES)
        assert completion.choices[0].message.content == REPLY
        assert completion.to_dict()["prompt_filter_results"]
        assert server.last_request.deployment == "dep"

        server.configure(prompt_filter_chunk=False, omit_usage=True)
        chunks = list(
            client.chat.completions.create(
                model="dep", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
        assert all(c.choices for c in chunks)  # no filter chunk, no usage chunk

    server.configure(prompt_filter_chunk=True)  # the Azure quirk on the OpenAI path too
    with openai.OpenAI(base_url=server.base_url, api_key="test") as plain:
        assert stream_chunks(plain)[0].choices == []


def test_azure_without_api_version_is_not_found(server: ChatCompletionsServer) -> None:
    base = f"{server.root_url}/openai/deployments/dep"
    with (
        openai.OpenAI(base_url=base, api_key="k", max_retries=0) as client,
        pytest.raises(openai.NotFoundError),
    ):
        client.chat.completions.create(model="dep", messages=MESSAGES)


def test_wrong_api_key_is_rejected(server: ChatCompletionsServer) -> None:
    server.configure(api_key="right")
    with (
        azure_client(server, max_retries=0) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.chat.completions.create(model="dep", messages=MESSAGES)
    assert caught.value.code == "invalid_api_key"
    with openai.OpenAI(base_url=server.base_url, api_key="right") as client:
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices


# faults ----------------------------------------------------------------------------------------


def test_500_then_success_is_retried(server: ChatCompletionsServer) -> None:
    server.fail_next(Fault.HTTP_500)
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=2) as client:
        completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert completion.choices[0].message.content == REPLY
    requests = server.requests
    assert [r.fault for r in requests] == ["http_500", None]
    assert [r.retry_count for r in requests] == [0, 1]
    assert server.pending_faults == []


def test_500_beyond_retries_raises(server: ChatCompletionsServer) -> None:
    server.fail_next(Fault.HTTP_500, times=2, retry_after_ms=10)  # short client backoff
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=1) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert caught.value.status_code == 500
        assert caught.value.type == "server_error"
        assert len(server.requests) == 2
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices


def test_persistent_fault_and_should_retry_header(server: ChatCompletionsServer) -> None:
    server.set_fault(Fault.HTTP_ERROR, status=503, should_retry=False, code="busy")
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=3) as client:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as caught:
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            assert caught.value.status_code == 503 and caught.value.code == "busy"
        assert len(server.requests) == 2  # x-should-retry: false stops the client's retries
        server.set_fault(None)
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices


def test_429_honours_retry_after(server: ChatCompletionsServer) -> None:
    server.fail_next(Fault.HTTP_429, retry_after=1)
    with openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=1) as client:
        started = time.monotonic()
        completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        elapsed = time.monotonic() - started
    assert completion.choices[0].message.content == REPLY
    assert 0.9 <= elapsed < 3
    assert [r.fault for r in server.requests] == ["http_429", None]

    server.fail_next(Fault.HTTP_429, retry_after=0)
    with (
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client,
        pytest.raises(openai.RateLimitError) as caught,
    ):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.response.headers["retry-after"] == "0"
    assert caught.value.code == "rate_limit_exceeded"


def test_slow_response_times_out(server: ChatCompletionsServer, client: openai.OpenAI) -> None:
    server.fail_next(Fault.SLOW, delay=3)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - started < 2


def test_slow_stream_times_out_while_iterating(
    server: ChatCompletionsServer, client: openai.OpenAI
) -> None:
    server.fail_next(Fault.SLOW_STREAM, delay=3)
    stream = client.with_options(timeout=0.5).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APITimeoutError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Echo:"  # the first content chunk came, the second never did


def test_first_token_delay(server: ChatCompletionsServer, client: openai.OpenAI) -> None:
    server.configure(first_token_delay=0.3)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    role = next(stream)
    started = time.monotonic()
    first = next(stream)
    assert role.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == "Echo:"
    assert time.monotonic() - started >= 0.25
    assert content_of([role, first, *stream]) == REPLY

    server.configure(first_token_delay=0)
    server.fail_next(Fault.SLOW_FIRST_TOKEN, delay=3)
    stream = client.with_options(timeout=0.5).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    assert next(stream).choices[0].delta.role == "assistant"  # headers came in time
    with pytest.raises(openai.APITimeoutError):
        next(stream)


@pytest.mark.parametrize(
    ("fault", "cause"),
    [(Fault.DISCONNECT, httpx2.RemoteProtocolError), (Fault.RESET, httpx2.ReadError)],
)
def test_connection_dropped_mid_stream(
    server: ChatCompletionsServer, client: openai.OpenAI, fault: Fault, cause: type[Exception]
) -> None:
    server.fail_next(fault, after_chunks=2)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert type(caught.value) is openai.APIConnectionError  # not its subclass APITimeoutError
    assert isinstance(caught.value.__cause__, cause)
    assert "".join(received) == "Echo: Hello"


def test_connection_dropped_before_response_is_retried(server: ChatCompletionsServer) -> None:
    server.fail_next(Fault.RESET, times=2)
    with (
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=1) as client,
        pytest.raises(openai.APIConnectionError) as caught,
    ):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert isinstance(caught.value.__cause__, httpx2.ReadError)
    assert len(server.requests) == 2


def test_error_event_mid_stream(server: ChatCompletionsServer, client: openai.OpenAI) -> None:
    server.fail_next(Fault.STREAM_ERROR, after_chunks=1, message="model overloaded")
    with pytest.raises(openai.APIError, match="model overloaded") as caught:
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert not isinstance(caught.value, openai.APIConnectionError | openai.APIStatusError)


def test_content_filter_finish_reason(server: ChatCompletionsServer) -> None:
    server.fail_next(Fault.CONTENT_FILTER, after_chunks=2)
    with azure_client(server, max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="dep", messages=MESSAGES, stream=True))
        server.fail_next(Fault.CONTENT_FILTER, after_chunks=3)
        completion = client.chat.completions.create(model="dep", messages=MESSAGES)

    assert content_of(chunks) == "Echo: Hello"
    final = [c for c in chunks if c.choices][-1]
    assert final.choices[0].finish_reason == "content_filter"
    assert final.model_dump()["choices"][0]["content_filter_results"]["violence"]["filtered"]
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == "Echo: Hello there,"


def test_prompt_filtered_is_a_bad_request(server: ChatCompletionsServer) -> None:
    server.fail_next("prompt_filtered")
    with (
        azure_client(server, max_retries=2) as client,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        client.chat.completions.create(model="dep", messages=MESSAGES)
    assert caught.value.code == "content_filter"
    assert len(server.requests) == 1  # a 400 is not retried


# control endpoints, CLI ------------------------------------------------------------------------


def test_control_endpoints(server: ChatCompletionsServer, client: openai.OpenAI) -> None:
    control = RemoteControl(server.base_url)
    assert control.health()

    control.fail_next(Fault.HTTP_500, times=2)
    assert [f.kind for f in server.pending_faults] == [Fault.HTTP_500, Fault.HTTP_500]
    control.clear_faults()
    assert server.pending_faults == []

    control.fail_next("http_429", retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    control.configure(reply="From control.")
    control.reply_next("queued")
    replies = [
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content
        for _ in range(2)
    ]
    assert replies == ["queued", "From control."]

    recorded = control.wait_for_requests(3, timeout=1)
    assert [r.fault for r in recorded] == ["http_429", None, None]
    assert recorded[0].messages == MESSAGES
    assert recorded[0].headers["authorization"] == "Bearer test"

    with urllib.request.urlopen(f"{server.root_url}/_control/requests") as response:
        raw = json.loads(response.read())
    assert raw["requests"][0]["body"]["messages"] == MESSAGES

    control.set_fault(Fault.SLOW, delay=0.1)
    control.fail_next(Fault.HTTP_500)
    assert server.persistent_fault is not None and server.persistent_fault.delay == 0.1
    control.set_fault(None)  # the persistent fault only
    assert server.persistent_fault is None and len(server.pending_faults) == 1
    control.set_fault("slow")
    control.reset()
    assert control.requests() == []
    assert server.persistent_fault is None and server.pending_faults == []
    assert server.config == ServerConfig()


def test_cli_subprocess() -> None:
    with ServerProcess(extra_args=["--reply", "From the CLI.", "--delay-first-token", "0"]) as proc:
        assert proc.base_url.startswith("http://127.0.0.1:") and proc.base_url.endswith("/v1")
        with openai.OpenAI(base_url=proc.base_url, api_key="test", max_retries=0) as client:
            assert content_of(stream_chunks(client)) == "From the CLI."
            proc.control.fail_next(Fault.HTTP_500)
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert [r.fault for r in proc.control.requests()] == [None, "http_500"]
        process = proc.process
    assert process is not None and process.returncode is not None
