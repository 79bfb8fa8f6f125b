"""A model server whose tokenizer counts more than the app's estimate (a real llama.cpp server
counted up to 1.35x): its own count is used where it can tell it, a request it refuses as too
long becomes the longest window that fits what it said, and a prompt that cannot fit at all
is never answered with "lower Length of chat history". The app's services, the real Redis and
the real openai client against the fake server."""

from __future__ import annotations

import pytest

from chatbot.config import Environment
from chatbot.llm import TOO_LONG, ContextOverflow
from chatbot.server_tokens import Endpoint, server_root
from chatbot.services import Services, build_services
from memory import Role
from tests.support.openai_server import ChatCompletionsServer

USER, CONV = "ada", "c0ffee"
FACT = "Fact {n}: the sensor on line {n} read 42.{n} degrees at 12:{n:02d} on 2026-11-{n:02d}."


def services_at(server: ChatCompletionsServer, redis_url: str, index_name: str) -> Services:
    return build_services(
        Environment(
            {
                "REDIS_URL": redis_url,
                "CHAT_INDEX_NAME": index_name,
                "OPENAI_BASE_URL": server.base_url,
                "OPENAI_MODEL": "llama3",  # its tokenizer unknown to the app: an estimate
                "MODEL_CONTEXT_TOKENS": "600",
                "LLM_MAX_TOKENS": "60",
                "LLM_MAX_RETRIES": "0",
            }
        )
    )


@pytest.fixture
def llama(model_server: ChatCompletionsServer) -> ChatCompletionsServer:
    """A llama.cpp-like server: 600 tokens of context, 1.35x the app's count, no usage."""
    model_server.configure(
        context_tokens=600, token_factor=1.35, omit_usage=True, reply="Noted.", tokenize=True
    )
    return model_server


def history(services: Services, exchanges: int) -> None:
    for n in range(exchanges):
        services.memory.append(USER, Role.USER, FACT.format(n=n), conversation_id=CONV)
        services.memory.append(USER, Role.ASSISTANT, "Noted.", conversation_id=CONV)
    services.memory.append(USER, Role.USER, "What did line 3 read?", conversation_id=CONV)


def send(services: Services, messages: list[dict[str, str]]) -> str:
    return "".join(services.model.stream(messages))


def test_the_server_root_is_where_its_tokenizer_lives() -> None:
    assert server_root("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080"
    assert server_root("http://host/llm/v1/") == "http://host/llm"


def test_the_servers_own_count_shrinks_the_window_before_it_is_sent(
    llama: ChatCompletionsServer, redis_url: str, index_name: str
) -> None:
    services = services_at(llama, redis_url, index_name)
    history(services, 12)
    estimate = services.context.next_request(USER, CONV, 50)
    with pytest.raises(ContextOverflow):  # the app's estimate alone: refused by the server
        send(services, estimate.as_openai())
    request = services.context.request_to_send(USER, CONV, 50)
    assert request.server_token_count is not None
    assert request.server_token_count + 60 <= 600 < estimate.token_count * 1.35
    assert send(services, request.as_openai()) == "Noted."  # fits: nothing refused
    assert llama.last_request.prompt_tokens == request.server_token_count


def test_the_probe_for_a_tokenizer_runs_once(
    llama: ChatCompletionsServer, redis_url: str, index_name: str
) -> None:
    services = services_at(llama, redis_url, index_name)
    counter = services.context.server_tokens
    assert counter is not None and counter.endpoint is Endpoint.LLAMA_CPP
    llama.configure(tokenize=False)  # a server without one: asked once, then never
    plain = services_at(llama, redis_url, index_name).context.server_tokens
    assert plain is not None
    calls = llama.tokenize_calls
    assert [plain.count_text("x") for _ in range(3)] == [None] * 3
    assert plain.endpoint is None and llama.tokenize_calls == calls + 1


def test_a_reply_without_usage_is_stored_with_the_servers_count_and_calibrates(
    llama: ChatCompletionsServer, redis_url: str, index_name: str
) -> None:
    services = services_at(llama, redis_url, index_name)
    history(services, 2)
    request = services.context.request_to_send(USER, CONV, 50)
    reply = services.model.stream(request.as_openai())
    assert "".join(reply) == "Noted."
    usage = services.context.usage_of(reply, request)
    assert usage is not None and not usage.estimated  # the server's count, not a guess
    assert usage.prompt_tokens == llama.last_request.prompt_tokens
    assert usage.prompt_drift is not None and usage.prompt_drift > 0.2  # it counts ~1.35x


@pytest.mark.parametrize("llama_cpp_words", [False, True], ids=["openai-400", "llama.cpp-400"])
def test_a_request_refused_as_too_long_is_sent_again_as_the_longest_window_that_fits(
    llama: ChatCompletionsServer, redis_url: str, index_name: str, llama_cpp_words: bool
) -> None:
    llama.configure(tokenize=False, llama_cpp_errors=llama_cpp_words)  # no count beforehand
    services = services_at(llama, redis_url, index_name)
    history(services, 12)
    request = services.context.next_request(USER, CONV, 50)
    with pytest.raises(ContextOverflow) as refused:
        send(services, request.as_openai())
    overflow = refused.value
    assert (overflow.context_tokens, overflow.prompt_tokens) == (
        600,
        llama.last_request.prompt_tokens,
    )
    smaller = services.context.fit(USER, CONV, 50, request, overflow)
    assert smaller is not None and 1 < len(smaller.messages) < len(request.messages)
    assert smaller.messages[-1].content == "What did line 3 read?"
    assert send(services, smaller.as_openai()) == "Noted."


def test_a_refusal_that_says_nothing_shrinks_until_it_fits(
    llama: ChatCompletionsServer, redis_url: str, index_name: str
) -> None:
    llama.configure(tokenize=False, overflow_as_empty_stream=True)  # llama.cpp's HTTP 200, empty
    services = services_at(llama, redis_url, index_name)
    history(services, 12)
    request = services.context.next_request(USER, CONV, 50)
    for _ in range(5):
        try:
            assert send(services, request.as_openai()) == "Noted."
            break
        except ContextOverflow as overflow:
            assert overflow.context_tokens is None and overflow.prompt_tokens is None
            smaller = services.context.fit(USER, CONV, 50, request, overflow)
            assert smaller is not None
            request = smaller
    else:
        pytest.fail("never fitted")
    assert len(request.messages) > 1  # the longest that fits, not just the prompt


def test_a_prompt_too_long_on_its_own_is_never_told_to_lower_the_history(
    llama: ChatCompletionsServer, redis_url: str, index_name: str
) -> None:
    llama.configure(tokenize=False)
    services = services_at(llama, redis_url, index_name)
    prompt = " ".join(FACT.format(n=n) for n in range(15))  # ~450: fits the app's estimate only
    services.memory.append(USER, Role.USER, prompt, conversation_id=CONV)
    request = services.context.next_request(USER, CONV, 50)
    assert len(request.messages) == 1
    with pytest.raises(ContextOverflow) as refused:
        send(services, request.as_openai())
    assert services.context.fit(USER, CONV, 50, request, refused.value) is None
    advice = refused.value.advice(has_history=False)
    assert "Length of chat history" not in advice and "shorten the message" in advice
    assert f"{llama.last_request.prompt_tokens:,} tokens" in advice
    assert refused.value.advice(has_history=True) == TOO_LONG
