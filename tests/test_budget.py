"""The token budget on its own: every window, any N, any history of answered and unanswered
prompts gives a request that fits and that strict chat templates accept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatbot.budget import TokenBudget, known_context_tokens, plan_request
from chatbot.config import Environment
from chatbot.llm import ModelConfig
from chatbot.pricing import Prices
from chatbot.services import list_price_vendor
from memory import ContextWindow, Message, Role, SystemInstruction, TokenCounter
from memory.summary import Summary
from tests.support.openai_server import roles_alternate

COUNTER = TokenCounter()
SYSTEM = SystemInstruction("Be brief.", token_count=COUNTER.count_message("system", "Be brief."))


def window(roles: list[Role], sizes: list[int]) -> ContextWindow:
    messages = tuple(
        Message(role, "x", seq=i + 1, created_at=0, token_count=size)
        for i, (role, size) in enumerate(zip(roles, sizes, strict=False))
    )
    return ContextWindow(SYSTEM, messages, 0)


@given(
    roles=st.lists(st.sampled_from([Role.USER, Role.ASSISTANT]), min_size=1, max_size=30),
    sizes=st.lists(st.integers(5, 400), min_size=30, max_size=30),
    context=st.integers(300, 3000),
    covered=st.integers(0, 10),
)
def test_every_request_fits_and_alternates_from_a_user_message(
    roles: list[Role], sizes: list[int], context: int, covered: int
) -> None:
    budget = TokenBudget(context_tokens=context, reply_tokens=100)
    summary = Summary("Facts so far.", covered, 5, "m") if covered else None
    planned = plan_request(window(roles, sizes), budget, COUNTER, summary)
    sent = planned.as_openai()
    assert planned.token_count <= budget.prompt_limit or not planned.messages
    assert roles_alternate(sent)
    assert all(m.seq > covered for m in planned.messages)
    assert planned.left_out == len(roles) - len(planned.messages)
    if planned.messages and roles[-1] is Role.USER:
        assert planned.messages[-1].seq == len(roles)  # the prompt being answered is sent


def test_an_unanswered_prompt_is_left_out_and_counted() -> None:
    roles = [Role.USER, Role.ASSISTANT, Role.USER, Role.USER]
    planned = plan_request(window(roles, [10] * 4), TokenBudget(10_000, 100), COUNTER)
    assert [m.seq for m in planned.messages] == [1, 2, 4]
    assert (planned.left_out, planned.unanswered) == (1, 1)


def test_the_longest_run_that_fits_is_sent() -> None:
    roles = [Role.USER, Role.ASSISTANT] * 5
    budget = TokenBudget(context_tokens=100 + 3 + SYSTEM.token_count + 45, reply_tokens=100)
    planned = plan_request(window(roles, [10] * 10), budget, COUNTER)
    assert [m.seq for m in planned.messages] == [7, 8, 9, 10]
    assert planned.left_out == 6


def test_known_models_have_their_context_and_list_price_and_others_have_neither() -> None:
    assert known_context_tokens("gpt-4o-2024-08-06") == 128_000
    assert TokenBudget.from_env(Environment({}), "llama3").context_known is False
    local = Environment({"OPENAI_BASE_URL": "http://localhost:11434/v1"})
    azure = Environment({"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com/"})
    assert Prices.from_env(local, "gpt-4o", list_price_vendor(ModelConfig.from_env(local))) is None
    prices = Prices.from_env(azure, "gpt-4o", list_price_vendor(ModelConfig.from_env(azure)))
    assert prices is not None and prices.source == "Azure OpenAI list price of gpt-4o"
    mine = Prices.from_env(Environment({"PRICE_INPUT_PER_MTOK": "1"}), "llama3", None)
    assert mine is not None and mine.cost(1_000_000, 0) == 1.0


def test_each_left_out_message_is_counted_once_for_its_reason() -> None:
    roles = [Role.USER, Role.USER, Role.USER, Role.ASSISTANT]
    planned = plan_request(window(roles, [10] * 4), TokenBudget(10_000, 100), COUNTER)
    assert (planned.unanswered, planned.to_fit, planned.out_of_turn) == (2, 0, 0)
    reply_first = [Role.ASSISTANT, Role.USER, Role.ASSISTANT, Role.USER]
    planned = plan_request(window(reply_first, [10] * 4), TokenBudget(10_000, 100), COUNTER)
    assert (planned.out_of_turn, planned.to_fit, planned.left_out) == (1, 0, 1)


def test_a_provider_that_accepts_any_order_gets_exactly_the_last_n() -> None:
    roles = [Role.ASSISTANT, Role.USER, Role.USER, Role.ASSISTANT]
    planned = plan_request(window(roles, [10] * 4), TokenBudget(10_000, 100), COUNTER, strict=False)
    assert [m.seq for m in planned.messages] == [1, 2, 3, 4] and planned.left_out == 0


def test_only_servers_other_than_openai_and_azure_get_strict_alternation() -> None:
    def strict(**env: str) -> bool:
        return ModelConfig.from_env(Environment(env)).strict_roles

    assert not strict(AZURE_OPENAI_ENDPOINT="https://x.openai.azure.com/")
    assert not strict(OPENAI_API_KEY="k")  # api.openai.com
    assert strict(OPENAI_BASE_URL="http://localhost:8080/v1")
    assert not strict(OPENAI_BASE_URL="http://localhost:8080/v1", LLM_STRICT_ROLES="false")
    assert strict(AZURE_OPENAI_ENDPOINT="https://x.openai.azure.com/", LLM_STRICT_ROLES="true")
