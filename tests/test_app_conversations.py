"""Conversations in the app (issue 16): New chat, the list, switching, rename, pin, delete,
titles, edit and regenerate — through AppTest on the real local Redis and fake model server."""

from __future__ import annotations

import re
import time

import pytest
import redis
from streamlit.testing.v1 import AppTest

from memory import ChatMemory, ConversationInfo, Role
from memory.keys import KeyLayout
from memory.reply_stream import ReplyStreams
from tests.support.conversations import opened
from tests.support.openai_server import ChatCompletionsServer, Fault
from tests.test_app import APP, click, say, start_app, stored, transcript, unsent_key

TITLE = "Title of this conversation"


def click_last(app: AppTest, label: str) -> AppTest:
    """The last button so labelled (✏️ Edit is under every prompt: the last prompt's)."""
    matches = [b for b in app.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in app.button]}"
    matches[-1].click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def open_id(app: AppTest) -> str:
    return str(app.query_params["c"])


def entries(app: AppTest) -> list[str]:
    """The sidebar's conversation entries, in order, as they read on the page."""
    return [
        re.sub(r"\\(.)", r"\1", b.label)
        for b in app.sidebar.button
        if str(b.key).startswith("conversation:")
    ]


def open_entry(app: AppTest, conversation_id: str) -> None:
    app.sidebar.button(key=f"conversation:{conversation_id}").click().run()
    assert not app.exception


def info(memory: ChatMemory, user: str, conversation_id: str) -> ConversationInfo:
    listing = memory.conversations(user)
    return next(i for i in (*listing.pinned, *listing.recent) if i.id == conversation_id)


def two_chats(first: str, second: str) -> tuple[AppTest, str, str]:
    """A fresh page with two conversations, one prompt each; the second is open."""
    app = start_app()
    say(app, first)
    first_id = open_id(app)
    click(app, "New chat")
    say(app, second)
    return app, first_id, open_id(app)


def test_new_chat_opens_empty_with_the_welcome_and_stores_nothing_until_a_prompt(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "first chat")
    first = open_id(app)
    click(app, "New chat")
    assert open_id(app) != first
    assert transcript(app) == []
    assert any("Start a conversation" in m.value for m in app.markdown)
    assert memory.conversations("Luke").total == 1  # nothing stored for the New chat
    assert entries(app) == ["first chat"]  # one "New chat" entry, marked as the open one
    (new_chat,) = [b for b in app.sidebar.button if "New chat" in b.label]
    assert new_chat.proto.type == "primary"
    say(app, "second chat")
    assert memory.conversations("Luke").total == 2
    assert entries(app) == ["second chat", "first chat"]  # most recently active first
    assert app.sidebar.button(key="conversation:" + open_id(app)).proto.type == "primary"


def test_switching_opens_the_other_conversation_and_its_context_alone(
    online_env: ChatCompletionsServer,
) -> None:
    app, cats, _ = two_chats("about cats", "about dogs")
    open_entry(app, cats)
    assert open_id(app) == cats
    assert transcript(app) == [("user", "about cats"), ("assistant", "Echo: about cats")]
    say(app, "more cats")
    sent = [m["content"] for m in online_env.last_request.messages[1:]]
    assert sent == ["about cats", "Echo: about cats", "more cats"]
    assert entries(app)[0] == "Echo: User: about cats"  # the fake model's title


