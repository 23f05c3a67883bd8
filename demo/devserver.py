"""`python -m demo serve`: the local stack with both app instances' HTTP functions on localhost, for curl.

The source side (exports) answers on one port and the target side (imports) on another, under /api/ as
the Functions host routes them. A background loop plays the host's part: it runs the reconcile timer on
both sides and delivers a blob event (as Event Grid would) for each new or re-written blob in the target
container. Invocations are serialized: one function runs at a time, as on a single-worker host.
The source side exports on push: the emulator's source registry posts its ImagePushed events to the
host's Event Grid webhook (demo/on_push.py), which calls `on_image_pushed`; the follow timer starts the
gathered pushes and follows the runs every second; the target side imports each arriving blob at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from demo import on_push, scenario
from demo import stack as demo_stack
from transfer.domain.settings import load_settings
from transfer.entrypoints import http_api

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
            self.send_header("Content-Type", f"{response.mimetype}; charset=utf-8")  # JSON, or a page
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
    ticks = 0
    while not stop.wait(1.0):
        for blob in container.list_blobs():
            if seen.get(blob.name) != blob.etag:
                seen[blob.name] = blob.etag
                with _invocation:
                    target.blob_event(app, stack, blob.name)
        ticks += 1
        for side in sides:
            with _invocation:
                side.timer(app.reconcile if ticks % 3 == 0 else app.follow_runs)


SETTINGS_DIR = Path(__file__).resolve().parent.parent / ".serve"


def cli_settings(stack: demo_stack.Stack, side_env: dict[str, str]) -> dict[str, Any]:
    """One side's settings in local.settings.json's shape: the app's settings, and what the Functions host
    would give it (the managed identity's endpoint and header, the emulator's CA), so a CLI can use the
    stack."""
    emulator = stack.emulator
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        **side_env,
        "IDENTITY_ENDPOINT": emulator.identity_endpoint,
        "IDENTITY_HEADER": emulator.identity_header,
        "REQUESTS_CA_BUNDLE": str(emulator.ca_file),
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
    }
    return {"IsEncrypted": False, "Values": values}


def write_settings(directory: Path, settings: dict[str, dict[str, Any]]) -> list[Path]:
    """`<side>.settings.json` for each side, readable by this user only (connection strings with keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for side, document in settings.items():
        path = directory / f"{side}.settings.json"
        partial = path.with_suffix(".partial")
        partial.touch(mode=0o600)
        partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        partial.replace(path)
        written.append(path)
    return written


def remove_settings(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: something else lives there
        paths[0].parent.rmdir()


def serve(source_port: int = 7071, target_port: int = 7072, settings_dir: Path = SETTINGS_DIR) -> None:
    """Serves until SIGTERM or Ctrl-C (python -m demo turns both into KeyboardInterrupt), then stops the stack
    and removes the settings files."""
    import function_app

    stack = demo_stack.start()
    written: list[Path] = []
    try:
        with demo_stack.identity(stack):
            source_env, target_env = _on_push_env(stack)
            source = scenario.Side("source", load_settings(source_env), stack.clock)
            target = scenario.Side("target", load_settings(target_env), stack.clock)
            scenario.prepare(stack, source, target)
            pushes = on_push.EventGridWebhook(source, function_app, _invocation).__enter__()
            on_push.subscribe(stack, pushes)
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
            written = write_settings(
                settings_dir,
                {
                    "source": cli_settings(stack, source_env),
                    "target": cli_settings(stack, target_env),
                },
            )
            az_env = stack.emulator.settings()["EMULATOR_AZ_ENV"]
            try:  # the usage, last, says it is serving: a signal from then on ends here
                print(
                    _USAGE.format(
                        source=source_port,
                        target=target_port,
                        files=_shown(written),
                        admin=f"{stack.emulator.arm_endpoint}/_emulator",
                        ca=stack.emulator.ca_file,
                        az_env=az_env,
                    ),
                    flush=True,
                )
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("\nstopping", flush=True)
            finally:
                stop.set()
                pushes.__exit__()
                for server in servers:
                    server.shutdown()
    finally:
        if written:
            remove_settings(written)
        stack.stop()


PUSH_SELECTOR = "push/*:*"  # what the dev server's source side exports on push


def _on_push_env(stack: demo_stack.Stack) -> tuple[dict[str, str], dict[str, str]]:
    """The sides' settings: the source side also exports pushes to `push/...` (gathered for 5 s, the
    selector added to the schedule's), the target side imports on arrival."""
    selectors = f"{stack.source_env['TRANSFER_EXPORT_ARTIFACTS']},{PUSH_SELECTOR}"
    source = {
        **stack.source_env,
        "TRANSFER_EXPORT_ARTIFACTS": selectors,
        "TRANSFER_EXPORT_ON_PUSH": "true",
        "TRANSFER_PUSH_WINDOW_SECONDS": "5",
    }
    return source, {**stack.target_env, "TRANSFER_IMPORT_ON_ARRIVAL": "true"}


def _shown(paths: list[Path]) -> str:
    return "\n".join(
        f"  {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}" for path in paths
    )


_USAGE = """
The stack is up: source side (exports) on http://127.0.0.1:{source}/api, target side (imports) on
http://127.0.0.1:{target}/api. The source registry holds samples/hello-world:v1,v2, samples/nginx:1.27
and bulk/svc00..59:v1. The follow timer runs every second and reconcile every 3 s on both sides;
blobs copied to the target container get their blob event and are imported at once. Try:

  curl -s -X POST http://127.0.0.1:{source}/api/exports -H 'Content-Type: application/json' \\
       -H 'Idempotency-Key: try-1' -d '{{"artifacts": ["samples/hello-world:v1"], "targetName": "try"}}'
  curl -s http://127.0.0.1:{source}/api/runs
  curl -s http://127.0.0.1:{source}/api/runs/RUN_ID
  curl -s http://127.0.0.1:{target}/api/runs          # the source trigger's import shows up here
  curl -s http://127.0.0.1:{target}/api/health

Push an image to the source registry (the emulator's admin API stands for `docker push`): its
ImagePushed event reaches on_image_pushed, the push is exported 5 s later, copied, imported and verified:

  curl -s --cacert {ca} -X POST {admin}/registries/sourceregistry/images \\
       -H 'Content-Type: application/json' -d '{{"repository": "push/app", "tag": "v1", "layerSizes": [512]}}'
  curl -s http://127.0.0.1:{target}/api/runs          # a few seconds later: the import, verified

Each side's settings, in local.settings.json's shape (removed when the stack stops):
{files}

The real Azure CLI reaches the same emulator after `source {az_env}` (README: Rehearse your own az workflow).
Ctrl-C or SIGTERM stops everything.
"""
