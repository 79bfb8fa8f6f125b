"""Issue 17 through AppTest: the page shows what Redis holds and asks before it deletes.

Each test failed on the app before the fix (named in its docstring); the browser journeys in
tests/browser/test_page_truth.py cover what needs a real page (Stop, live expiry, a phone).
"""

from __future__ import annotations

import pytest
import redis
from streamlit.testing.v1 import AppTest

from memory import Role
from tests.support.context_bar import context_bar, parts_of
from tests.support.conversations import SEEDED, opened_count, opened_messages
from tests.support.openai_server import ChatCompletionsServer
from tests.test_app import click, say, start_app, stored, transcript, unsent_key, user_key
from ui.sidebar import SETTINGS_KEY

OFFLINE_SETUP_TEXT = "OPENAI_BASE_URL"


def caption_texts(app: AppTest) -> list[str]:
    return [c.value for c in app.sidebar.caption]


def test_offline_replies_are_short_and_their_usage_is_counted(app_env: str) -> None:
    """Was: every reply repeated the setup text; usage read "0 in / 0 out over 0 replies"."""
    app = start_app()
    say(app, "first")
    say(app, "second")
    replies = [text for role, text in transcript(app) if role == "assistant"]
    assert len(replies) == 2
    assert all(OFFLINE_SETUP_TEXT not in text and len(text) < 160 for text in replies)
    total = next(c for c in caption_texts(app) if c.startswith("Your total"))
    assert "over 2 replies" in total and not total.startswith("Your total: 0 in")


def test_the_custom_box_holds_the_instruction_in_force_and_saves_without_a_button(
    online_env: ChatCompletionsServer,
) -> None:
    """Was: the box opened empty, only "Save instruction" saved, and the instruction in force
    was shown nowhere while "Custom…" was selected."""
    app = start_app()
    app.sidebar.selectbox[1].set_value("__custom__").run()
    in_force = app.sidebar.text[-1].value
    assert app.sidebar.text_area[0].value == in_force
    app.sidebar.text_area[0].input("Answer only in Latin.").run()
    assert app.sidebar.text[-1].value == "Answer only in Latin."
    assert not [b for b in app.button if b.label == "Save instruction"]
    say(app, "Salve")
    assert online_env.last_request.messages[0]["content"] == "Answer only in Latin."


def test_an_empty_custom_instruction_is_refused_next_to_the_box(app_env: str) -> None:
    app = start_app()
    app.sidebar.selectbox[1].set_value("__custom__").run()
    app.sidebar.text_area[0].input("   ").run()
    assert "cannot be empty" in app.sidebar.error[0].value
    assert (app.sidebar.text_area[0].value or "").strip()  # back to the instruction in force


def test_two_instances_show_what_redis_holds(app_env: str) -> None:
    """Was: tab B's slider still showed 5 after tab A set 2, and a stale "Apply retention"
    reset A's retention."""
    tab_a, tab_b = start_app(), start_app()
    tab_a.sidebar.slider[0].set_value(2).run()
    tab_a.sidebar.select_slider[0].set_value(3600).run()  # no messages yet: saved at once
    tab_b.run()
    assert tab_b.sidebar.slider[0].value == 2
    assert tab_b.sidebar.select_slider[0].value == 3600
    tab_a.sidebar.selectbox[1].set_value("brief").run()
    tab_b.run()
    assert tab_b.sidebar.selectbox[1].value == "brief"


def test_a_shorter_retention_asks_first_with_the_count(
    app_env: str, redis_client: redis.Redis
) -> None:
    """Was: applying 5 s deleted every earlier message 5 s later, unconfirmed."""
    memory = stored(redis_client, app_env)
    for number in range(3):
        memory.append("Luke", Role.USER, f"keep {number}", conversation_id=SEEDED)
    app = start_app()
    app.sidebar.select_slider[0].set_value(5).run()
    assert "Your 3 messages stored now will be deleted in 5 s" in app.sidebar.warning[0].value
    assert memory.retention("Luke").ttl_seconds is None
    assert app.sidebar.select_slider[0].value == 0  # the widget shows what is in force
    click(app, "Cancel")
    assert memory.retention("Luke").ttl_seconds is None and opened_count(memory, "Luke") == 3
    assert not app.sidebar.warning
    app.sidebar.select_slider[0].set_value(3600).run()
    click(app, "Apply retention")
    assert memory.retention("Luke").ttl_seconds == 3600
    app.sidebar.select_slider[0].set_value(86400).run()  # longer: deletes nothing sooner
    assert memory.retention("Luke").ttl_seconds == 86400 and not app.sidebar.warning


