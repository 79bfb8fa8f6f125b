"""A reply in flight, in Redis: whoever produces it (chatbot/replies.py) appends its chunks;
any page of the user, on any instance, follows it; it survives reload, closed tabs and
switching conversations, and a producer that dies leaves it `interrupted` with its text.

Per conversation two keys in the user's slot (memory/lua/reply.lua does every change):
`<index>:reply:{tag}:<conversation>` (hash: `id`, `state`, `owner`, `lease`, `stop`, `text`
so far, `error`, the stored reply's `seq`) and `...:chunks` (a stream of `{at, d}` deltas,
MAXLEN ~ STREAM_MAXLEN, then an `end` entry). A producer claims the conversation (one reply
in flight per conversation: a second claim is refused while the lease is live), renews the
lease with every append, and ends it once. Bounded: the text is at most one reply
(LLM_MAX_TOKENS), the stream at most ~STREAM_MAXLEN entries; both expire ENDED_TTL_MS after
the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from memory.connection import RedisClient
from memory.errors import storage_errors
from memory.keys import KeyLayout, user_tag
from memory.scripts import lua_script

LEASE_MS = 10_000  # a producer silent this long is presumed dead
STREAMING_TTL_MS = 3_600_000  # a streaming record outlives any reply deadline
ENDED_TTL_MS = 86_400_000  # an ended reply's record (an interrupted one's text) kept a day
STREAM_MAXLEN = 64  # chunk entries kept; a reader further behind re-reads the text
FOLLOW_BLOCK_MS = 100  # one XREAD waits at most this long
LAPSE_CHECK_EVERY = 10  # empty reads between two looks at the lease
REDRAW_SECONDS = 0.1  # a follower yields at most this often (the first text at once) ...
REDRAWS_PER_SECOND = 200  # ... and the followers of one process together about this often


class ReplyState(StrEnum):
    STREAMING = "streaming"
    DONE = "done"  # stored as a message
    STOPPED = "stopped"  # stopped by the user; what it had written stored, marked stopped
    FAILED = "failed"  # the model or storage failed: `error` says why
    INTERRUPTED = "interrupted"  # its producer died; `text` is what it had written


@dataclass(frozen=True)
class ReplyView:
    """A reply as Redis holds it now."""

    reply_id: str
    state: ReplyState
    text: str
    error: str = ""
    seq: int | None = None  # the message it was stored as, once it was

    @property
    def streaming(self) -> bool:
        return self.state is ReplyState.STREAMING


class ReplyStreams:
    """The replies in flight of one deployment (`layout`)."""

    def __init__(self, client: RedisClient, layout: KeyLayout, lease_ms: int = LEASE_MS) -> None:
        self.lease_ms = lease_ms
        self._client = client
        self._layout = layout
        self._script = lua_script(client, "reply.lua")
        self._followers = 0  # follow() loops running in this process
        self._followers_lock = threading.Lock()

    def _keys(self, user_id: str, conversation_id: str) -> list[str]:
        tag = user_tag(user_id)
        return [
            self._layout.reply_key(tag, conversation_id),
            self._layout.reply_chunks_key(tag, conversation_id),
        ]

    @storage_errors
    def _run(self, user_id: str, conversation_id: str, *args: Any) -> list[Any]:
        return list(self._script(keys=self._keys(user_id, conversation_id), args=args))

    def claim(self, user_id: str, conversation_id: str, reply_id: str, owner: str) -> str | None:
        """Claim the conversation for reply `reply_id`; None when it was claimed, else the id
        of the reply still streaming there."""
        reply = self._run(
            user_id, conversation_id, "claim", reply_id, owner, self.lease_ms, STREAMING_TTL_MS
        )
        return None if reply[0] == "ok" else str(reply[1])

    def release(self, user_id: str, conversation_id: str, reply_id: str, owner: str) -> None:
        """Give back a claim whose turn never began (nothing was asked of the model)."""
        self._run(user_id, conversation_id, "release", reply_id, owner)

    def append(
        self, user_id: str, conversation_id: str, reply_id: str, owner: str, text: str
    ) -> bool | None:
        """Append `text` ("" only renews the lease). True when a stop was asked; None when the
        reply is no longer this owner's (its lease lapsed): stop producing it."""
        reply = self._run(
            user_id, conversation_id, "append", reply_id, owner, self.lease_ms, STREAMING_TTL_MS,
            STREAM_MAXLEN, text,
        )  # fmt: skip
        return None if reply[0] == "lost" else reply[1] == "1"

    def end(
        self,
        user_id: str,
        conversation_id: str,
        reply_id: str,
        owner: str,
        state: ReplyState,
        error: str = "",
        seq: int | None = None,
    ) -> bool:
        """End the reply once (False: it was not this owner's any more); `seq`: the message
        it was stored as."""
        reply = self._run(
            user_id, conversation_id, "end", reply_id, owner, state.value, error, ENDED_TTL_MS,
            "" if seq is None else seq,
        )  # fmt: skip
        return bool(reply[0] == "ok")

    def stop(self, user_id: str, conversation_id: str, reply_id: str) -> str:
        """Ask the producer to stop: 'ok', 'ended' (it had ended) or 'stale' (another reply)."""
        return str(self._run(user_id, conversation_id, "stop", reply_id)[0])

    def dismiss(self, user_id: str, conversation_id: str, reply_id: str) -> None:
        """Forget an ended reply's record (its partial text no longer offered)."""
        self._run(user_id, conversation_id, "dismiss", reply_id)

    def read(self, user_id: str, conversation_id: str) -> ReplyView | None:
        """The conversation's latest reply; one whose lease lapsed is marked interrupted first."""
        view, _ = self._read(user_id, conversation_id)
        return view

    def _read(self, user_id: str, conversation_id: str) -> tuple[ReplyView | None, str]:
        fields, newest, now = self._run(user_id, conversation_id, "read")
        record = dict(zip(fields[::2], fields[1::2], strict=True))
        if not record:
            return None, str(newest)
        if record["state"] == ReplyState.STREAMING and int(record["lease"]) <= int(now):
            self._run(user_id, conversation_id, "interrupt", ENDED_TTL_MS)
            return self._read(user_id, conversation_id)
        return view_of(record), str(newest)

    def follow(
        self, user_id: str, conversation_id: str, reply_id: str | None = None
    ) -> Iterator[ReplyView]:
        """The reply as it grows, from what is stored now to its end: a view at once, the first
        text at once, then at most every `redraw_seconds()` while it streams, then the ended
        one. `reply_id`: follow only that reply (another one, or none, ends at once)."""
        view, last_id = self._read(user_id, conversation_id)
        if view is None or (reply_id is not None and view.reply_id != reply_id):
            return
        yield view
        stream_key = self._keys(user_id, conversation_id)[1]
        text: str | None = view.text
        shown = time.monotonic() if view.text else 0.0  # no text yet: the first shows at once
        silent = 0
        with self._following():
            while view.streaming:
                # Between two redraws the follower sleeps and takes what came meanwhile in one
                # read: a redraw per wake, not a wake per batch the producer appends.
                pause = shown + self.redraw_seconds() - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                entries, last_id = self._next(stream_key, last_id)
                text, ended = apply(text, entries)
                silent = 0 if entries else silent + 1
                # after ~a second of silence, Redis says whether its producer still lives
                if ended or text is None or silent % LAPSE_CHECK_EVERY == LAPSE_CHECK_EVERY - 1:
                    view, last_id = self._read(user_id, conversation_id)
                    if view is None or (reply_id is not None and view.reply_id != reply_id):
                        return
                    text = view.text
                    yield view
                    shown = time.monotonic()
                elif text != view.text:
                    view = ReplyView(view.reply_id, view.state, text)
                    yield view
                    shown = time.monotonic()

    def redraw_seconds(self) -> float:
        """How long a follower waits between two redraws: REDRAW_SECONDS, longer once this
        process follows more replies than REDRAWS_PER_SECOND allows at that pace. Every redraw
        costs the process's one interpreter (the page's elements built, serialized, sent), so
        under load a reply is redrawn less often rather than every reply arriving late."""
        return max(REDRAW_SECONDS, self._followers / REDRAWS_PER_SECOND)

    @contextmanager
    def _following(self) -> Iterator[None]:
        with self._followers_lock:
            self._followers += 1
        try:
            yield
        finally:
            with self._followers_lock:
                self._followers -= 1

    @storage_errors
    def _next(self, stream_key: str, last_id: str) -> tuple[list[dict[str, str]], str]:
        answer: Any = self._client.xread({stream_key: last_id}, block=FOLLOW_BLOCK_MS)
        if not answer:
            return [], last_id
        entries = answer[0][1] if isinstance(answer, list) else next(iter(answer.values()))[0]
        return [fields for _, fields in entries], entries[-1][0]


def view_of(record: dict[str, str]) -> ReplyView:
    return ReplyView(
        reply_id=record.get("id", ""),
        state=ReplyState(record.get("state", ReplyState.INTERRUPTED)),
        text=record.get("text", ""),
        error=record.get("error", ""),
        seq=int(record["seq"]) if record.get("seq") else None,
    )


def apply(text: str | None, entries: list[dict[str, str]]) -> tuple[str | None, bool]:
    """`text` with the stream's entries applied; None when a gap shows (entries were trimmed
    before they were read: re-read the whole text); and whether the end was among them."""
    ended = False
    for fields in entries:
        if "end" in fields:
            ended = True
            continue
        if text is None:
            continue
        at, delta = int(fields["at"]), fields["d"]
        if at > len(text.encode()):
            text = None
        elif at + len(delta.encode()) > len(text.encode()):
            text = (text.encode()[:at] + delta.encode()).decode()
    return text, ended
