"""`python -m demo serve`: the local stack with both app instances' HTTP functions on localhost, for curl.

The source side (exports) answers on one port and the target side (imports) on another, under /api/ as
the Functions host routes them. A background loop plays the host's part: it runs the reconcile timer on
both sides and delivers a blob event (as Event Grid would) for each new or re-written blob in the target
container. Invocations are serialized: one function runs at a time, as on a single-worker host.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from demo import scenario
from demo import stack as demo_stack
from transfer import bootstrap, http_api
from transfer.config import load_settings

_invocation = threading.Lock()


def _handler(side: scenario.Side, app: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            found = http_api.route(self.command, parts.path)
            if found is None:
                self._send(404, {"error": {"code": "NotFound", "message": f"no function at {parts.path}"}})
                return
            name, route_params = found
            length = int(self.headers.get("Content-Length") or 0)
            request = func.HttpRequest(
                self.command,
                f"http://{self.headers.get('Host', 'localhost')}{self.path}",
                headers=dict(self.headers.items()),
                params=dict(parse_qsl(parts.query)),
                route_params=route_params,
                body=self.rfile.read(length) if length else b"",
            )
            with _invocation, side.active():
                response = getattr(app, name)(request)
            self.send_response(response.status_code)
            for key, value in response.headers.items():
                if key.lower() not in ("content-length", "content-type"):
                    self.send_header(key, value)
            body = response.get_body() or b""
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815 - http.server dispatches on these names

        def log_message(self, format: str, *args: Any) -> None:
            print(f"   [{side.name}] {format % args}")

    return Handler


def _host_loop(stop: threading.Event, stack: demo_stack.Stack, sides: list[scenario.Side], app: Any) -> None:
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(
        stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER
    )
    seen: dict[str, str] = {}
    target = sides[1]
    while not stop.wait(3.0):
        for blob in container.list_blobs():
            if seen.get(blob.name) != blob.etag:
                seen[blob.name] = blob.etag
                with _invocation:
                    target.blob_event(app, stack, blob.name)
        for side in sides:
            with _invocation:
                side.timer(app.reconcile)


def serve(source_port: int = 7071, target_port: int = 7072) -> None:
    import function_app

    stack = demo_stack.start()
    try:
        with demo_stack.identity(stack):
            source = scenario.Side(
                "source", bootstrap.build_service(load_settings(stack.source_env), stack.clock)
            )
            target = scenario.Side(
                "target", bootstrap.build_service(load_settings(stack.target_env), stack.clock)
            )
            scenario.prepare(stack, source, target)
            servers = [
                ThreadingHTTPServer(("127.0.0.1", port), _handler(side, function_app))
                for side, port in ((source, source_port), (target, target_port))
            ]
            for server in servers:
                threading.Thread(target=server.serve_forever, daemon=True).start()
            stop = threading.Event()
            threading.Thread(
                target=_host_loop, args=(stop, stack, [source, target], function_app), daemon=True
            ).start()
            az_env = stack.emulator.settings()["EMULATOR_AZ_ENV"]
            print(_USAGE.format(source=source_port, target=target_port, az_env=az_env))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("\nstopping")
            finally:
                stop.set()
                for server in servers:
                    server.shutdown()
    finally:
        stack.stop()


_USAGE = """
The stack is up: source side (exports) on http://127.0.0.1:{source}/api, target side (imports) on
http://127.0.0.1:{target}/api. The source registry holds samples/hello-world:v1,v2, samples/nginx:1.27
and bulk/svc00..59:v1. Reconcile runs every 3 s on both sides; blobs copied to the target container
get their blob event. Try:

  curl -s -X POST http://127.0.0.1:{source}/api/exports -H 'Content-Type: application/json' \\
       -H 'Idempotency-Key: try-1' -d '{{"artifacts": ["samples/hello-world:v1"], "targetName": "try"}}'
  curl -s http://127.0.0.1:{source}/api/runs
  curl -s http://127.0.0.1:{source}/api/runs/RUN_ID
  curl -s http://127.0.0.1:{target}/api/runs          # the source trigger's import shows up here
  curl -s http://127.0.0.1:{target}/api/health

The real Azure CLI reaches the same emulator after `source {az_env}` (README: Rehearse your own az workflow).
Ctrl-C stops everything.
"""
