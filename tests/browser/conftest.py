"""Fixtures of the browser tests: pytest-playwright's browser, pointed at Debian's Chromium, the
fake model server, and apps started by `make run`. A failing test leaves a screenshot of each of
its pages in artifacts/browser/ (pyproject.toml's addopts)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis
from playwright.sync_api import expect
from pytest_playwright.pytest_playwright import CreateContextCallback

from chatbot.presets import DEFAULT_PRESET, load_presets
from memory import ChatMemory, RedisTarget, create_redis_client
from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    AppServer,
    OpenPage,
    StartApp,
    StreamlitPage,
)
from tests.support.identity_proxy import IdentityProxy
from tests.support.openai_server import ChatCompletionsServer

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium (`playwright install` cannot download browsers here). Missing, it
    skips the browser tests locally and fails them in CI, which installs it."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": VIEWPORT}


@pytest.fixture(scope="module")
def fake_model() -> Iterator[ChatCompletionsServer]:
    """The model: a real local HTTP server speaking the chat-completions protocol."""
    with ChatCompletionsServer() as server:
        yield server


@pytest.fixture(scope="module")
def start_app(
    browser_type_launch_args: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartApp]:
    """Starts `make run` with its own embedded Redis and index; stops all of it at the end.
    (Asks for the launch arguments first, so that no app starts when Chromium is missing.)"""
    started: list[AppServer] = []

    def start(env: Mapping[str, str]) -> AppServer:
        server = AppServer.start(tmp_path_factory.mktemp("app"), f"e2e{uuid.uuid4().hex[:10]}", env)
        started.append(server)
        # The app's own start-up path (chatbot.prepare) started the Redis it uses.
        assert server.redis.pidfile.exists(), server.streamlit.log_tail()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def open_page(new_context: CreateContextCallback) -> Iterator[OpenPage]:
    """Opens the app in a fresh browser context (its own cookies, its own Streamlit session).
    With `headers`, through a front end that signs every connection in with them, as App
    Service Authentication does."""
    with contextlib.ExitStack() as proxies:

        def open_(app: AppServer, headers: Mapping[str, str] | None = None) -> StreamlitPage:
            url = app.url
            if headers:
                url = proxies.enter_context(IdentityProxy(app.streamlit.port, headers)).url
            page = StreamlitPage(new_context().new_page(), url)
            page.open()
            return page

        yield open_


@pytest.fixture(scope="module")
def stored(app: AppServer) -> Iterator[ChatMemory]:
    """The module's app's Redis and index (its `app` fixture), read directly."""
    client: redis.Redis = create_redis_client(RedisTarget(url=app.redis_url))
    yield ChatMemory(
        client,
        default_system=load_presets()[DEFAULT_PRESET].instruction(),
        index_name=app.index_name,
    )
    client.close()


@pytest.fixture(autouse=True)
def fresh_model(request: pytest.FixtureRequest) -> None:
    """Each test starts with the fake model as configured, no faults, no requests logged."""
    if "fake_model" in request.fixturenames:
        request.getfixturevalue("fake_model").reset()


@pytest.fixture
def page(app: AppServer, open_page: OpenPage) -> StreamlitPage:
    return open_page(app)
