"""An HTTP CONNECT proxy that takes `<registry>.azurecr.io` to that registry's data plane.

A registry's `loginServer` is `<name>.azurecr.io`, as on Azure, and `az acr` builds its URLs from it
(`https://<loginServer>/v2/...`). With `HTTPS_PROXY` pointing here (and `NO_PROXY` covering 127.0.0.1, so
ARM and the identity endpoint are reached directly), the CLI's requests to a login server arrive at the
emulator's port for that registry, which presents a certificate of the emulator's CA that also names
`*.azurecr.io`. Only login servers of registries the emulator holds are carried; anything else is refused,
so nothing leaves the machine through it.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import socketserver
import threading
from collections.abc import Callable

log = logging.getLogger("emulator.proxy")

LOGIN_SERVER_SUFFIX = ".azurecr.io"
_IDLE_SECONDS = 120
_MAX_HEADER = 16 * 1024


def registry_name(host: str) -> str | None:
    """`myregistry` from `myregistry.azurecr.io[:443]`; None for any other host."""
    name, _, port = host.lower().partition(":")
    if port not in ("", "443") or not name.endswith(LOGIN_SERVER_SUFFIX):
        return None
    label = name[: -len(LOGIN_SERVER_SUFFIX)]
    return label if label and "." not in label else None


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > _MAX_HEADER:
                return
            head += chunk
        method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if method.upper() != "CONNECT":
            self._refuse(client, "405 Method Not Allowed", "only CONNECT to a registry login server")
            return
        name = registry_name(target)
        port = self.server.resolve(name) if name else None
        if port is None:
            self._refuse(client, "502 Bad Gateway", f"no registry of the emulator answers for {target}")
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError as exc:
            self._refuse(client, "502 Bad Gateway", f"the registry's port {port} did not answer: {exc}")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pump(client, upstream)

    @staticmethod
    def _refuse(client: socket.socket, status: str, reason: str) -> None:
        body = reason.encode()
        client.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes or both stay silent for _IDLE_SECONDS."""
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], _IDLE_SECONDS)
        if not readable:
            return
        for source in readable:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[source].sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, resolve: Callable[[str], int | None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.resolve = resolve


class RegistryProxy:
    """The proxy on a free port of 127.0.0.1; `resolve(name)` gives a registry's data plane port or None."""

    def __init__(self, resolve: Callable[[str], int | None]) -> None:
        self._server = _Server(resolve)
        self._thread = threading.Thread(target=self._server.serve_forever, name="registry-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RegistryProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown()
            self._server.server_close()
