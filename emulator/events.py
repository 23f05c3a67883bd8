"""A registry's Event Grid events: `Microsoft.ContainerRegistry.ImagePushed` / `ImageDeleted` for every push
and delete (data plane, seeding that stands for a push, imports), delivered at least once, in batches (a JSON
array, as Event Grid posts to a webhook), to subscribed endpoints.

- Subscriptions through ARM: `Microsoft.EventGrid/systemTopics` (`source` = the registry,
  `topicType: Microsoft.ContainerRegistry.Registries`) with `.../eventSubscriptions`, or the extension
  resource `{registry id}/providers/Microsoft.EventGrid/eventSubscriptions/{name}`; a WebHook destination
  (`endpointUrl`, `maxEventsPerBatch`), `filter` (`includedEventTypes`, `subjectBeginsWith` /
  `subjectEndsWith`, `isSubjectCaseSensitive`), `eventDeliverySchema` (EventGridSchema or
  CloudEventSchemaV1_0), `retryPolicy` (`maxDeliveryAttempts`, `eventTimeToLiveInMinutes`). A WebHook
  subscription made through ARM first passes Event Grid's validation handshake (setting
  `event_subscription_validation`). Or through the admin API (no handshake unless asked).
- Delivery: a POST per batch with Event Grid's headers (`aeg-event-type: Notification`,
  `aeg-subscription-name`, `aeg-delivery-count`, ...); 2xx is delivered; 400 and 413 dead-letter at once;
  anything else (5xx, 408, 429, 404, a refused connection) is retried after `retryDelays` until
  `maxDeliveryAttempts` or the time to live. Knobs (admin API): duplicate each batch, reverse or shuffle the
  order, delay, hold until flushed, override the batch size.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from emulator import ids
from emulator.arm_errors import ApiError, bad_request
from emulator.clock import Clock, iso
from emulator.registry_content import Change
from emulator.resources import PutResult, ResourceManager
from emulator.store import Config, Resource

log = logging.getLogger("emulator.events")

PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
DELETED = "Microsoft.ContainerRegistry.ImageDeleted"
REGISTRY_EVENT_TYPES = (
    PUSHED,
    DELETED,
    "Microsoft.ContainerRegistry.ChartPushed",
    "Microsoft.ContainerRegistry.ChartDeleted",
)
TOPIC_TYPE = "Microsoft.ContainerRegistry.Registries"
SYSTEM_TOPICS = "Microsoft.EventGrid/systemTopics"
TOPIC_SUBSCRIPTIONS = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
SUBSCRIPTIONS = "Microsoft.EventGrid/eventSubscriptions"
REGISTRIES = "Microsoft.ContainerRegistry/registries"
SCHEMAS = ("EventGridSchema", "CloudEventSchemaV1_0")
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
DEAD_LETTER_AT_ONCE = (400, 413)
SEND_TIMEOUT = 30.0  # Event Grid waits 30 s for a webhook's answer
HANDSHAKE_TIMEOUT = 10.0  # the handshake runs inside the subscription's PUT: kept short


@dataclass
class Knobs:
    """How delivery misbehaves (at-least-once, unordered, batched, late), for tests."""

    duplicates: int = 0  # each batch is delivered 1 + duplicates times
    reorder: str = "none"  # "none", "reverse" or "shuffle" the events ready at once
    delay_seconds: float = 0.0  # an event waits this long before it may be delivered
    hold: bool = False  # nothing is delivered until flushed (then as one burst)
    batch_size: int | None = None  # overrides every subscription's maxEventsPerBatch
    retry_delays: list[float] = field(default_factory=lambda: [0.2, 0.5, 1.0, 2.0, 5.0])

    def as_dict(self) -> dict[str, Any]:
        return {
            "duplicates": self.duplicates,
            "reorder": self.reorder,
            "delaySeconds": self.delay_seconds,
            "hold": self.hold,
            "batchSize": self.batch_size,
            "retryDelays": list(self.retry_delays),
        }


@dataclass
class _Pending:
    event: dict[str, Any]
    due: float
    first: float
    attempts: int = 0


@dataclass
class Subscription:
    id: str
    name: str
    topic: str  # the registry's resource id
    endpoint: str | None  # None: a destination the emulator cannot post to (AzureFunction, queues...)
    endpoint_type: str
    event_types: tuple[str, ...] | None
    begins_with: str = ""
    ends_with: str = ""
    case_sensitive: bool = False
    max_events_per_batch: int = 1
    schema: str = "EventGridSchema"
    max_attempts: int = 30
    ttl_minutes: int = 1440
    pending: list[_Pending] = field(default_factory=list)

    def wants(self, event_type: str, subject: str) -> bool:
        if self.event_types is not None and event_type not in self.event_types:
            return False
        text, begins, ends = (
            (subject, self.begins_with, self.ends_with)
            if self.case_sensitive
            else (subject.lower(), self.begins_with.lower(), self.ends_with.lower())
        )
        return text.startswith(begins) and text.endswith(ends)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "topic": self.topic,
            "endpoint": self.endpoint,
            "endpointType": self.endpoint_type,
            "includedEventTypes": list(self.event_types) if self.event_types is not None else None,
            "subjectBeginsWith": self.begins_with,
            "subjectEndsWith": self.ends_with,
            "maxEventsPerBatch": self.max_events_per_batch,
            "eventDeliverySchema": self.schema,
            "pending": len(self.pending),
        }


class Events:
    """Subscriptions, the events waiting for each, the delivery worker, and the log of deliveries."""

    def __init__(self, config: Config, clock: Clock, stop: threading.Event) -> None:
        self.config = config
        self.clock = clock
        self.stop = stop
        self.lock = threading.Condition()
        self.clear()
        self.thread = threading.Thread(target=self._deliver_forever, name="event-delivery", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def poke(self) -> None:
        with self.lock:
            self.lock.notify_all()

    def clear(self) -> None:
        with self.lock:
            self.subscriptions: dict[str, Subscription] = {}
            self.knobs = Knobs()
            self.deliveries: list[dict[str, Any]] = []
            self.dead_letters: list[dict[str, Any]] = []
            self.published: list[dict[str, Any]] = []
            self.lock.notify_all()

    # --- subscriptions

    def subscribe(self, subscription: Subscription) -> Subscription:
        with self.lock:
            previous = self.subscriptions.get(ids.key(subscription.id))
            if previous is not None:
                subscription.pending = previous.pending
            self.subscriptions[ids.key(subscription.id)] = subscription
            self.lock.notify_all()
            return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        with self.lock:
            return self.subscriptions.pop(ids.key(subscription_id), None) is not None

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "subscriptions": [s.describe() for s in self.subscriptions.values()],
                "knobs": self.knobs.as_dict(),
            }

    def set_knobs(self, values: dict[str, Any]) -> Knobs:
        names = {
            "duplicates": "duplicates",
            "reorder": "reorder",
            "delaySeconds": "delay_seconds",
            "hold": "hold",
            "batchSize": "batch_size",
            "retryDelays": "retry_delays",
        }
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise bad_request(f"Unknown delivery knob(s) {', '.join(unknown)}; known: {', '.join(names)}.")
        checks = {
            "duplicates": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "reorder": lambda v: v in ("none", "reverse", "shuffle"),
            "delaySeconds": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
            "hold": lambda v: isinstance(v, bool),
            "batchSize": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
            "retryDelays": lambda v: (
                isinstance(v, list)
                and bool(v)
                and all(isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in v)
            ),
        }
        for name, value in values.items():
            if not checks[name](value):
                raise bad_request(f"The delivery knob '{name}' cannot be {value!r}.")
        with self.lock:
            for name, value in values.items():
                setattr(self.knobs, names[name], list(value) if name == "retryDelays" else value)
            self.lock.notify_all()
            return copy.deepcopy(self.knobs)

    def flush(self) -> int:
        """Release what is held or delayed now; returns how many events were waiting."""
        with self.lock:
            self.knobs.hold = False
            now = time.monotonic()
            waiting = 0
            for subscription in self.subscriptions.values():
                for pending in subscription.pending:
                    pending.due = min(pending.due, now)
                    waiting += 1
            self.lock.notify_all()
            return waiting

    def log(self) -> dict[str, Any]:
        with self.lock:
            return {
                "published": copy.deepcopy(self.published),
                "deliveries": copy.deepcopy(self.deliveries),
                "deadLetters": copy.deepcopy(self.dead_letters),
            }

    # --- publishing (a Registries listener)

    def publish(self, change: Change) -> None:
        event = self.event_of(change)
        with self.lock:
            self.published.append(event)
            due = time.monotonic() + self.knobs.delay_seconds
            for subscription in self.subscriptions.values():
                if ids.key(subscription.topic) == ids.key(change.registry_id) and subscription.wants(
                    event["eventType"], event["subject"]
                ):
                    subscription.pending.append(_Pending(event, due, time.monotonic()))
            self.lock.notify_all()

    def event_of(self, change: Change) -> dict[str, Any]:
        """The event in Event Grid's schema, as ACR documents it."""
        now = iso(self.clock.now())
        registry_name = change.registry_id.rstrip("/").rsplit("/", 1)[-1]
        host = f"{registry_name.lower()}.azurecr.io"
        push = change.action == "push"
        target: dict[str, Any] = {"mediaType": change.media_type, "digest": change.digest}
        if push:
            target.update(size=change.size, length=change.size)
        target["repository"] = change.repository
        if push and change.tag:
            target["tag"] = change.tag
        user_agent = change.user_agent or {
            "admin": "acr-emulator-admin",
            "import": "acr-transfer-import (emulator)",
        }.get(change.via, "")
        data = {
            "id": str(uuid.uuid4()),
            "timestamp": now,
            "action": "push" if push else "delete",
            "location": self.config.location,
            "target": target,
            "request": {
                "id": change.request_id or str(uuid.uuid4()),
                "host": host,
                "method": "PUT" if push else "DELETE",
                "useragent": user_agent,
            },
            "actor": {"name": change.actor} if change.actor else {},
            "source": {"addr": host, "instanceID": str(uuid.uuid5(uuid.NAMESPACE_DNS, host))},
        }
        return {
            "id": str(uuid.uuid4()),
            "topic": change.registry_id,
            "subject": f"{change.repository}:{change.tag}" if push and change.tag else change.repository,
            "eventType": PUSHED if push else DELETED,
            "eventTime": now,
            "data": data,
            "dataVersion": "1.0",
            "metadataVersion": "1",
        }

    # --- delivery

    def _deliver_forever(self) -> None:
        while not self.stop.is_set():
            work = self._next_batch()
            if work is None:
                continue
            subscription, batch = work
            self._send(subscription, batch)

    def _next_batch(self) -> tuple[Subscription, list[_Pending]] | None:
        """The next batch that is due (waits for one); None when woken with nothing due."""
        with self.lock:
            now = time.monotonic()
            wake = None
            if not self.knobs.hold:
                for subscription in list(self.subscriptions.values()):
                    if subscription.endpoint is None:
                        continue
                    ready = [p for p in subscription.pending if p.due <= now]
                    later = [p.due for p in subscription.pending if p.due > now]
                    if later:
                        wake = min([wake, *later]) if wake is not None else min(later)
                    if not ready:
                        continue
                    if self.knobs.reorder == "reverse":
                        ready.reverse()
                    elif self.knobs.reorder == "shuffle":
                        random.shuffle(ready)
                    size = self.knobs.batch_size or subscription.max_events_per_batch
                    batch = ready[:size]
                    for pending in batch:
                        subscription.pending.remove(pending)
                    return subscription, batch
            timeout = None if wake is None else max(0.0, wake - now)
            self.lock.wait(timeout=min(timeout, 1.0) if timeout is not None else 1.0)
            return None

    def _send(self, subscription: Subscription, batch: list[_Pending]) -> None:
        for pending in batch:
            pending.attempts += 1
        copies = 1 + self.knobs.duplicates
        status: int | None = None
        for copy_number in range(copies):
            status, error = self._post(subscription, batch, batch[0].attempts + copy_number)
            with self.lock:
                self.deliveries.append(
                    {
                        "subscription": subscription.name,
                        "eventIds": [p.event["id"] for p in batch],
                        "subjects": [p.event["subject"] for p in batch],
                        "attempt": batch[0].attempts,
                        "status": status,
                        "error": error,
                        "time": iso(self.clock.now()),
                    }
                )
            if status is None or not 200 <= status < 300:
                break
        if status is not None and 200 <= status < 300:
            return
        self._retry_or_dead_letter(subscription, batch, status)

    def _retry_or_dead_letter(
        self, subscription: Subscription, batch: list[_Pending], status: int | None
    ) -> None:
        now = time.monotonic()
        with self.lock:
            delays = self.knobs.retry_delays
            for pending in batch:
                expired = now - pending.first > subscription.ttl_minutes * 60
                if status in DEAD_LETTER_AT_ONCE or pending.attempts >= subscription.max_attempts or expired:
                    reason = (
                        f"the endpoint answered {status}"
                        if status in DEAD_LETTER_AT_ONCE
                        else "time to live passed"
                        if expired
                        else f"{pending.attempts} delivery attempts failed"
                    )
                    self.dead_letters.append(
                        {"subscription": subscription.name, "event": pending.event, "reason": reason}
                    )
                    continue
                pending.due = now + delays[min(pending.attempts - 1, len(delays) - 1)]
                if ids.key(subscription.id) in self.subscriptions:
                    subscription.pending.append(pending)
            self.lock.notify_all()

    def _post(
        self, subscription: Subscription, batch: list[_Pending], delivery: int
    ) -> tuple[int | None, str]:
        assert subscription.endpoint is not None
        events = [_in_schema(p.event, subscription.schema) for p in batch]
        cloud = subscription.schema == "CloudEventSchemaV1_0"
        headers = {
            "Content-Type": "application/cloudevents-batch+json; charset=utf-8"
            if cloud
            else "application/json; charset=utf-8",
            "aeg-event-type": "Notification",
            "aeg-subscription-name": subscription.name.upper(),
            "aeg-delivery-count": str(delivery - 1),
            "aeg-data-version": "1.0",
            "aeg-metadata-version": "1",
            "User-Agent": "Microsoft-Azure-EventGrid (emulator)",
        }
        return _http_post(subscription.endpoint, events, headers)

    # --- the validation handshake of a WebHook subscription made through ARM

    def validate(self, subscription: Subscription) -> None:
        """Event Grid's handshake: the endpoint must answer the validation event with its code."""
        if subscription.endpoint is None or not self.config.event_subscription_validation:
            return
        code = str(uuid.uuid4()).upper()
        event = {
            "id": str(uuid.uuid4()),
            "topic": subscription.topic,
            "subject": "",
            "data": {
                "validationCode": code,
                "validationUrl": f"https://rp-{self.config.location}.eventgrid.azure.net/eventsubscriptions/"
                f"{subscription.name}/validate?id={code}&t={iso(self.clock.now())}",
            },
            "eventType": VALIDATION_EVENT,
            "eventTime": iso(self.clock.now()),
            "metadataVersion": "1",
            "dataVersion": "2",
        }
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "aeg-event-type": "SubscriptionValidation",
            "aeg-subscription-name": subscription.name.upper(),
        }
        status, answer = _http_post(
            subscription.endpoint, [event], headers, read=True, timeout=HANDSHAKE_TIMEOUT
        )
        try:
            echoed = json.loads(answer).get("validationResponse") if status == 200 else None
        except (json.JSONDecodeError, AttributeError):
            echoed = None
        if str(echoed or "").upper() != code:
            raise bad_request(
                f"Webhook validation handshake failed for {_base(subscription.endpoint)}. Http POST request "
                f"failed with response code {status or 'Unknown'}. For troubleshooting, visit "
                "https://aka.ms/esvalidation.",
                code="Url validation",
            )


