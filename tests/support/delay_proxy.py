"""A real TCP proxy in front of Redis that can hold replies back, as a stalled server would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from tests.support.loopback import LoopbackProxy, pump


class DelayProxy(LoopbackProxy):
    """Forwards bytes both ways on loopback. `stall(marker, seconds, times)` holds back, for
    `seconds`, the reply to each of the next `times` requests containing `marker` (None: every
    one): the command reaches Redis and runs, only its answer is late; `then` (if given) is
    called as each held answer arrives, i.e. once the command has run."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self._lock = threading.Lock()
        self._marker = b""
        self._stall_seconds = 0.0
        self._stalls_left: int | None = 0
        self._then: Callable[[], object] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stall(
        self,
        marker: bytes,
        seconds: float,
        times: int | None = 1,
        then: Callable[[], object] | None = None,
    ) -> None:
        with self._lock:
            self._marker, self._stall_seconds, self._stalls_left = marker, seconds, times
            self._then = then

    def _delay_for(self, request: bytes) -> float:
        with self._lock:
            if not self._marker or self._marker not in request or self._stalls_left == 0:
                return 0.0
            if self._stalls_left is not None:
                self._stalls_left -= 1
            return self._stall_seconds

    def serve(self, client: socket.socket) -> None:
        try:
            server = self.connect_upstream()
        except OSError:  # Redis is gone: so is this connection
            client.close()
            return
        delays: list[float] = []  # the delay each request earned, for the pump of its replies

        def note_request(chunk: bytes) -> None:
            delays.append(self._delay_for(chunk))

        def hold_reply(chunk: bytes) -> None:
            if delays:
                delay = delays.pop(0)
                if delay and self._then is not None:
                    self._then()
                time.sleep(delay)

        threading.Thread(target=pump, args=(client, server, note_request), daemon=True).start()
        pump(server, client, hold_reply)
