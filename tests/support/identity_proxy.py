"""A real HTTP front end that signs requests in, as App Service Authentication does.

Easy Auth is a proxy in front of the app: it drops any `X-MS-CLIENT-PRINCIPAL-*` header a client
sent and adds its own for the signed-in person. Browsers' own extra-header settings are no
stand-in (Chromium 150 sends none of them on the WebSocket upgrade, where Streamlit reads
`st.user`), so the browser tests go through this proxy: it rewrites the head of the first
request on each connection (a page load, or the WebSocket upgrade) and then forwards bytes
both ways untouched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Mapping

from tests.support.loopback import LoopbackProxy, pump

_HEAD_END = b"\r\n\r\n"
_PREFIX = b"x-ms-client-principal"


def signed_in_head(head: bytes, identity: Mapping[str, str]) -> bytes:
    """The request head with client-sent identity headers dropped and `identity`'s added."""
    request_line, *lines = head.split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(_PREFIX)]
    added = [f"{name}: {value}".encode() for name, value in identity.items()]
    return b"\r\n".join([request_line, *kept, *added])


class IdentityProxy(LoopbackProxy):
    """Listens on a loopback port and forwards to `upstream_port`, signing each connection's
    first request in as `identity` (header name to value)."""

    def __init__(self, upstream_port: int, identity: Mapping[str, str]) -> None:
        super().__init__(upstream_port)
        self._identity = dict(identity)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def serve(self, client: socket.socket) -> None:
        buffered = b""
        with contextlib.suppress(OSError):
            while _HEAD_END not in buffered:
                chunk = client.recv(65536)
                if not chunk:
                    client.close()
                    return
                buffered += chunk
            head, _, rest = buffered.partition(_HEAD_END)
            server = self.connect_upstream()
            server.sendall(signed_in_head(head, self._identity) + _HEAD_END + rest)
            threading.Thread(target=pump, args=(server, client), daemon=True).start()
            pump(client, server)
