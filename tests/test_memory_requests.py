"""Memories in the model's request (issue 30 item 5): the relevant ones right after the
instruction, inside the exact token budget, and the request says which were used."""

from __future__ import annotations

import pytest

from chatbot.budget import MEMORY_HEADING, TokenBudget, plan_request, with_memories
from chatbot.config import Environment
from chatbot.services import Services, build_services
from chatbot.turn import ChatTurn, Started, Stored, TurnRequest
from memory import Role, new_conversation_id
from tests.support.openai_server import ChatCompletionsServer

USER = "Luke"


@pytest.fixture
def services(redis_url: str, index_name: str, model_server: ChatCompletionsServer) -> Services:
    env = {
        "REDIS_URL": redis_url,
        "CHAT_INDEX_NAME": index_name,
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "LLM_MAX_RETRIES": "0",
        "LLM_TIMEOUT_SECONDS": "5",
    }
    return build_services(Environment(env))


def reply_to(services: Services, cid: str, prompt: str) -> ChatTurn:
    conversation = services.memory.conversation(USER, cid)
    turn = ChatTurn(services, TurnRequest(USER, prompt), conversation)
    assert isinstance(turn.start(), Started)
    for _ in turn.stream():
        pass
    assert isinstance(turn.finish(), Stored)
    return turn


def test_relevant_memories_go_right_after_the_instruction_and_are_marked_used(
    services: Services, model_server: ChatCompletionsServer
) -> None:
    memories = services.memories
    assert memories is not None
    mia = memories.add(USER, "My daughter is Mia")
    memories.add(USER, "I work at Contoso")
    memories.set_enabled(USER, True)
    turn = reply_to(services, new_conversation_id(), "What should I get my daughter Mia?")
    system = model_server.last_request.messages[0]["content"]
    instruction = services.memory.system_instruction(USER).text
    assert system.startswith(f"{instruction}\n\n{MEMORY_HEADING}\n- My daughter is Mia")
    assert "Contoso" not in system  # not relevant to this prompt
    assert turn.planned is not None and [m.id for m in turn.planned.memories] == [mia.memory_id]
    used = memories.get(USER, mia.memory_id)
    assert used is not None and used.last_used_at is not None


def test_with_memory_off_the_request_carries_none(
    services: Services, model_server: ChatCompletionsServer
) -> None:
    memories = services.memories
    assert memories is not None
    memories.add(USER, "My daughter is Mia")
    memories.set_enabled(USER, False)
    turn = reply_to(services, new_conversation_id(), "What should I get my daughter Mia?")
    assert MEMORY_HEADING not in model_server.last_request.messages[0]["content"]
    assert turn.planned is not None and turn.planned.memories == ()


def test_memories_never_pass_their_allowance_or_the_budget(services: Services) -> None:
    memories = services.memories
    assert memories is not None
    cid = new_conversation_id()
    kinds = ["Swiss", "Danish", "airmail", "Victorian", "Olympic", "ship", "bird", "Antarctic"]
    texts = [f"I collect {kind} stamps as a hobby" for kind in kinds]
    for text in texts:
        memories.add(USER, text)
    services.memory.append(USER, Role.USER, "Tell me about my stamps hobby", conversation_id=cid)
    window = services.memory.context_window(USER, cid, 10)
    counter = services.memory.token_counter
    records = tuple(memories.relevant(USER, "stamps hobby"))
    assert len(records) == 8
    roomy = TokenBudget(context_tokens=8192, reply_tokens=500)
    base = plan_request(window, roomy, counter)
    capped = with_memories(base, records, roomy, counter, instruction=window.system.text,
                           max_tokens=60)  # fmt: skip
    assert 0 < len(capped.memories) < 8 and capped.memories_left_out == 8 - len(capped.memories)
    assert capped.memory_tokens <= 60
    assert capped.system.token_count == counter.count_message("system", capped.system.text)
    assert capped.token_count == base.token_count + capped.memory_tokens
    tight = TokenBudget(context_tokens=base.token_count + 500 + 20, reply_tokens=500)
    squeezed = with_memories(base, records, tight, counter, instruction=window.system.text,
                             max_tokens=1000)  # fmt: skip
    assert squeezed.token_count <= tight.prompt_limit
    assert squeezed.memories_left_out == 8 - len(squeezed.memories) > 0
