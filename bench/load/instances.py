"""App instances for a load run, each started as App Service starts the app (`python -m
streamlit run app.py` with the startup command's options), all on one Redis and one model,
signed in as App Service Authentication does it (AUTH_MODE=easyauth: identity headers on
every request, mapped into `st.user` by `server.trustedUserHeaders`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from chatbot.config import SETTINGS
from chatbot.identity import EASYAUTH_HEADERS
from memory.embedded import free_port
from tests.support.streamlit_process import StreamlitProcess

# infra/modules/web.bicep's startup command, on a free loopback port.
STARTUP_OPTIONS = (
    "--server.headless", "true",
    "--server.fileWatcherType", "none",
    "--browser.gatherUsageStats", "false",
)  # fmt: skip


@dataclass(frozen=True)
class Backends:
    """What every instance of a run shares."""

    redis_url: str
    model_url: str
    index_name: str
    log_dir: Path
    options: tuple[str, ...] = ()  # more `--name value` Streamlit options (experiments)
    script: str = "app.py"
    remote_embeddings: bool = True  # the model server embeds (as Azure OpenAI does when deployed)


def app_environment(backends: Backends) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("STREAMLIT_")}
    env.update({setting.name: "" for setting in SETTINGS})
    env.update(
        REDIS_URL=backends.redis_url,
        CHAT_INDEX_NAME=backends.index_name,
        OPENAI_BASE_URL=backends.model_url,
        OPENAI_API_KEY="load-bench",
        AUTH_MODE="easyauth",
        WEBSITE_AUTH_ENABLED="true",
        STREAMLIT_SERVER_TRUSTED_USER_HEADERS=json.dumps(EASYAUTH_HEADERS),
    )
    if backends.remote_embeddings:
        env.update(EMBEDDING_PROVIDER="openai", OPENAI_EMBEDDING_MODEL="load-bench-embedding")
    return env


def identity_headers(user_id: str) -> dict[str, str]:
    """What Easy Auth adds to each request of a signed-in person."""
    return {"X-MS-CLIENT-PRINCIPAL-ID": user_id, "X-MS-CLIENT-PRINCIPAL-NAME": user_id}


@contextmanager
def app_instances(count: int, backends: Backends) -> Iterator[Sequence[StreamlitProcess]]:
    """`count` fresh instances, stopped with everything they started on exit."""
    env = app_environment(backends)
    with ExitStack() as stack:
        servers = []
        for number in range(count):
            port = free_port()
            command = [
                sys.executable, "-m", "streamlit", "run", backends.script,
                "--server.port", str(port), "--server.address", "127.0.0.1",
                *STARTUP_OPTIONS, *backends.options,
            ]  # fmt: skip
            log = backends.log_dir / f"app-{number}.log"
            server = StreamlitProcess.start(command, env, log, port)
            stack.callback(server.stop)
            servers.append(server)
        yield servers


def base_url(server: StreamlitProcess) -> str:
    return f"http://127.0.0.1:{server.port}/"


def pids(servers: Sequence[StreamlitProcess]) -> Mapping[str, int]:
    return {f"app{number}": server.process.pid for number, server in enumerate(servers)}
