"""Edit any prompt, the earlier version kept and switched back with "< 1/2 >" (issue 28), in
the real app (AppTest) against a real Redis and a real local OpenAI-protocol server."""

from __future__ import annotations

import redis
from streamlit.testing.v1 import AppTest

from memory import Role
from memory.keys import KeyLayout
from memory.reply_stream import ReplyStreams
from tests.support.openai_server import ChatCompletionsServer
from tests.test_app import click, say, start_app, stored, transcript
from tests.test_app_conversations import open_id


def press(app: AppTest, key: str) -> AppTest:
    app.button(key=key).click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def edit(app: AppTest, seq: int, text: str) -> AppTest:
    press(app, f"edit:{seq}")
    editor = next(t for t in app.text_area if t.label == "Edit your message")
    editor.set_value(text).run()
    return click(app, "Send edited message")


def versions(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if m.value.count("/") == 1 and m.value[0].isdigit()]


def test_every_prompt_has_an_edit_and_editing_the_first_keeps_the_old_version(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    say(app, "one")
    say(app, "two")
    assert [b.key for b in app.button if b.label == "✏️ Edit"] == ["edit:1", "edit:3"]
    edit(app, 1, "uno")
    assert transcript(app) == [("user", "uno"), ("assistant", "Echo: uno")]
    assert [m["content"] for m in online_env.last_request.messages[1:]] == ["uno"]
    assert versions(app) == ["2/2"]
    assert app.button(key="branch:0:next").disabled

    press(app, "branch:0:previous")
    assert transcript(app) == [
        ("user", "one"), ("assistant", "Echo: one"), ("user", "two"), ("assistant", "Echo: two"),
    ]  # fmt: skip
    assert versions(app) == ["1/2"]
    memory = stored(redis_client, app_env)
    assert memory.messages("Luke", open_id(app))[0].content == "one"
    requests = len(online_env.chat_requests)
    press(app, "branch:0:next")
    assert transcript(app) == [("user", "uno"), ("assistant", "Echo: uno")]
    assert len(online_env.chat_requests) == requests  # a switch asks the model nothing


def test_the_edit_of_a_middle_prompt_sends_only_what_is_before_it(
    online_env: ChatCompletionsServer, app_env: str
) -> None:
    app = start_app()
    for text in ("one", "two", "three"):
        say(app, text)
    edit(app, 3, "deux")
    assert [m["content"] for m in online_env.last_request.messages[1:]] == [
        "one", "Echo: one", "deux",
    ]  # fmt: skip
    assert transcript(app)[2:] == [("user", "deux"), ("assistant", "Echo: deux")]
    assert versions(app) == ["2/2"]


def test_a_switch_from_a_page_the_conversation_moved_on_from_changes_nothing(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    say(app, "one")
    edit(app, 1, "uno")
    memory = stored(redis_client, app_env)
    cid = open_id(app)
    memory.append("Luke", Role.USER, "from another tab", conversation_id=cid)
    press(app, "branch:0:previous")
    assert any("changed since the page showed it" in e.value for e in app.error)
    assert [m.content for m in memory.messages("Luke", cid)] == [
        "uno", "Echo: uno", "from another tab",
    ]  # fmt: skip
    assert transcript(app)[-1] == ("user", "from another tab")


def test_a_stale_edit_keeps_the_text_and_changes_nothing(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    say(app, "one")
    press(app, "edit:1")
    memory = stored(redis_client, app_env)
    cid = open_id(app)
    memory.append("Luke", Role.USER, "from another tab", conversation_id=cid)
    next(t for t in app.text_area if t.label == "Edit your message").set_value("uno").run()
    click(app, "Send edited message")
    assert "nothing was removed" in app.error[0].value
    assert [t.value for t in app.text_area if t.label == "Your unsent message"] == ["uno"]
    assert [m.content for m in memory.messages("Luke", cid)] == [
        "one", "Echo: one", "from another tab",
    ]  # fmt: skip
    assert memory.conversation("Luke", cid).branches == ()


def test_a_switch_while_a_reply_streams_is_refused_and_says_why(
    online_env: ChatCompletionsServer, app_env: str, redis_client: redis.Redis
) -> None:
    app = start_app()
    say(app, "one")
    edit(app, 1, "uno")
    cid = open_id(app)
    replies = ReplyStreams(redis_client, KeyLayout(app_env))
    assert replies.claim("Luke", cid, "from-another-tab", "instance-2") is None
    press(app, "branch:0:previous")
    assert any("still being written" in e.value for e in app.error)
    assert transcript(app) == [("user", "uno"), ("assistant", "Echo: uno")]
