"""Issue 17 in headless Chromium: what only a real page shows (a reply streaming while the
user acts, expiry without a click, a phone-sized window). One app for the module, one demo
user per journey, the fake model server as the model, Redis read back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import ViewportSize, WebSocketRoute, expect

from memory import ChatMemory, Role
from tests.browser.harness import (
    AppServer,
    StartApp,
    StreamlitPage,
    as_user,
    open_sidebar,
    with_fake_model,
)
from tests.support.conversations import opened_count, opened_messages
from tests.support.openai_server import ChatCompletionsServer
from ui.page_follow import BUSY_PLACEHOLDER
from ui.rendering import STOPPED

pytestmark = pytest.mark.browser

USERS = ("Rey", "Finn", "Poe", "Rose", "Kylo")
PHONE = ViewportSize(width=390, height=844)
TTL = "Time to live of chat entries"


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(
        with_fake_model(
            fake_model,
            DEMO_USERS=",".join(USERS),
            MAX_PROMPT_CHARS="2000",
        )
    )


def test_while_a_reply_streams_the_prompt_box_holds_enter_and_stop_keeps_what_it_wrote(
    page: StreamlitPage, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    as_user(page, "Rey")
    fake_model.configure(reply=" ".join(f"word{i}" for i in range(60)), chunk_delay=0.1)
    page.send("Tell me a long story", wait=False)
    expect(page.messages.first).to_contain_text("Tell me a long story")  # shown at once
    expect(page.messages.last).to_contain_text("word3")  # streaming
    # The box takes typing, but holds Enter: a second prompt cannot cut this reply.
    expect(page.chat_input).to_have_attribute("placeholder", BUSY_PLACEHOLDER)
    page.click("■ Stop")
    expect(page.page.get_by_text(STOPPED)).to_be_visible()
    expect(page.chat_input).to_be_enabled()
    kept = [(m.role, m.content) for m in opened_messages(stored, "Rey")]
    assert [role for role, _ in kept] == [Role.USER, Role.ASSISTANT]
    assert kept[1][1].startswith("word0 word1 word2 word3") and "word59" not in kept[1][1]
    (_, prompt), (_, reply) = page.transcript()
    assert prompt == "Tell me a long story"
    assert reply.startswith(kept[1][1]) and reply.endswith(STOPPED)
    expect(page.button("↻ Retry reply")).to_have_count(0)


def test_expired_messages_leave_the_page_without_a_click(
    page: StreamlitPage, stored: ChatMemory
) -> None:
    as_user(page, "Finn")
    page.send("Forget me soon")
    page.press_on_slider(TTL, "Home")
    expect(page.sidebar).to_contain_text("will be deleted in 5 s")
    assert stored.retention("Finn").ttl_seconds is None  # asked first, nothing applied yet
    page.click("Apply retention")
    countdown = page.sidebar.get_by_text("oldest message expires in")
    expect(countdown).to_be_visible()
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=5_000)  # it counts down by itself
    page.open_settings(False)  # with the settings closed the page still follows Redis
    expect(page.messages).to_have_count(0, timeout=15_000)  # no click, no reload
    page.open_settings()
    expect(page.sidebar).to_contain_text("Policy: 5 s per message; no messages stored.")
    assert opened_count(stored, "Finn") == 0


def test_an_over_long_prompt_is_kept_in_full_in_the_prompt_box(
    page: StreamlitPage, stored: ChatMemory
) -> None:
    as_user(page, "Poe")
    long_prompt = "x" * 2500
    page.send(long_prompt, wait=False)  # stopped in the browser: nothing reaches the server
    alert = page.page.get_by_role("alert").filter(has_text="2,500 characters")
    expect(alert).to_contain_text("the longest a message may be is 2,000")
    expect(alert).to_be_in_viewport()
    expect(page.chat_input).to_have_value(long_prompt)
    expect(page.chat_input).to_be_in_viewport()
    assert opened_count(stored, "Poe") == 0
    page.send("now short")
    expect(alert).to_have_count(0)
    expect(page.messages.filter(has_text="now short").first).to_be_visible()
    assert opened_count(stored, "Poe") == 2  # the prompt and its reply


def test_on_a_phone_sidebar_errors_show_and_switching_user_closes_the_sidebar(
    page: StreamlitPage,
) -> None:
    page.page.set_viewport_size(PHONE)
    page.reload()
    sidebar = page.sidebar
    expect(sidebar).to_have_attribute("data-collapsed", "true")  # a phone starts without it
    open_sidebar(page)
    page.choose("User", "Rose")
    expect(sidebar).to_have_attribute("data-collapsed", "true")  # closed after the switch
    expect(page.chat_input).to_be_in_viewport()
    open_sidebar(page)
    page.open_settings()
    page.choose("Preset", "Custom…")
    box = sidebar.get_by_role("textbox", name="Custom instruction")
    box.fill(" ")
    page.act(lambda: box.press("Control+Enter"))
    expect(sidebar.get_by_text("A custom instruction cannot be empty.")).to_be_in_viewport()


class HeldSocket:
    """The page's websocket, routed through the test: while `holding`, what the server sends
    waits here."""

    def __init__(self) -> None:
        self.holding = False
        self.held: list[str | bytes] = []
        self.socket: WebSocketRoute | None = None

    def route(self, socket: WebSocketRoute) -> None:
        self.socket = socket
        socket.connect_to_server().on_message(self.from_server)

    def from_server(self, message: str | bytes) -> None:
        if self.holding:
            self.held.append(message)
        elif self.socket is not None:
            self.socket.send(message)

    def release(self) -> None:
        self.holding = False
        for message in self.held:
            assert self.socket is not None
            self.socket.send(message)
        self.held.clear()


def test_the_prompt_shows_before_the_server_has_answered(page: StreamlitPage) -> None:
    socket = HeldSocket()
    page.page.route_web_socket(re.compile(r"/_stcore/stream$"), socket.route)
    page.reload()
    as_user(page, "Kylo")
    echo = page.page.get_by_test_id("promptEcho")
    # (an over-long prompt never leaves the browser: see the test above)
    prompt = "Hello  there\n<b>kept as typed</b>"
    shown = page.messages.count()
    page.chat_input.fill(prompt)
    socket.holding = True
    page.act(lambda: page.chat_input.press("Enter"), wait=False)
    expect(echo).to_contain_text("<b>kept as typed</b>")  # as text, never HTML
    expect(echo).to_be_in_viewport()
    assert page.messages.count() == shown  # nothing has come from the server
    socket.release()
    page.wait_for_app_idle()
    expect(echo).to_have_count(0)  # the run's own message replaced it
    assert [text for role, text in page.transcript() if role == "user"] == [prompt]
