"""The load benchmark's client drives the real app (`streamlit run app.py`, signed in as Easy
Auth signs people in) through one prompt and one reply over Streamlit's websocket, so the tool
cannot rot while the page changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.load.client import PageSession, Turn
from bench.load.instances import Backends, app_instances, base_url, identity_headers
from bench.load.model import REPLY, reply_to
from memory import ChatMemory, Role
from tests.support.openai_server import ChatCompletionsServer


def test_one_prompt_and_its_reply_through_the_websocket(
    redis_url: str,
    index_name: str,
    memory: ChatMemory,
    model_server: ChatCompletionsServer,
    tmp_path: Path,
) -> None:
    model_server.configure(reply=REPLY, quote_prompt=True, token_chunks=True)
    backends = Backends(redis_url, model_server.base_url, index_name, tmp_path)
    prompt = "Question 1 from load-test: how long should a variable name be?"

    async def chat(url: str) -> tuple[PageSession, Turn]:
        page = PageSession(url, identity_headers("load-test"), reply_to)
        await page.open()
        turn = await page.chat(prompt, timeout=30)
        await page.close()
        return page, turn

    with app_instances(1, backends) as servers:
        page, turn = asyncio.run(chat(base_url(servers[0])))

    assert turn.ok, turn.error
    first, stored, done = turn.first_token, turn.stored, turn.done
    assert first is not None and stored is not None and done is not None
    assert 0 < first < stored <= done
    conversation = page.query_string.removeprefix("c=")
    messages = [(m.role, m.content) for m in memory.messages("load-test", conversation)]
    assert messages == [(Role.USER, prompt), (Role.ASSISTANT, reply_to(prompt))]
    timing = model_server.stream_timings[-1]
    assert timing.prompt == prompt and timing.chunks > 200  # one token per chunk
    assert 0 < timing.first_token <= timing.finished
