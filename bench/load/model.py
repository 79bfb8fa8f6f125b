"""The model the load benchmark chats with: the tests' fake OpenAI-protocol server, paced like
a hosted model (first token after ~300 ms, ~50 tokens/s, ~300 tokens a reply, one token per
chunk), in a process of its own so its threads never compete with the load client for a GIL.

`python -m bench.load.model` prints its base URL on the first line of stdout and serves until
stdin closes. `ModelProcess` starts it, reads the model's own time to first token and to the
last token of every reply (`timings()`), and stops it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.support.openai_server import (
    ChatCompletionsServer,
    ServerConfig,
    StreamTiming,
    quoted_reply,
)

REPO = Path(__file__).resolve().parents[2]
FIRST_TOKEN_SECONDS = 0.3
TOKENS_PER_SECOND = 50.0
_SENTENCES = (
    "Here is a careful answer to that. ",
    "Keep the names short but clear, and let each one say what the thing is. ",
    "A good name saves a comment; a bad one costs a bug later on. ",
    "Prefer whole words to abbreviations, nouns for values and verbs for actions. ",
    "When a name needs a comment to be understood, the name is not finished yet. ",
)
# With the quoted prompt ~300 tokens (cl100k_base, the fake server's encoding).
REPLY = "".join(_SENTENCES[0:1] + _SENTENCES[1:] * 4 + _SENTENCES[1:2]).strip()  # 285 tokens


def reply_to(prompt: str) -> str:
    """The whole reply to `prompt`: every one ends by quoting its prompt, so a client tells
    the reply it waits for from the stored ones the page shows above it."""
    return quoted_reply(REPLY, prompt)


def paced_config() -> ServerConfig:
    return ServerConfig(
        reply=REPLY,
        first_token_delay=FIRST_TOKEN_SECONDS,
        chunk_delay=1 / TOKENS_PER_SECOND,
        token_chunks=True,
        quote_prompt=True,
    )


def serve() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    with ChatCompletionsServer(paced_config()) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the parent closes it (or exits)


@dataclass
class ModelProcess:
    """The paced model in a child process; a context manager."""

    process: subprocess.Popen[str] | None = None
    base_url: str = ""

    def __enter__(self) -> ModelProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.load.model"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.__exit__(None, None, None)
            raise RuntimeError("the paced model server did not start")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def timings(self) -> dict[str, StreamTiming]:
        """Every reply streamed so far, by the prompt it answered (the last user message)."""
        url = self.base_url.removesuffix("/v1") + "/fake/stream-timings"
        with urllib.request.urlopen(url, timeout=10) as response:
            rows = json.loads(response.read())
        return {row["prompt"]: StreamTiming(**row) for row in rows}


if __name__ == "__main__":
    serve()
