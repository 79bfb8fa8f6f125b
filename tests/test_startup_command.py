"""The web app's startup command (appCommandLine in infra/), run here against a local Redis.

App Service runs exactly this string after Oryx has installed requirements.txt, and routes
traffic to port 8000. The test takes the command from the template, moves it to a free loopback
port, and waits for Streamlit's health endpoint, so a typo in the flags, a missing dependency
or an app.py that cannot start shows up before a deployment does.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import sys
import urllib.request
from pathlib import Path

from chatbot.config import SETTINGS
from memory.embedded import free_port
from tests.bicep_tree import MAIN, REPO, at, load
from tests.support.streamlit_process import StreamlitProcess


def startup_command() -> tuple[list[str], dict[str, str]]:
    """The command up to the script, and its `--option value` pairs."""
    web = load(MAIN).module("web")
    (site,) = [r for r in web.resources.values() if r.type == "Microsoft.Web/sites"]
    argv = shlex.split(str(web.resolve(at(site.body, "properties.siteConfig.appCommandLine"))))
    assert len(argv) % 2 == 1, f"not `--option value` pairs after the script: {argv}"
    return argv[:5], dict(zip(argv[5::2], argv[6::2], strict=True))


def test_startup_command_runs_streamlit_where_app_service_expects_it() -> None:
    command, options = startup_command()
    assert command == ["python", "-m", "streamlit", "run", "app.py"], "Oryx's virtualenv python"
    assert options["--server.port"] == "8000"  # where App Service routes Python apps
    assert options["--server.address"] == "0.0.0.0"
    assert options["--server.headless"] == "true"
    requirements = (REPO / "requirements.txt").read_text()  # what Oryx installs
    assert re.search(r"^streamlit\b", requirements, re.M | re.I)


def test_startup_command_brings_up_a_healthy_server(redis_url: str, tmp_path: Path) -> None:
    command, options = startup_command()
    port = free_port()
    options |= {"--server.port": str(port), "--server.address": "127.0.0.1"}
    # Nothing from the developer's Azure environment: the app must use the local Redis.
    registered = {setting.name for setting in SETTINGS}
    env = {name: value for name, value in os.environ.items() if name not in registered}
    env.update(REDIS_URL=redis_url, AUTH_MODE="demo", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    argv = [sys.executable, *command[1:], *itertools.chain(*options.items())]
    server = StreamlitProcess.start(argv, env, tmp_path / "streamlit.log", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.status == 200 and "<html" in response.read().decode().lower()
    finally:
        server.stop()
