"""Replies produced outside the page (chatbot/replies.py) into Redis (memory/reply_stream.py),
on the real local Redis and the local OpenAI-protocol server streaming slowly: what a reader
of the stream sees, what is stored (once), what the model server was asked (once) and what
the user's limits counted."""

from __future__ import annotations

import socket
import threading
import time

import psutil
import redis

from chatbot.services import Services
from chatbot.turn import ChatTurn, Started, Stored
from memory import ChatMemoryError, Role, new_conversation_id
from memory.connection import RedisTarget, create_redis_client
from memory.keys import KeyLayout, user_tag
from memory.reply_stream import ReplyState, ReplyStreams, ReplyView
from tests.support.openai_server import ChatCompletionsServer
from tests.test_turn import USER, Build, contents, services, tokens_counted, turn
from ui.live_reply import BUSY

__all__ = ["services"]  # the fixture, shared with tests/test_turn.py

REPLY = " ".join(f"word{n}" for n in range(40))


def slow(server: ChatCompletionsServer, seconds: float = 2.0) -> None:
    """40 chunks over `seconds`."""
    server.configure(reply=REPLY, chunk_delay=seconds / 40)


def begin(services: Services, cid: str, prompt: str = "Tell me") -> tuple[ChatTurn, str]:
    chat = turn(services, cid, prompt)
    reply_id = services.replies.claim(USER, cid)
    assert reply_id is not None
    assert isinstance(chat.start(), Started)
    services.replies.submit(chat, reply_id)
    return chat, reply_id


def follow(services: Services, cid: str) -> list[ReplyView]:
    return list(services.replies.streams.follow(USER, cid))


