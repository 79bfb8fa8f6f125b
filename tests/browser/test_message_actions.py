"""The actions under each message, in headless Chromium at desktop and phone size (issue 28):
Copy puts the message's stored text on the clipboard (a reply's Markdown source, not what the
page renders). One app for the module, one demo user per journey."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, ViewportSize, expect
from pytest_playwright.pytest_playwright import CreateContextCallback

from memory import ChatMemory
from tests.browser.harness import (
    AppServer,
    StartApp,
    StreamlitPage,
    as_user,
    open_sidebar,
    with_fake_model,
)
from tests.support.conversations import opened_messages
from tests.support.openai_server import ChatCompletionsServer
from ui.message_actions import COPIED_LABEL, COPY_LABEL

pytestmark = pytest.mark.browser

DESKTOP = ViewportSize(width=1400, height=900)
PHONE = ViewportSize(width=390, height=844)
USERS = ("Luke", "Leia", "Han")
# Markdown that renders differently from its source: what is copied must be the source.
PROMPT = "Say **this** back:\n  `code` and\n\n- a list <b>item</b> & more"


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS=",".join(USERS)))


def clipboard_page(new_context: CreateContextCallback, app: AppServer) -> StreamlitPage:
    context = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = StreamlitPage(context.new_page(), app.url)
    page.open()
    return page


def copy_buttons(page: StreamlitPage) -> Locator:
    return page.messages.locator("button.message-copy")


def clipboard(page: StreamlitPage) -> str:
    return str(page.page.evaluate("() => navigator.clipboard.readText()"))


def copy_and_check(page: StreamlitPage, index: int, expected: str) -> None:
    button = copy_buttons(page).nth(index)
    button.scroll_into_view_if_needed()
    expect(button).to_be_in_viewport()
    button.click()
    expect(button).to_have_text(COPIED_LABEL)
    assert clipboard(page) == expected
    expect(button).to_have_text(COPY_LABEL, timeout=5_000)  # back, ready for the next copy


@pytest.mark.parametrize(("size", "user"), [(DESKTOP, "Leia"), (PHONE, "Han")])
def test_every_message_has_a_copy_button_that_copies_its_stored_text(
    new_context: CreateContextCallback,
    app: AppServer,
    stored: ChatMemory,
    size: ViewportSize,
    user: str,
) -> None:
    page = clipboard_page(new_context, app)
    page.page.set_viewport_size(size)
    if size == PHONE:
        page.reload()
        open_sidebar(page)
    as_user(page, user)
    if size == PHONE:  # the switch closed the sidebar over the chat
        expect(page.sidebar).to_have_attribute("data-collapsed", "true")
    page.send(PROMPT)
    page.send("second")
    expect(page.messages).to_have_count(4)
    expect(copy_buttons(page)).to_have_count(4)  # one under every message
    prompt, reply, *_ = (m.content for m in opened_messages(stored, user))
    assert (prompt, reply) == (PROMPT, f"Echo: {PROMPT}")
    assert "**" not in page.messages.nth(1).inner_text()  # the page renders the Markdown
    copy_and_check(page, 1, reply)
    copy_and_check(page, 0, prompt)
    copy_and_check(page, 3, "Echo: second")
