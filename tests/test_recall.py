"""Search by meaning and recall (issue 27, issue 25 item 10) against the real Redis with the
offline embedding model: what a user finds, what the model is sent, what never breaks."""

from __future__ import annotations

import json
import random
import string
import time
from pathlib import Path

import numpy as np
import openai
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot.admission import Admission
from chatbot.budget import TokenBudget, plan_request, with_recalled
from chatbot.config import ConfigError, Environment
from chatbot.context import ContextBuilder
from chatbot.embedders import OfflineEmbedder, OpenAIEmbedder, embedder_from_env
from chatbot.offline import OfflineChatModel
from chatbot.services import build_services
from memory import ChatMemory, InvalidInput, Role, new_conversation_id
from memory.dates import Period, named_period
from memory.embedding_worker import EmbeddingWorker, WorkerState
from memory.hybrid import (
    CONVERSATION_WORDS_BUDGET,
    STOPWORDS,
    content_words,
    user_scope,
    words_query,
)
from memory.keys import KeyLayout, user_tag
from memory.limits import LimitPolicy, UsageLimits
from memory.recall import Recall, RecallResult, RecallScope
from memory.summary import SummaryStore
from memory.vectors import EmbedderUnavailable
from tests.conftest import DEFAULT_TEST_SYSTEM
from tests.support.command_log import commands_during
from tests.support.openai_server import ChatCompletionsServer

USER, OTHER = "ada@example.org", "grace@example.org"
HOSTILE = [
    "_", "(_)", "\\_", "__", "the", "is", "the is for", "is it Nate", "@content:(is | it | Nate)",
    "is | it | Nate", "(is | it | x)", "*", '"', "{}", "@", "-", "a | the | an | is", "~x",
    "%is%", "@user_tag:{x}", "(((", "\\", "é日 the is", "x" * 300, "is " * 40 + "Nate",
]  # fmt: skip


