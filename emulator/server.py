"""HTTPS plumbing: a threading HTTP server over TLS on 127.0.0.1 that turns each request into a `Request`,
hands it to a dispatch function and writes the `Response` back (JSON, ARM's request-id headers)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from emulator.arm_errors import ApiError

log = logging.getLogger("emulator.http")


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query, single slashes, no trailing slash
    query: dict[str, str]  # keys lower-cased (ARM's query names are case-insensitive)
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    port: int  # the local port the request came in on
    raw_target: str = ""  # the request line's path and query, as sent (for what is proxied on)

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: {exc}",
            ) from None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, exc: ApiError) -> Response:
        return cls(exc.status, exc.body(), dict(exc.headers))


Dispatch = Callable[[Request], Response]


def _normalize(path: str) -> str:
    parts = [p for p in unquote(path).split("/") if p]
    return "/" + "/".join(parts)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ACRTransferEmulator/1.0"
    timeout = 60
    server: _TlsServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=_normalize(split.path),
            query={k.lower(): v for k, v in parse_qsl(split.query, keep_blank_values=True)},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            port=self.server.server_address[1],
            raw_target=self.path,
        )
        # ARM's correlation id: the client's if it sent one, else a new one; the response echoes it and a
        # deployment PUT keeps it as properties.correlationId.
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        request.headers["x-ms-correlation-request-id"] = correlation
        try:
            response = self.server.dispatch(request)
        except ApiError as exc:
            response = Response.error(exc)
        except Exception as exc:
            log.exception("unhandled error on %s %s", self.command, request.path)
            response = Response.error(
                ApiError(500, "InternalServerError", f"Emulator error: {type(exc).__name__}")
            )
        self._write(request, response)

    def _write(self, request: Request, response: Response) -> None:
        if isinstance(response.body, bytes):  # sent as it is (a registry manifest: its bytes are its digest)
            payload = response.body
        else:
            payload = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        # A HEAD answer may state the length of what a GET would send (a blob the emulator holds no bytes of).
        length = response.headers.pop("Content-Length", None) if request.method == "HEAD" else None
        headers = {
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id")
            or str(uuid.uuid4()),
            "Cache-Control": "no-cache",
            **response.headers,
        }
        if payload and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json; charset=utf-8"
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", length or str(len(payload)))
        self.end_headers()
        if payload and request.method != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle  # noqa: N815


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, context: ssl.SSLContext, dispatch: Dispatch) -> None:
        self.context = context
        self.dispatch = dispatch
        super().__init__(("127.0.0.1", port), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, never in the accept loop.
        # TCP_NODELAY: a response goes out as two TLS records (headers, then body); with Nagle's algorithm
        # the second waits for the client's delayed ACK, about 40 ms per request.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


class HttpsServer:
    """One listening port; `start()` serves it in a daemon thread, `stop()` shuts it down."""

    def __init__(self, context: ssl.SSLContext, dispatch: Dispatch, port: int = 0) -> None:
        self._server = _TlsServer(port, context, dispatch)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"https-{self.port}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
