"""Memories on the page (issue 30), through AppTest on the real Redis: the panel (type, list,
search, pin, edit, delete, memory off), "Remember this" under a message with "Open source",
stale actions refused with a message, and, with a model, the memories a reply's request used
under it and in the chart."""

from __future__ import annotations

from pathlib import Path

import redis
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from chatbot.embedders import OfflineEmbedder
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory
from memory.memories import Memories
from tests.support.context_bar import context_bar
from tests.support.openai_server import ChatCompletionsServer
from ui.memories import ADD_LABEL, REMEMBER_LABEL, SEARCH_LABEL, TOGGLE_LABEL
from ui.sidebar import SETTINGS_KEY

APP = str(Path(__file__).resolve().parent.parent / "app.py")
LUKE = "Luke"


def chat_memory(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return ChatMemory(
        redis_client,
        default_system=load_presets()[DEFAULT_PRESET].instruction(),
        index_name=index_name,
        embedder=OfflineEmbedder(),
    )


def stored(redis_client: redis.Redis, index_name: str) -> Memories:
    return Memories(chat_memory(redis_client, index_name))


def ok(app: AppTest) -> AppTest:
    assert not app.exception, [e.value for e in app.exception]
    return app


def start_app() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state[SETTINGS_KEY] = True
    return ok(app.run())


def button(app: AppTest, label: str, index: int = 0) -> Button:
    return [b for b in app.button if b.label == label][index]


def memory_texts(app: AppTest) -> list[str]:
    """The memories the panel lists (searched or not)."""
    panels = [e for e in app.sidebar.expander if e.label.startswith("Your memories")]
    return [t.value for panel in panels for t in panel.text]


def test_the_panel_types_lists_searches_pins_edits_and_deletes(
    app_env: str, redis_client: redis.Redis, index_name: str
) -> None:
    app = start_app()
    [box] = [t for t in app.sidebar.text_input if t.label == ADD_LABEL]
    box.set_value("I prefer metric units")
    ok(button(app, "Remember").click().run())
    assert "Remembered." in [s.value for s in app.sidebar.success]
    assert memory_texts(app) == ["I prefer metric units"]
    memories = stored(redis_client, index_name)
    [record] = memories.listed(LUKE)
    assert next(t for t in app.sidebar.text_input if t.label == ADD_LABEL).value == ""
    ok(button(app, "Pin").click().run())
    assert memories.listed(LUKE)[0].pinned and button(app, "Unpin")
    ok(app.toggle(key=f"memory:{record.id}:editing").set_value(True).run())
    [editor] = [t for t in app.sidebar.text_input if t.label.startswith("Memory (saved")]
    ok(editor.set_value("I prefer imperial units").run())
    assert memory_texts(app) == ["I prefer imperial units"]
    memories.add(LUKE, "My dog is Rex")
    ok(app.run())
    [search] = [t for t in app.sidebar.text_input if t.label == SEARCH_LABEL]
    ok(search.set_value("dog").run())
    assert memory_texts(app) == ["My dog is Rex"]
    [search] = [t for t in app.sidebar.text_input if t.label == SEARCH_LABEL]
    ok(search.set_value("").run())
    [memory_on] = [t for t in app.sidebar.toggle if t.label == TOGGLE_LABEL]
    ok(memory_on.set_value(False).run())
    assert not memories.enabled(LUKE)
    ok(button(app, "Delete", 1).click().run())
    assert [m.text for m in memories.listed(LUKE)] == ["My dog is Rex"]


def test_a_stale_action_is_refused_with_a_message(
    app_env: str, redis_client: redis.Redis, index_name: str
) -> None:
    memories = stored(redis_client, index_name)
    added = memories.add(LUKE, "My dog is Rex")
    app = start_app()
    memories.delete(LUKE, added.memory_id)  # another tab deleted it
    ok(button(app, "Pin").click().run())
    assert any("no longer exists" in e.value for e in app.sidebar.error)
    [box] = [t for t in app.sidebar.text_input if t.label == ADD_LABEL]
    ok(box.set_value("").run())
    ok(button(app, "Remember").click().run())
    assert any("cannot be empty" in e.value for e in app.sidebar.error)


def test_remember_this_keeps_the_message_as_a_memory_that_opens_its_source(
    app_env: str, redis_client: redis.Redis, index_name: str
) -> None:
    app = start_app()
    ok(app.chat_input[0].set_value("My daughter is Mia").run())
    ok(button(app, REMEMBER_LABEL).click().run())
    [area] = [t for t in app.main.text_area if t.label.startswith("Memory to keep")]
    assert area.value == "My daughter is Mia"
    ok(button(app, "Save memory").click().run())
    assert "🧠 Remembered." in [c.value for c in app.main.caption]
    [record] = stored(redis_client, index_name).listed(LUKE)
    assert record.text == "My daughter is Mia" and [s.seq for s in record.sources] == [1]
    ok(button(app, "Open source").click().run())
    assert app.query_params["m"] == "1"
    assert app.query_params["c"] == record.sources[0].conversation_id


def test_the_reply_says_which_memories_its_request_used(
    online_env: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    stored(redis_client, index_name).add(LUKE, "My daughter is Mia")
    app = start_app()
    ok(app.chat_input[0].set_value("What should I get my daughter Mia?").run())
    [used] = [e for e in app.main.expander if "memory of yours used" in e.label]
    assert used.label == "🧠 1 memory of yours used"
    assert "My daughter is Mia" in [t.value for t in used.text]
    assert "memories" in [segment.role for segment in context_bar(app).segments]
    assert "My daughter is Mia" in online_env.last_request.messages[0]["content"]


def test_a_superseded_memory_shows_what_replaced_it_and_text_is_never_markdown(
    app_env: str, redis_client: redis.Redis, index_name: str
) -> None:
    memories = stored(redis_client, index_name)
    memories.add(LUKE, "My daughter is Mia")
    hostile = "My daughter is **Emma** [x](javascript:alert(1))"
    memories.add(LUKE, hostile)
    app = start_app()
    texts = memory_texts(app)
    assert texts == [hostile, "My daughter is Mia", f"Replaced by: {hostile}"]
    assert any("superseded: no longer used" in c.value for c in app.sidebar.caption)
    assert not any("javascript" in m.value for m in app.sidebar.markdown)


def test_remembering_a_message_deleted_meanwhile_is_refused_with_a_message(
    app_env: str, redis_client: redis.Redis, index_name: str
) -> None:
    app = start_app()
    ok(app.chat_input[0].set_value("My daughter is Mia").run())
    ok(button(app, REMEMBER_LABEL).click().run())
    memories = stored(redis_client, index_name)
    cid = str(app.query_params["c"])
    chat_memory(redis_client, index_name).clear(LUKE, cid)  # another tab cleared it
    ok(button(app, "Save memory").click().run())
    assert any("no longer stored" in e.value for e in app.main.error), app.main.error
    assert memories.listed(LUKE) == []
