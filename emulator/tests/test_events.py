"""The registry's Event Grid events, received by a tiny local webhook and read with the Event Grid SDK's own
model: ImagePushed / ImageDeleted for pushes and deletes through the data plane (the real
ContainerRegistryClient), batches, duplicates, reordering, delay, retries on 5xx and dead letters, filters,
and subscriptions made through ARM (a system topic and its event subscription, with the validation
handshake)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.eventgrid import EventGridEvent, SystemEventNames

from emulator.testing import RunningEmulator
from emulator.tests.helpers import (
    deploy,
    deployments_client,
    registry_id,
    resources_client,
    state,
    unique,
    wait_for,
)
from emulator.tests.registry_helpers import client

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
DELETED = "Microsoft.ContainerRegistry.ImageDeleted"
EMPTY = b"{}"


class Receiver:
    """A webhook on 127.0.0.1: records every POST (headers, JSON body), answers the statuses it is given in
    turn (then 200), and answers Event Grid's validation handshake when `validates`."""

    def __init__(self, validates: bool = True) -> None:
        self.posts: list[tuple[dict[str, str], Any]] = []
        self.statuses: list[int] = []
        self.validates = validates
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = b""
                with receiver.lock:
                    if headers.get("aeg-event-type") == "SubscriptionValidation":
                        status = 200
                        if receiver.validates:
                            code = body[0]["data"]["validationCode"]
                            answer = json.dumps({"validationResponse": code}).encode()
                    else:
                        receiver.posts.append((headers, body))
                        status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/events?code=secret"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for _, batch in self.posts for event in batch]

    def batches(self) -> list[list[dict[str, Any]]]:
        with self.lock:
            return [batch for _, batch in self.posts]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def registry(emulator_reset: RunningEmulator) -> RunningEmulator:
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["v1"]})
    emulator_reset.admin.event_delivery(retryDelays=[0.05, 0.1, 0.2])
    return emulator_reset


def push(emulator: RunningEmulator, repository: str, tag: str | None, payload: bytes = b"layer") -> str:
    """A push as a client makes it: blobs, then the manifest (under `tag`, or by digest)."""
    acr = client(emulator, "sourceregistry")
    acr.upload_blob(repository, io.BytesIO(EMPTY))
    acr.upload_blob(repository, io.BytesIO(payload))

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(EMPTY),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(payload),
                "size": len(payload),
            }
        ],
    }
    return acr.set_manifest(repository, manifest, tag=tag)


def test_a_push_through_the_data_plane_raises_image_pushed_in_event_grid_s_schema(
    registry: RunningEmulator, receiver: Receiver
) -> None:
    registry.admin.subscribe_events("sourceregistry", receiver.url, name="onpush")
    digest = push(registry, "samples/web", "v2")
    (event,) = wait_for(receiver.events)
    parsed = EventGridEvent.from_dict(event)
    assert parsed.event_type == SystemEventNames.ContainerRegistryImagePushedEventName == PUSHED
    assert parsed.subject == "samples/web:v2"
    assert parsed.topic == registry_id(registry, "sourceregistry")
    assert (parsed.data_version, event["metadataVersion"]) == ("1.0", "1")
    target = event["data"]["target"]
    manifest = client(registry, "sourceregistry").get_manifest("samples/web", digest)
    size = len(json.dumps(manifest.manifest))
    assert target == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": size,
        "length": size,
        "repository": "samples/web",
        "tag": "v2",
    }
    assert event["data"]["action"] == "push"
    request = event["data"]["request"]
    assert (request["host"], request["method"]) == ("sourceregistry.azurecr.io", "PUT")
    assert request["useragent"].startswith("azsdk-python-azure-containerregistry/")
    assert set(event["data"]) >= {"id", "timestamp", "action", "target", "request", "actor", "source"}
    headers, _ = receiver.posts[0]
    assert headers["aeg-event-type"] == "Notification"
    assert headers["aeg-subscription-name"] == "ONPUSH"
    assert headers["aeg-delivery-count"] == "0"

    # a push by digest (no tag) names the repository only; a delete raises ImageDeleted
    untagged = push(registry, "samples/web", None, b"other")
    client(registry, "sourceregistry").delete_manifest("samples/web", untagged)
    later = wait_for(lambda: receiver.events()[1:] if len(receiver.events()) == 3 else None)
    assert [(e["eventType"], e["subject"]) for e in later] == [
        (PUSHED, "samples/web"),
        (DELETED, "samples/web"),
    ]
    assert "tag" not in later[0]["data"]["target"]
    assert later[1]["data"]["action"] == "delete"
    assert later[1]["data"]["request"]["method"] == "DELETE"


