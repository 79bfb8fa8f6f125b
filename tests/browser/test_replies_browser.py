"""Issue 29 in headless Chromium: a reply lives in Redis while it streams, so a reload, a
second tab, a closed tab, Stop from any tab, switching conversations and a crashed instance
lose nothing and pay nothing twice. The fake model server streams slowly and records every
call: one prompt, one call."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pytest_playwright.pytest_playwright import CreateContextCallback

from memory import ChatMemory, Role
from tests.browser.harness import AppServer, StartApp, StreamlitPage, with_fake_model
from tests.support.conversations import opened_messages
from tests.support.openai_server import ChatCompletionsServer
from ui.live_reply import INTERRUPTED
from ui.rendering import STOPPED

pytestmark = pytest.mark.browser

USERS = ("Rey", "Finn", "Poe", "Rose", "Kylo", "Maz", "Jyn")
LONG = " ".join(f"word{n}" for n in range(40))
PROMPT = "Tell me a long story"
Tab = Callable[..., StreamlitPage]


@pytest.fixture(scope="module")
def app(start_app: StartApp, fake_model: ChatCompletionsServer) -> AppServer:
    return start_app(with_fake_model(fake_model, DEMO_USERS=",".join(USERS)))


@pytest.fixture
def tab(new_context: CreateContextCallback, app: AppServer) -> Tab:
    """`tab(user)`: a new tab (its own browser context and session) opened as `user`."""

    def open_(user: str, server: AppServer | None = None, wait: bool = True) -> StreamlitPage:
        page = StreamlitPage(new_context().new_page(), f"{(server or app).url}?user={user}")
        if wait:
            page.open()
        else:  # its first run follows a reply in flight: watch it as it goes
            page.act(lambda: page.page.goto(page.url), wait=False)
        return page

    return open_


def slow(fake_model: ChatCompletionsServer, seconds: float = 6.0) -> None:
    fake_model.configure(reply=LONG, chunk_delay=seconds / 40)


def streaming(page: StreamlitPage) -> None:
    """Part of the reply shows, with Stop: it is streaming."""
    expect(page.messages.last).to_contain_text("word2", timeout=10_000)
    expect(page.button("■ Stop")).to_be_visible()


def stored_pairs(stored: ChatMemory, user: str) -> list[tuple[Role, str]]:
    return [(m.role, m.content) for m in opened_messages(stored, user)]


def test_a_reload_mid_stream_follows_the_reply_to_its_end(
    tab: Tab, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    page = tab("Rey")
    slow(fake_model)
    page.send(PROMPT, wait=False)
    streaming(page)
    page.page.reload()
    streaming(page)  # picked up where it is, still streaming
    expect(page.messages.last).to_contain_text("word39", timeout=20_000)
    page.wait_for_app_idle()
    assert page.transcript() == [("user", PROMPT), ("assistant", LONG)]
    assert stored_pairs(stored, "Rey") == [(Role.USER, PROMPT), (Role.ASSISTANT, LONG)]
    assert len(fake_model.chat_requests) == 1


def times_shown(page: StreamlitPage, text: str) -> int:
    """How many elements of the page's main part show exactly `text` (the page's own echo of
    a prompt included)."""
    return int(
        page.page.evaluate(
            """text => [...document.querySelectorAll("[data-testid='stMainBlockContainer'] *")]
                .filter(e => e.children.length === 0 && e.textContent.trim() === text).length""",
            text,
        )
    )


def test_the_prompt_shows_once_while_its_reply_streams(
    tab: Tab, fake_model: ChatCompletionsServer
) -> None:
    page = tab("Finn")
    page.send("first question")  # an earlier exchange: the echo copies its bubble
    slow(fake_model)
    page.send(PROMPT, wait=False)
    streaming(page)
    for _ in range(5):
        assert times_shown(page, PROMPT) == 1
        page.page.wait_for_timeout(200)
    page.wait_for_app_idle()
    assert times_shown(page, PROMPT) == 1


def test_a_second_tab_shows_the_same_stream_and_stops_it_for_both(
    tab: Tab, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    first = tab("Poe")
    slow(fake_model, 30.0)  # Stop ends it long before
    first.send(PROMPT, wait=False)
    streaming(first)
    second = tab("Poe", wait=False)
    streaming(second)
    assert second.transcript()[0] == ("user", PROMPT)
    second.click("■ Stop")
    for page in (first, second):
        page.wait_for_app_idle()
        expect(page.page.get_by_text(STOPPED)).to_be_visible()
    kept = stored_pairs(stored, "Poe")
    assert [role for role, _ in kept] == [Role.USER, Role.ASSISTANT]
    assert kept[1][1] and LONG.startswith(kept[1][1]) and kept[1][1] != LONG
    assert second.transcript()[1][1].startswith(kept[1][1])
    assert len(fake_model.chat_requests) == 1
    assert fake_model.stream_timings == []  # the model stream was closed, not read to its end
    expect(second.button("↻ Retry reply")).to_have_count(0)


def test_closing_every_tab_neither_stops_nor_loses_the_reply(
    tab: Tab, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    page = tab("Rose")
    slow(fake_model, 3.0)
    page.send(PROMPT, wait=False)
    streaming(page)
    page.page.context.close()
    page = tab("Rose", wait=False)
    expect(page.messages.last).to_contain_text("word39", timeout=20_000)
    page.wait_for_app_idle()
    assert page.transcript() == [("user", PROMPT), ("assistant", LONG)]
    assert stored_pairs(stored, "Rose") == [(Role.USER, PROMPT), (Role.ASSISTANT, LONG)]
    assert len(fake_model.chat_requests) == 1


def test_switching_conversation_and_back_shows_the_reply(
    tab: Tab, fake_model: ChatCompletionsServer, stored: ChatMemory
) -> None:
    page = tab("Kylo")
    slow(fake_model, 5.0)
    page.send(PROMPT, wait=False)
    streaming(page)
    page.act(page.page.go_back, wait=False)  # the URL before the prompt: a new chat
    page.page.wait_for_timeout(500)
    page.act(page.page.go_forward, wait=False)
    expect(page.messages.last).to_contain_text("word39", timeout=20_000)
    page.wait_for_app_idle()
    assert page.transcript() == [("user", PROMPT), ("assistant", LONG)]
    assert stored_pairs(stored, "Kylo") == [(Role.USER, PROMPT), (Role.ASSISTANT, LONG)]
    assert len(fake_model.chat_requests) == 1


def test_an_instance_killed_mid_reply_leaves_it_interrupted_for_another(
    tab: Tab, fake_model: ChatCompletionsServer, tmp_path: Path, redis_url: str
) -> None:
    """Two app processes on one Redis: the one producing the reply dies; the other serves the
    reload: the partial text, marked interrupted, with Retry; no model call is repeated."""
    index_name, env = f"e2e{uuid.uuid4().hex[:10]}", {"DEMO_USERS": "Maz", "REDIS_URL": redis_url}
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    first = AppServer.start(tmp_path / "first", index_name, with_fake_model(fake_model, **env))
    second = AppServer.start(tmp_path / "second", index_name, with_fake_model(fake_model, **env))
    try:
        page = tab("Maz", first)
        slow(fake_model, 30.0)
        page.send(PROMPT, wait=False)
        streaming(page)
        first.streamlit.stop()  # the instance dies mid-reply
        page.page.goto(page.page.url.replace(first.url, second.url))
        expect(page.page.get_by_text(INTERRUPTED)).to_be_visible(timeout=30_000)
        assert page.transcript()[0] == ("user", PROMPT)
        assert page.transcript()[1][1].startswith("word0 word1 word2")
        expect(page.button("↻ Retry reply")).to_be_visible()
        assert len(fake_model.chat_requests) == 1
    finally:
        first.streamlit.stop()
        second.streamlit.stop()
