"""A small fault-injecting HTTP proxy for the tests: put in front of Azurite (or any plain-HTTP service), it
forwards each request unless a rule says otherwise, and then it answers a status of its choosing (a 5xx, a
429 with Retry-After, the storage service's own error codes), hangs (a real hang: the socket stays open
and silent until the proxy is released or closed), resets the connection, or delays the answer.

    with FaultProxy(azurite.table_port) as proxy:
        proxy.rule = lambda request: Hang() if request.method == "PUT" else None
        ...  # point a client at proxy.port

A rule sees each `Request` (method, path, query, headers) and returns an action or None (forward).
`proxy.seen` counts the requests by action. Every thread it starts stops when it is closed.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    kind: str = "answer"


def storage_error(status: int, code: str, retry_after: int | None = None) -> Answer:
    """An answer as Azure Storage shapes its errors: `x-ms-error-code` and an XML body naming the code."""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{code}</Message></Error>'
    )
    headers = {"x-ms-error-code": code, "Content-Type": "application/xml"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Answer(status, headers, body.encode(), kind=f"{status} {code}")


@dataclass(frozen=True)
class Hang:
    """Read the request and say nothing until the proxy is released or closed (or `seconds` pass)."""

    seconds: float = 3600
    kind: str = "hang"


@dataclass(frozen=True)
class Reset:
    kind: str = "reset"


@dataclass(frozen=True)
class Delay:
    seconds: float
    kind: str = "delay"


Action = Answer | Hang | Reset | Delay
Rule = Callable[[Request], Action | None]


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.rule: Rule = lambda request: None
        self.seen: Counter[str] = Counter()
        self._released = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._accepting.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, original: str) -> str:
        """`original` (an endpoint of the target) with the proxy's port."""
        parts = urlsplit(original)
        return parts._replace(netloc=f"127.0.0.1:{self.port}").geturl()

    def release(self) -> None:
        """End every hang now (their connections are closed, as a server that gave up would)."""
        self._released.set()
        time.sleep(0.05)
        self._released.clear()

    def close(self) -> None:
        self._closed.set()
        self._released.set()
        _close(self._server)  # shutdown wakes the accepting thread
        with self._lock:
            for connection in list(self._connections):
                _close(connection)
        for thread in [self._accepting, *self._threads]:
            thread.join(timeout=5)

    # ---- serving ----

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._connections.add(connection)
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        try:
            while not self._closed.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                head, body = request
                action = self.rule(head)
                self.seen[action.kind if action else "forwarded"] += 1
                if not self._act(connection, action, head, body):
                    return
        except OSError:
            return
        finally:
            reader.close()
            with self._lock:
                self._connections.discard(connection)
            _close(connection)

    def _act(self, connection: socket.socket, action: Action | None, head: Request, body: bytes) -> bool:
        """Do what the rule said; False: the connection is over."""
        if isinstance(action, Hang):
            self._released.wait(action.seconds)
            return False
        if isinstance(action, Reset):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if isinstance(action, Delay):
            if self._released.wait(action.seconds):
                return False
            action = None
        answer = action if isinstance(action, Answer) else self._forward(head, body)
        connection.sendall(_encode(answer))
        return True

    def _forward(self, head: Request, body: bytes) -> Answer:
        upstream = http.client.HTTPConnection(*self.target, timeout=60)
        try:
            target = head.path + (f"?{head.query}" if head.query else "")
            headers = {k: v for k, v in head.headers.items() if k.lower() != "connection"}
            upstream.request(head.method, target, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            dropped = ("transfer-encoding", "connection", "keep-alive")
            if head.method != "HEAD":  # a HEAD answer's Content-Length is the resource's size: kept
                dropped += ("content-length",)
            kept = {k: v for k, v in response.getheaders() if k.lower() not in dropped}
            return Answer(response.status, kept, data)
        finally:
            upstream.close()


def _read_request(reader: object) -> tuple[Request, bytes] | None:
    line = reader.readline()  # type: ignore[attr-defined]
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = reader.readline()  # type: ignore[attr-defined]
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0") or 0)
    body = reader.read(length) if length else b""  # type: ignore[attr-defined]
    path, _, query = target.partition("?")
    return Request(method, path, query, headers), body


def _encode(answer: Answer) -> bytes:
    reason = http.client.responses.get(answer.status, "Status")
    lines = [f"HTTP/1.1 {answer.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in answer.headers.items()]
    if not any(k.lower() == "content-length" for k in answer.headers):
        lines.append(f"Content-Length: {len(answer.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body


def _close(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()
