"""The web app's startup command (appCommandLine in infra/), run here against a local Redis.

App Service runs exactly this string after Oryx has installed requirements.txt, and routes
traffic to port 8000. The test takes the command from the template, moves it to a free loopback
port, and waits for Streamlit's health endpoint, so a typo in the flags, a missing dependency
or an app.py that cannot start shows up before a deployment does.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chatbot.config import SETTINGS
from tests.bicep_tree import REPO, startup_command
from tests.support.ports import free_port

APP_SERVICE_PORT = "8000"  # what App Service forwards to for Python apps
HEALTH_PATH = "/_stcore/health"
START_TIMEOUT_SECONDS = 90.0


def _argv() -> list[str]:
    return shlex.split(startup_command())


def _option(argv: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value`; None when absent."""
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def _with_option(argv: list[str], name: str, value: str) -> list[str]:
    """argv with the value of an existing option replaced."""
    result = list(argv)
    for index, arg in enumerate(result):
        if arg == name:
            result[index + 1] = value
            return result
        if arg.startswith(f"{name}="):
            result[index] = f"{name}={value}"
            return result
    raise AssertionError(f"{name} is not in the startup command")


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode(errors="replace")


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_startup_command_runs_streamlit_where_app_service_expects_it() -> None:
    argv = _argv()
    assert argv[:4] == ["python", "-m", "streamlit", "run"], "Oryx's virtualenv python"
    assert argv[4] == "app.py"
    assert _option(argv, "--server.port") == APP_SERVICE_PORT
    assert _option(argv, "--server.address") == "0.0.0.0"
    assert _option(argv, "--server.headless") == "true"


def test_requirements_install_what_the_startup_command_runs() -> None:
    requirements = REPO / "requirements.txt"
    assert requirements.is_file(), "Oryx builds the App Service virtualenv from requirements.txt"
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match and not line.startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", match.group(0)).lower())
    assert "streamlit" in names


def test_startup_command_brings_up_a_healthy_server(redis_url: str, tmp_path: Path) -> None:
    assert (REPO / "app.py").is_file(), "the startup command runs app.py at the repository root"
    port = free_port()
    argv = _argv()
    argv = _with_option(argv, "--server.port", str(port))
    argv = _with_option(argv, "--server.address", "127.0.0.1")
    argv[0] = sys.executable

    # Nothing from the developer's Azure environment: the app must use the local Redis.
    registered = {setting.name for setting in SETTINGS}
    env = {name: value for name, value in os.environ.items() if name not in registered}
    env.update(REDIS_URL=redis_url, AUTH_MODE="demo", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")

    log = tmp_path / "streamlit.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        health = f"http://127.0.0.1:{port}{HEALTH_PATH}"
        while True:
            if process.poll() is not None:
                pytest.fail(f"the app exited with {process.returncode}:\n{_tail(log)}")
            try:
                status, body = _get(health)
                if status == 200 and body.strip() == "ok":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no healthy answer in {START_TIMEOUT_SECONDS:.0f}s:\n{_tail(log)}")
            time.sleep(0.5)
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "<html" in page.lower()
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and anything it started, by its own process group."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
