"""Edit any prompt, the earlier version kept, "< 1/2 >" to switch (issue 28), in headless
Chromium at desktop and phone size: one app for the module, one demo user per journey."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, ViewportSize, expect

from memory import ChatMemory
from tests.browser.harness import (
    AppServer,
    OpenPage,
    StartApp,
    StreamlitPage,
    as_user,
    open_sidebar,
    with_fake_model,
)
from tests.support.conversations import opened, opened_messages
from tests.support.openai_server import ChatCompletionsServer

pytestmark = pytest.mark.browser

DESKTOP = ViewportSize(width=1400, height=900)
PHONE = ViewportSize(width=390, height=844)
USERS = ("Luke", "Leia", "Han")


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS=",".join(USERS)))


def exchange(*prompts: str) -> list[tuple[str, str]]:
    return [
        turn for prompt in prompts for turn in (("user", prompt), ("assistant", f"Echo: {prompt}"))
    ]


def keyed(page: StreamlitPage, key: str) -> Locator:
    """The button of the widget keyed `key` (Streamlit's class `st-key-<key>`)."""
    return page.page.locator(f".st-key-{key.replace(':', '-')}").get_by_role("button")


def press(page: StreamlitPage, button: Locator) -> None:
    button.scroll_into_view_if_needed()
    expect(button).to_be_in_viewport()
    page.act(button.click)


@pytest.mark.parametrize(("size", "user"), [(DESKTOP, "Leia"), (PHONE, "Han")])
def test_edit_the_first_prompt_then_switch_back_and_forth_between_its_versions(
    app: AppServer, open_page: OpenPage, stored: ChatMemory, size: ViewportSize, user: str
) -> None:
    page = open_page(app)
    page.page.set_viewport_size(size)
    if size == PHONE:
        page.reload()
        open_sidebar(page)
    as_user(page, user)
    page.send("one")
    page.send("two")
    first = opened_messages(stored, user)[0].seq
    expect(page.button("✏️ Edit")).to_have_count(2)  # under every prompt

    press(page, keyed(page, f"edit:{first}"))
    editor = page.page.get_by_role("textbox", name="Edit your message")
    expect(editor).to_have_value("one")
    editor.fill("uno")
    press(page, page.button("Send edited message"))
    assert page.transcript() == exchange("uno")
    switch = page.page.get_by_text("2/2", exact=True)
    expect(switch).to_be_visible()
    expect(keyed(page, "branch:0:next")).to_be_disabled()
    width = page.page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size["width"]  # nothing pushed past the screen's edge

    press(page, keyed(page, "branch:0:previous"))
    assert page.transcript() == exchange("one", "two")
    expect(page.page.get_by_text("1/2", exact=True)).to_be_visible()
    cid = opened(stored, user)
    assert [m.content for m in stored.messages(user, cid)] == [
        "one",
        "Echo: one",
        "two",
        "Echo: two",
    ]
    page.reload()  # what Redis holds: the version switched to
    assert page.transcript() == exchange("one", "two")

    press(page, keyed(page, "branch:0:next"))
    assert page.transcript() == exchange("uno")
    page.send("tres")  # the shown version goes on
    assert page.transcript() == exchange("uno", "tres")
    press(page, keyed(page, "branch:0:previous"))
    assert page.transcript() == exchange("one", "two")