def test_a_reply_streams_through_redis_and_is_stored_once_from_one_model_call(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    chat = services()
    slow(model_server, 1.0)
    cid = new_conversation_id()
    _, reply_id = begin(chat, cid)
    views = follow(chat, cid)
    assert len(views) >= 3  # it grew while we watched
    assert views[0].streaming and views[-1].state is ReplyState.DONE
    assert views[-1].text == REPLY
    texts = [v.text for v in views]
    assert all(REPLY.startswith(t) for t in texts) and texts == sorted(texts, key=len)
    outcome = chat.replies.outcome(reply_id)
    assert isinstance(outcome, Stored) and outcome.reply.content == REPLY
    assert contents(chat, cid) == ["Tell me", REPLY]
    assert len(model_server.chat_requests) == 1


def test_a_second_reader_joining_late_sees_the_whole_reply(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    chat = services()
    slow(model_server, 1.0)
    cid = new_conversation_id()
    begin(chat, cid)
    time.sleep(0.5)
    joined = follow(chat, cid)
    assert joined[0].streaming and 0 < len(joined[0].text) < len(REPLY)
    assert joined[-1].text == REPLY


def test_while_a_reply_is_in_flight_no_second_one_is_asked(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    chat = services()
    slow(model_server, 1.0)
    cid = new_conversation_id()
    begin(chat, cid)
    other_instance = services()  # another app process on the same Redis
    assert other_instance.replies.claim(USER, cid) is None
    follow(chat, cid)
    assert len(model_server.chat_requests) == 1
    assert other_instance.replies.claim(USER, cid) is not None  # free once it ended


def test_stop_from_another_instance_keeps_what_was_produced_and_hangs_up(
    services: Build, model_server: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    chat = services()
    slow(model_server, 4.0)
    cid = new_conversation_id()
    _, reply_id = begin(chat, cid)
    time.sleep(1.0)
    assert services().replies.stop(USER, cid, reply_id) == "ok"
    started = time.monotonic()
    views = follow(chat, cid)
    assert time.monotonic() - started < 1.5  # the keeper saw the flag within a lease quarter
    assert views[-1].state is ReplyState.STOPPED
    stored = chat.memory.messages(USER, cid)
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT]
    partial = stored[-1]
    assert 0 < len(partial.content) < len(REPLY) and REPLY.startswith(partial.content)
    assert partial.usage is not None and partial.usage.stopped
    counted = tokens_counted(redis_client, index_name)
    assert counted == partial.usage.prompt_tokens + partial.usage.completion_tokens
    time.sleep(0.5)
    assert model_server.stream_timings == []  # the server never got to its end
    assert chat.replies.stop(USER, cid, reply_id) == "ended"
    assert chat.replies.stop(USER, cid, "another") == "stale"


def test_stop_on_the_producing_instance_acts_at_once(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    chat = services()
    slow(model_server, 4.0)
    cid = new_conversation_id()
    _, reply_id = begin(chat, cid)
    time.sleep(0.5)
    asked = time.monotonic()
    chat.replies.stop(USER, cid, reply_id)
    assert isinstance(chat.replies.outcome(reply_id), Stored)
    assert time.monotonic() - asked < 0.5
    assert chat.memory.messages(USER, cid)[-1].usage.stopped  # type: ignore[union-attr]


def test_stop_while_the_model_is_silent_ends_the_reply_at_once(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    """A model pausing mid-reply (thinking, or slow): Stop does not wait for its next word."""
    chat = services()
    model_server.configure(reply=REPLY, chunk_delay=4.0)  # word0 at once, then 4 s of silence
    cid = new_conversation_id()
    _, reply_id = begin(chat, cid)
    views = chat.replies.streams.follow(USER, cid, reply_id)
    while not next(views).text:
        pass
    asked = time.monotonic()
    assert chat.replies.stop(USER, cid, reply_id) == "ok"
    assert isinstance(chat.replies.outcome(reply_id, timeout=3.0), Stored)
    assert time.monotonic() - asked < 1.0
    assert contents(chat, cid) == ["Tell me", "word0"]
    assert model_server.stream_timings == []


def connections_to(port: int) -> list[int]:
    """The file numbers of this process's connections to `port`."""
    return [c.fd for c in psutil.Process().net_connections() if c.raddr and c.raddr.port == port]


def test_stop_ends_the_reply_while_the_process_opens_other_connections(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    """Stop while the process connects elsewhere (another tab's Redis connection, say): the
    reply still ends at once. It did not when Stop's thread closed the model's socket: the
    next connection took its file number, and the reply's read went on waiting on that one
    until the read timeout (the second tab's Stop hung, about one run in five)."""
    chat = services()
    slow(model_server, 8.0)
    cid = new_conversation_id()
    _, reply_id = begin(chat, cid)
    time.sleep(0.5)
    model_port = int(model_server.base_url.rsplit(":", 1)[1].split("/")[0])
    (model_fd,) = connections_to(model_port)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert chat.replies.stop(USER, cid, reply_id) == "ok"
        deadline = time.monotonic() + 1.0
        while model_fd in connections_to(model_port) and time.monotonic() < deadline:
            time.sleep(0.001)  # until the model's socket is closed and its number free
        idle = [socket.create_connection(listener.getsockname()) for _ in range(20)]
        try:
            assert isinstance(chat.replies.outcome(reply_id, timeout=2.0), Stored)
        finally:
            for connection in idle:
                connection.close()
    stored = chat.memory.messages(USER, cid)
    assert stored[-1].usage is not None and stored[-1].usage.stopped


def test_a_reply_whose_producer_died_is_interrupted_with_its_text(
    redis_client: redis.Redis, index_name: str
) -> None:
    streams = ReplyStreams(redis_client, KeyLayout(index_name), lease_ms=300)
    cid = new_conversation_id()
    assert streams.claim(USER, cid, "r1", "dead-instance") is None
    streams.append(USER, cid, "r1", "dead-instance", "Half a ")
    streams.append(USER, cid, "r1", "dead-instance", "reply")
    assert streams.claim(USER, cid, "r2", "live-instance") == "r1"  # the lease holds
    views = list(streams.follow(USER, cid))  # nothing more arrives
    assert views[-1] == ReplyView("r1", ReplyState.INTERRUPTED, "Half a reply")
    # the dead producer, back, cannot write into it; a new reply may start
    assert streams.append(USER, cid, "r1", "dead-instance", " more") is None
    assert streams.claim(USER, cid, "r2", "live-instance") is None


def test_a_reply_in_flight_is_bounded_in_redis(
    services: Build, model_server: ChatCompletionsServer, redis_client: redis.Redis, index_name: str
) -> None:
    chat = services()
    model_server.configure(reply=" ".join(["token"] * 600), chunk_delay=0.002)
    cid = new_conversation_id()
    begin(chat, cid)
    follow(chat, cid)
    chunks = KeyLayout(index_name).reply_chunks_key(user_tag(USER), cid)
    assert redis_client.xlen(chunks) <= 200  # batched and trimmed (MAXLEN ~)
    assert 0 < redis_client.pttl(chunks) <= 86_400_000  # expires after the end


def test_replies_of_two_conversations_stream_at_the_same_time(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    chat = services()
    slow(model_server, 1.5)
    first, second = new_conversation_id(), new_conversation_id()
    started = time.monotonic()
    begin(chat, first)
    begin(chat, second)
    assert follow(chat, first)[-1].state is ReplyState.DONE
    assert follow(chat, second)[-1].state is ReplyState.DONE
    assert time.monotonic() - started < 2.8  # not one after the other
    assert contents(chat, second) == ["Tell me", REPLY]


def test_the_page_refuses_a_prompt_or_regenerate_while_a_reply_is_in_flight(
    online_env: ChatCompletionsServer, redis_client: redis.Redis, app_env: str
) -> None:
    """Another instance is writing a reply in this conversation: the page asks no model,
    removes nothing, says why, and keeps the prompt to send again."""
    from tests.test_app import click, say, start_app, stored

    app = say(start_app(), "first")
    cid = str(app.query_params["c"])
    online_env.clear()
    other = ReplyStreams(redis_client, KeyLayout(app_env))
    assert other.claim("Luke", cid, "theirs", "another-instance") is None
    say(app, "second")
    assert any(BUSY in e.value for e in app.error), [e.value for e in app.error]
    assert [e.value for e in app.text_area] == ["second"]  # kept, to send again
    click(app, "↻ Regenerate")
    assert any(BUSY in e.value for e in app.error)
    assert [m.content for m in stored(redis_client, app_env).messages("Luke", cid)] == [
        "first",
        "Echo: first",
    ]
    assert online_env.chat_requests == []


def test_twenty_replies_in_flight_at_once_all_stream_at_once(
    services: Build, model_server: ChatCompletionsServer
) -> None:
    """More people chatting at once than the worker once had threads: none waits its turn."""
    chat = services()
    slow(model_server, 1.5)
    conversations = [new_conversation_id() for _ in range(20)]
    started = time.monotonic()
    for cid in conversations:
        begin(chat, cid)
    for cid in conversations:
        assert follow(chat, cid)[-1].state is ReplyState.DONE
    assert time.monotonic() - started < 2 * 1.5 + 1.5  # side by side, not in rounds


def test_150_pages_following_replies_at_once_all_see_them_end(
    redis_url: str, index_name: str
) -> None:
    """Each page following a reply holds a connection for its blocking read: with 150 people's
    pages on one instance, none is told storage is unavailable (redis-py's pool once stopped
    at 100)."""
    streams = ReplyStreams(create_redis_client(RedisTarget(url=redis_url)), KeyLayout(index_name))
    conversations = [new_conversation_id() for _ in range(150)]
    for cid in conversations:
        assert streams.claim(USER, cid, f"r-{cid}", "here") is None
    ends: list[ReplyView] = []
    failures: list[Exception] = []

    def page(cid: str) -> None:
        try:
            ends.append(list(streams.follow(USER, cid))[-1])
        except ChatMemoryError as error:
            failures.append(error)

    pages = [threading.Thread(target=page, args=(cid,)) for cid in conversations]
    for thread in pages:
        thread.start()
    time.sleep(1.0)  # every page is in its blocking read
    for cid in conversations:
        streams.append(USER, cid, f"r-{cid}", "here", "All of it")
        streams.end(USER, cid, f"r-{cid}", "here", ReplyState.DONE)
    for thread in pages:
        thread.join(10)
    assert failures == []
    assert len(ends) == 150 and {view.state for view in ends} == {ReplyState.DONE}
