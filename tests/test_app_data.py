"""Your data in the app (issue 16): search, export, import and erase, driven through AppTest on
the real local Redis (and a real Redis Cluster for the search that cannot be offered)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.commands.search.query import Query
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import DownloadButton

from chatbot.identity import EASYAUTH_HEADERS
from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, Message, Role, new_conversation_id
from memory.keys import user_tag
from memory.portable import export_json
from ui.chat import FOUND_HERE
from ui.sidebar import SETTINGS_KEY

APP = str(Path(__file__).resolve().parent.parent / "app.py")
SUPPORT = Path(__file__).resolve().parent / "support"
LUKE, LEIA = "Luke", "Leia"
HOSTILE = '"hello" @leia {redis} | streams -fast *'
HOSTILE_TEXT = 'He said "hello" to @leia about {redis} | streams - fast * ok'


def stored(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return ChatMemory(
        redis_client,
        default_system=load_presets()[DEFAULT_PRESET].instruction(),
        index_name=index_name,
    )


def start_app(user: dict[str, object] | None = None, **params: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state[SETTINGS_KEY] = True  # the settings panel open: "Your data" is in it
    if user is not None:
        app.user = user
    app.query_params.update(params)
    return ok(app.run())


def ok(app: AppTest) -> AppTest:
    assert not app.exception, [e.value for e in app.exception]
    return app


def click(app: AppTest, label: str, number: int = 0) -> AppTest:
    matches = [b for b in app.button if b.label == label]
    assert len(matches) > number, f"no button {label!r}; have {[b.label for b in app.button]}"
    return ok(matches[number].click().run())


def search(app: AppTest, text: str) -> AppTest:
    box = next(box for box in app.sidebar.text_input if box.label == "🔎 Search your chats")
    return ok(box.set_value(text).run())


def sidebar_texts(app: AppTest) -> list[str]:
    return [text.value for text in app.sidebar.text]


def conversation(memory: ChatMemory, user: str, *exchanges: str) -> str:
    cid = new_conversation_id()
    for prompt in exchanges:
        memory.append(user, Role.USER, prompt, conversation_id=cid)
        memory.append(user, Role.ASSISTANT, f"Echo: {prompt}", conversation_id=cid)
    return cid


def keys_of(redis_client: redis.Redis, user: str) -> list[str]:
    return list(redis_client.scan_iter(match=f"*{user_tag(user)}*", count=1000))


# --- search --------------------------------------------------------------------------------


def test_search_with_query_syntax_characters_finds_only_your_messages_as_plain_text(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    conversation(memory, LUKE, "Plans for the weekend")
    cid = conversation(memory, LUKE, HOSTILE_TEXT, "**bold** and <b>html</b> about redis")
    conversation(memory, LEIA, HOSTILE_TEXT)
    memory.rename_conversation(LUKE, cid, "Talk about *Redis*")
    app = start_app()
    assert not any(b.label == "Open" for b in app.button), "an empty box shows nothing"

    search(app, HOSTILE)
    assert not app.sidebar.error
    shown = sidebar_texts(app)
    assert shown.count(HOSTILE_TEXT) == 1  # Luke's own message only, never Leia's
    assert "Talk about *Redis*" in shown  # the title as typed, not Markdown
    roles = sorted(c.value.split(" · ")[0] for c in app.sidebar.caption if " UTC" in c.value)
    # Any word may match: that exchange, and the other one about redis; all Luke's.
    assert roles == ["Assistant", "Assistant", "You", "You"]
    assert sum(b.label == "Open" for b in app.button) == 4

    search(app, "bold html")
    assert "**bold** and <b>html</b> about redis" in sidebar_texts(app)  # inert, verbatim
    for query in ("@content:{x}", "*", "|", "-redis", "'\"", "{}"):
        search(app, query)
        assert not app.sidebar.error, query
    search(app, "")
    assert not any(b.label == "Open" for b in app.button)
    assert not any("No message of yours" in c.value for c in app.sidebar.caption)


def test_opening_a_hit_shows_its_conversation_at_that_message_even_5000_back(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    long = new_conversation_id()
    memory.append(LUKE, Role.USER, "the needle is here", conversation_id=long)
    for number in range(4_999):
        memory.append(LUKE, Role.ASSISTANT, f"filler {number}", conversation_id=long)
    other = conversation(memory, LUKE, "a newer chat")
    app = start_app(c=other)
    search(app, "needle")
    click(app, "Open")
    assert app.query_params["c"] == [long] or app.query_params["c"] == long
    needle = memory.messages(LUKE, long)[0]
    assert str(app.query_params["m"]).strip("[]'") == str(needle.seq)
    texts = [m.text[0].value for m in app.chat_message if m.text]
    assert "the needle is here" in texts
    marks = [c.value for c in app.main.caption if c.value == FOUND_HERE]
    assert marks == [FOUND_HERE]
    assert len(app.chat_message) < 5_000 + 1


def test_a_reload_with_a_message_in_the_url_shows_it(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    cid = new_conversation_id()
    memory.append(LUKE, Role.USER, "an old remark", conversation_id=cid)
    for number in range(120):
        memory.append(LUKE, Role.ASSISTANT, f"later {number}", conversation_id=cid)
    seq = memory.messages(LUKE, cid)[0].seq
    app = start_app(c=cid, m=str(seq))
    assert "an old remark" in [m.text[0].value for m in app.chat_message if m.text]
    app = start_app(c=cid, m="999999999")  # no such message: the newest page, no mark
    assert "an old remark" not in [m.text[0].value for m in app.chat_message if m.text]
    assert not [c for c in app.main.caption if c.value == FOUND_HERE]


def test_search_on_a_cluster_without_coordinator_says_it_is_unavailable(
    app_env: str, redis_cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plain URL plus REDIS_CLUSTER: the demo-storage check cannot parse "redis+cluster://".
    monkeypatch.setenv("REDIS_URL", redis_cluster_url.replace("redis+cluster://", "redis://"))
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    app = start_app()
    search(app, "anything")
    assert any("Search is unavailable" in info.value for info in app.sidebar.info)
    assert not app.sidebar.error


# --- import and export ---------------------------------------------------------------------


def upload(app: AppTest, name: str, content: bytes) -> AppTest:
    return ok(app.file_uploader[0].set_value((name, content, "application/json")).run())


def test_import_our_export_and_chatgpts_then_a_bad_file_changes_nothing(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    conversation(memory, LEIA, "first", "second")
    conversation(memory, LEIA, "third")
    exported = export_json(memory, LEIA).encode()
    app = start_app()
    assert {"All chats (JSON)", "All chats (Markdown)"} <= download_labels(app)

    upload(app, "leia.json", exported)
    assert app.sidebar.success[0].value == (
        r"Imported 2 conversations with 6 messages from leia\.json."
    )
    assert sorted(m.content for m in memory_messages(memory, LUKE)) == sorted(
        m.content for m in memory_messages(memory, LEIA)
    )
    upload(app, "conversations.json", (SUPPORT / "chatgpt_conversations.json").read_bytes())
    assert app.sidebar.success[0].value.startswith("Imported ")

    before = sorted(m.content for m in memory_messages(memory, LUKE))
    document = json.loads(exported)
    document["conversations"][1]["messages"][0]["role"] = "[wizard](http://evil.example)"
    upload(app, "**bad**.json", json.dumps(document).encode())
    error = app.sidebar.error[0].value  # names the record; the file's text shown inert
    assert error.startswith(r"Importing \*\*bad\*\*\.json failed: ")
    assert r"\[wizard\]\(http\://evil\.example\)" in error
    assert sorted(m.content for m in memory_messages(memory, LUKE)) == before

    upload(app, "huge.json", b" " * 20_000_001)
    assert "at most 20 MB" in app.sidebar.error[0].value


def test_importing_the_same_file_again_adds_nothing_and_says_so(
    app_env: str, redis_client: redis.Redis
) -> None:
    """Was: every re-import duplicated every conversation, pins included."""
    memory = stored(redis_client, app_env)
    cid = conversation(memory, LEIA, "first", "second")
    memory.pin_conversation(LEIA, cid, True)
    exported = export_json(memory, LEIA).encode()
    app = start_app()
    upload(app, "leia.json", exported)
    assert app.sidebar.success[0].value.startswith("Imported 1 conversation with 4 messages")
    upload(app, "leia.json", exported)
    assert app.sidebar.success[0].value == (
        r"leia\.json holds nothing new: its 1 conversation is already here (imported before). "
        "Nothing was added."
    )
    listing = memory.conversations(LUKE)
    assert listing.total == 1 and len(listing.pinned) == 1


def test_the_open_conversation_can_be_downloaded(app_env: str, redis_client: redis.Redis) -> None:
    memory = stored(redis_client, app_env)
    cid = conversation(memory, LUKE, "hello")
    app = start_app(c=cid)
    assert {"This chat (JSON)", "This chat (Markdown)"} <= download_labels(app)


def download_labels(app: AppTest) -> set[str]:
    return {b.label for b in app.get("download_button") if isinstance(b, DownloadButton)}


def memory_messages(memory: ChatMemory, user: str) -> list[Message]:
    listing = memory.conversations(user)
    return [
        message
        for info in (*listing.pinned, *listing.recent)
        for message in memory.messages(user, info.id)
    ]


# --- erase ---------------------------------------------------------------------------------


def erase(app: AppTest) -> AppTest:
    click(app, "Erase all my data…")
    return click(app, "Yes, erase everything")


def test_erase_me_asks_with_the_amounts_then_leaves_no_key_and_starts_fresh(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    cid = conversation(memory, LUKE, "one", "two")
    conversation(memory, LUKE, "three")
    conversation(memory, LEIA, "Leia stays")
    memory.set_window_size(LUKE, 7)
    app = start_app(c=cid)
    assert keys_of(redis_client, LUKE) and memory.search(LUKE, "one")

    click(app, "Erase all my data…")
    warning = app.sidebar.warning[0].value
    assert "2 conversations with 6 messages" in warning
    click(app, "Cancel")
    assert memory_messages(memory, LUKE)

    erase(app)
    assert keys_of(redis_client, LUKE) == []
    hits = redis_client.ft(app_env).search(Query(f"@user_tag:{{{user_tag(LUKE)}}}"))
    assert hits.total == 0 and memory.search(LUKE, "one") == []
    assert app.sidebar.success[0].value.startswith("Everything stored for you was erased (2 ")
    assert not app.chat_message and "Start a conversation" in app.markdown[0].value
    assert [m.content for m in memory_messages(memory, LEIA)] == ["Leia stays", "Echo: Leia stays"]
    ok(app.run())
    assert keys_of(redis_client, LUKE) == []  # reading the fresh page stores nothing


@pytest.fixture
def easyauth(app_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AUTH_MODE", "easyauth")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    streamlit_config.set_option("server.trustedUserHeaders", dict(EASYAUTH_HEADERS))
    yield app_env
    streamlit_config.set_option("server.trustedUserHeaders", {})


def test_erase_in_easyauth_and_never_offered_to_nobody(
    easyauth: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, easyauth)
    conversation(memory, "oid-luke", "mine")
    nobody = start_app({"oid": None, "name": None})
    assert not [b for b in nobody.button if b.label == "Erase all my data…"]
    app = start_app({"oid": "oid-luke", "name": "luke@example.com"})
    erase(app)
    assert keys_of(redis_client, "oid-luke") == []
