"""Conversations in headless Chromium (issue 16): two conversations, switching by the list and
by the browser's back/forward, reload, rename, pin, edit, regenerate and delete, at desktop
size and on a phone. One app for the module, one demo user per journey. Title calls fail on
purpose here, so every title is its prompt's first words and the list reads predictably."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import ViewportSize, expect

from memory import ChatMemory
from tests.browser.harness import (
    AppServer,
    StartApp,
    StreamlitPage,
    as_user,
    open_sidebar,
    with_fake_model,
)
from tests.support.openai_server import ChatCompletionsServer, Fault

pytestmark = pytest.mark.browser

PHONE = ViewportSize(width=390, height=844)
USERS = ("Luke", "Leia", "Han")
TITLE = "Title of this conversation"


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS=",".join(USERS)))


@pytest.fixture(autouse=True)
def first_words_titles(fake_model: ChatCompletionsServer) -> None:
    fake_model.configure(title_fault=Fault.HTTP_500)


def exchange(prompt: str, reply: str | None = None) -> list[tuple[str, str]]:
    return [("user", prompt), ("assistant", reply or f"Echo: {prompt}")]


def open_id(page: StreamlitPage) -> str:
    return parse_qs(urlparse(page.page.url).query)["c"][0]


def entries(page: StreamlitPage) -> list[str]:
    """The sidebar's conversation entries, in order."""
    buttons = page.sidebar.locator("[class*='st-key-conversation']").get_by_role("button")
    return [text.strip() for text in buttons.all_inner_texts()]


def test_two_conversations_switch_reload_back_forward_rename_pin_edit_regenerate_delete(
    page: StreamlitPage, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    as_user(page, "Leia")
    page.send("about cats")
    cats = open_id(page)
    page.click("New chat")
    assert open_id(page) != cats and page.transcript() == []
    expect(page.page.get_by_text("Start a conversation")).to_be_visible()
    page.send("about dogs")
    dogs = open_id(page)
    assert entries(page) == ["about dogs", "about cats"]

    page.click("about cats")
    assert open_id(page) == cats and page.transcript() == exchange("about cats")
    page.reload()
    assert open_id(page) == cats and page.transcript() == exchange("about cats")
    page.act(page.page.go_back)
    assert open_id(page) == dogs and page.transcript() == exchange("about dogs")
    page.act(page.page.go_forward)
    assert open_id(page) == cats and page.transcript() == exchange("about cats")

    title = page.sidebar.get_by_role("textbox", name=TITLE)
    expect(title).to_have_value("about cats")
    title.fill("Cat facts")
    page.act(lambda: title.press("Enter"))
    page.click("📌 Pin")
    assert entries(page) == ["📌 Cat facts", "about dogs"]

    page.click("✏️ Edit")
    editor = page.page.get_by_role("textbox", name="Edit your message")
    expect(editor).to_have_value("about cats")
    editor.fill("about kittens")
    page.click("Send edited message")
    assert page.transcript() == exchange("about kittens")
    fake_model.configure(reply="Kittens are young cats.")
    page.click("↻ Regenerate")
    assert page.transcript() == exchange("about kittens", "Kittens are young cats.")
    assert [m.content for m in stored.messages("Leia", cats)] == [
        "about kittens",
        "Kittens are young cats.",
    ]

    page.click("🗑️ Delete…")
    expect(page.sidebar).to_contain_text("Delete “Cat facts” and its 2 messages?")
    assert stored.count("Leia", cats) == 2  # nothing deleted before the yes
    page.click("Yes, delete it")
    assert open_id(page) == dogs and page.transcript() == exchange("about dogs")
    assert [info.id for info in stored.conversations("Leia").recent] == [dogs]
    assert entries(page) == ["about dogs"]


def test_on_a_phone_the_list_opens_a_conversation_under_a_closed_sidebar(
    page: StreamlitPage,
) -> None:
    page.page.set_viewport_size(PHONE)
    page.reload()
    open_sidebar(page)
    as_user(page, "Han")
    expect(page.chat_input).to_be_in_viewport()
    page.send("first on the phone")
    first = open_id(page)
    open_sidebar(page)
    page.click("New chat")
    expect(page.sidebar).to_have_attribute("data-collapsed", "true")
    page.send("second on the phone")
    open_sidebar(page)
    assert entries(page) == ["second on the phone", "first on the phone"]
    expect(page.button("first on the phone")).to_be_in_viewport()
    page.click("first on the phone")
    expect(page.sidebar).to_have_attribute("data-collapsed", "true")
    assert open_id(page) == first
    assert page.transcript() == exchange("first on the phone")
    expect(page.messages.first).to_be_in_viewport()
