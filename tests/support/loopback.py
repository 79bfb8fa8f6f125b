"""What the test proxies share: a loopback listener in front of an upstream port that serves
each accepted connection on its own thread, and the byte pump between two sockets."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self


class LoopbackProxy:
    """Listens on a free loopback port; `with` starts accepting, leaving refuses connections
    (those already open go on). Subclasses serve one client connection in `serve`."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False

    def __enter__(self) -> Self:
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
        """From now on a connection attempt is refused, as when nothing listens."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way
        self._listener.close()

    def connect_upstream(self) -> socket.socket:
        return socket.create_connection(self._upstream)

    def serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()


def pump(
    source: socket.socket,
    target: socket.socket,
    before_sending: Callable[[bytes], None] | None = None,
) -> None:
    """Copies one direction of a connection until either end closes, then shuts both."""
    try:
        while chunk := source.recv(65536):
            if before_sending is not None:
                before_sending(chunk)
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
