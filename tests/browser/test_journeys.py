"""The app's journeys in headless Chromium: one app (`make run`) for the module, one demo user
per journey, the fake model server as the model, and Redis read back to check what is stored."""

from __future__ import annotations

import pytest
from playwright.sync_api import ViewportSize, expect

from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, Role
from memory.recall import Recall, RecallScope
from tests.browser.harness import (
    AppServer,
    OpenPage,
    StartApp,
    StreamlitPage,
    as_user,
    open_sidebar,
    with_fake_model,
)
from tests.support.conversations import opened, opened_count, opened_messages
from tests.support.openai_server import ChatCompletionsServer, Fault
from tests.support.tokens import count_request_tokens

pytestmark = pytest.mark.browser

PRESETS = load_presets()
USERS = (
    *("Luke", "Leia", "Han", "Rey", "Finn", "Poe"),
    *("Chewie", "Lando", "Yoda", "Ahsoka", "Cassian"),
)
LLM_TIMEOUT_SECONDS = 2
HISTORY = "Length of chat history"
TOKENS = "Chat history tokens"
TTL = "Time to live of chat entries"
# The segments of the context bar (one per message, its detail in its hover text).
CHART_SEGMENTS = ".context-bar .cb-seg"
DESKTOP = ViewportSize(width=1400, height=900)
PHONE = ViewportSize(width=390, height=844)


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(
        with_fake_model(
            fake_model,
            LLM_TIMEOUT_SECONDS=str(LLM_TIMEOUT_SECONDS),
            DEMO_USERS=",".join(USERS),
        )
    )


def contents(memory: ChatMemory, user: str) -> list[tuple[str, str]]:
    return [(m.role.value, m.content) for m in opened_messages(memory, user)]


def exchange(prompt: str) -> list[tuple[str, str]]:
    return [("user", prompt), ("assistant", f"Echo: {prompt}")]