def test_an_unsent_draft_waits_in_the_conversation_it_was_typed_in(
    app_env: str, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    """Was: the draft belonged to the user, so after switching it showed (and was sent) in
    the conversation open then."""
    monkeypatch.setenv("MAX_PROMPT_CHARS", "100")
    app, cats, dogs = two_chats("about cats", "about dogs")
    say(app, "dogs " * 30)  # too long: kept as a draft of this conversation
    assert [t for t in app.text_area if t.key == unsent_key("Luke")]
    open_entry(app, cats)
    assert not [t for t in app.text_area if t.key == unsent_key("Luke")]
    say(app, "more cats")  # storing here keeps the other conversation's draft
    open_entry(app, dogs)
    box = app.text_area(key=unsent_key("Luke"))
    assert box.value == "dogs " * 30
    box.input("short dogs").run()
    click(app, "Send")
    memory = stored(redis_client, app_env)
    assert [m.content for m in memory.messages("Luke", dogs)][-2] == "short dogs"
    assert "short dogs" not in [m.content for m in memory.messages("Luke", cats)]


def test_rename_saves_at_once_and_an_empty_title_is_refused(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "hello")
    box = next(t for t in app.sidebar.text_input if t.label == TITLE)
    assert box.value == "hello"
    box.set_value("Holiday plans").run()
    renamed = info(memory, "Luke", open_id(app))
    assert (renamed.title, renamed.title_source) == ("Holiday plans", "user")
    assert entries(app) == ["Holiday plans"]
    box = next(t for t in app.sidebar.text_input if t.label == TITLE)
    box.set_value("   ").run()
    assert "Renaming the conversation failed" in app.sidebar.error[0].value
    assert info(memory, "Luke", open_id(app)).title == "Holiday plans"
    assert next(t for t in app.sidebar.text_input if t.label == TITLE).value == "Holiday plans"


def test_a_pinned_conversation_is_listed_first(app_env: str, redis_client: redis.Redis) -> None:
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "old one")
    old = open_id(app)
    click(app, "📌 Pin")
    assert info(memory, "Luke", old).pinned
    click(app, "New chat")
    say(app, "new one")
    assert entries(app) == ["📌 old one", "new one"]
    open_entry(app, old)
    click(app, "Unpin")
    assert not info(memory, "Luke", old).pinned
    assert entries(app) == ["new one", "old one"]