def test_batches_order_duplicates_and_delay(registry: RunningEmulator, receiver: Receiver) -> None:
    admin = registry.admin
    admin.subscribe_events("sourceregistry", receiver.url, max_events_per_batch=10)
    admin.event_delivery(hold=True, reorder="reverse")
    for tag in ("a", "b", "c"):
        admin.retag("sourceregistry", "samples/hello", tag)  # seeding that stands for a push
    time.sleep(0.3)
    assert receiver.posts == []  # held
    assert admin.flush_events() == 3
    (batch,) = wait_for(receiver.batches)
    assert [e["subject"] for e in batch] == ["samples/hello:c", "samples/hello:b", "samples/hello:a"]

    admin.event_delivery(reorder="none", duplicates=1, batchSize=1)
    admin.retag("sourceregistry", "samples/hello", "d")
    twice = wait_for(lambda: receiver.batches()[1:] if len(receiver.batches()) >= 3 else None)
    assert [b[0]["id"] for b in twice] == [twice[0][0]["id"]] * 2  # the same event, delivered twice

    admin.event_delivery(duplicates=0, delaySeconds=1.0)
    started = time.monotonic()
    admin.retag("sourceregistry", "samples/hello", "e")
    wait_for(lambda: len(receiver.batches()) == 4)
    assert time.monotonic() - started >= 1.0


def test_failed_deliveries_are_retried_and_4xx_dead_lettered(
    registry: RunningEmulator, receiver: Receiver
) -> None:
    admin = registry.admin
    admin.subscribe_events("sourceregistry", receiver.url, name="flaky")
    receiver.statuses = [500, 503]
    admin.retag("sourceregistry", "samples/hello", "v9")
    wait_for(lambda: len(receiver.posts) == 3)
    counts = [headers["aeg-delivery-count"] for headers, _ in receiver.posts]
    assert counts == ["0", "1", "2"]
    assert len({batch[0]["id"] for _, batch in receiver.posts}) == 1
    assert [d["status"] for d in admin.events()["deliveries"]] == [500, 503, 200]

    receiver.statuses = [400]
    admin.retag("sourceregistry", "samples/hello", "v10")
    dead = wait_for(lambda: admin.events()["deadLetters"])
    assert dead[0]["reason"] == "the endpoint answered 400"
    assert dead[0]["event"]["subject"] == "samples/hello:v10"
    time.sleep(0.5)
    assert len(receiver.posts) == 4  # not retried


def test_filters_by_event_type_and_subject(registry: RunningEmulator, receiver: Receiver) -> None:
    admin = registry.admin
    admin.subscribe_events(
        "sourceregistry", receiver.url, event_types=[PUSHED], subject_begins_with="samples/"
    )
    pushed = admin.add_image("sourceregistry", "samples/keep", "v1", [10])
    admin.add_image("sourceregistry", "other/skip", "v1", [10])
    admin.delete_manifest("sourceregistry", "samples/keep", pushed["digest"])
    admin.retag("sourceregistry", "samples/hello", "v3")
    wait_for(lambda: len(receiver.events()) == 2)
    time.sleep(0.3)
    assert [e["subject"] for e in receiver.events()] == ["samples/keep:v1", "samples/hello:v3"]


REGISTRY_ID = "[resourceId('Microsoft.ContainerRegistry/registries', parameters('registryName'))]"


