"""Issue 28 in headless Chromium at 1400x900: what a new user sees while the first reply
streams, labels that are not cut off, a sidebar for conversations. One app for the module,
one demo user per journey, the fake model server as the model."""

from __future__ import annotations

import pytest
from playwright.sync_api import ViewportSize, expect

from tests.browser.harness import AppServer, StartApp, StreamlitPage, as_user, with_fake_model
from tests.support.openai_server import ChatCompletionsServer
from ui.chat import EXAMPLE_PROMPTS

pytestmark = pytest.mark.browser

USERS = ("Jyn", "Cassian", "Bodhi", "Chirrut", "Baze")
DESKTOP = ViewportSize(width=1400, height=900)
WELCOME = "Start a conversation"


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS=",".join(USERS)))


def test_while_the_first_reply_streams_the_welcome_is_gone_and_no_stale_count_shows(
    page: StreamlitPage, fake_model: ChatCompletionsServer
) -> None:
    """Was: the welcome card and its example prompts stayed, clickable, and the sidebar said
    "0 messages sent" until the first reply had ended."""
    page.page.set_viewport_size(DESKTOP)
    as_user(page, "Jyn")
    expect(page.page.get_by_text(WELCOME)).to_be_visible()
    expect(page.sidebar).to_contain_text("0 messages sent")
    words = [f"word{i}" for i in range(100)]
    fake_model.configure(reply=" ".join(words), chunk_delay=0.1)
    page.send("Tell me a long story", wait=False)
    expect(page.messages.last).to_contain_text("word3")  # streaming, ~10 s to go
    assert page.page.get_by_text(WELCOME).count() == 0
    assert page.page.get_by_role("button", name=EXAMPLE_PROMPTS[0]).count() == 0
    sidebar = page.sidebar.inner_text()
    assert "0 messages sent" not in sidebar and "A reply is being written" in sidebar
    assert "word90" not in page.messages.last.inner_text()  # all of that while it streamed
    page.wait_for_app_idle(timeout=60)
    expect(page.sidebar).to_contain_text("2 messages sent")


CUT_OFF = """buttons => buttons.filter(button => {
    const text = button.querySelector("[data-testid='stMarkdownContainer']") || button;
    return text.scrollWidth > text.clientWidth + 1;
}).map(button => button.innerText)"""


def test_no_sidebar_label_is_cut_off_at_1400_px(
    page: StreamlitPage, fake_model: ChatCompletionsServer
) -> None:
    """Was: "This chat (J…", "All chats (JS…", the destructive "Yes, erase e…"."""
    page.page.set_viewport_size(DESKTOP)
    as_user(page, "Cassian")
    page.send("Hello there")
    buttons = page.sidebar.locator("button, [data-testid='stDownloadButton'] button")
    labels = buttons.all_inner_texts()
    assert {"This chat (JSON)", "All chats (Markdown)"} <= {label.strip() for label in labels}
    assert buttons.evaluate_all(CUT_OFF) == []
    page.click("Erase all my data…")
    expect(page.button("Yes, erase everything")).to_be_visible()
    assert buttons.evaluate_all(CUT_OFF) == []
    page.click("Cancel")