def build(redis_client: redis.Redis, index_name: str, embedder: object | None) -> ChatMemory:
    return ChatMemory(
        redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name,
        embedder=embedder,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def vmemory(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return build(redis_client, index_name, OfflineEmbedder())


def say(memory: ChatMemory, user: str, cid: str, *texts: str) -> list[str]:
    roles = [Role.USER, Role.ASSISTANT]
    return [
        memory.append(user, roles[i % 2], text, conversation_id=cid).key
        for i, text in enumerate(texts)
    ]


def pending_soon(memory: ChatMemory, user: str, wanted: int) -> int:
    """The user's backlog once RediSearch's background scan after FT.ALTER has caught up."""
    assert memory.vectors is not None
    for _ in range(100):
        if (pending := memory.vectors.pending(user_tag(user))) == wanted:
            return pending
        time.sleep(0.05)
    return memory.vectors.pending(user_tag(user))


def embed_all(memory: ChatMemory) -> int:
    assert memory.vectors is not None
    total = 0
    while stored := memory.vectors.embed_batch():
        total += stored
    return total


# --- search ------------------------------------------------------------------------------------


def test_search_finds_a_message_by_meaning_that_shares_no_word(vmemory: ChatMemory) -> None:
    cid = new_conversation_id()
    say(vmemory, USER, cid, "I adopted a puppy last spring", "Lovely!", "My sister lives in Lisbon")
    assert embed_all(vmemory) == 3
    hits = vmemory.search(USER, "which dog breed")
    assert hits and hits[0].snippet == "I adopted a puppy last spring"


def test_search_ranks_the_conversation_that_covers_the_question_above_a_passing_mention(
    redis_client: redis.Redis, index_name: str
) -> None:
    """The question's words are spread over one conversation's turns (between others); another
    conversation repeats one of them in one turn. Ranked by turns alone that turn came before
    one of the trip's; with the conversation-level words score the trip's turns come first."""
    memory = build(redis_client, index_name, None)
    trip, other = new_conversation_id(), new_conversation_id()
    say(memory, USER, trip, "We take the ferry at eight", "Sounds good",
        "Then the lighthouse tour", "Sure", "Lunch at the harbour", "Fine")  # fmt: skip
    say(memory, USER, other, "Ferry, ferry: the ferry was late", "Oh no")
    hits = memory.search(USER, "ferry lighthouse harbour")
    assert [hit.conversation_id for hit in hits] == [trip, trip, trip, other]


def test_a_word_in_many_messages_is_not_grouped_by_conversation(
    redis_client: redis.Redis, index_name: str
) -> None:
    """Grouping reads every matching message's conversation (~5 us each), so a ranking groups
    only the rarest words within CONVERSATION_WORDS_BUDGET messages; a word in more messages
    than that (and so in most conversations, where its weight is near 0) is only counted."""
    memory = build(redis_client, index_name, None)
    for _ in range(CONVERSATION_WORDS_BUDGET // 10 + 1):
        say(memory, USER, new_conversation_id(), *[f"weather talk {n}" for n in range(10)])
    say(memory, USER, new_conversation_id(), "weather at the lighthouse", "Windy")
    log = commands_during(redis_client, lambda: memory.search(USER, "lighthouse weather"))
    grouped = [c.args for c in log.sent if c.name == "FT.AGGREGATE"]
    assert len(grouped) == 1 and "@content:lighthouse" in " ".join(grouped[0])
    assert memory.search(USER, "lighthouse weather")[0].snippet == "weather at the lighthouse"


def test_search_puts_what_was_said_in_the_named_month_or_day_first(
    redis_client: redis.Redis, index_name: str
) -> None:
    memory = build(redis_client, index_name, None)
    june, october = 1_686_000_000.0, 1_697_200_000.0  # 5 June 2023, 13 October 2023 (UTC)
    cid = new_conversation_id()
    memory.append(USER, Role.USER, "We went camping by the lake", conversation_id=cid,
                  created_at=june)  # fmt: skip
    memory.append(USER, Role.USER, "We went camping in the hills", conversation_id=cid,
                  created_at=october)  # fmt: skip
    assert memory.search(USER, "when did we go camping in June?")[0].snippet.endswith("lake")
    in_october = memory.search(USER, "camping on October 13, 2023")[0]
    assert in_october.snippet.endswith("hills")
    assert memory.search(USER, "camping on 5 June 2023")[0].snippet.endswith("lake")


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("camping in June?", Period(6)),
        ("on October 13, 2023", Period(10, 2023, 13)),
        ("on 1 February, 2023", Period(2, 2023, 1)),
        ("the 3rd of March 2024", Period(3, 2024, 3)),
        ("in July 2023", Period(7, 2023)),
        ("in May", Period(5)),
        ("I may go", None),
        ("in 2023", None),
        ("yesterday", None),
        ("on 31 February 2023", None),
    ],
)
def test_the_date_a_question_names_is_read_or_none(text: str, period: Period | None) -> None:
    assert named_period(text) == period


def test_a_named_day_holds_that_day_in_any_time_zone() -> None:
    day = Period(10, 2023, 13)
    midnight = 1_697_155_200.0  # 13 October 2023 00:00 UTC
    assert day.contains(midnight + 3600) and day.contains(midnight - 10 * 3600)
    assert day.contains(midnight + 33 * 3600)
    assert not day.contains(midnight - 15 * 3600) and not day.contains(midnight + 39 * 3600)
    assert Period(10).contains(midnight) and not Period(10, 2022).contains(midnight)


def test_search_reads_resp2_replies_as_well(redis_url: str, index_name: str) -> None:
    client = redis.Redis.from_url(redis_url, protocol=2, decode_responses=True)
    memory = build(client, index_name, OfflineEmbedder())
    say(memory, USER, new_conversation_id(), "I adopted a puppy last spring", "Lovely!")
    embed_all(memory)
    assert memory.search(USER, "puppy dog")[0].snippet.startswith("I adopted")
    client.close()


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_and_stopword_queries_give_results_or_none_and_redis_stays_up(
    vmemory: ChatMemory, redis_client: redis.Redis, query: str
) -> None:
    """Issue 25 item 10: `_` was a syntax error and stopwords listed every message; an OR with
    two stopwords in a field query kills RediSearch 2.10.5. The server must answer after."""
    say(vmemory, USER, new_conversation_id(), "Nate plays the guitar", "It is a nice guitar")
    embed_all(vmemory)
    hits = vmemory.search(USER, query)
    assert all("guitar" in hit.snippet for hit in hits)
    if not content_words(query):
        assert hits == []
    assert redis_client.ping()


def test_a_query_of_stopwords_lists_nothing(vmemory: ChatMemory) -> None:
    say(vmemory, USER, new_conversation_id(), "Nate plays the guitar", "no word in common")
    embed_all(vmemory)
    for query in ("the", "is", "for", "the is for it"):
        assert vmemory.search(USER, query) == []


@given(st.text(alphabet=string.printable + "é日_", max_size=60))
@settings(max_examples=200, deadline=None)
def test_no_built_query_holds_a_stopword_or_unescaped_syntax(text: str) -> None:
    words = content_words(text)
    assert not set(words) & STOPWORDS and len(words) <= 20
    assert all(any(ch.isalnum() for ch in word) for word in words)
    if words:
        inside = words_query(user_scope("ab12"), words).split("@content:(", 1)[1][:-1]
        alternatives = [term.strip() for term in inside.split(" | ")]
        assert alternatives and all(term and term.strip("\\_") for term in alternatives)


ALPHABET = string.ascii_letters + " \"'@{}|-*()[]:;~%_\\" + "é日"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(alphabet=ALPHABET, max_size=30), user=st.sampled_from([USER, OTHER]))
def test_hybrid_search_never_returns_another_users_message(
    vmemory: ChatMemory, redis_client: redis.Redis, query: str, user: str
) -> None:
    if not vmemory.conversations(USER).total:
        rng = random.Random(27)
        words = ["guitar", "puppy", "Lisbon", "the", "is", "music", "dog"]
        for owner in (USER, OTHER):
            for _ in range(3):
                text = " ".join(rng.choices(words, k=4)) + f" owner={owner}"
                say(vmemory, owner, new_conversation_id(), text)
        embed_all(vmemory)
    for hit in vmemory.search(user, query + " guitar puppy"):
        assert f"owner={user}" in hit.snippet
    assert redis_client.ping()