def _topic_template(schema: str = "EventGridSchema") -> dict[str, Any]:
    """What the product's infra deploys: the registry's system topic and a WebHook subscription."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"registryName": {"type": "string"}, "webhook": {"type": "securestring"}},
        "resources": [
            {
                "type": "Microsoft.EventGrid/systemTopics",
                "apiVersion": "2022-06-15",
                "name": "registrytopic",
                "location": "[resourceGroup().location]",
                "properties": {
                    "source": REGISTRY_ID,
                    "topicType": "Microsoft.ContainerRegistry.Registries",
                },
            },
            {
                "type": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
                "apiVersion": "2022-06-15",
                "name": "registrytopic/exportonpush",
                "dependsOn": ["[resourceId('Microsoft.EventGrid/systemTopics', 'registrytopic')]"],
                "properties": {
                    "destination": {
                        "endpointType": "WebHook",
                        "properties": {"endpointUrl": "[parameters('webhook')]", "maxEventsPerBatch": 5},
                    },
                    "filter": {"includedEventTypes": [PUSHED]},
                    "eventDeliverySchema": schema,
                    "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440},
                },
            },
        ],
    }


def test_a_subscription_deployed_through_arm_validates_its_webhook_then_delivers(
    registry: RunningEmulator, receiver: Receiver
) -> None:
    params = {"registryName": {"value": "sourceregistry"}, "webhook": {"value": receiver.url}}
    deployment = deploy(
        deployments_client(registry),
        registry.resource_group,
        unique("topic-"),
        _topic_template(),
        params,
    )
    assert state(deployment) == "Succeeded", deployment.properties.error
    subscription_id = (
        f"/subscriptions/{registry.subscription_id}/resourceGroups/{registry.resource_group}/providers/"
        "Microsoft.EventGrid/systemTopics/registrytopic/eventSubscriptions/exportonpush"
    )
    answer = resources_client(registry).send_request(
        HttpRequest("GET", f"{subscription_id}?api-version=2022-06-15")
    )
    shown = answer.json()["properties"]["destination"]["properties"]
    assert shown["endpointUrl"] is None  # write-only: the key in the query stays out of ARM's answers
    assert shown["endpointBaseUrl"] == receiver.url.split("?")[0]
    registry.admin.retag("sourceregistry", "samples/hello", "v5")
    (event,) = wait_for(receiver.events)
    assert (event["eventType"], event["subject"]) == (PUSHED, "samples/hello:v5")
    registry.admin.delete_manifest("sourceregistry", "samples/hello", "v5")  # filtered out
    time.sleep(0.3)
    assert len(receiver.events()) == 1

    resources_client(registry).resources.begin_delete_by_id(
        subscription_id, api_version="2022-06-15"
    ).result()
    registry.admin.retag("sourceregistry", "samples/hello", "v6")
    time.sleep(0.3)
    assert len(receiver.events()) == 1  # no subscription, no delivery


def test_a_webhook_that_does_not_answer_the_handshake_fails_the_subscription(
    registry: RunningEmulator,
) -> None:
    silent = Receiver(validates=False)
    try:
        params = {"registryName": {"value": "sourceregistry"}, "webhook": {"value": silent.url}}
        deployment = deploy(
            deployments_client(registry),
            registry.resource_group,
            unique("topic-"),
            _topic_template(),
            params,
        )
        assert state(deployment) == "Failed"
        detail = deployment.properties.error.details[0]
        assert detail.code == "Url validation"
        assert "Webhook validation handshake failed for http://127.0.0.1:" in detail.message
    finally:
        silent.stop()


def test_cloud_events_schema(registry: RunningEmulator, receiver: Receiver) -> None:
    registry.admin.subscribe_events("sourceregistry", receiver.url, schema="CloudEventSchemaV1_0")
    registry.admin.retag("sourceregistry", "samples/hello", "v7")
    (event,) = wait_for(receiver.events)
    assert event["specversion"] == "1.0"
    assert (event["type"], event["subject"]) == (PUSHED, "samples/hello:v7")
    assert event["source"] == registry_id(registry, "sourceregistry")
    headers, _ = receiver.posts[0]
    assert headers["content-type"].startswith("application/cloudevents-batch+json")


def test_subscriptions_are_checked(registry: RunningEmulator) -> None:
    with pytest.raises(HttpResponseError) as raised:
        resources_client(registry).resources.begin_create_or_update_by_id(
            f"{registry_id(registry, 'sourceregistry')}/providers/Microsoft.EventGrid/eventSubscriptions/bad",
            api_version="2022-06-15",
            parameters={
                "properties": {
                    "destination": {
                        "endpointType": "WebHook",
                        "properties": {"endpointUrl": "http://x.test/"},
                    },
                    "filter": {"includedEventTypes": ["Microsoft.Storage.BlobCreated"]},
                }
            },
        ).result()
    assert raised.value.status_code == 400