def test_a_streamed_reply_and_the_prompt_survive_a_reload(
    page: StreamlitPage, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    assert page.selected("User") == "Luke"  # the first demo user, as after any reload
    assert page.transcript() == []
    prompt = "Tell me how Redis keeps this whole chat"
    reply = f"Echo: {prompt}"
    fake_model.configure(chunk_delay=0.1)

    page.send(prompt, wait=False)
    expect(page.messages.first).to_contain_text(prompt)
    # Part of the reply is on the page before the rest arrives: it streams.
    page.page.wait_for_function(
        """reply => {
            const messages = document.querySelectorAll("[data-testid='stChatMessage']");
            const last = messages[messages.length - 1];
            if (!last || !last.querySelector("[data-testid='stChatMessageAvatarAssistant']"))
                return false;
            const content = last.querySelector("[data-testid='stChatMessageContent']");
            const text = content ? content.innerText.trim() : "";
            return text.length > 0 && text.length < reply.length && reply.startsWith(text);
        }""",
        arg=reply,
        polling="raf",
    )
    page.wait_for_app_idle()
    assert page.transcript() == [("user", prompt), ("assistant", reply)]

    request = fake_model.chat_requests[-1]
    assert request.stream and request.messages[-1] == {"role": "user", "content": prompt}
    assert contents(stored, "Luke") == [("user", prompt), ("assistant", reply)]

    page.reload()
    assert page.selected("User") == "Luke"
    assert page.transcript() == [("user", prompt), ("assistant", reply)]


def test_each_demo_user_sees_only_their_own_conversation(page: StreamlitPage) -> None:
    as_user(page, "Leia")
    page.send("I am Leia")
    assert page.transcript() == exchange("I am Leia")

    as_user(page, "Han")
    assert page.transcript() == []
    page.send("I am Han")
    assert page.transcript() == exchange("I am Han")

    as_user(page, "Leia")
    assert page.transcript() == exchange("I am Leia")
    as_user(page, "Han")
    assert page.transcript() == exchange("I am Han")


def test_the_model_gets_the_instruction_and_the_last_n_messages_and_the_metric_counts_them(
    page: StreamlitPage, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    # Rey turned recall off: earlier messages are recalled otherwise (tests/test_recall.py).
    Recall(stored, stored.redis_client, stored.index_name).set_scope("Rey", RecallScope.OFF)
    as_user(page, "Rey")
    for number in range(4):
        page.send(f"question {number}")
    page.press_on_slider(HISTORY, "Home", "ArrowRight", "ArrowRight")
    assert page.slider_value(HISTORY) == "3"
    assert stored.conversation("Rey", opened(stored, "Rey")).window_size == 3
    system = {"role": "system", "content": PRESETS[DEFAULT_PRESET].text}

    # The metric is the request the stored history makes now: instruction + last 3 messages,
    # less the reply they start with (strict chat templates want a prompt first).
    shown = [{"role": role, "content": text} for role, text in page.transcript()]
    assert page.metric(TOKENS) == count_request_tokens([system, *shown[-2:]])
    # The chart's segments follow the request: the instruction, then the messages oldest first,
    # then the reply's room and what is free; each part named with its tokens below the bar.
    segments = page.sidebar.locator(CHART_SEGMENTS)
    expect(segments).to_have_count(5)
    labels = segments.evaluate_all("marks => marks.map(mark => mark.getAttribute('title'))")
    parts = segments.evaluate_all("marks => marks.map(mark => mark.dataset.part)")
    assert parts == ["instruction", "history", "history", "room for the reply", "free"], parts
    assert [("system instruction" in labels[0]), ("message 2 of 2 (assistant)" in labels[2])] == [
        True,
        True,
    ], labels
    assert "message 1 of 2 (user)" in labels[1], labels  # each message's detail on hover
    assert "room for more history" in labels[4], labels
    bar = page.sidebar.get_by_role("img", name="The model's context, 128,000 tokens")
    expect(bar).to_be_visible()
    legend = page.sidebar.locator(".context-bar .cb-legend")
    for part in ("instruction", "history", "room for the reply", "free"):
        expect(legend).to_contain_text(part)

    page.send("question 4")
    sent = fake_model.chat_requests[-1].messages
    assert sent == [
        system,
        {"role": "user", "content": "question 3"},
        {"role": "assistant", "content": "Echo: question 3"},
        {"role": "user", "content": "question 4"},
    ]
    reply = {"role": "assistant", "content": "Echo: question 4"}
    assert page.metric(TOKENS) == count_request_tokens([sent[0], sent[3], reply])

    # With a prompt awaiting its reply, the metric is exactly the next request: read it, then
    # compare with what the server gets when the reply is retried.
    fake_model.set_fault(Fault.HTTP_500)
    page.send("question 5")
    expect(page.error_alerts()).to_contain_text("HTTP 500")
    expected = page.metric(TOKENS)
    fake_model.clear_faults()
    fake_model.clear()
    page.click("↻ Retry reply")
    (retried,) = fake_model.chat_requests
    assert retried.messages == [
        system,
        {"role": "user", "content": "question 4"},
        {"role": "assistant", "content": "Echo: question 4"},
        {"role": "user", "content": "question 5"},
    ]
    assert expected == count_request_tokens(retried.messages)


def test_a_new_preset_is_sent_with_the_next_request_and_stays_selected(
    page: StreamlitPage, fake_model: ChatCompletionsServer
) -> None:
    as_user(page, "Finn")
    assert page.selected("Preset") == PRESETS[DEFAULT_PRESET].title == "Standard helpful assistant"

    page.choose("Preset", "Extremely brief")
    expect(page.toasts().filter(has_text="Instruction: Extremely brief")).to_be_visible()
    expect(page.sidebar).to_contain_text(PRESETS["brief"].text)
    page.send("Tell me about Redis")
    assert fake_model.chat_requests[-1].messages[0] == {
        "role": "system",
        "content": PRESETS["brief"].text,
    }

    page.choose("Preset", "Over-the-top patriot")
    page.send("And about Streamlit?")
    assert fake_model.chat_requests[-1].messages[0] == {
        "role": "system",
        "content": PRESETS["patriotic"].text,
    }

    page.reload()
    assert page.selected("User") == "Finn"  # the picked user is in the URL
    assert page.selected("Preset") == "Over-the-top patriot"
    expect(page.sidebar).to_contain_text(PRESETS["patriotic"].text)
    as_user(page, "Luke")
    assert page.selected("Preset") == "Standard helpful assistant"  # Luke's, untouched


def test_messages_expire_after_the_retention_time_and_the_settings_stay(
    page: StreamlitPage, stored: ChatMemory
) -> None:
    as_user(page, "Poe")
    page.choose("Preset", "Extremely brief")
    page.send("Forget me soon")
    assert page.transcript() == exchange("Forget me soon")

    page.press_on_slider(TTL, "Home")
    expect(page.sidebar).to_contain_text("will be deleted in 5 s")  # asked first
    page.click("Apply retention")
    assert page.slider_value(TTL) == "5 s"
    expect(page.toasts().filter(has_text="Your messages are now kept 5 s.")).to_be_visible()
    assert stored.retention("Poe").ttl_seconds == 5

    for _ in range(40):  # bounded: the messages expire 5 s after "Apply retention"
        page.reload()
        as_user(page, "Poe")
        if not page.messages.count():
            break
        page.page.wait_for_timeout(250)
    assert page.transcript() == []
    assert opened_count(stored, "Poe") == 0
    assert page.slider_value(TTL) == "5 s"
    assert page.selected("Preset") == "Extremely brief"
    expect(page.sidebar).to_contain_text("Policy: 5 s per message; no messages stored.")


def test_clear_mine_keeps_others_and_clear_all_needs_a_confirmation(
    page: StreamlitPage, stored: ChatMemory
) -> None:
    as_user(page, "Lando")
    page.send("Lando's secret")
    as_user(page, "Chewie")
    page.send("Chewie's first words")

    page.click("Clear this conversation")
    page.click("Yes, clear it")
    expect(page.toasts().filter(has_text="The conversation was cleared.")).to_be_visible()
    assert page.transcript() == []
    assert opened_count(stored, "Chewie") == 0
    assert contents(stored, "Lando") == exchange("Lando's secret")

    page.send("Chewie again")
    page.click("Clear ALL history…")
    expect(page.sidebar).to_contain_text("Delete every user's messages? This cannot be undone.")
    assert (
        opened_count(stored, "Lando") == 2 and opened_count(stored, "Chewie") == 2
    )  # nothing deleted yet
    page.click("Cancel")
    assert opened_count(stored, "Lando") == 2 and opened_count(stored, "Chewie") == 2
    as_user(page, "Lando")
    assert page.transcript() == exchange("Lando's secret")

    as_user(page, "Chewie")
    page.click("Clear ALL history…")
    page.click("Yes, delete all")
    expect(page.toasts().filter(has_text="All history was cleared.")).to_be_visible()
    assert page.transcript() == []
    assert opened_count(stored, "Lando") == 0 and opened_count(stored, "Chewie") == 0
    as_user(page, "Lando")
    assert page.transcript() == []


@pytest.mark.parametrize(
    ("user", "fault", "message"),
    [
        ("Yoda", Fault.HTTP_500, "The model service failed (HTTP 500)"),
        (
            "Ahsoka",
            Fault.SLOW,
            f"The model did not answer within {LLM_TIMEOUT_SECONDS} seconds (waited",
        ),
    ],
    ids=["http-500", "timeout"],
)
def test_a_failed_reply_is_explained_the_prompt_kept_and_retry_works(
    page: StreamlitPage,
    fake_model: ChatCompletionsServer,
    stored: ChatMemory,
    user: str,
    fault: Fault,
    message: str,
) -> None:
    prompt = "Will this work?"
    as_user(page, user)
    fake_model.set_fault(fault, delay=LLM_TIMEOUT_SECONDS + 2)
    page.send(prompt)
    expect(page.error_alerts()).to_have_count(1)
    expect(page.error_alerts()).to_contain_text(message)
    expect(page.error_alerts()).to_contain_text("Your message is saved.")
    assert page.transcript() == [("user", prompt)]
    assert [(m.role, m.content) for m in opened_messages(stored, user)] == [(Role.USER, prompt)]
    expect(page.button("↻ Retry reply")).to_be_visible()

    page.reload()  # the prompt is kept across a reload too, and can still be answered
    as_user(page, user)
    assert page.transcript() == [("user", prompt)]
    expect(page.button("↻ Retry reply")).to_be_visible()

    fake_model.clear_faults()
    page.click("↻ Retry reply")
    assert page.transcript() == exchange(prompt)
    expect(page.error_alerts()).to_have_count(0)
    expect(page.button("↻ Retry reply")).to_have_count(0)
    assert contents(stored, user) == exchange(prompt)


def test_a_users_text_is_shown_as_typed_with_no_links(page: StreamlitPage) -> None:
    as_user(page, "Cassian")
    text = "Write to han@example.com or see www.example.com"
    page.send(text)
    assert page.transcript()[0] == ("user", text)
    assert page.messages.first.locator("a").count() == 0


@pytest.mark.parametrize(("size", "user"), [(DESKTOP, "Yoda"), (PHONE, "Ahsoka")])
def test_the_context_bar_is_the_whole_context_and_its_legend_reads_whole(
    app: AppServer, open_page: OpenPage, size: ViewportSize, user: str
) -> None:
    page = open_page(app)
    page.page.set_viewport_size(size)
    if size == PHONE:
        page.reload()
        open_sidebar(page)
    as_user(page, user)
    page.send("A short question")
    if page.sidebar.get_attribute("data-collapsed") == "true":  # a phone's, after Enter
        open_sidebar(page)
    page.open_settings()
    bar = page.sidebar.locator(".context-bar .cb-bar")
    bar.scroll_into_view_if_needed()
    expect(bar).to_be_in_viewport()
    whole = bar.bounding_box()
    sidebar = page.sidebar.bounding_box()
    assert whole and sidebar and whole["height"] >= 20 and whole["width"] > 200
    # Every part shows, a part of a few tokens as a sliver; the free room is most of the bar.
    widths = page.sidebar.locator(".context-bar .cb-part").evaluate_all(
        "parts => parts.map(p => [p.dataset.part, p.getBoundingClientRect().width])"
    )
    assert [part for part, _ in widths] == ["instruction", "history", "room for the reply", "free"]
    assert all(width >= 3 for _, width in widths), widths
    assert dict(widths)["free"] > 0.9 * whole["width"], widths
    # The legend: each part with its tokens, whole and inside the sidebar, not cut off.
    items = page.sidebar.locator(".context-bar .cb-legend li")
    expect(items).to_have_count(4)
    texts = items.all_inner_texts()
    assert [text.rsplit(" ", 1)[0] for text in texts] == [part for part, _ in widths], texts
    for item in items.all():
        expect(item).to_be_visible()
        box = item.bounding_box()
        assert (
            box
            and sidebar["x"] <= box["x"]
            and box["x"] + box["width"] <= (sidebar["x"] + sidebar["width"])
        ), (texts, box, sidebar)
        assert item.evaluate("li => li.scrollWidth <= li.clientWidth"), texts