# --- vectors, backlog and the worker -----------------------------------------------------------


def test_vectors_live_in_the_message_hash_and_go_with_it(
    vmemory: ChatMemory, redis_client: redis.Redis
) -> None:
    cid = new_conversation_id()
    keys = say(vmemory, USER, cid, "first", "second")
    embed_all(vmemory)
    assert vmemory.vectors is not None
    field = vmemory.vectors.vector_field
    assert all(redis_client.hexists(key, field) for key in keys)
    assert redis_client.hstrlen(keys[0], field) == 384 * 2  # float16
    vmemory.clear(USER, cid)
    assert not any(redis_client.exists(key) for key in keys)


def test_a_message_deleted_before_its_vector_is_stored_is_not_brought_back(
    vmemory: ChatMemory, redis_client: redis.Redis
) -> None:
    cid = new_conversation_id()
    (key,) = say(vmemory, USER, cid, "soon gone")
    assert vmemory.vectors is not None
    backlog = vmemory.vectors.backlog()
    vmemory.delete_conversation(USER, cid)
    assert [item.key for item in backlog] == [key]
    store = vmemory.vectors
    vector = store.embedder.embed([backlog[0].text])[0]
    reply = store._store(keys=[key], args=[store.vector_field, vector.tobytes()])
    assert reply == 0 and not redis_client.exists(key)


