"""A real TCP proxy in front of Redis that can hold replies back, as a stalled server would."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType


class DelayProxy:
    """Forwards bytes both ways on loopback. `stall(marker, seconds, times)` holds back, for
    `seconds`, the reply to each of the next `times` requests containing `marker` (None: every
    one): the command reaches Redis and runs, only its answer is late; `then` (if given) is
    called as each held answer arrives, i.e. once the command has run."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._marker = b""
        self._stall_seconds = 0.0
        self._stalls_left: int | None = 0
        self._then: Callable[[], object] | None = None
        self._closed = False

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

    def __enter__(self) -> DelayProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.refuse_connections()

    def refuse_connections(self) -> None:
        """From now on a connection attempt is refused, as when nothing listens; connections
        already open go on."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream)
            except OSError:  # Redis is gone: so is this connection
                client.close()
                continue
            delays: list[float] = []
            threading.Thread(target=self._pump, args=(client, server, delays), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, delays), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, delays: list[float]) -> None:
        """One direction of one connection; `delays` carries the delay a request earned to
        the pump of its replies."""
        requests = source.getsockname()[1] == self.port
        try:
            while chunk := source.recv(65536):
                if requests:
                    delays.append(self._delay_for(chunk))
                elif delays:
                    delay = delays.pop(0)
                    if delay and self._then is not None:
                        self._then()
                    time.sleep(delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