def test_an_over_long_prompt_stays_editable_in_full_and_can_be_discarded(
    app_env: str, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    """Was: only the first 5,000 characters could be seen, Resend was offered though it could
    not succeed, and nothing could discard it."""
    monkeypatch.setenv("MAX_PROMPT_CHARS", "6000")
    app = start_app()
    long_prompt = "word " * 2000  # 10,000 characters
    say(app, long_prompt)
    box = app.text_area(key=unsent_key("Luke"))
    assert box.value == long_prompt
    assert any("10,000 characters: 4,000 over the 6,000 limit" in c.value for c in app.caption)
    send = next(b for b in app.button if b.label == "Send")
    assert send.disabled
    box.input("short enough now").run()
    assert not next(b for b in app.button if b.label == "Send").disabled
    click(app, "Send")
    assert transcript(app)[0] == ("user", "short enough now")
    say(app, long_prompt)
    click(app, "Discard")
    assert not [t for t in app.text_area if t.key == unsent_key("Luke")]
    assert next(m.content for m in opened_messages(stored(redis_client, app_env), "Luke")) == (
        "short enough now"
    )


def test_clearing_my_history_asks_first_with_the_count(
    app_env: str, redis_client: redis.Redis
) -> None:
    """Was: "Clear my history" deleted in one click."""
    app = start_app()
    say(app, "one")
    click(app, "Clear this conversation")
    assert "Delete the 2 messages of “one”?" in app.sidebar.warning[0].value
    assert opened_count(stored(redis_client, app_env), "Luke") == 2
    click(app, "Cancel")
    assert opened_count(stored(redis_client, app_env), "Luke") == 2


def test_the_clear_all_confirmation_does_not_survive_a_user_switch(
    app_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_USERS", "Luke,Leia")
    app = start_app()
    click(app, "Clear ALL history…")
    assert any(b.label == "Yes, delete all" for b in app.button)
    app.sidebar.selectbox[0].set_value("Leia").run()
    assert not any(b.label == "Yes, delete all" for b in app.button)


def test_an_empty_chat_welcomes_with_example_prompts_that_send(app_env: str) -> None:
    """Was: the empty chat was a blank page."""
    app = start_app()
    examples = [b for b in app.button if b.label.endswith("?") or b.label.endswith(".")]
    assert len(examples) >= 3
    label = examples[0].label
    click(app, label)
    assert transcript(app)[0] == ("user", label)
    assert not [b for b in app.button if b.label == label]


def test_show_earlier_messages_works_past_the_read_limit(
    app_env: str, redis_client: redis.Redis
) -> None:
    """Was: the page size was capped at MAX_WINDOW (1,000), so the button did nothing."""
    memory = stored(redis_client, app_env)
    for number in range(1020):
        memory.append("Luke", Role.USER, f"line {number}", conversation_id=SEEDED)
    app = start_app()
    app.session_state[user_key(f"page:{SEEDED}", "Luke")] = 1000
    app.run()
    click(app, "Show earlier messages (20 more)")
    shown = [text for _, text in transcript(app)]
    assert len(shown) == 1020 and shown[0] == "line 0"


def test_the_context_chart_is_one_bar_with_every_message_on_hover(app_env: str) -> None:
    """Was: a column per message, half the labels missing, no tooltips."""
    app = start_app()
    say(app, "a question")
    app.sidebar.slider[0].set_value(2).run()
    bar = context_bar(app)
    sent = [s for s in bar.segments if s.part not in ("room for the reply", "free")]
    assert [s.role for s in sent] == ["system", "user", "assistant"]
    hover = ["message 1 of 2 (user)", f"{sent[1].tokens} tokens", "a question"]
    assert sent[1].hover.splitlines() == hover
    metric = int(str(app.sidebar.metric[0].value).replace(",", ""))
    assert sum(s.tokens for s in sent) + 3 == metric
    assert all(s.hover for s in bar.segments)  # every segment says what it is on hover
    assert bar.bars == 1  # one bar holding every segment, not a column per message


def test_the_context_chart_is_the_whole_budget_in_labelled_parts(app_env: str) -> None:
    """Was: a 20-25 px strip of the request alone, its parts named only on hover."""
    app = start_app()
    say(app, "a question")
    bar = context_bar(app)
    tokens = parts_of(bar)
    assert list(tokens) == ["instruction", "history", "room for the reply", "free"]
    assert tokens["room for the reply"] == 1024  # LLM_MAX_TOKENS
    request = int(str(app.sidebar.metric[0].value).replace(",", ""))
    assert sum(tokens.values()) + 3 == 128_000
    assert tokens["free"] == 128_000 - 1024 - request
    # every part is named with its tokens in the legend, readable without hovering
    labels = [f"{part} {count:,}" for part, count in tokens.items()]
    assert bar.legend == labels
    assert bar.name == "The model's context, 128,000 tokens: " + ", ".join(labels)


def test_the_context_chart_shows_hostile_text_as_text(app_env: str) -> None:
    """A message is hover text in the bar's HTML, never markup, never the attribute's end."""
    hostile = 'Look" onmouseover="alert(1)" x="<img src=x onerror=alert(2)> & <b>bold</b>'
    app = start_app()
    say(app, hostile)
    bar = context_bar(app)
    (prompt,) = [s for s in bar.segments if s.role == "user"]
    assert prompt.hover.splitlines()[-1] == hostile
    assert set(bar.tags) == {"style", "div", "ul", "li", "span"}  # no <img>, no <b>
    assert not any(name.startswith("on") for name in bar.attributes)


def test_a_new_page_shows_the_chat_search_and_list_and_opens_settings_on_request(
    app_env: str,
) -> None:
    """The settings panel starts closed and builds none of its controls until opened; once
    open it stays open, also for another user of the picker."""
    app = start_app(settings=False)
    say(app, "hello")
    assert transcript(app)[0] == ("user", "hello")
    assert [b.label for b in app.sidebar.button if str(b.key).startswith("conversation:")] == [
        "hello"
    ]
    assert app.sidebar.text_input[0].label == "🔎 Search your chats"
    assert not app.sidebar.slider and not app.sidebar.metric and not app.get("download_button")
    app.sidebar.toggle(key=SETTINGS_KEY).set_value(True).run()
    assert app.sidebar.slider[0].label == "Length of chat history"
    assert app.sidebar.metric[0].label == "Chat history tokens"
    app.sidebar.selectbox[0].set_value("Leia").run()
    assert app.sidebar.slider and app.sidebar.toggle(key=SETTINGS_KEY).value
