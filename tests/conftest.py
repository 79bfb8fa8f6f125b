"""Shared fixtures: a real Redis with RediSearch (the embedded server) for the whole session,
and a fresh index name / key prefix per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from chatbot.config import SETTINGS
from memory import (
    ChatMemory,
    RedisTarget,
    StorageLimits,
    SystemInstruction,
    create_redis_client,
)
from memory.embedded import EmbeddedCluster, EmbeddedRedis, free_cluster_ports, free_port
from memory.keys import NAMESPACE_OWNERS_KEY
from tests.support.openai_server import ChatCompletionsServer

DEFAULT_TEST_SYSTEM = SystemInstruction(text="You are a helpful assistant.", preset="standard")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use Playwright last: pytest-playwright starts it once for the session and its
    sync API leaves an asyncio loop on the main thread until the session ends, and
    redis-entraid's token manager schedules its refresh on any loop it finds there."""
    items.sort(key=lambda item: "playwright" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(port=free_port(), data_dir=Path(tmp_path_factory.mktemp("redis")))
    server.ensure_running()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, so it can be killed without disturbing the others."""
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "redis")
    server.ensure_running()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real 3-master Redis Cluster from the same binary and modules, started on first use."""
    cluster = EmbeddedCluster(
        ports=free_cluster_ports(3), data_dir=Path(tmp_path_factory.mktemp("cluster"))
    )
    yield cluster.ensure_running()
    cluster.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = create_redis_client(RedisTarget(url=redis_url))
    yield client
    client.close()


@pytest.fixture
def index_name(redis_client: redis.Redis) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(redis.ResponseError):
        redis_client.ft(name).dropindex(delete_documents=True)
    with contextlib.suppress(redis.ResponseError):  # memory/memories.py's own index
        redis_client.ft(f"{name}-memories").dropindex(delete_documents=True)
    for key in redis_client.scan_iter(match=f"{name}:*", count=1000):
        redis_client.delete(key)
    redis_client.hdel(NAMESPACE_OWNERS_KEY, name)  # the app's claim of it (memory/namespaces.py)


@pytest.fixture
def memory(redis_client: redis.Redis, index_name: str) -> ChatMemory:
    return ChatMemory(redis_client, default_system=DEFAULT_TEST_SYSTEM, index_name=index_name)


@pytest.fixture
def capped_memory(redis_client: redis.Redis, index_name: str) -> Callable[..., ChatMemory]:
    """`capped_memory(max_messages=5)`: the test's ChatMemory with tighter per-user caps."""

    def build(**caps: int) -> ChatMemory:
        return ChatMemory(
            redis_client,
            default_system=DEFAULT_TEST_SYSTEM,
            index_name=index_name,
            limits=StorageLimits(**caps),
        )

    return build


@pytest.fixture
def model_server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer() as server:
        yield server


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, redis_url: str, index_name: str) -> str:
    """The app's environment for one test: every registered variable blanked (so a developer's
    .env cannot leak in), the test Redis and index, offline unless a test adds a model."""
    import streamlit as st

    for setting in SETTINGS:
        monkeypatch.setenv(setting.name, "")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CHAT_INDEX_NAME", index_name)
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "5")
    st.cache_resource.clear()
    return index_name


@pytest.fixture
def online_env(
    app_env: str, monkeypatch: pytest.MonkeyPatch, model_server: ChatCompletionsServer
) -> ChatCompletionsServer:
    monkeypatch.setenv("OPENAI_BASE_URL", model_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    return model_server