def test_delete_asks_with_title_and_count_then_opens_the_most_recent_left(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    app, kept, dropped = two_chats("keep me", "drop me")
    click(app, "🗑️ Delete…")
    assert "Delete “drop me” and its 2 messages?" in app.sidebar.warning[0].value
    click(app, "Cancel")
    assert memory.conversations("Luke").total == 2
    click(app, "🗑️ Delete…")
    click(app, "Yes, delete it")
    assert [i.id for i in memory.conversations("Luke").recent] == [kept]
    assert memory.count("Luke", dropped) == 0
    assert open_id(app) == kept
    assert transcript(app)[0] == ("user", "keep me")
    click(app, "🗑️ Delete…")
    click(app, "Yes, delete it")
    assert memory.conversations("Luke").total == 0
    assert open_id(app) not in (kept, dropped) and transcript(app) == []
    assert any("Start a conversation" in m.value for m in app.markdown)


def test_a_malformed_conversation_in_the_url_says_so_and_opens_a_new_chat(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    memory.append("Luke", Role.USER, "stored before", conversation_id="abc")
    app = AppTest.from_file(APP, default_timeout=30)
    app.query_params["c"] = "../NOT an id"
    app.run()
    assert not app.exception
    assert "could not be opened" in app.warning[-1].value
    assert open_id(app) not in ("abc", "../NOT an id") and transcript(app) == []
    app.query_params["c"] = "abc"
    app.run()
    assert transcript(app) == [("user", "stored before")]


def test_show_more_lists_the_rest(app_env: str, redis_client: redis.Redis) -> None:
    memory = stored(redis_client, app_env)
    for number in range(22):
        memory.append("Luke", Role.USER, f"chat {number}", conversation_id=f"{number + 1:x}")
    app = start_app()
    assert len(entries(app)) == 20
    click(app, "Show more (2 more)")
    assert len(entries(app)) == 22 and entries(app)[-1] == "chat 0"


def wait_for_title(memory: ChatMemory, conversation_id: str, source: str) -> ConversationInfo:
    deadline = time.monotonic() + 10
    while (found := info(memory, "Luke", conversation_id)).title_source != source:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def test_offline_the_title_is_the_first_words(app_env: str, redis_client: redis.Redis) -> None:
    app = start_app()
    say(app, "Plan a three day trip to Lisbon with my two kids")
    titled = info(stored(redis_client, app_env), "Luke", open_id(app))
    assert titled.title_source == "words"
    assert titled.title.startswith("Plan a three day trip to Lisbon")


def test_the_first_words_title_ends_with_a_whole_phrase(
    app_env: str, redis_client: redis.Redis
) -> None:
    """Was: "Hi! My name is Ana. What is the", cut mid-phrase."""
    app = start_app()
    say(app, "Hi! My name is Ana. What is the capital of France?")
    titled = info(stored(redis_client, app_env), "Luke", open_id(app))
    assert (titled.title, titled.title_source) == ("Hi! My name is Ana", "words")
    assert entries(app) == ["Hi! My name is Ana"]


def test_the_model_titles_a_conversation_once_after_its_first_reply(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    online_env.configure(title_reply="Trip to Lisbon")
    app = start_app()
    say(app, "Plan a three day trip to Lisbon")
    assert transcript(app)[-1] == ("assistant", "Echo: Plan a three day trip to Lisbon")
    memory = stored(redis_client, app_env)
    assert wait_for_title(memory, open_id(app), "model").title == "Trip to Lisbon"
    say(app, "and a fourth day?")
    assert len(online_env.title_requests) == 1 and len(online_env.chat_requests) == 2
    app.run()
    assert entries(app) == ["Trip to Lisbon"]


def test_a_title_request_is_a_model_request_within_the_users_limits(
    online_env: ChatCompletionsServer,
    app_env: str,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Was: the title call bypassed the per-user limits. With one request a minute, the
    reply uses it and the title is not asked for: the first words stay."""
    monkeypatch.setenv("LIMIT_REQUESTS_PER_MINUTE", "1")
    app = start_app()
    say(app, "Plan a three day trip to Lisbon")
    assert transcript(app)[-1] == ("assistant", "Echo: Plan a three day trip to Lisbon")
    time.sleep(1.0)  # the title thread has run
    assert online_env.title_requests == [] and len(online_env.chat_requests) == 1
    titled = info(stored(redis_client, app_env), "Luke", open_id(app))
    assert titled.title_source == "words"


def test_a_failing_title_call_keeps_the_reply_and_the_first_words(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    online_env.configure(title_fault=Fault.HTTP_500)
    app = start_app()
    say(app, "What is a sorted set")
    assert transcript(app)[-1] == ("assistant", "Echo: What is a sorted set")
    memory = stored(redis_client, app_env)
    deadline = time.monotonic() + 10
    while not online_env.title_requests:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # the failed title call's thread has finished
    titled = info(memory, "Luke", open_id(app))
    assert (titled.title, titled.title_source) == ("What is a sorted set", "words")
    assert [m.content for m in memory.messages("Luke", open_id(app))][-1].startswith("Echo")


def test_edit_replaces_the_last_prompt_and_its_reply(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    say(app, "one")
    say(app, "twoo")
    click_last(app, "✏️ Edit")
    editor = next(t for t in app.text_area if t.label == "Edit your message")
    assert editor.value == "twoo"
    editor.set_value("two").run()
    click(app, "Send edited message")
    expected = [("user", "one"), ("assistant", "Echo: one"), ("user", "two")]
    assert transcript(app) == [*expected, ("assistant", "Echo: two")]
    memory = stored(redis_client, app_env)
    assert [m.content for m in memory.messages("Luke", open_id(app))] == [
        "one",
        "Echo: one",
        "two",
        "Echo: two",
    ]
    assert [m["content"] for m in online_env.last_request.messages[1:]] == [
        "one",
        "Echo: one",
        "two",
    ]


def test_regenerate_replaces_the_last_reply(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    say(app, "tell me a joke")
    online_env.configure(reply="A better joke")
    click(app, "↻ Regenerate")
    assert transcript(app) == [("user", "tell me a joke"), ("assistant", "A better joke")]
    memory = stored(redis_client, app_env)
    assert [m.content for m in memory.messages("Luke", open_id(app))] == [
        "tell me a joke",
        "A better joke",
    ]
    assert [m["content"] for m in online_env.last_request.messages[1:]] == ["tell me a joke"]


def test_an_edit_that_cannot_be_stored_keeps_the_edited_text(
    app_env: str, redis_client: redis.Redis
) -> None:
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "first")
    click_last(app, "✏️ Edit")
    cid = open_id(app)
    memory.append("Luke", Role.USER, "from another tab", conversation_id=cid)
    memory.append("Luke", Role.ASSISTANT, "its reply", conversation_id=cid)
    next(t for t in app.text_area if t.label == "Edit your message").set_value("edited")
    click(app, "Send edited message")
    assert "nothing was removed" in app.error[0].value
    assert [t.value for t in app.text_area if t.label == "Your unsent message"] == ["edited"]
    assert memory.count("Luke", cid) == 4
    assert opened(memory, "Luke") == cid


# --- stale targets: what the page showed is what an action removes, or nothing ------------------


def test_a_regenerate_clicked_after_another_prompt_was_sent_removes_nothing(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    """Was: A, its reply, then B sent (its reply still streaming) and the Regenerate still on
    the page under A's reply clicked: A's reply and B were deleted."""
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "A")
    memory.append("Luke", Role.USER, "B", conversation_id=open_id(app))  # sent meanwhile
    click(app, "↻ Regenerate")
    assert "Regenerating the reply failed" in app.error[0].value
    assert "changed" in app.error[0].value
    assert [m.content for m in memory.messages("Luke", open_id(app))] == ["A", "Echo: A", "B"]
    assert transcript(app)[-1] == ("user", "B")
    assert len(online_env.chat_requests) == 1


def test_an_edit_sent_after_the_conversation_moved_on_removes_nothing_and_keeps_the_text(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    """Was: the edit removed whatever the last two messages had become meanwhile."""
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "A")
    click_last(app, "✏️ Edit")
    cid = open_id(app)
    memory.remove_last("Luke", cid, memory.messages("Luke", cid)[-1].seq)  # another tab
    memory.append("Luke", Role.ASSISTANT, "a regenerated reply", conversation_id=cid)
    next(t for t in app.text_area if t.label == "Edit your message").set_value("A2")
    click(app, "Send edited message")
    assert "nothing was removed" in app.error[0].value
    assert [t.value for t in app.text_area if t.label == "Your unsent message"] == ["A2"]
    assert [m.content for m in memory.messages("Luke", cid)] == ["A", "a regenerated reply"]
    assert len(online_env.chat_requests) == 1


def test_clear_and_delete_confirmed_after_the_conversation_changed_remove_nothing(
    app_env: str, redis_client: redis.Redis
) -> None:
    """Was: "Yes" deleted the messages that arrived after the question counted them."""
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "one")
    cid = open_id(app)
    click(app, "Clear this conversation")
    memory.append("Luke", Role.USER, "from another tab", conversation_id=cid)
    click(app, "Yes, clear it")
    assert "Clearing the conversation failed" in app.sidebar.error[0].value
    assert memory.count("Luke", cid) == 3
    click(app, "🗑️ Delete…")
    memory.append("Luke", Role.ASSISTANT, "its reply", conversation_id=cid)
    click(app, "Yes, delete it")
    assert "Deleting the conversation failed" in app.sidebar.error[0].value
    assert memory.count("Luke", cid) == 4 and open_id(app) == cid


def test_clear_and_delete_while_a_reply_is_being_written_remove_nothing_and_say_why(
    app_env: str, redis_client: redis.Redis
) -> None:
    """Nothing on the page is disabled while a reply streams: clearing or deleting its
    conversation then would leave the reply stored alone, so each is refused."""
    memory = stored(redis_client, app_env)
    app = start_app()
    say(app, "one")
    cid = open_id(app)
    replies = ReplyStreams(redis_client, KeyLayout(app_env))
    assert replies.claim("Luke", cid, "from-another-tab", "instance-2") is None
    click(app, "Clear this conversation")
    click(app, "Yes, clear it")
    assert "still being written" in app.sidebar.error[0].value
    click(app, "🗑️ Delete…")
    click(app, "Yes, delete it")
    assert "still being written" in app.sidebar.error[0].value
    assert memory.count("Luke", cid) == 2 and open_id(app) == cid
