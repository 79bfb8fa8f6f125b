"""The chat turn without Streamlit (chatbot/turn.py), on the real local Redis and the local
OpenAI-protocol server: each outcome as the user would meet it, what Redis holds after it,
what the model was asked and what the user's limits counted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from chatbot.config import Environment
from chatbot.services import Services, build_services
from chatbot.turn import (
    ChatTurn,
    Draft,
    Failed,
    OutcomeUnknown,
    Refused,
    Started,
    Stopped,
    Stored,
    TurnRequest,
)
from memory import Role, TitleSource, new_conversation_id
from memory.embedded import EmbeddedRedis
from memory.keys import KeyLayout, user_tag
from tests.support.delay_proxy import DelayProxy
from tests.support.openai_server import ChatCompletionsServer, Fault

USER = "Luke"
Build = Callable[..., Services]


@pytest.fixture
def services(redis_url: str, index_name: str, model_server: ChatCompletionsServer) -> Build:
    """`services(LIMIT_REQUESTS_PER_MINUTE="1", ...)`: the app's services, on the test Redis
    and index, with the local model server."""

    def build(**settings: str) -> Services:
        env = {
            "REDIS_URL": redis_url,
            "CHAT_INDEX_NAME": index_name,
            "OPENAI_BASE_URL": model_server.base_url,
            "OPENAI_API_KEY": "test-key",
            "LLM_MAX_RETRIES": "0",
            "LLM_TIMEOUT_SECONDS": "5",
            **settings,
        }
        return build_services(Environment(env))

    return build


def turn(services: Services, cid: str, prompt: str | None, **asked: Any) -> ChatTurn:
    """A turn as the page starts it: on the conversation as one render read it."""
    conversation = services.memory.conversation(USER, cid)
    return ChatTurn(services, TurnRequest(USER, prompt, **asked), conversation)


def run(chat: ChatTurn) -> Started | Refused | Failed | OutcomeUnknown | Stored:
    started = chat.start()
    if not isinstance(started, Started):
        return started
    for _ in chat.stream():
        pass
    return chat.finish()


def contents(services: Services, cid: str) -> list[str]:
    return [m.content for m in services.memory.messages(USER, cid)]


def tokens_counted(redis_client: redis.Redis, index_name: str) -> int:
    """What the user's daily token limit has counted so far."""
    key = KeyLayout(index_name).token_budget_key(user_tag(USER))
    return int(redis_client.hget(key, "used") or 0)


