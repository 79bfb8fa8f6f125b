"""What a reply through Redis costs (issue 29): time to first token through the reply stream
(the worker asks the model and appends to Redis; the reader follows the stream) against
today's in-script path (the page's run reads the model stream itself), timed in turn in one
run against one Redis and one paced fake model; and the Redis memory a reply in flight holds.

`python -m bench.reply_stream [--rounds N]` prints the medians, their ratio (target <= 1.1x),
the stream path's added milliseconds, and the largest `MEMORY USAGE` of a reply's two keys
while a reply of LLM_MAX_TOKENS streams.

Time to first token here: from the prompt stored (ChatTurn.start() returned) to the first text
the reader has, the model's own ~300 ms first token included, as a user waits for it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from statistics import median

from bench.report import table
from bench.server import embedded_redis
from chatbot.config import Environment
from chatbot.services import Services, build_services
from chatbot.turn import ChatTurn, Started, TurnRequest
from memory import new_conversation_id
from memory.keys import KeyLayout, user_tag
from tests.support.openai_server import ChatCompletionsServer, ServerConfig

USER = "bench-user"
INDEX = "bench-replies"
FIRST_TOKEN_SECONDS = 0.3  # as bench/load/model.py paces a hosted model
CHUNK_SECONDS = 0.02  # ~50 tokens/s, one token a chunk
REPLY = " ".join(f"token{n}" for n in range(60))


def started_turn(services: Services, cid: str) -> ChatTurn:
    conversation = services.memory.conversation(USER, cid)
    turn = ChatTurn(services, TurnRequest(USER, "How long until the first token?"), conversation)
    started = turn.start()
    if not isinstance(started, Started):
        raise SystemExit(f"the turn was refused: {started}")
    return turn


def in_script(services: Services) -> float:
    """Today: the page's run reads the model stream itself."""
    turn = started_turn(services, new_conversation_id())
    began, first = time.perf_counter(), None
    for chunk in turn.stream():
        if chunk and first is None:
            first = time.perf_counter() - began
    turn.finish()
    return first or float("nan")


def through_redis(services: Services) -> float:
    """The reply stream: the worker produces, the reader follows Redis."""
    cid = new_conversation_id()
    reply_id = services.replies.claim(USER, cid)
    if reply_id is None:
        raise SystemExit("the conversation was busy")
    turn = started_turn(services, cid)
    began, first = time.perf_counter(), None
    services.replies.submit(turn, reply_id)
    for view in services.replies.streams.follow(USER, cid, reply_id):
        if view.text and first is None:
            first = time.perf_counter() - began
    return first or float("nan")


def memory_in_flight(services: Services) -> int:
    """The largest MEMORY USAGE of a reply's hash + stream while the model's reply streams
    (sampled at every view the reader gets)."""
    client = services.memory.redis_client
    cid = new_conversation_id()
    layout, tag = KeyLayout(INDEX), user_tag(USER)
    keys = (layout.reply_key(tag, cid), layout.reply_chunks_key(tag, cid))
    reply_id = services.replies.claim(USER, cid)
    assert reply_id is not None
    services.replies.submit(started_turn(services, cid), reply_id)
    largest = 0
    for _ in services.replies.streams.follow(USER, cid, reply_id):
        used = sum(int(client.memory_usage(key) or 0) for key in keys)
        largest = max(largest, used)
    return largest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per model request
    config = ServerConfig(
        reply=REPLY, first_token_delay=FIRST_TOKEN_SECONDS, chunk_delay=CHUNK_SECONDS
    )
    with embedded_redis() as redis_server, ChatCompletionsServer(config) as model:
        env = {
            "REDIS_URL": redis_server.url,
            "CHAT_INDEX_NAME": INDEX,
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": "bench",
            "EMBEDDING_PROVIDER": "off",
            "LLM_MAX_RETRIES": "0",
            "LIMIT_REQUESTS_PER_MINUTE": "0",  # off: the bench sends more than a person
            "LIMIT_TOKENS_PER_DAY": "0",
        }
        services = build_services(Environment(env))
        paths: dict[str, Callable[[Services], float]] = {
            "in-script (today)": in_script,
            "through Redis": through_redis,
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        for path in paths.values():  # warm: scripts loaded, connections open
            path(services)
        for _ in range(args.rounds):
            for name, path in paths.items():
                times[name].append(path(services))
        today, stream = median(times["in-script (today)"]), median(times["through Redis"])
        model.configure(reply=" ".join(["tok"] * 1024), first_token_delay=0, chunk_delay=0.001)
        largest = memory_in_flight(services)
    rows = [[name, f"{median(values) * 1000:.0f} ms"] for name, values in times.items()]
    print(table("Time to first token, median of each", ["path", "p50"], rows))
    print(f"ratio through Redis / in-script: {stream / today:.3f}x (target <= 1.1x)")
    print(f"added by the stream path: {(stream - today) * 1000:+.1f} ms")
    print(f"Redis memory of a 1,024-token reply in flight (hash + stream, largest): {largest:,} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
