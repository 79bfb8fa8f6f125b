"""Fixtures of the browser tests: Chromium, the fake model server, apps started by `make run`,
and pages whose end state is saved as a screenshot in artifacts/browser/."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Mapping

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    AppServer,
    OpenPage,
    StartApp,
    StreamlitPage,
)
from tests.support.openai_server import ChatCompletionsServer

expect.set_options(timeout=15_000)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (`playwright install` cannot download browsers here). Missing, it
    skips the browser tests locally and fails them in CI, which installs it."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def fake_model() -> Iterator[ChatCompletionsServer]:
    """The model: a real local HTTP server speaking the chat-completions protocol."""
    with ChatCompletionsServer() as server:
        yield server


@pytest.fixture(scope="module")
def start_app(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartApp]:
    """Starts `make run` with its own embedded Redis and index; stops all of it at the end."""
    started: list[AppServer] = []

    def start(env: Mapping[str, str]) -> AppServer:
        work_dir = tmp_path_factory.mktemp("app")
        server = AppServer.start(work_dir, f"e2e{uuid.uuid4().hex[:10]}", env)
        started.append(server)
        # The app's own start-up path (chatbot.prepare) started the Redis it uses.
        assert (server.redis_dir / "redis.pid").exists(), server.log_tail()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def open_page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[OpenPage]:
    """Opens the app in a fresh browser context (its own cookies, its own Streamlit session).

    At the end, each page's state is saved to artifacts/browser/<test>[-<name>].png.
    """
    opened: list[tuple[str, StreamlitPage, BrowserContext]] = []
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def open_(
        app: AppServer, name: str = "", headers: Mapping[str, str] | None = None
    ) -> StreamlitPage:
        context = chromium.new_context(
            viewport=VIEWPORT, extra_http_headers=dict(headers) if headers else None
        )
        page = StreamlitPage(context.new_page(), app.url)
        opened.append((name, page, context))
        page.open()
        return page

    yield open_
    failures: list[Exception] = []
    for name, page, context in opened:
        try:
            page.screenshot(f"{test_name}-{name}" if name else test_name)
        except Exception as error:  # still close every context, then report
            failures.append(error)
        finally:
            context.close()
    if failures:
        raise failures[0]