def _in_schema(event: dict[str, Any], schema: str) -> dict[str, Any]:
    if schema != "CloudEventSchemaV1_0":
        return event
    return {
        "id": event["id"],
        "source": event["topic"],
        "specversion": "1.0",
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "datacontenttype": "application/json",
        "data": event["data"],
    }


def _http_post(
    url: str, body: Any, headers: dict[str, str], read: bool = False, timeout: float = SEND_TIMEOUT
) -> tuple[int | None, str]:
    request = urllib.request.Request(  # noqa: S310 - a subscribed endpoint (loopback in tests)
        url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            text = response.read().decode("utf-8", "replace") if read else ""
            return int(response.status), text
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.reason if isinstance(exc.reason, str) else str(exc.reason)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# --- ARM: system topics and event subscriptions


class SystemTopics:
    """Microsoft.EventGrid/systemTopics of a registry (`source`, `topicType`). Topics of other sources (a
    storage account's, for the blob trigger) are stored as sent: the emulator delivers no event of theirs."""

    def __init__(self, resources: ResourceManager, config: Config) -> None:
        self.resources = resources
        self.config = config

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        properties = copy.deepcopy(body.get("properties") or {})
        source = str(properties.get("source") or "")
        topic_type = str(properties.get("topicType") or "")
        if topic_type.lower() != TOPIC_TYPE.lower():
            return self.resources.store_generic(rid, resource_id, api_version, body, properties)
        if self.resources.find(source) is None:
            raise bad_request(
                f"The source '{source}' of the system topic does not exist.",
                code="InvalidRequest",
                target="properties.source",
            )
        for other in self.resources.by_type(SYSTEM_TOPICS):
            if ids.key(other.id) != ids.key(resource_id) and ids.key(
                str(other.body["properties"].get("source", ""))
            ) == ids.key(source):
                raise ApiError(
                    409,
                    "Conflict",
                    f"A system topic ('{other.body['name']}') already exists for the source '{source}': only "
                    "one system topic per source is allowed.",
                )
        existing = self.resources.find(resource_id)
        properties["topicType"] = TOPIC_TYPE
        properties["metricResourceId"] = (
            existing.body["properties"]["metricResourceId"] if existing else str(uuid.uuid4())
        )
        body = {**body, "location": body.get("location") or self.config.location}
        return self.resources.store_generic(rid, resource_id, api_version, body, properties)

    def delete(self, resource: Resource) -> None:
        return None


class EventSubscriptions:
    """Event subscriptions of a registry's system topic, or on the registry itself (an extension
    resource); each becomes a Subscription of `Events`."""

    def __init__(self, resources: ResourceManager, events: Events) -> None:
        self.resources = resources
        self.events = events

    def _topic(self, rid: ids.ResourceId) -> str:
        if rid.is_type(TOPIC_SUBSCRIPTIONS):
            assert rid.parent is not None
            topic = self.resources.get(rid.parent.id)
            return str(topic.body["properties"]["source"])
        scope = ids.parse(rid.scope)
        if scope is None or not scope.is_type(REGISTRIES) or self.resources.find(rid.scope) is None:
            raise bad_request(
                f"The emulator delivers events of container registries only; '{rid.scope}' is not one.",
                code="InvalidRequest",
            )
        return rid.scope

    def _of_other_topic(self, rid: ids.ResourceId) -> bool:
        """A subscription of a system topic that is not a registry's (stored as sent, never delivered)."""
        if not rid.is_type(TOPIC_SUBSCRIPTIONS) or rid.parent is None:
            return False
        topic = self.resources.find(rid.parent.id)
        topic_type = str(((topic.body.get("properties") or {}) if topic else {}).get("topicType") or "")
        return topic is not None and topic_type.lower() != TOPIC_TYPE.lower()

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        properties = copy.deepcopy(body.get("properties") or {})
        if self._of_other_topic(rid):
            return self.resources.store_generic(rid, resource_id, api_version, body, properties)
        subscription = subscription_from(resource_id, rid.name, self._topic(rid), properties)
        existing = self.resources.find(resource_id)
        changed = subscription.endpoint is not None and _endpoint_of(
            existing.body if existing else {}
        ) != _base(subscription.endpoint)
        if changed:
            self.events.validate(subscription)  # Event Grid validates a new or changed webhook
        self.events.subscribe(subscription)
        destination = properties.get("destination") or {}
        shown = copy.deepcopy(destination.get("properties") or {})
        if "endpointUrl" in shown:  # write-only: ARM answers the base URL
            shown["endpointBaseUrl"] = _base(str(shown["endpointUrl"]))
            shown["endpointUrl"] = None
        properties["destination"] = {**destination, "properties": shown}
        properties["topic"] = subscription.topic
        properties.setdefault("eventDeliverySchema", subscription.schema)
        properties.setdefault(
            "retryPolicy",
            {
                "maxDeliveryAttempts": subscription.max_attempts,
                "eventTimeToLiveInMinutes": subscription.ttl_minutes,
            },
        )
        return self.resources.store_generic(rid, resource_id, api_version, body, properties)

    def delete(self, resource: Resource) -> None:
        self.events.unsubscribe(resource.id)  # nothing for one that was never subscribed


def _endpoint_of(body: dict[str, Any]) -> str | None:
    shown = ((body.get("properties") or {}).get("destination") or {}).get("properties") or {}
    return shown.get("endpointBaseUrl")


def subscription_from(
    subscription_id: str, name: str, topic: str, properties: dict[str, Any]
) -> Subscription:
    """A Subscription from an eventSubscription's properties (ARM's shape), validated as Event Grid does."""
    destination = properties.get("destination") or {}
    endpoint_type = str(destination.get("endpointType") or "")
    settings = destination.get("properties") or {}
    endpoint: str | None = None
    if endpoint_type == "WebHook":
        endpoint = str(settings.get("endpointUrl") or "")
        parsed = urlsplit(endpoint)
        loopback = parsed.hostname in ("127.0.0.1", "localhost")
        if parsed.scheme != "https" and not (loopback and parsed.scheme == "http"):
            raise bad_request(
                "The WebHook endpoint must be an https URL (the emulator also accepts http on 127.0.0.1).",
                code="InvalidRequest",
                target="properties.destination.properties.endpointUrl",
            )
    elif endpoint_type not in (
        "AzureFunction",
        "StorageQueue",
        "ServiceBusQueue",
        "EventHub",
        "HybridConnection",
    ):
        raise bad_request(
            f"The destination endpointType '{endpoint_type}' is not valid.",
            code="InvalidRequest",
            target="properties.destination.endpointType",
        )
    batch = settings.get("maxEventsPerBatch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 5000:
        raise bad_request("maxEventsPerBatch must be 1-5000.", code="InvalidRequest")
    filters = properties.get("filter") or {}
    included = filters.get("includedEventTypes")
    if included is not None:
        unknown = [t for t in included if t not in REGISTRY_EVENT_TYPES]
        if unknown:
            raise bad_request(
                f"The event type(s) {', '.join(map(str, unknown))} are not emitted by "
                f"{TOPIC_TYPE}: {', '.join(REGISTRY_EVENT_TYPES)}.",
                code="InvalidRequest",
                target="properties.filter.includedEventTypes",
            )
    schema = str(properties.get("eventDeliverySchema") or "EventGridSchema")
    if schema not in SCHEMAS:
        raise bad_request(f"The event delivery schema '{schema}' is not one of {', '.join(SCHEMAS)}.")
    retry = properties.get("retryPolicy") or {}
    return Subscription(
        id=subscription_id,
        name=name,
        topic=topic,
        endpoint=endpoint,
        endpoint_type=endpoint_type,
        event_types=tuple(included) if included is not None else None,
        begins_with=str(filters.get("subjectBeginsWith") or ""),
        ends_with=str(filters.get("subjectEndsWith") or ""),
        case_sensitive=bool(filters.get("isSubjectCaseSensitive", False)),
        max_events_per_batch=batch,
        schema=schema,
        max_attempts=int(retry.get("maxDeliveryAttempts") or 30),
        ttl_minutes=int(retry.get("eventTimeToLiveInMinutes") or 1440),
    )
