"""`python -m chatbot.devserver [--host H] [--port P]`: the local development server (`make run`).

It checks the configuration and starts the embedded Redis when no other is configured
(chatbot.prepare), serves the app on 127.0.0.1 only unless told otherwise (`--host 0.0.0.0`
to reach it from other machines), says which address to open, and on Ctrl-C (or SIGTERM)
stops the app and the local Redis it started. A Redis that was already running stays running.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from dotenv import load_dotenv

from chatbot import prepare
from chatbot.config import ConfigError, Environment
from chatbot.services import embedded_redis
from memory.embedded import EmbeddedRedis, EmbeddedRedisError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})


def browser_url(host: str, port: int) -> str:
    """The address to open in a browser on this machine for a server bound to `host`."""
    shown = "localhost" if host in WILDCARD_HOSTS else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def redis_to_stop_afterwards() -> EmbeddedRedis | None:
    """The embedded Redis if this run is about to start it; None if another Redis is used or
    it already runs (then it is someone else's: `make redis`, another `make run`)."""
    try:
        embedded = embedded_redis(Environment.current())
        return embedded if embedded is not None and not embedded.is_running() else None
    except (ConfigError, EmbeddedRedisError):
        return None  # chatbot.prepare reports the problem next


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop(app: subprocess.Popen[bytes]) -> None:
    if app.poll() is None:
        app.terminate()
    try:
        app.wait(timeout=10)
    except subprocess.TimeoutExpired:
        app.kill()
        app.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatbot.devserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    load_dotenv(override=False)
    redis_started_here = redis_to_stop_afterwards()
    if prepare.main() != 0:
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    print(
        f"\nOpen {browser_url(args.host, args.port)} in your browser. Ctrl-C stops the app"
        + (" and the local Redis it started." if redis_started_here else "."),
        flush=True,
    )
    app = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.address", args.host,
            "--server.port", str(args.port),
            "--server.headless", "true",
        ],
        cwd=PROJECT_ROOT,  # Streamlit reads .streamlit/config.toml from the working directory
    )  # fmt: skip
    try:
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(app)
        if redis_started_here is not None:
            redis_started_here.stop()
            print(f"Local Redis stopped; its data stays in {redis_started_here.data_dir}.")


if __name__ == "__main__":
    sys.exit(main())
