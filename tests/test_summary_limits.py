"""The rolling summary spends the user's model quota like any other request: admitted and
counted by the per-user limits (per minute and per day), a bounded number per turn, and a
refusal leaves the summary as far as it got and says why. The real app services, the real
Redis and the real openai client against the fake model server."""

from __future__ import annotations

import pytest
import redis

from chatbot.config import Environment
from chatbot.context import SUMMARY_REQUESTS_PER_TURN
from chatbot.services import Services, build_services
from memory import Role
from memory.keys import KeyLayout, user_tag
from memory.limits import LimitExceeded
from memory.portable import PortableConversation, PortableMessage, import_conversations
from tests.support.openai_server import SERVER_ENCODING, ChatCompletionsServer, Fault
from tests.support.tokens import count_text_tokens

USER = "mallory"
SUMMARY = "Short summary."


def services_at(
    server: ChatCompletionsServer, redis_url: str, index_name: str, **env: str
) -> Services:
    values = {
        "REDIS_URL": redis_url,
        "CHAT_INDEX_NAME": index_name,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "k",
        "LLM_MAX_RETRIES": "0",
        "MODEL_CONTEXT_TOKENS": "8192",
        **env,
    }
    return build_services(Environment(values))


def imported_conversation(services: Services, messages: int = 60) -> str:
    """An imported conversation of long messages (imports cost no model request)."""
    text = " ".join(f"Fact number {n} about the sensor log is worth keeping." for n in range(40))
    conversation = PortableConversation(
        title="Long",
        messages=tuple(
            PortableMessage(Role.USER if n % 2 == 0 else Role.ASSISTANT, f"{n}: {text}", 1e9 + n)
            for n in range(messages)
        ),
    )
    (info,) = import_conversations(services.memory, USER, [conversation]).imported
    services.context.summaries.set_enabled(USER, True)
    return info.id


def tokens_counted_today(client: redis.Redis, index_name: str) -> int:
    key = KeyLayout(index_name).token_budget_key(user_tag(USER))
    return int(client.hget(key, "used") or 0)


def server_usage(server: ChatCompletionsServer) -> int:
    """What the server reported for every request it answered (its own count)."""
    reply = count_text_tokens(SUMMARY, SERVER_ENCODING)
    return sum(request.prompt_tokens + reply for request in server.chat_requests)


def test_summary_requests_count_against_the_daily_limit_and_stop_at_it(
    model_server: ChatCompletionsServer, redis_url: str, index_name: str, redis_client: redis.Redis
) -> None:
    model_server.configure(reply=SUMMARY)
    services = services_at(model_server, redis_url, index_name, LIMIT_TOKENS_PER_DAY="20000")
    cid = imported_conversation(services)
    problems = [services.context.fold_summary(USER, cid, 2) for _ in range(4)]

    sent = model_server.chat_requests
    assert sent, "the summary asked the model"
    assert tokens_counted_today(redis_client, index_name) == server_usage(model_server) <= 20000
    refusal = next(problem for problem in problems if problem)
    assert "limit of 20,000 tokens per day" in refusal
    state = services.context.summaries.state(USER, cid)
    assert state.checkpoint is not None and f"up to #{state.checkpoint.covers_seq}" in refusal
    # Nothing past the limit reached the model, and every later turn says the same.
    assert len(model_server.chat_requests) == len(sent)
    assert all(problem == refusal for problem in problems[problems.index(refusal) :])


def test_summary_requests_count_per_minute_and_are_bounded_per_turn(
    model_server: ChatCompletionsServer, redis_url: str, index_name: str
) -> None:
    model_server.configure(reply=SUMMARY)
    services = services_at(
        model_server, redis_url, index_name, LIMIT_REQUESTS_PER_MINUTE="3", LIMIT_TOKENS_PER_DAY="0"
    )
    cid = imported_conversation(services)
    assert services.context.fold_summary(USER, cid, 2) is None
    assert len(model_server.chat_requests) == SUMMARY_REQUESTS_PER_TURN == 2
    problem = services.context.fold_summary(USER, cid, 2)
    assert len(model_server.chat_requests) == 3
    assert problem is not None and "limit of 3 requests per minute" in problem
    with pytest.raises(LimitExceeded, match="requests per minute"):
        services.admit(USER, 10)  # the reply of the next turn is refused too


def test_a_summary_request_that_fails_part_way_is_counted_for_what_was_processed(
    model_server: ChatCompletionsServer, redis_url: str, index_name: str, redis_client: redis.Redis
) -> None:
    model_server.configure(reply="A summary that the connection cuts off", omit_usage=True)
    model_server.set_fault(Fault.DISCONNECT, after_chunks=2)
    services = services_at(model_server, redis_url, index_name, LIMIT_TOKENS_PER_DAY="100000")
    cid = imported_conversation(services)
    problem = services.context.fold_summary(USER, cid, 2)
    assert problem is not None and "connection to the model was lost" in problem
    (request,) = model_server.chat_requests
    counted = tokens_counted_today(redis_client, index_name)
    # The app's own count of the prompt (no usage came) plus the two words produced: not 0.
    assert counted >= request.prompt_tokens * 0.8 and counted < request.prompt_tokens * 1.3
