"""`make run` behaves like a local development server: loopback only, says what to open, and
Ctrl-C stops the app and the local Redis it started (never a Redis someone else started)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chatbot.config import SETTINGS, Environment
from chatbot.devserver import browser_url
from chatbot.services import embedded_redis
from memory import embedded
from memory.embedded import EmbeddedRedis, EmbeddedRedisError
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 90.0


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from /proc (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return bool(r.read() == b"ok")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _make_run(port: int, redis: EmbeddedRedis, log: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    env.update({setting.name: "" for setting in SETTINGS})  # .env must not change the Redis
    env.update(
        EMBEDDED_REDIS_PORT=str(redis.port),
        EMBEDDED_REDIS_DIR=str(redis.data_dir),
        CHAT_INDEX_NAME=f"dev{port}",
    )
    with open(log, "wb") as out:
        # `-o .venv/bin/activate`: use the venv as it is, never reinstall from a test.
        return subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/bin/activate", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _healthy(port):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def _ctrl_c(process: subprocess.Popen[bytes]) -> None:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("redis_already_running", [False, True], ids=["started", "existing"])
def test_make_run_serves_on_loopback_and_ctrl_c_stops_what_it_started(
    tmp_path: Path, redis_already_running: bool
) -> None:
    port, log = free_port(), tmp_path / "run.log"
    redis = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "redis")
    if redis_already_running:
        redis.ensure_running()
    process = _make_run(port, redis, log)
    try:
        _wait_until_serving(process, port, log)
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    finally:
        _ctrl_c(process)
    output = log.read_text()
    try:
        assert process.returncode in (0, -signal.SIGINT), output
        assert f"Open http://127.0.0.1:{port}/ in your browser." in output
        assert "external IP" not in output and "Traceback" not in output
        assert not _healthy(port)
        assert redis.is_running() is redis_already_running, output
        assert ("Local Redis stopped" in output) is not redis_already_running
    finally:
        redis.stop()


def test_a_wildcard_bind_is_opened_through_localhost() -> None:
    assert browser_url("0.0.0.0", 8501) == "http://localhost:8501/"
    assert browser_url("::1", 80) == "http://[::1]:80/"


def test_a_second_checkout_gets_a_redis_of_its_own_never_the_first_ones_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: `make run` in a second checkout silently used the first one's Redis on the
    default port, and its data."""
    first = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "first" / ".data" / "redis")
    first.ensure_running()
    try:
        monkeypatch.setattr(embedded, "DEFAULT_PORT", first.port)
        second_dir = tmp_path / "second" / ".data" / "redis"
        second = embedded_redis(Environment({"EMBEDDED_REDIS_DIR": str(second_dir)}))
        assert second is not None and second.port != first.port
        assert second.data_dir == second_dir and not second.is_running()
        again = embedded_redis(Environment({"EMBEDDED_REDIS_DIR": str(second_dir)}))
        assert again is not None and again.port == second.port  # remembered for later runs
        own = embedded_redis(Environment({"EMBEDDED_REDIS_DIR": str(first.data_dir)}))
        assert own is not None and own.port == first.port  # the first keeps its port
        with pytest.raises(EmbeddedRedisError, match="serves the local Redis of another folder"):
            EmbeddedRedis(port=first.port, data_dir=second_dir).is_running()
    finally:
        first.stop()
