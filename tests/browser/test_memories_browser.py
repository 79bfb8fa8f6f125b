"""Memories in headless Chromium (issue 30): the model proposes one after a reply, "Remember
this" keeps another from a message, the next reply says which it used, the panel opens a
memory's source message and deletes one. The app (`make run`) with the fake model server;
Redis read back directly."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from memory import ChatMemory
from memory.memories import Memories
from tests.browser.harness import AppServer, StartApp, StreamlitPage, as_user, with_fake_model
from tests.support.openai_server import ChatCompletionsServer
from ui.memories import REMEMBER_LABEL

pytestmark = pytest.mark.browser

FACT = "My sister Ana moved to Lisbon, and I live in Porto"


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS="Luke,Leia,Han"))


def texts_of(memories: Memories, user: str, count: int) -> list[str]:
    """The user's memory texts once there are `count` (a proposal is stored in the
    background after the reply)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = sorted(m.text for m in memories.listed(user))
        if len(found) >= count:
            return found
        time.sleep(0.2)
    return sorted(m.text for m in memories.listed(user))


def test_memories_are_proposed_kept_used_opened_and_deleted(
    page: StreamlitPage, stored: ChatMemory, fake_model: ChatCompletionsServer
) -> None:
    memories = Memories(stored)
    fake_model.configure(memory_reply=json.dumps({"memories": [{"text": "I live in Porto"}]}))
    as_user(page, "Leia")
    page.send(FACT)
    assert texts_of(memories, "Leia", 1) == ["I live in Porto"]

    page.act(page.page.get_by_role("button", name=REMEMBER_LABEL).first.click)
    editor = page.page.get_by_label("Memory to keep (shorten it to the fact)")
    expect(editor).to_have_value(FACT)
    editor.fill("My sister Ana lives in Lisbon")
    page.act(editor.blur)
    page.click("Save memory")
    expect(page.page.get_by_text("🧠 Remembered.", exact=True)).to_be_visible()
    assert texts_of(memories, "Leia", 2) == ["I live in Porto", "My sister Ana lives in Lisbon"]

    page.send("Where does my sister Ana live?")
    used = page.page.get_by_text(re.compile(r"🧠 \d memor(y|ies) of yours used"))
    expect(used).to_be_visible()
    assert "My sister Ana lives in Lisbon" in fake_model.last_request.messages[0]["content"]

    panel = page.sidebar.get_by_test_id("stExpander").filter(has_text="Your memories")
    expect(panel.get_by_text("My sister Ana lives in Lisbon", exact=True)).to_be_visible()
    page.act(panel.get_by_role("button", name="Open source").first.click)  # both from message 1
    params = {k: v[0] for k, v in parse_qs(urlparse(page.page.url).query).items()}
    assert params["m"] == "1"

    deleting = panel.get_by_role("button", name="Delete")
    before = deleting.count()
    page.act(deleting.first.click)
    expect(panel.get_by_role("button", name="Delete")).to_have_count(before - 1)
    assert len(memories.listed("Leia")) == 1
    expect(page.error_alerts()).to_have_count(0)
