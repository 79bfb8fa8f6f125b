"""Each entry of the sidebar's conversation list has a ⋮ menu (issue 28): rename, pin and delete a
conversation without opening it, with delete's question and its refusal when the conversation
changed since the question showed. Headless Chromium at desktop and phone size; one app for the
module, one demo user per journey."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Locator, ViewportSize, expect

from memory import ChatMemory, Role
from tests.browser.harness import (
    AppServer,
    StartApp,
    StreamlitPage,
    as_user,
    open_sidebar,
    with_fake_model,
)
from tests.support.openai_server import ChatCompletionsServer, Fault
from ui.entry_menu import RENAME_LABEL

pytestmark = pytest.mark.browser

DESKTOP = ViewportSize(width=1400, height=900)
PHONE = ViewportSize(width=390, height=844)
USERS = ("Luke", "Leia", "Han")


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS=",".join(USERS)))


@pytest.fixture(autouse=True)
def first_words_titles(fake_model: ChatCompletionsServer) -> None:
    fake_model.configure(title_fault=Fault.HTTP_500)


def open_id(page: StreamlitPage) -> str:
    return parse_qs(urlparse(page.page.url).query)["c"][0]


def entries(page: StreamlitPage) -> list[str]:
    buttons = page.sidebar.locator("[class*='st-key-conversation']").get_by_role("button")
    return [text.strip() for text in buttons.all_inner_texts()]


def menu_of(page: StreamlitPage, conversation_id: str) -> Locator:
    """Open the ⋮ menu of a conversation's entry; its body."""
    if page.page.viewport_size == PHONE and page.sidebar.get_attribute("data-collapsed") == "true":
        open_sidebar(page)
    # The visible one: the page keeps a hidden copy of a popover's button (it measures it).
    button = page.sidebar.locator(f".st-key-menu_{conversation_id} button").filter(visible=True)
    page.act(button.click)
    body = page.page.get_by_test_id("stPopoverBody")
    expect(body).to_be_visible()
    return body


def close_menu(page: StreamlitPage) -> None:
    page.act(lambda: page.page.keyboard.press("Escape"))
    expect(page.page.get_by_test_id("stPopoverBody")).to_have_count(0)


@pytest.mark.parametrize(("size", "user"), [(DESKTOP, "Luke"), (PHONE, "Leia")])
def test_rename_pin_and_delete_from_the_list_entry_without_opening_it(
    page: StreamlitPage, stored: ChatMemory, size: ViewportSize, user: str
) -> None:
    page.page.set_viewport_size(size)
    page.reload()
    if size == PHONE:
        open_sidebar(page)
    as_user(page, user)
    page.send("about cats")
    cats = open_id(page)
    if size == PHONE:
        open_sidebar(page)
    page.click("New chat")
    page.send("about dogs")
    dogs = open_id(page)

    menu = menu_of(page, cats)  # rename, while dogs stays open
    box = menu.get_by_role("textbox", name=RENAME_LABEL)
    expect(box).to_have_value("about cats")
    box.fill("Feline facts")
    page.act(lambda: box.press("Enter"))
    expect(page.toasts().filter(has_text="Conversation renamed.")).to_be_visible()
    close_menu(page)
    assert entries(page) == ["about dogs", "Feline facts"]
    assert open_id(page) == dogs
    assert stored.conversations(user).recent[1].title == "Feline facts"

    page.act(menu_of(page, cats).get_by_role("button", name="📌 Pin").click)  # pin
    close_menu(page)
    assert entries(page) == ["📌 Feline facts", "about dogs"]
    assert [c.id for c in stored.conversations(user).pinned] == [cats]
    assert open_id(page) == dogs

    menu = menu_of(page, cats)  # delete: asked first, Cancel keeps it
    page.act(menu.get_by_role("button", name="🗑️ Delete…").click)
    expect(menu).to_contain_text("Delete “Feline facts” and its 2 messages?")
    page.act(menu.get_by_role("button", name="Cancel").click)
    expect(menu.get_by_role("button", name="🗑️ Delete…")).to_be_visible()
    page.act(menu.get_by_role("button", name="🗑️ Delete…").click)
    page.act(menu.get_by_role("button", name="Yes, delete it").click)
    expect(page.toasts().filter(has_text="Deleted “Feline facts”.")).to_be_visible()
    assert entries(page) == ["about dogs"]
    assert open_id(page) == dogs  # the open conversation stays open
    assert [c.id for c in stored.conversations(user).recent] == [dogs]
    assert page.transcript() == [("user", "about dogs"), ("assistant", "Echo: about dogs")]


def test_a_delete_asked_before_the_conversation_changed_deletes_nothing(
    page: StreamlitPage, stored: ChatMemory
) -> None:
    as_user(page, "Han")
    page.send("keep me")
    kept = open_id(page)
    page.click("New chat")
    page.send("the open one")
    menu = menu_of(page, kept)
    page.act(menu.get_by_role("button", name="🗑️ Delete…").click)
    expect(menu).to_contain_text("Delete “keep me” and its 2 messages?")
    stored.append("Han", Role.USER, "written in another tab", conversation_id=kept)
    page.act(menu.get_by_role("button", name="Yes, delete it").click)
    expect(page.sidebar).to_contain_text("The conversation changed since the page showed it")
    assert stored.count("Han", kept) == 3
    assert "keep me" in entries(page)