def test_an_unavailable_embedder_never_fails_a_write_and_the_backlog_waits_visibly(
    redis_client: redis.Redis, index_name: str, model_server: ChatCompletionsServer
) -> None:
    client = openai.OpenAI(base_url=model_server.base_url, api_key="k", max_retries=0)
    memory = build(redis_client, index_name, OpenAIEmbedder(client, "fake-embed", 64))
    model_server.configure(embeddings_down=True)
    say(memory, USER, new_conversation_id(), "stored while the embedder is down", "reply")
    assert memory.vectors is not None
    worker = EmbeddingWorker(redis_client, KeyLayout(index_name), memory.vectors)
    with pytest.raises(EmbedderUnavailable, match="did not answer"):
        worker.run_once()
    assert worker.progress(USER).pending == 2
    assert [h.snippet for h in memory.search(USER, "embedder")]  # words still find it
    model_server.configure(embeddings_down=False)
    assert worker.run_once() == 2
    progress = worker.progress(USER)
    assert progress.pending == 0 and progress.done and progress.pending_all == 0


def test_two_app_instances_embed_one_at_a_time(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    say(vmemory, USER, new_conversation_id(), "one", "two", "three")
    assert vmemory.vectors is not None
    first = EmbeddingWorker(redis_client, KeyLayout(index_name), vmemory.vectors)
    second = EmbeddingWorker(redis_client, KeyLayout(index_name), vmemory.vectors)
    assert first.run_once() == 3
    assert second.run_once() == 0 and second.state is WorkerState.OTHER_INSTANCE
    first.stop()  # releases the lease
    say(vmemory, USER, new_conversation_id(), "four")
    assert second.run_once() == 1


def test_the_worker_thread_embeds_new_messages_in_the_background(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    assert vmemory.vectors is not None
    worker = EmbeddingWorker(redis_client, KeyLayout(index_name), vmemory.vectors)
    worker.start()
    try:
        say(vmemory, USER, new_conversation_id(), "background please")
        worker.wake()
        for _ in range(200):
            if worker.progress(USER).done:
                break
            worker._stop.wait(0.05)
        assert worker.progress(USER).done and worker.embedded == 1
    finally:
        worker.stop()


def test_an_index_without_vectors_is_upgraded_in_place_and_its_messages_embedded(
    memory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    say(memory, USER, new_conversation_id(), "written before embeddings existed")
    upgraded = build(redis_client, index_name, OfflineEmbedder())
    assert upgraded.vectors is not None
    assert pending_soon(upgraded, USER, 1) == 1
    assert embed_all(upgraded) == 1
    assert upgraded.search(USER, "earlier than vectors")[0].snippet.startswith("written")


class Widened:
    """The offline model in a different (wider) space: a model change."""

    model, dimensions = "widened-minilm", 400

    def embed(self, texts: list[str]) -> np.ndarray:
        base = OfflineEmbedder().embed(texts)
        return np.hstack([base, np.zeros((len(texts), 16), dtype=np.float32)])


def test_a_model_change_re_embeds_and_never_mixes_two_spaces(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    keys = say(vmemory, USER, new_conversation_id(), "the puppy sleeps", "good dog")
    embed_all(vmemory)
    assert vmemory.vectors is not None
    old_field = vmemory.vectors.vector_field
    changed = build(redis_client, index_name, Widened())
    assert changed.vectors is not None and changed.vectors.vector_field != old_field
    assert pending_soon(changed, USER, 2) == 2
    assert embed_all(changed) == 2
    assert all(not redis_client.hexists(key, old_field) for key in keys)
    assert all(redis_client.hstrlen(key, changed.vectors.vector_field) == 800 for key in keys)
    assert changed.search(USER, "which dog")


# --- recall ------------------------------------------------------------------------------------


def recall_of(memory: ChatMemory, redis_client: redis.Redis, index_name: str) -> Recall:
    return Recall(memory, redis_client, index_name, max_messages=3)


def test_recall_scope_is_a_per_user_setting_defaulting_to_this_conversation(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    recall = recall_of(vmemory, redis_client, index_name)
    assert recall.scope(USER) is RecallScope.CONVERSATION
    recall.set_scope(USER, "all")
    assert recall.scope(USER) is RecallScope.ALL and recall.scope(OTHER) is RecallScope.CONVERSATION
    with pytest.raises(InvalidInput, match="Recall is one of off, conversation, all"):
        recall.set_scope(USER, "everything")
    vmemory.erase_user(USER)
    assert recall.scope(USER) is RecallScope.CONVERSATION


def test_recall_finds_older_messages_outside_the_window_in_the_chosen_scope(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    here, there = new_conversation_id(), new_conversation_id()
    say(vmemory, USER, there, "My cat is called Miso", "Cute name")
    old = say(vmemory, USER, here, "I keep bees in the garden", "How many hives?")
    window = say(vmemory, USER, here, "Three hives", "Nice", "what do my bees make?")
    say(vmemory, OTHER, here, "bees bees bees")
    embed_all(vmemory)
    recall = recall_of(vmemory, redis_client, index_name)
    found = recall.find(USER, here, "what do my bees make?", exclude_keys=window)
    assert found.scope is RecallScope.CONVERSATION and found.unavailable is None
    assert found.messages and found.messages[0].key == old[0]
    assert {m.conversation_id for m in found.messages} == {here}
    assert not {m.key for m in found.messages} & set(window)
    everywhere = recall.find(USER, here, "tell me about my cat", scope=RecallScope.ALL)
    assert everywhere.messages[0].conversation_id == there
    assert recall.find(USER, here, "bees", scope=RecallScope.OFF).messages == ()


def test_recalled_messages_go_after_the_summary_within_the_exact_budget(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    cid = new_conversation_id()
    say(vmemory, USER, cid, *[f"fact {n}: the beekeeper owns {n} hives " * 5 for n in range(6)])
    say(vmemory, USER, cid, "how many hives?")
    embed_all(vmemory)
    counter = vmemory.token_counter
    window = vmemory.context_window(USER, cid, 1)
    recalled = recall_of(vmemory, redis_client, index_name).find(
        USER, cid, "how many hives?", exclude_keys={m.key for m in window.messages}
    )
    assert len(recalled.messages) == 3
    budget = TokenBudget(context_tokens=2000, reply_tokens=100)
    base = plan_request(window, budget, counter)
    full = with_recalled(base, recalled.messages, budget, counter, max_tokens=1000)
    assert len(full.recalled) == 3 and full.recall_left_out == 0
    assert (
        full.token_count
        == counter.count_message("system", full.system.text)
        + sum(m.token_count for m in full.messages)
        + 3
    )  # the reply primer: the count is exact
    assert full.system.text.startswith(DEFAULT_TEST_SYSTEM.text)
    assert "fact" in full.system.text.split("recalled", 1)[1]
    tight = TokenBudget(context_tokens=base.token_count + 100 + 120, reply_tokens=100)
    squeezed = with_recalled(base, recalled.messages, tight, counter, max_tokens=1000)
    assert squeezed.token_count <= tight.prompt_limit
    assert squeezed.recall_left_out == 3 - len(squeezed.recalled) >= 1
    capped = with_recalled(base, recalled.messages, budget, counter, max_tokens=60)
    assert capped.recall_tokens <= 60 and capped.recall_left_out >= 2


def test_recall_on_a_cluster_without_a_search_coordinator_adds_nothing_and_says_why(
    redis_cluster_url: str, index_name: str
) -> None:
    from memory import RedisTarget, create_client

    client = create_client(RedisTarget(url=redis_cluster_url, cluster=True))
    memory = build(client, index_name, OfflineEmbedder())  # type: ignore[arg-type]
    cid = new_conversation_id()
    say(memory, USER, cid, "bees in the garden", "ok")
    found = Recall(memory, client, index_name).find(USER, cid, "bees")
    assert found == RecallResult(
        RecallScope.CONVERSATION, (), found.unavailable
    ) and "Recall is unavailable" in str(found.unavailable)


# --- embedders ---------------------------------------------------------------------------------


def test_the_offline_embedder_gives_unit_vectors_near_in_meaning() -> None:
    vectors = OfflineEmbedder().embed(["a puppy", "a young dog", "tax returns"])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_a_remote_embedder_of_the_wrong_width_is_refused_with_the_fix(
    model_server: ChatCompletionsServer,
) -> None:
    client = openai.OpenAI(base_url=model_server.base_url, api_key="k", max_retries=0)
    embedder = OpenAIEmbedder(client, "m", 32)
    assert embedder.embed(["x y"]).shape == (1, 32)
    assert model_server.embedding_requests[-1]["dimensions"] == 32
    model_server.configure(embedding_width=768)  # a model that cannot shorten its vectors
    with pytest.raises(EmbedderUnavailable, match="set EMBEDDING_DIMENSIONS to its width"):
        embedder.embed(["x"])


# --- the app ---------------------------------------------------------------------------------


def test_the_model_is_sent_an_earlier_message_that_left_the_window(
    online_env: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    from tests.test_app import say as send
    from tests.test_app import start_app

    app = start_app()
    send(app, "My cat is called Miso and she is grey")
    for n in range(3):
        send(app, f"Unrelated question {n} about the weather")
    send(app, "What colour is my cat?")
    system = online_env.last_request.messages[0]["content"]
    assert "recalled" in system and "Miso" in system
    sent = [m["content"] for m in online_env.last_request.messages[1:]]
    assert not any("Miso" in text for text in sent)  # it left the window of 5
    assert Recall(stored(redis_client, app_env), redis_client, app_env).scope("Luke") is (
        RecallScope.CONVERSATION
    )


def stored(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return build(redis_client, index_name, None)


# --- the benchmark -----------------------------------------------------------------------------


def synthetic_locomo(path: Path) -> Path:
    """A tiny file in LoCoMo's format, made up here (LoCoMo itself is for benchmarking only)."""
    topics = ["bees and honey", "the red bicycle", "a trip to Oslo", "baking sourdough bread"]
    conversation: dict[str, object] = {"speaker_a": "Ann", "speaker_b": "Bo"}
    for number, topic in enumerate(topics, start=1):
        conversation[f"session_{number}_date_time"] = f"1:0{number} pm on {number} May, 2023"
        conversation[f"session_{number}"] = [
            {"speaker": "Ann" if i % 2 == 0 else "Bo", "dia_id": f"D{number}:{i + 1}",
             "text": f"Line {i} about {topic}" if i < 2 else f"Small talk number {i}"}
            for i in range(6)
        ]  # fmt: skip
    qa = [
        {"question": f"What did Ann say about {t}?", "evidence": [f"D{n}:1"], "category": n % 5}
        for n, t in enumerate(topics, start=1)
    ] + [{"question": "Broken evidence", "evidence": ["D:9:99"], "category": 1}]
    path.write_text(json.dumps([{"sample_id": "synthetic-1", "conversation": conversation,
                                 "qa": qa}]))  # fmt: skip
    return path


def test_the_recall_benchmark_runs_on_any_locomo_format_file(tmp_path: Path) -> None:
    from bench.recall import METHODS, main

    out = tmp_path / "ranked.json"
    report = main(["--dataset", str(synthetic_locomo(tmp_path / "d.json")), "--json", str(out)])
    assert report["messages"] == 24 and report["questions"] == 4
    assert report["questions_skipped_without_evidence"] == 1
    assert set(report["methods"]) == set(METHODS)
    assert report["methods"]["hybrid"]["turn_recall@5"] == 1.0
    ranked = json.loads(out.read_text())["ranked"]
    assert all(len(row["hybrid"]) == 10 for row in ranked)
    assert all(row["evidence"][0] in row["hybrid"][:2] for row in ranked)
    assert 0 < report["redis_bytes_per_message"]["vectors_add"]


def test_the_model_and_width_of_stored_vectors_are_named_beside_them(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    assert vmemory.vectors is not None
    spaces = redis_client.hgetall(KeyLayout(index_name).embedding_spaces_key)
    assert json.loads(spaces[vmemory.vectors.vector_field]) == {
        "model": "all-MiniLM-L6-v2-int8",
        "dimensions": 384,
    }


@pytest.mark.parametrize(
    ("values", "chosen"),
    [
        ({}, "OfflineEmbedder"),
        ({"EMBEDDING_PROVIDER": "off"}, "NoneType"),
        ({"OPENAI_EMBEDDING_MODEL": "nomic-embed-text"}, "OpenAIEmbedder"),
        ({"AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "emb"}, "OpenAIEmbedder"),
    ],
)
def test_the_environment_picks_the_embedder(values: dict[str, str], chosen: str) -> None:
    azure = openai.AzureOpenAI(azure_endpoint="https://x.example", api_key="k", api_version="v")
    embedder = embedder_from_env(Environment(values), azure)
    assert type(embedder).__name__ == chosen
    if isinstance(embedder, OpenAIEmbedder):
        assert embedder.dimensions == 384 and embedder.model in values.values()


def test_an_unknown_or_incomplete_embedder_setting_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="EMBEDDING_PROVIDER must be one of"):
        embedder_from_env(Environment({"EMBEDDING_PROVIDER": "torch"}), None)
    with pytest.raises(ConfigError, match="needs AZURE_OPENAI_ENDPOINT"):
        embedder_from_env(Environment({"EMBEDDING_PROVIDER": "azure"}), None)


def test_azure_openai_embeddings_go_to_the_embedding_deployment(
    model_server: ChatCompletionsServer,
) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=model_server.azure_endpoint, api_key="k", api_version="2024-10-21"
    )
    values = {"AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "text-embedding-3-small"}
    embedder = embedder_from_env(Environment(values), azure)
    assert embedder is not None and embedder.embed(["hello there"]).shape == (1, 384)
    assert model_server.embedding_requests[-1]["dimensions"] == 384


def test_the_app_services_recall_and_embed_in_the_background(app_env: str) -> None:
    services = build_services(Environment.current())
    try:
        assert services.recall is not None and services.context.recall is services.recall
        assert services.memory.vectors is not None
        worker = services.embedding_worker
        assert worker is not None and worker._thread is not None and worker._thread.is_alive()
        services.memory.append("Luke", Role.USER, "hello", conversation_id="abc")
        worker.wake()
        for _ in range(200):
            if worker.progress("Luke").done:
                break
            time.sleep(0.05)
        assert worker.progress("Luke").done
    finally:
        if services.embedding_worker is not None:
            services.embedding_worker.stop()


def test_a_turn_begun_in_one_script_sends_recalled_messages_within_what_it_reserved(
    vmemory: ChatMemory, redis_client: redis.Redis, index_name: str
) -> None:
    """With begin_turn the reservation is made before the request is planned: reserving the
    recall allowance on top of the reply keeps the limits exact."""
    cid = new_conversation_id()
    say(vmemory, USER, cid, "My cat is called Miso", "Nice", *[f"weather {n}" for n in range(6)])
    embed_all(vmemory)
    context = ContextBuilder(
        memory=vmemory,
        summaries=SummaryStore(redis_client, index_name),
        budget=TokenBudget(context_tokens=8192, reply_tokens=500),
        model=OfflineChatModel(counter=vmemory.token_counter),
        admission=Admission(UsageLimits(redis_client, index_name=index_name), LimitPolicy()),
        recall=recall_of(vmemory, redis_client, index_name),
    )
    assert context.recall_allowance == 1000
    start = vmemory.begin_turn(
        USER, cid, policy=LimitPolicy(), window_size=4, prompt="What is my cat called?",
        reply_tokens=context.budget.reply_tokens + context.recall_allowance,
    )  # fmt: skip
    request = context.request_for(USER, cid, start.window, start.summary)
    assert request.recalled and request.recalled[0].content == "My cat is called Miso"
    assert "Miso" in request.as_openai()[0]["content"]
    assert request.token_count + context.budget.reply_tokens <= start.reservation.tokens
