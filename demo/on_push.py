"""Export on push and import on arrival on the local stack: the Functions host's Event Grid webhook for
`on_image_pushed` (what the dev server, the demo and bench/push_latency.py subscribe to the emulator's
registry events), and the demo's step that pushes two tags and follows them to the target registry."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import azure.functions as func

from demo import stack as demo_stack

if TYPE_CHECKING:
    from demo.scenario import Side, Story

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
WEBHOOK = "/runtime/webhooks/EventGrid?functionName=on_image_pushed"


def grid_event(body: dict[str, Any]) -> func.EventGridEvent:
    """One event of a delivered batch as the worker hands it to the function."""
    raw_time = body.get("eventTime")
    try:
        when = datetime.fromisoformat(str(raw_time).replace("Z", "+00:00")) if raw_time else None
    except ValueError:
        when = None
    return func.EventGridEvent(
        id=str(body.get("id", "")),
        data=body.get("data"),
        topic=str(body.get("topic", "")),
        subject=str(body.get("subject", "")),
        event_type=str(body.get("eventType", "")),
        event_time=when,
        data_version=str(body.get("dataVersion", "")),
    )


class EventGridWebhook:
    """Plays the host's Event Grid extension for one side: answers the validation handshake, and calls
    `on_image_pushed` once per event of a delivered batch; a function that raises fails the delivery (500),
    so Event Grid (the emulator) delivers the batch again. `lock` serializes invocations with the caller's."""

    def __init__(self, side: Side, app: Any, lock: threading.Lock | None = None) -> None:
        self.side = side
        self.app = app
        self.lock = lock
        self.invocations = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{WEBHOOK}"

    def __enter__(self) -> EventGridWebhook:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def deliver(self, events: list[dict[str, Any]]) -> None:
        for body in events:
            with self.lock or nullcontext(), self.side.active():
                self.invocations += 1
                self.app.on_image_pushed(grid_event(body))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    events = json.loads(self.rfile.read(length) or b"[]")
                    if self.headers.get("aeg-event-type") == "SubscriptionValidation":
                        code = events[0]["data"]["validationCode"]
                        self._answer(200, {"validationResponse": code})
                        return
                    webhook.deliver(events)
                except Exception as exc:  # the host answers 500: Event Grid retries the batch
                    self._answer(500, {"error": type(exc).__name__})
                    return
                self._answer(200, {})

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def subscribe(stack: demo_stack.Stack, webhook: EventGridWebhook, name: str = "on-image-pushed") -> None:
    """The source registry's ImagePushed events to the webhook, as infra/eventgrid-registry.json does."""
    stack.emulator.admin.subscribe_events(
        demo_stack.SOURCE_REGISTRY, webhook.url, name=name, event_types=[IMAGE_PUSHED], validate=True
    )


class ArrivalWatcher:
    """Plays Event Grid's BlobCreated for the target container: each new or rewritten blob's event once."""

    def __init__(self, stack: demo_stack.Stack) -> None:
        from azure.storage.blob import ContainerClient

        self.stack = stack
        self.container = ContainerClient.from_connection_string(
            stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER
        )
        self.seen = {blob.name: blob.etag for blob in self.container.list_blobs()}

    def new_blobs(self) -> list[str]:
        fresh = []
        for blob in self.container.list_blobs():
            if self.seen.get(blob.name) != blob.etag:
                self.seen[blob.name] = blob.etag
                fresh.append(blob.name)
        return fresh


@contextmanager
def push_sides(stack: demo_stack.Stack, window_seconds: int, selector: str) -> Iterator[tuple[Side, Side]]:
    """A source side that exports on push (`selector`, the window) and a target side that imports on
    arrival, over the stack's storage and state."""
    from demo.scenario import Side
    from transfer.domain.settings import load_settings

    source_env = {
        **stack.source_env,
        "TRANSFER_EXPORT_ARTIFACTS": selector,
        "TRANSFER_EXPORT_ON_PUSH": "true",
        "TRANSFER_PUSH_WINDOW_SECONDS": str(window_seconds),
    }
    target_env = {**stack.target_env, "TRANSFER_IMPORT_ON_ARRIVAL": "true"}
    yield (
        Side("source", load_settings(source_env), stack.clock),
        Side("target", load_settings(target_env), stack.clock),
    )


def follow_once(
    app: Any, source: Side, target: Side, watcher: ArrivalWatcher, stack: demo_stack.Stack
) -> None:
    """One round of what the host does on its own: the follow timer on both sides, a blob event for each
    blob that arrived in the target container."""
    source.timer(app.follow_runs)
    for name in watcher.new_blobs():
        target.blob_event(app, stack, name)
    target.timer(app.follow_runs)


def push_story(story: Story, stack: demo_stack.Stack, app: Any) -> None:
    """The schedule off: two tags pushed to the source registry reach the target registry, verified; each
    event delivered twice starts one export."""
    admin = stack.emulator.admin
    story.step("Export on push, import on arrival: push two tags, the schedule off, every event twice")
    with (
        push_sides(stack, window_seconds=2, selector="push/*:*") as (source, target),
        EventGridWebhook(source, app) as webhook,
    ):
        subscribe(stack, webhook)
        admin.event_delivery(duplicates=1)
        watcher = ArrivalWatcher(stack)
        try:
            for tag in ("v1", "v2"):
                pushed = admin.add_image(demo_stack.SOURCE_REGISTRY, "push/app", tag, [512])
                story.say(f"pushed push/app:{tag} {pushed['digest'][:19]}…")
            done = _follow_until(story, app, source, target, watcher, stack, _verified_imports(target))
        finally:
            admin.event_delivery(duplicates=0)
            admin.unsubscribe_events("on-image-pushed")
        exports = [r for r in source.service.list_runs(kind="export") if r.trigger.value == "push"]
        story.check(
            len(exports) == 1 and sorted(exports[0].artifacts) == ["push/app:v1", "push/app:v2"],
            f"one export run ({exports[0].id if exports else '-'}) of both tags, started by their events",
        )
        delivered = [d for d in admin.events()["deliveries"] if d["subscription"] == "on-image-pushed"]
        story.check(
            webhook.invocations >= 4 and len(delivered) >= 4,
            f"{webhook.invocations} calls of on_image_pushed for 2 pushes: the repeats did nothing more",
        )
        [imported] = done
        story.check(
            imported.trigger.value == "blob" and imported.verification == "passed",
            f"imported on arrival by run {imported.id}, verified: {imported.verification_detail}",
        )
        tags = set((admin.registry_content(demo_stack.TARGET_REGISTRY).get("push/app") or {}).get("tags", {}))
        story.check(tags == {"v1", "v2"}, "push/app:v1 and v2 are in the target registry")


def _verified_imports(target: Side) -> Callable[[], list[Any]]:
    def imports() -> list[Any]:
        return [
            r
            for r in target.service.list_runs(kind="import", top=200)
            if r.blob and r.blob.startswith("push-") and r.status.terminal and r.verification != "pending"
        ]

    return imports


def _follow_until(
    story: Story,
    app: Any,
    source: Side,
    target: Side,
    watcher: ArrivalWatcher,
    stack: demo_stack.Stack,
    found: Callable[[], list[Any]],
    timeout: float = 90,
) -> list[Any]:
    from demo.scenario import DemoFailure

    deadline = time.monotonic() + timeout
    while not (done := found()):
        if time.monotonic() > deadline:
            raise DemoFailure(f"step {story.steps}: the pushes did not reach the target registry")
        follow_once(app, source, target, watcher, stack)
        time.sleep(0.3)
    return done
