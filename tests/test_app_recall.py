"""Recall on the page (issue 27's page parts), driven through AppTest on the real Redis and a
real local OpenAI-protocol server: the recall setting, what a reply's request recalled (each
openable at its message), what did not fit, the recalled part of the token chart, the
embedding backlog and the search box's empty-result words."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from streamlit.testing.v1 import AppTest

from chatbot.budget import PlannedRequest
from chatbot.context_chart import chart_rows
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, Role, SystemInstruction, new_conversation_id
from memory.recall import Recall, RecalledMessage, RecallScope
from tests.support.context_bar import context_bar
from tests.support.openai_server import ChatCompletionsServer
from ui.chat import FOUND_HERE
from ui.recall import SCOPE_LABEL
from ui.sidebar import SETTINGS_KEY

APP = str(Path(__file__).resolve().parent.parent / "app.py")
LUKE = "Luke"
FACT = "My sister lives in Lisbon"
QUESTION = "Where does my sister live these days?"


def stored(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return ChatMemory(
        redis_client,
        default_system=load_presets()[DEFAULT_PRESET].instruction(),
        index_name=index_name,
    )


def ok(app: AppTest) -> AppTest:
    assert not app.exception, [e.value for e in app.exception]
    return app


def start_app(settings: bool = True, **params: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state[SETTINGS_KEY] = settings
    app.query_params.update(params)
    return ok(app.run())


def say(app: AppTest, text: str) -> AppTest:
    return ok(app.chat_input[0].set_value(text).run())


def seeded(memory: ChatMemory) -> str:
    """A conversation whose fact about the sister is far outside a window of 2."""
    cid = new_conversation_id()
    for prompt in (FACT, "question one", "question two", "question three"):
        memory.append(LUKE, Role.USER, prompt, conversation_id=cid)
        memory.append(LUKE, Role.ASSISTANT, f"Echo: {prompt}", conversation_id=cid)
    memory.set_window_size(LUKE, 2)
    return cid


def recall_expanders(app: AppTest) -> list[str]:
    return [e.label for e in app.main.expander if "recalled" in e.label]


def chart_parts(app: AppTest) -> list[str]:
    """The parts of the token bar on the page (the role of each segment)."""
    return [segment.role for segment in context_bar(app).segments]


@pytest.fixture
def words_only(monkeypatch: pytest.MonkeyPatch, app_env: str) -> str:
    """Recall by words alone (no embedder): which messages it finds is then exact."""
    monkeypatch.setenv("EMBEDDING_PROVIDER", "off")
    return app_env


def test_the_recall_setting_is_in_plain_words_and_saved_at_once(
    app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    (radio,) = [r for r in app.sidebar.radio if r.label == SCOPE_LABEL]
    assert radio.options == ["Off", "This conversation", "All my conversations"]
    assert radio.value == "conversation"  # the default
    ok(radio.set_value("all").run())
    recall = Recall(stored(redis_client, app_env), redis_client, app_env)
    assert recall.scope(LUKE) is RecallScope.ALL
    again = start_app()
    assert [r.value for r in again.sidebar.radio if r.label == SCOPE_LABEL] == ["all"]


def test_a_reply_lists_the_earlier_messages_its_request_recalled_and_each_opens(
    online_env: ChatCompletionsServer, words_only: str, redis_client: redis.Redis
) -> None:
    cid = seeded(stored(redis_client, words_only))
    app = say(start_app(c=cid), QUESTION)
    system = online_env.last_request.messages[0]["content"]
    assert FACT in system  # recalled into the request, outside the window of 2
    assert recall_expanders(app) == ["🔎 2 earlier messages recalled"]
    (expander,) = [e for e in app.main.expander if "recalled" in e.label]
    texts = [t.value for t in expander.text]  # best first
    assert sorted(texts) == [f"Echo: {FACT}", FACT]
    assert all(" UTC · this conversation" in c.value for c in expander.caption)
    assert "recalled" in chart_parts(app)  # its own part of the chart
    ok(expander.button[texts.index(FACT)].click().run())
    assert str(app.query_params["m"]).strip("[]'") == "1"
    assert [c.value for c in app.main.caption if c.value == FOUND_HERE] == [FOUND_HERE]


def test_the_note_stays_on_reruns_without_recalling_again(
    online_env: ChatCompletionsServer, words_only: str, redis_client: redis.Redis
) -> None:
    cid = seeded(stored(redis_client, words_only))
    app = say(start_app(c=cid), QUESTION)
    ok(app.run())
    ok(app.run())
    assert recall_expanders(app) == ["🔎 2 earlier messages recalled"]
    app = say(app, "Thanks, that helps")  # recalls nothing: the note of the reply before goes
    assert recall_expanders(app) == []


def test_what_did_not_fit_is_counted_under_the_reply(
    online_env: ChatCompletionsServer,
    words_only: str,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECALL_MAX_TOKENS", "45")  # the heading and one recalled line
    cid = seeded(stored(redis_client, words_only))
    app = say(start_app(c=cid), QUESTION)
    assert recall_expanders(app) == ["🔎 1 earlier message recalled · 1 did not fit"]
    monkeypatch.setenv("RECALL_MAX_TOKENS", "10")  # not even the heading
    from streamlit import cache_resource

    cache_resource.clear()
    app = say(start_app(c=seeded(stored(redis_client, words_only))), QUESTION)
    assert recall_expanders(app) == ["🔎 No earlier message recalled: 2 messages did not fit"]


def test_recall_off_sends_and_lists_nothing_recalled(
    online_env: ChatCompletionsServer, words_only: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, words_only)
    cid = seeded(memory)
    Recall(memory, redis_client, words_only).set_scope(LUKE, RecallScope.OFF)
    app = say(start_app(c=cid), QUESTION)
    assert FACT not in online_env.last_request.messages[0]["content"]
    assert recall_expanders(app) == []
    assert "recalled" not in chart_parts(app)


def test_the_embedding_backlog_shows_and_says_what_happens_while_the_embedder_is_down(
    online_env: ChatCompletionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "fake-embed")
    online_env.configure(embeddings_down=True)
    app = say(start_app(), "Hello there")
    deadline = time.monotonic() + 20
    while not any("not answering" in c.value for c in app.sidebar.caption):
        assert time.monotonic() < deadline, [c.value for c in app.sidebar.caption]
        time.sleep(0.5)
        ok(app.run())
    words = next(c.value for c in app.sidebar.caption if "not answering" in c.value)
    assert words.startswith("2 messages of yours wait to be embedded")
    assert "stored and safe" in words and "by their words alone" in words
    assert "127.0.0.1" not in words  # a demo user is not shown where the server is
    online_env.configure(embeddings_down=False)
    deadline = time.monotonic() + 90  # the worker backs off up to a minute
    while any("wait to be embedded" in c.value for c in app.sidebar.caption):
        assert time.monotonic() < deadline
        time.sleep(1)
        ok(app.run())


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("the is", "Nothing to search for: type a word."),
        ("(_)", "Nothing to search for: type a word."),
        ("zebra", "No message of yours matches these words or their meaning."),
    ],
)
def test_an_empty_search_says_why_in_words_that_fit_hybrid_search(
    words_only: str, redis_client: redis.Redis, query: str, words: str
) -> None:
    seeded(stored(redis_client, words_only))
    app = start_app()
    box = next(b for b in app.sidebar.text_input if b.label == "🔎 Search your chats")
    ok(box.set_value(query).run())
    assert any(c.value.startswith(words) for c in app.sidebar.caption)
    assert not any("all of these words" in c.value for c in app.sidebar.caption)


def test_the_chart_gives_the_recalled_part_its_own_segment_and_tokens() -> None:
    instruction = SystemInstruction("Be brief.", "standard", 12)
    recalled = RecalledMessage("k", "c", 1, Role.USER, FACT, 0.0, 9, 1.0)
    request = PlannedRequest(
        system=SystemInstruction("Be brief.\n\n…", "standard", 40),
        summary=None,
        messages=(),
        token_count=43,
        left_out=0,
        unanswered=0,
        summarized=0,
        recalled=(recalled,),
        recall_tokens=28,
    )
    rows = chart_rows(request, instruction)
    assert [(r["role"], r["tokens"]) for r in rows] == [("system", 12), ("recalled", 28)]
    assert FACT in rows[1]["text"]
