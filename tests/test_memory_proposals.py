"""Memories proposed by the model after a reply is stored (issue 30 items 1 and 3), with the
local OpenAI-protocol server proposing crafted pairs: what is kept, merged, replaced or
ignored, what the user's limits count, and that nothing of it touches the reply."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from chatbot.config import Environment
from chatbot.memory_proposals import INSTRUCTION, wait_for_proposals
from chatbot.services import Services, build_services
from chatbot.turn import ChatTurn, Started, Stored, TurnRequest
from memory import new_conversation_id
from memory.keys import KeyLayout, user_tag
from memory.memories import Memories
from tests.support.openai_server import ChatCompletionsServer

USER = "Luke"
Build = Callable[..., Services]


@pytest.fixture
def services(redis_url: str, index_name: str, model_server: ChatCompletionsServer) -> Build:
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


def proposes(server: ChatCompletionsServer, *items: dict[str, object]) -> None:
    server.configure(memory_reply=json.dumps({"memories": list(items)}))


def chat(services: Services, cid: str, prompt: str) -> Stored:
    conversation = services.memory.conversation(USER, cid)
    turn = ChatTurn(services, TurnRequest(USER, prompt), conversation)
    assert isinstance(turn.start(), Started)
    for _ in turn.stream():
        pass
    stored = turn.finish()
    assert isinstance(stored, Stored)
    wait_for_proposals()
    return stored


def memories_of(services: Services) -> Memories:
    assert services.memories is not None
    return services.memories


def test_a_proposed_memory_is_kept_from_the_prompt_after_the_reply(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    app = services()
    proposes(model_server, {"text": "I live in Berlin"})
    cid = new_conversation_id()
    stored = chat(app, cid, "I moved to Berlin last week, any tips?")
    [memory] = memories_of(app).listed(USER)
    assert memory.text == "I live in Berlin" and memory.origin == "model"
    assert [(s.conversation_id, s.seq) for s in memory.sources] == [(cid, stored.reply.seq - 1)]
    [asked] = model_server.memory_requests
    assert asked.messages[0]["content"].startswith(INSTRUCTION)
    assert "I moved to Berlin" in asked.messages[1]["content"]
    assert model_server.last_request.messages[-1]["content"].startswith("I moved to Berlin")


def test_the_models_verdicts_merge_a_restatement_and_replace_a_contradiction(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    app = services()
    memories = memories_of(app)
    mia = memories.add(USER, "My daughter is Mia")
    cid = new_conversation_id()
    proposes(model_server, {"text": "Mia is my daughter", "restates": mia.memory_id})
    chat(app, cid, "Mia, my daughter, turns five")
    [merged] = memories.listed(USER)
    assert merged.id == mia.memory_id and len(merged.sources) == 1
    proposes(model_server, {"text": "I have one child, Emma", "contradicts": mia.memory_id})
    chat(app, cid, "Sorry, I mixed that up: my only child is Emma")
    by_text = {m.text: m for m in memories.listed(USER)}
    emma, old = by_text["I have one child, Emma"], by_text["My daughter is Mia"]
    assert emma.active and emma.supersedes == mia.memory_id and emma.origin == "model"
    assert not old.active and old.superseded_by == emma.id and len(old.sources) == 1
    assert "My daughter is Mia" in model_server.memory_requests[-1].messages[0]["content"]


def test_a_verdict_about_another_users_memory_is_ignored(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    app = services()
    memories = memories_of(app)
    theirs = memories.add("Leia", "I work at Contoso")
    proposes(model_server, {"text": "I work at Initech", "contradicts": theirs.memory_id})
    chat(app, new_conversation_id(), "I started at Initech")
    assert [m.text for m in memories.listed(USER)] == ["I work at Initech"]
    [kept] = memories.listed("Leia")
    assert kept.active and kept.text == "I work at Contoso"


@pytest.mark.parametrize(
    "answer",
    [
        "Sure! Here are some memories.",
        '{"memories": "I live in Berlin"}',
        '{"memories": [{"text": ""}, {"text": 5}, {"nope": 1}]}',
        json.dumps({"memories": [{"text": "x" * 1000}]}),
        "[]",
    ],
)
def test_a_malformed_answer_stores_nothing_and_breaks_nothing(
    services: Build, model_server: ChatCompletionsServer, answer: str
) -> None:
    app = services()
    model_server.configure(memory_reply=answer)
    chat(app, new_conversation_id(), "I live in Berlin")
    assert memories_of(app).listed(USER) == []


def test_no_proposal_offline_or_with_memory_off(
    services: Build, model_server: ChatCompletionsServer, redis_url: str, index_name: str
) -> None:
    proposes(model_server, {"text": "I live in Berlin"})
    app = services()
    memories_of(app).set_enabled(USER, False)
    chat(app, new_conversation_id(), "I live in Berlin")
    assert model_server.memory_requests == [] and memories_of(app).listed(USER) == []
    memories_of(app).set_enabled(USER, True)
    offline = build_services(Environment({"REDIS_URL": redis_url, "CHAT_INDEX_NAME": index_name}))
    chat(offline, new_conversation_id(), "I live in Berlin")
    assert model_server.memory_requests == [] and memories_of(offline).listed(USER) == []


def test_a_proposal_is_counted_by_the_users_limits(
    services: Build,
    model_server: ChatCompletionsServer,
    redis_client: redis.Redis,
    index_name: str,
) -> None:
    budget = KeyLayout(index_name).token_budget_key(user_tag(USER))
    proposes(model_server, {"text": "I live in Berlin"})
    stored = chat(services(), new_conversation_id(), "I live in Berlin")
    assert stored.reply.usage is not None and len(model_server.memory_requests) == 1
    counted = int(redis_client.hget(budget, "used") or 0)
    assert counted > stored.reply.usage.total_tokens  # the reply and the proposal


def test_a_proposal_over_the_users_limits_is_not_sent(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    app = services(LIMIT_REQUESTS_PER_MINUTE="1")  # the reply takes the one request
    proposes(model_server, {"text": "I work at Contoso"})
    chat(app, new_conversation_id(), "I work at Contoso")
    assert model_server.memory_requests == [] and memories_of(app).listed(USER) == []


def test_a_prompt_that_says_nothing_about_the_user_asks_for_no_proposal(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    proposes(model_server, {"text": "I like Redis"})
    app = services()
    chat(app, new_conversation_id(), "Tell me about Redis streams and sorted sets")
    assert model_server.memory_requests == [] and memories_of(app).listed(USER) == []
    chat(app, new_conversation_id(), "I\u2019m learning Redis streams")
    assert len(model_server.memory_requests) == 1
