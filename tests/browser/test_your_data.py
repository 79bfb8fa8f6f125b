"""Your data in headless Chromium (issue 16): search a word, open the hit at its message, go
back; download everything; erase everything. One app (`make run`) for the module, one demo
user per journey, Redis read back directly."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import redis
from playwright.sync_api import expect

from memory import ChatMemory, Role, new_conversation_id
from memory.keys import user_tag
from tests.browser.harness import AppServer, StartApp, StreamlitPage, as_user, with_fake_model
from tests.support.openai_server import ChatCompletionsServer
from tests.test_import_size import chatgpt_export

pytestmark = pytest.mark.browser

SEARCH = "🔎 Search your chats"
FOUND = "🔎 found here"
PLANS = "Where did we hide the *death star* plans?"


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS="Luke,Leia,Han"))


def url_params(page: StreamlitPage) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlparse(page.page.url).query).items()}


def test_typing_a_query_and_opening_a_hit_shows_that_message_in_its_conversation(
    page: StreamlitPage, stored: ChatMemory
) -> None:
    old = new_conversation_id()
    stored.append("Leia", Role.USER, PLANS, conversation_id=old)
    for number in range(150):
        stored.append("Leia", Role.ASSISTANT, f"later message {number}", conversation_id=old)
    stored.rename_conversation("Leia", old, "Secret plans")
    newer = new_conversation_id()
    stored.append("Leia", Role.USER, "Something else entirely", conversation_id=newer)
    stored.append("Han", Role.USER, "Han also knows the death star plans", conversation_id=newer)
    as_user(page, "Leia")
    assert url_params(page)["c"] == newer  # the most recent conversation opens

    box = page.page.get_by_label(SEARCH)
    box.fill('"death star" -plans')
    page.act(lambda: box.press("Enter"))
    # (a selectbox's arrow is also a button named "Open")
    opens = page.sidebar.locator(".stButton").get_by_role("button", name="Open", exact=True)
    # Leia's message first (the reply right after it is near in meaning too); Han's never.
    expect(opens.first).to_be_visible()
    hit = page.sidebar.get_by_test_id("stText")  # the hit's lines, not the conversation list
    expect(hit.get_by_text("Han also knows", exact=False)).to_have_count(0)
    # Each hit names its conversation; replies near in meaning may be listed too, once embedded.
    expect(hit.get_by_text("Secret plans", exact=True).first).to_be_visible()
    expect(hit.get_by_text(PLANS, exact=True)).to_be_visible()  # plain text, verbatim

    page.act(opens.first.click)
    params = url_params(page)
    assert params["c"] == old and params["m"] == str(stored.messages("Leia", old)[0].seq)
    mark = page.page.get_by_text(FOUND, exact=True)
    expect(mark).to_be_in_viewport()
    found = page.messages.filter(has_text=PLANS)
    expect(found).to_be_visible()
    assert "later message 149" in page.transcript()[-1][1]

    page.act(page.page.go_back)  # a history entry per opened conversation
    assert url_params(page)["c"] == newer
    expect(page.messages.filter(has_text="Something else entirely")).to_be_visible()


def test_download_everything_then_erase_everything(
    page: StreamlitPage, stored: ChatMemory, app: AppServer
) -> None:
    cid = new_conversation_id()
    stored.append("Luke", Role.USER, "I shot first", conversation_id=cid)
    stored.append("Luke", Role.ASSISTANT, "Noted.", conversation_id=cid)
    as_user(page, "Luke")

    with page.page.expect_download() as download:
        page.button("All chats (JSON)").click()
    exported = json.loads(download.value.path().read_text())
    (conversation,) = exported["conversations"]
    assert [m["content"] for m in conversation["messages"]] == ["I shot first", "Noted."]

    page.click("Erase all my data…")
    expect(page.sidebar.get_by_test_id("stAlertContentWarning")).to_contain_text(
        "1 conversation with 2 messages"
    )
    page.click("Yes, erase everything")
    expect(page.sidebar.get_by_test_id("stAlertContentSuccess")).to_contain_text(
        "You are starting fresh."
    )
    expect(page.page.get_by_text("Start a conversation")).to_be_visible()
    assert page.transcript() == []
    client = redis.Redis.from_url(app.redis_url)
    assert list(client.scan_iter(match=f"*{user_tag('Luke')}*")) == []
    client.close()


def test_an_export_of_several_megabytes_imports(
    page: StreamlitPage, stored: ChatMemory, tmp_path: Path
) -> None:
    path = tmp_path / "conversations.json"
    chatgpt_export(path, 3)  # a real ChatGPT export is often larger than 1 MB
    as_user(page, "Han")
    upload = page.sidebar.get_by_test_id("stFileUploaderDropzoneInput")
    # Uploading and storing several MB takes a while on a loaded machine: waited for below.
    page.act(lambda: upload.set_input_files(path), wait=False)
    imported = len(json.loads(path.read_text()))
    expect(page.sidebar.get_by_test_id("stAlertContentSuccess")).to_contain_text(
        f"Imported {imported} conversations", timeout=60_000
    )
    assert len(stored.conversation_ids("Han")) >= imported