def test_a_prompt_is_stored_answered_stored_and_counted_as_used(
    services: Build, model_server: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    built, cid = services(), new_conversation_id()
    chat = turn(built, cid, "What is Redis?")
    assert chat.start() == Started() and chat.prompt_stored
    assert "".join(chat.stream()) == "Echo: What is Redis?"
    outcome = chat.finish()
    assert isinstance(outcome, Stored) and outcome.reply.content == "Echo: What is Redis?"
    assert contents(built, cid) == ["What is Redis?", "Echo: What is Redis?"]
    assert [m["content"] for m in model_server.last_request.messages[1:]] == ["What is Redis?"]
    wait_for_the_title(built, cid)  # a model request of its own, counted too
    before = tokens_counted(redis_client, index_name)
    second = run(turn(built, cid, "And Lua?"))
    assert isinstance(second, Stored) and second.reply.usage is not None
    assert tokens_counted(redis_client, index_name) - before == second.reply.usage.total_tokens


def wait_for_the_title(services: Services, cid: str) -> None:
    deadline = time.monotonic() + 10
    while getattr(services.memory.conversation(USER, cid).info, "title_source", "") != (
        TitleSource.MODEL
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_an_over_long_prompt_is_refused_kept_whole_and_nothing_is_asked_or_counted(
    services: Build, model_server: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    built, cid = services(MAX_PROMPT_CHARS="10"), new_conversation_id()
    outcome = run(turn(built, cid, "x" * 11, message_id="fixed-id"))
    assert isinstance(outcome, Refused) and "the limit is 10" in outcome.reason
    assert outcome.draft == Draft(USER, "x" * 11, "fixed-id", conversation_id=cid)
    assert contents(built, cid) == [] and not model_server.chat_requests
    assert tokens_counted(redis_client, index_name) == 0


def test_a_limit_refuses_the_second_prompt_and_keeps_it(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    built, cid = services(LIMIT_REQUESTS_PER_MINUTE="1"), new_conversation_id()
    assert isinstance(run(turn(built, cid, "first")), Stored)
    outcome = run(turn(built, cid, "second"))
    assert isinstance(outcome, Refused) and "limit of 1 requests per minute" in outcome.reason
    assert outcome.draft is not None and outcome.draft.text == "second"
    assert contents(built, cid) == ["first", "Echo: first"]
    assert len(model_server.chat_requests) == 1


def test_a_retry_refused_by_a_limit_fails_with_the_prompt_kept_stored(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    built, cid = services(LIMIT_REQUESTS_PER_MINUTE="1"), new_conversation_id()
    model_server.fail_next(Fault.HTTP_500)
    assert isinstance(run(turn(built, cid, "first")), Failed)
    outcome = run(turn(built, cid, None))  # Retry, the minute's one request already used
    assert isinstance(outcome, Failed) and "limit of 1 requests per minute" in outcome.reason
    assert contents(built, cid) == ["first"]


def test_a_model_failure_keeps_the_prompt_stores_no_reply_and_counts_nothing(
    services: Build, model_server: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    built, cid = services(), new_conversation_id()
    model_server.set_fault(Fault.HTTP_500)
    outcome = run(turn(built, cid, "Will this work?"))
    assert isinstance(outcome, Failed) and "HTTP 500" in outcome.reason
    assert contents(built, cid) == ["Will this work?"]
    assert tokens_counted(redis_client, index_name) == 0
    model_server.clear_faults()
    assert isinstance(run(turn(built, cid, None)), Stored)  # Retry answers the stored prompt
    assert contents(built, cid) == ["Will this work?", "Echo: Will this work?"]


def test_stop_mid_reply_stores_nothing_of_it_and_counts_what_was_produced(
    services: Build, model_server: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    built, cid = services(LLM_MAX_TOKENS="1000"), new_conversation_id()
    model_server.configure(reply=" ".join(f"word{n}" for n in range(40)), chunk_delay=0.05)
    chat = turn(built, cid, "Tell me a long story")
    assert isinstance(chat.start(), Started)
    chunks = chat.stream()
    produced = next(chunks) + next(chunks)
    stopped = chat.stop()
    assert stopped == Stopped(produced)
    assert contents(built, cid) == ["Tell me a long story"]
    counted = tokens_counted(redis_client, index_name)
    sent = built.context.next_request(USER, cid, built.memory.conversation(USER, cid).window_size)
    assert counted == sent.token_count + built.memory.token_counter.count_text(produced)
    assert counted < built.context.budget.reply_tokens  # not the reservation's longest reply


def test_a_regenerate_after_the_conversation_moved_on_removes_nothing(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    """Was: A, its reply, then B sent (its reply still streaming) and Regenerate clicked under
    A's reply: A's reply and B were removed."""
    built, cid = services(), new_conversation_id()
    run(turn(built, cid, "A"))
    shown = built.memory.conversation(USER, cid)  # the page under A's reply
    reply_seq = shown.recent[-1].seq
    built.memory.append(USER, Role.USER, "B", conversation_id=cid)  # sent meanwhile
    chat = ChatTurn(
        built, TurnRequest(USER, None, replace_from=reply_seq, expect_last_seq=reply_seq), shown
    )
    outcome = run(chat)
    assert isinstance(outcome, Refused) and outcome.reason.startswith("Regenerating the reply")
    assert contents(built, cid) == ["A", "Echo: A", "B"]
    assert len(model_server.chat_requests) == 1


def test_an_edit_after_the_conversation_moved_on_keeps_the_edited_text(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    built, cid = services(), new_conversation_id()
    run(turn(built, cid, "A"))
    shown = built.memory.conversation(USER, cid)
    prompt_seq, newest = shown.recent[0].seq, shown.recent[-1].seq
    built.memory.remove_last(USER, cid, newest)  # another tab regenerated meanwhile
    built.memory.append(USER, Role.ASSISTANT, "another reply", conversation_id=cid)
    request = TurnRequest(USER, "A, edited", replace_from=prompt_seq, expect_last_seq=newest)
    outcome = run(ChatTurn(built, request, shown))
    assert isinstance(outcome, Refused) and "nothing was removed" in outcome.reason
    assert outcome.draft is not None and outcome.draft.text == "A, edited"
    assert contents(built, cid) == ["A", "another reply"]
    assert len(model_server.chat_requests) == 1


def test_an_edit_of_what_the_page_showed_replaces_the_prompt_and_its_reply(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    built, cid = services(), new_conversation_id()
    run(turn(built, cid, "one"))
    run(turn(built, cid, "twoo"))
    shown = built.memory.conversation(USER, cid)
    prompt_seq, newest = shown.recent[-2].seq, shown.recent[-1].seq
    request = TurnRequest(USER, "two", replace_from=prompt_seq, expect_last_seq=newest)
    assert isinstance(run(ChatTurn(built, request, shown)), Stored)
    assert contents(built, cid) == ["one", "Echo: one", "two", "Echo: two"]
    assert [m["content"] for m in model_server.last_request.messages[1:]] == [
        "one",
        "Echo: one",
        "two",
    ]


def test_a_prompt_whose_write_outcome_is_unknown_is_kept_and_stored_once_when_resent(
    services: Build, redis_server: EmbeddedRedis, index_name: str
) -> None:
    with DelayProxy(redis_server.port) as proxy:
        built = services(REDIS_URL=f"{proxy.url}?socket_timeout=0.5")
        cid = new_conversation_id()
        proxy.stall(b"Did this arrive?", 1.0, times=None)  # every attempt's answer is late
        outcome = run(turn(built, cid, "Did this arrive?"))
        assert isinstance(outcome, OutcomeUnknown) and "may not have been saved" in outcome.reason
        draft = outcome.draft
        assert draft is not None and draft.outcome_unknown and draft.text == "Did this arrive?"
        proxy.stall(b"", 0)
        assert isinstance(run(turn(built, cid, draft.text, message_id=draft.message_id)), Stored)
        assert contents(built, cid) == ["Did this arrive?", "Echo: Did this arrive?"]


# --- what the turn brings together from the model side ----------------------------------------


def test_a_prompt_holding_half_a_character_pair_is_refused_in_words_and_kept_showable(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    built, cid = services(), new_conversation_id()
    outcome = run(turn(built, cid, "see \ud83d here"))
    assert isinstance(outcome, Refused) and "not text" in outcome.reason
    assert outcome.draft is not None and outcome.draft.text == "see \N{REPLACEMENT CHARACTER} here"
    assert contents(built, cid) == [] and not model_server.chat_requests


def test_a_reply_failing_part_way_counts_its_prompt_and_what_it_produced(
    services: Build, model_server: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    built, cid = services(), new_conversation_id()
    model_server.configure(reply="one two three four five six seven eight", omit_usage=True)
    model_server.fail_next(Fault.DISCONNECT, after_chunks=3)
    chat = turn(built, cid, "Count for me")
    assert isinstance(chat.start(), Started)
    produced = "".join(chat.stream())
    outcome = chat.finish()
    assert isinstance(outcome, Failed) and "lost before the reply was complete" in outcome.reason
    assert outcome.location == model_server.base_url and "http" not in outcome.reason
    sent = built.context.next_request(USER, cid, built.memory.conversation(USER, cid).window_size)
    counted = tokens_counted(redis_client, index_name)
    assert produced and counted == sent.token_count + built.memory.token_counter.count_text(
        produced
    )
    assert contents(built, cid) == ["Count for me"]


def test_a_request_the_server_refuses_as_too_long_is_sent_again_as_what_fits(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    """The server counts 1.35x the app's estimate and says its numbers: the turn sends the
    longest window that fits and stores the reply (was: "too long", nothing stored)."""
    model_server.configure(context_tokens=600, token_factor=1.35, omit_usage=True, reply="Noted.")
    settings = {"OPENAI_MODEL": "llama3", "MODEL_CONTEXT_TOKENS": "600", "LLM_MAX_TOKENS": "60"}
    built, cid = services(**settings), new_conversation_id()
    fact = "Fact {n}: the sensor on line {n} read 42.{n} degrees at 12:{n:02d} on 2026-11-{n:02d}."
    for n in range(12):
        built.memory.append(USER, Role.USER, fact.format(n=n), conversation_id=cid)
        built.memory.append(USER, Role.ASSISTANT, "Noted.", conversation_id=cid)
    built.memory.set_window_size(USER, 50)
    outcome = run(turn(built, cid, "What did line 3 read?"))
    assert isinstance(outcome, Stored) and outcome.reply.content == "Noted."
    first, second = model_server.chat_requests[-2:]
    assert len(second.messages) < len(first.messages)
    assert second.messages[-1]["content"] == "What did line 3 read?"


def test_a_prompt_too_long_for_the_model_on_its_own_is_told_to_shorten_itself(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    model_server.configure(context_tokens=600, token_factor=1.35, omit_usage=True)
    settings = {"OPENAI_MODEL": "llama3", "MODEL_CONTEXT_TOKENS": "600", "LLM_MAX_TOKENS": "60"}
    built, cid = services(**settings), new_conversation_id()
    fact = "Fact {n}: the sensor on line {n} read 42.{n} degrees at 12:{n:02d} on 2026-11-{n:02d}."
    outcome = run(turn(built, cid, " ".join(fact.format(n=n) for n in range(15))))
    assert isinstance(outcome, Failed) and "shorten the message itself" in outcome.reason
    assert "Length of chat history" not in outcome.reason
