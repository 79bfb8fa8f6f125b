"""A Streamlit server started as a command of its own (`make run`, the App Service startup
command), waited for on its health endpoint, and stopped with every process it started."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]


def poll(condition: Callable[[], bool], timeout: float, message: str = "condition") -> None:
    """Call `condition` every 0.1 s until it is true, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout:g} s")
        time.sleep(0.1)


@dataclass
class StreamlitProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @classmethod
    def start(
        cls, argv: list[str], env: Mapping[str, str], log_path: Path, port: int, timeout: float = 90
    ) -> StreamlitProcess:
        """Run `argv` from the repository root, output to `log_path`, until the server on
        `port` says it is healthy; stop it and say what it printed if it does not."""
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = cls(process, log_path, port)
        try:
            poll(server.healthy, timeout, message=f"health of {argv[:4]} on port {port}")
        except BaseException as error:
            server.stop()
            if isinstance(error, Exception):
                raise RuntimeError(f"{error}; it said:\n{server.log_tail()}") from error
            raise
        return server

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the server exited with {self.process.returncode}")
        url = f"http://127.0.0.1:{self.port}/_stcore/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.read().decode().strip() == "ok")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the process and its descendants; kill what is left after 10 s."""
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
            for process in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.terminate()
            for process in psutil.wait_procs(tree, timeout=10)[1]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
        self.process.wait(timeout=10)
