"""The process's reply worker: it asks the model for the replies of admitted turns, outside
any page's script run, and writes them into Redis as they arrive (memory/reply_stream.py), so
a reload, a second tab, another instance or a closed tab changes nothing about the reply.

    reply_id = services.replies.claim(user_id, conversation_id)   # None: one is in flight
    started = turn.start()                                         # the prompt stored
    services.replies.submit(turn, reply_id)                        # the model is asked
    for view in services.replies.streams.follow(user_id, conversation_id, reply_id): ...

Threads shared by every session of the process serve the replies in flight (the worker is
created once, with the services; its threads start on demand). Each reply: chunks are
appended in batches (the first at once, then every BATCH_SECONDS or BATCH_CHUNKS), each
append renews the lease and reads the stop flag; a keeper thread renews
the leases of replies whose model is silent and hangs up on the model at once when a stop is
asked from any tab or instance. The reply is stored exactly once by its id (ChatTurn.finish /
finish_stopped, the same limits and usage rules as ever), and the model stream is closed
whenever the reply stops being read: Stop, a lost lease, an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from chatbot.turn import ChatTurn, Failed, OutcomeUnknown, Stopped, Stored
from memory import ChatMemoryError, new_message_id
from memory.reply_stream import ReplyState, ReplyStreams

BATCH_SECONDS = 0.1  # chunks are appended at most this often after the first (as often as
# a page redraws: memory/reply_stream.py REDRAW_SECONDS) ...
BATCH_CHUNKS = 20  # ... or once this many are waiting
# Replies produced at once by one process (the rest wait their turn). A serving thread spends
# nearly all its time waiting on the model's HTTP stream, and costs little but its stack; the
# cap only keeps a flood from starting threads without end. At 8, a 50-user load queued its
# replies behind each other: first tokens 27 s late with the app 65% of a core (bench/README).
WORKER_THREADS = 256
IDLE_SECONDS = 60.0  # a serving thread without work this long leaves (started again on demand)
FINISHED_KEPT = 256  # outcomes kept for the page run that sent the prompt

Finished = Stored | Stopped | Failed | OutcomeUnknown
logger = logging.getLogger(__name__)


@dataclass
class _Job:
    turn: ChatTurn
    reply_id: str
    stop: threading.Event = field(default_factory=threading.Event)
    lost: bool = False  # the lease lapsed and the reply is no longer ours
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Finished | None = None


class ReplyWorker:
    """Produces replies into `streams`; one per process (chatbot/services.py builds it)."""

    def __init__(self, streams: ReplyStreams, threads: int = WORKER_THREADS) -> None:
        self.streams = streams
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._threads = threads
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._active: dict[str, _Job] = {}
        self._finished: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._alive = 0  # serving threads (each leaves after IDLE_SECONDS without work)
        self._idle = 0  # of those, waiting for work
        self._keeper = False  # the lease keeper runs (while any reply is in flight)

    # --- what the page calls ---------------------------------------------------------------

    def claim(self, user_id: str, conversation_id: str) -> str | None:
        """A new reply's id with the conversation claimed for it; None while another reply
        is in flight there (raises ChatMemoryError when Redis does not answer)."""
        reply_id = new_message_id()
        busy = self.streams.claim(user_id, conversation_id, reply_id, self.owner)
        return None if busy is not None else reply_id

    def release(self, turn: ChatTurn, reply_id: str) -> None:
        """The turn did not start: the claim goes (nothing was asked of the model)."""
        with contextlib.suppress(ChatMemoryError):
            self.streams.release(turn.user_id, turn.conversation_id, reply_id, self.owner)

    def submit(self, turn: ChatTurn, reply_id: str) -> None:
        """Produce the reply of `turn` (started) under the claimed `reply_id`."""
        job = _Job(turn, reply_id)
        with self._lock:
            self._active[reply_id] = job
            # a thread of its own unless one waits for work (and none is taken by others)
            serve = self._queue.qsize() >= self._idle and self._alive < self._threads
            self._alive += serve
            keep, self._keeper = not self._keeper, True
            self._queue.put(job)
        if serve:
            threading.Thread(target=self._serve, name="reply", daemon=True).start()
        if keep:
            threading.Thread(target=self._keep_leases, name="reply-leases", daemon=True).start()

    def stop(self, user_id: str, conversation_id: str, reply_id: str) -> str:
        """Stop that reply wherever it is produced: 'ok', 'ended' (it had ended) or 'stale'
        (another reply is the conversation's now). Here, the model is hung up on at once."""
        answer = self.streams.stop(user_id, conversation_id, reply_id)
        with self._lock:
            job = self._active.get(reply_id)
        if answer == "ok" and job is not None:
            job.stop.set()
            job.turn.abort()  # a shutdown of the model's socket: it never waits on the reader
        return answer

    def outcome(self, reply_id: str, timeout: float = 5.0) -> Finished | None:
        """The outcome of a reply this process produced (None: not here, or not yet)."""
        with self._lock:
            job = self._active.get(reply_id) or self._finished.get(reply_id)
        if job is None or not job.done.wait(timeout):
            return None
        return job.outcome

    # --- the threads -----------------------------------------------------------------------

    def _serve(self) -> None:
        """Produce replies until none has come for IDLE_SECONDS."""
        while (job := self._next_job()) is not None:
            try:
                job.outcome = self._produce(job)
            except Exception:  # never leave a reply streaming, nor a thread dead
                logger.exception("producing reply %s failed", job.reply_id)
                job.turn.stop()
                job.outcome = Failed("The reply failed inside the app; nothing of it was saved.")
                self._end(job, ReplyState.FAILED, job.outcome.reason)
            finally:
                self._retire(job)
            if isinstance(job.outcome, Stored) and not job.stop.is_set():
                summary_problem = job.turn.update_summary()  # after the reply is shown stored
                if summary_problem:
                    logger.warning("reply %s: %s", job.reply_id, summary_problem)

    def _next_job(self) -> _Job | None:
        """The next reply to produce; None after IDLE_SECONDS without one (the thread leaves)."""
        while True:
            with self._lock:
                self._idle += 1
            try:
                job: _Job | None = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                job = None
            with self._lock:
                self._idle -= 1
                if job is not None:
                    return job
                if self._queue.empty():  # else a job came as the wait ended: serve it
                    self._alive -= 1
                    return None

    def _retire(self, job: _Job) -> None:
        with self._lock:
            self._active.pop(job.reply_id, None)
            self._finished[job.reply_id] = job
            while len(self._finished) > FINISHED_KEPT:
                self._finished.pop(next(iter(self._finished)))
        job.done.set()

    def _keep_leases(self) -> None:
        """Renew the lease of every reply in flight here (a silent model included) and hang
        up on the model of any reply stopped from elsewhere, or no longer ours."""
        while True:
            time.sleep(self.streams.lease_ms / 4000)  # four renewals a lease
            with self._lock:
                jobs = list(self._active.values())
                if not jobs:
                    self._keeper = False
                    return
            for job in jobs:
                self._append(job, "")

    # --- one reply -------------------------------------------------------------------------

    def _produce(self, job: _Job) -> Finished:
        """Stream the model's reply into Redis, then store it (or what a stop left) once."""
        turn, pending = job.turn, []
        flushed, first = time.monotonic(), True
        with hung_up(job):
            for chunk in turn.stream():
                pending.append(chunk)
                due = time.monotonic() - flushed >= BATCH_SECONDS or len(pending) >= BATCH_CHUNKS
                if chunk and (first or due):
                    self._append(job, "".join(pending))
                    pending, flushed, first = [], time.monotonic(), False
                if job.stop.is_set() or job.lost:
                    break
        turn.abort()  # whatever ended the reading (the end, a stop, an error): hang up
        if pending and not job.lost:
            self._append(job, "".join(pending))
        if job.lost:
            return turn.stop()
        outcome = turn.finish_stopped() if job.stop.is_set() else turn.finish()
        self._end(job, *ended_as(outcome))
        return outcome

    def _append(self, job: _Job, text: str) -> None:
        turn = job.turn
        try:
            asked = self.streams.append(
                turn.user_id, turn.conversation_id, job.reply_id, self.owner, text
            )
        except ChatMemoryError:
            return  # Redis is away: the lease may lapse; the reply goes on being read
        if asked is None:
            job.lost = True
        elif asked:
            job.stop.set()
        else:
            return
        turn.abort()

    def _end(self, job: _Job, state: ReplyState, error: str = "", seq: int | None = None) -> None:
        turn = job.turn
        with contextlib.suppress(ChatMemoryError):
            self.streams.end(
                turn.user_id, turn.conversation_id, job.reply_id, self.owner, state, error, seq
            )


@contextlib.contextmanager
def hung_up(job: _Job) -> Iterator[None]:
    """Reading a model stream this app closed (Stop, a lost lease) may end in whatever error
    the HTTP library raises: that is the stop, not a failure."""
    try:
        yield
    except Exception:
        if not (job.stop.is_set() or job.lost):
            raise


def ended_as(outcome: Finished) -> tuple[ReplyState, str, int | None]:
    """The state a finished reply's record ends in, why it failed, the seq it was stored as."""
    if isinstance(outcome, Stored):
        usage, seq = outcome.reply.usage, outcome.reply.seq
        return (ReplyState.STOPPED if usage and usage.stopped else ReplyState.DONE), "", seq
    if isinstance(outcome, Stopped):
        return ReplyState.STOPPED, "", None
    return ReplyState.FAILED, outcome.reason, None
