"""ARM in the registry's resource group: template deployments and the ACR Transfer pipeline resources.

Deployments go through azure-mgmt-resource-deployments (`DeploymentsMgmtClient`), generic resources
through azure-mgmt-resource 26 (`ResourceManagementClient.resources.get_by_id` / `begin_delete_by_id`
with the pipeline API version). Long-running operations are started with `polling=False`: only the
initial request is sent, no poller thread. Answers are returned as ARM's own JSON (camelCase), not SDK
models. Both clients use a CappedRetryPolicy. SDKs load lazily, on first use.

Writes (deployment PUTs, deletes) pass a token bucket shared by the process (`WRITE_LIMITER`: 10 per second
sustained, 10 at once), so a burst of blob events or requests never sends ARM more than that. A group at
its 800-deployment quota (DeploymentQuotaExceeded) is Unavailable, not a failure: the run waits for
cleanup to make room.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from transfer.adapters.retry import capped_retry_policy
from transfer.adapters.sdk_errors import IGNORE, redact, redact_json, status_of, translated
from transfer.domain.arm_views import DeploymentState, error_message
from transfer.domain.errors import NotFound, Throttled, TransferError, Unavailable
from transfer.domain.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.policies import RetryPolicy
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient

log = logging.getLogger("transfer.arm")

MAX_PAGES = 1000
ROLE_ASSIGNMENTS_API = "2022-04-01"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_ERROR = 8 * 1024
WRITES_PER_SECOND = 10.0  # ARM writes of one process, sustained (ARM's own budget is per subscription)
WRITE_BURST = 10  # ... and at once
MAX_WRITE_WAIT = 10.0  # seconds: a write that would wait longer is not sent (Throttled: the caller defers)
QUOTA_EXCEEDED = "DeploymentQuotaExceeded"  # the group holds 800 deployments: cleanup makes room


class WriteLimiter:
    """A token bucket for ARM writes (PUT and DELETE), shared by every ArmResourceManager of the process:
    `burst` at once, then `rate` per second. A write reserves its token and waits for it outside the lock,
    so writers are served in order; one that would wait more than `max_wait` is refused with Throttled
    (its Retry-After the wait), which the service treats as ARM's own 429: the run waits for reconcile."""

    def __init__(
        self,
        rate: float = WRITES_PER_SECOND,
        burst: int = WRITE_BURST,
        max_wait: float = MAX_WRITE_WAIT,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst, self.max_wait = rate, float(burst), max_wait
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, what: str) -> float:
        """Wait for a write's turn; the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            wait = max(0.0, (1 - self._tokens) / self.rate)
            if wait > self.max_wait:
                raise Throttled(
                    f"{what}: this worker's ARM writes are limited to {self.rate:g} per second",
                    retry_after=wait,
                )
            self._tokens -= 1
        if wait > 0:
            self._sleep(wait)
        return wait


WRITE_LIMITER = WriteLimiter()


def _status(pipeline_response: Any, _deserialized: Any, _headers: Any) -> int:
    """`cls=` hook of a long-running operation's initial answer: its status (202: accepted, still going)."""
    return int(pipeline_response.http_response.status_code)


def _raw_json(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    """`cls=` hook: the response body as ARM sent it, instead of an SDK model."""
    return pipeline_response.http_response.json()


def deployment_state(name: str, body: Mapping[str, Any]) -> DeploymentState:
    state = DeploymentState.from_arm(name, body)
    return replace(state, error=redact(state.error, MAX_ERROR) if state.error else None)


def _arm_detail(exc: BaseException) -> str:
    """ARM's own error text (code and message) of an SDK error, or the credential's complaint."""
    response = getattr(exc, "response", None)
    if response is not None:  # the body keeps every level of ARM's nested error; the SDK's object only one
        try:
            body = response.json()
        except Exception:
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            return redact(error_message(body["error"]) or "", MAX_ERROR)
    error = getattr(exc, "error", None)
    if error is not None:
        return redact(error_message(_as_json(error)) or "", MAX_ERROR)
    return str(exc).splitlines()[0] if str(exc) else ""


def _as_json(error: Any) -> dict[str, Any]:
    """The SDK's error object (code, message, details) as ARM's JSON, so arm_views reads it the one way."""
    return {
        "code": getattr(error, "code", None),
        "message": getattr(error, "message", None),
        "details": [_as_json(d) for d in getattr(error, "details", None) or ()],
    }


class ArmResourceManager:
    """ResourceManager for `settings.resource_group` and `settings.registry`."""

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential,
        *,
        retry_policy: RetryPolicy | Callable[[], RetryPolicy] | None = None,
        write_limiter: WriteLimiter | None = None,
    ) -> None:
        """`retry_policy`: a policy (copied for each of the two clients: a pipeline links its policies) or a
        factory of policies; default `capped_retry_policy()`."""
        self._settings = settings
        self._credential = credential
        self._retry_policy = retry_policy
        self._writes = write_limiter or WRITE_LIMITER  # one budget for the whole process by default
        self._lock = threading.Lock()
        self._deployments_client: DeploymentsMgmtClient | None = None
        self._resources_client: ResourceManagementClient | None = None

    def __repr__(self) -> str:
        s = self._settings
        return f"ArmResourceManager({s.arm_endpoint!r}, {s.resource_group!r}, {s.registry!r})"

    # ---- clients ----

    def _policy(self) -> RetryPolicy:
        if self._retry_policy is None:
            return capped_retry_policy()
        if callable(self._retry_policy) and not hasattr(self._retry_policy, "send"):
            return self._retry_policy()
        return copy.copy(self._retry_policy)

    def _client_options(self) -> dict[str, Any]:
        return {
            "base_url": self._settings.arm_endpoint,
            "credential_scopes": [self._settings.credential_scope],
            "retry_policy": self._policy(),
        }

    def _deployments(self) -> DeploymentsMgmtClient:
        with self._lock:
            if self._deployments_client is None:
                from azure.mgmt.resource.deployments import DeploymentsMgmtClient

                self._deployments_client = DeploymentsMgmtClient(
                    self._credential, self._settings.subscription_id, **self._client_options()
                )
            return self._deployments_client

    def _resources(self) -> ResourceManagementClient:
        with self._lock:
            if self._resources_client is None:
                from azure.mgmt.resource.resources import ResourceManagementClient

                self._resources_client = ResourceManagementClient(
                    self._credential, self._settings.subscription_id, **self._client_options()
                )
            return self._resources_client

    # ---- deployments ----

    def begin_deployment(self, name: str, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        body = {
            "properties": {
                "mode": "Incremental",
                "template": dict(template),
                "parameters": {key: {"value": value} for key, value in parameters.items()},
            }
        }
        what = f"ARM: starting deployment {name}"
        self._writes.acquire(what)
        try:
            with translated(what, detail=_arm_detail, ignore_if=_deployment_active) as call:
                self._deployments().deployments.begin_create_or_update(
                    self._settings.resource_group, name, body, polling=False
                )
        except TransferError as exc:
            if QUOTA_EXCEEDED not in exc.service_codes:
                raise
            full = Unavailable(
                f"{exc.message}; the resource group's deployment history is full: cleanup of finished runs "
                "makes room, and the run is deployed then"
            )
            full.service_codes, full.correlation_id = exc.service_codes, exc.correlation_id
            raise full from None
        if call.ignored:
            log.info("deployment %s is already running: adopted", name, extra={"deployment": name})

    def get_deployment(self, name: str) -> DeploymentState | None:
        what = f"ARM: reading deployment {name}"
        with translated(what, detail=_arm_detail, absent=IGNORE) as call:
            body = self._deployments().deployments.get(self._settings.resource_group, name, cls=_raw_json)
        return None if call.ignored else deployment_state(name, body)

    def delete_deployment(self, name: str) -> bool:
        self._writes.acquire(f"ARM: deleting deployment {name}")
        with translated(f"ARM: deleting deployment {name}", detail=_arm_detail, absent=IGNORE) as call:
            status = (
                self._deployments()
                .deployments.begin_delete(self._settings.resource_group, name, polling=False, cls=_status)
                .result()
            )
        return call.ignored or status != 202

    def count_deployments(self) -> int:
        what = f"ARM: listing the deployments of {self._settings.resource_group}"
        with translated(what, detail=_arm_detail):
            pages = self._deployments().deployments.list_by_resource_group(
                self._settings.resource_group, cls=lambda items: items
            )
            return sum(1 for _ in pages)

    # ---- pipeline resources ----

    def get_resource(self, resource_id: str) -> dict[str, Any] | None:
        _check_id(resource_id)
        with translated(f"ARM: reading {_short(resource_id)}", detail=_arm_detail, absent=IGNORE) as call:
            body = self._resources().resources.get_by_id(
                resource_id, api_version=self._settings.pipeline_api_version, cls=_raw_json
            )
        if call.ignored:
            return None
        return redact_json(dict(body)) if isinstance(body, Mapping) else None

    def delete_resource(self, resource_id: str) -> bool:
        _check_id(resource_id)
        self._writes.acquire(f"ARM: deleting {_short(resource_id)}")
        with translated(f"ARM: deleting {_short(resource_id)}", detail=_arm_detail, absent=IGNORE) as call:
            status = (
                self._resources()
                .resources.begin_delete_by_id(
                    resource_id, api_version=self._settings.pipeline_api_version, polling=False, cls=_status
                )
                .result()
            )
        return call.ignored or status != 202

    def list_pipeline_runs(self) -> list[dict[str, Any]]:
        return list(self._pages(f"{self._settings.registry_id}/pipelineRuns", "listing the pipeline runs"))

    def list_pipelines(self, kind: str) -> list[dict[str, Any]]:
        if kind not in ("export", "import"):
            raise ValueError(f"not a pipeline kind: {kind!r}")
        path = f"{self._settings.registry_id}/{kind}Pipelines"
        return list(self._pages(path, f"listing the {kind} pipelines"))

    def role_assignments(self, principal_id: str) -> list[dict[str, Any]]:
        if not _GUID.fullmatch(principal_id):
            raise TransferError(f"not a principal id: {redact(principal_id, 60)!r}")
        subscription = f"/subscriptions/{self._settings.subscription_id}"
        path = f"{subscription}/providers/Microsoft.Authorization/roleAssignments"
        params = {"api-version": ROLE_ASSIGNMENTS_API, "$filter": f"principalId eq '{principal_id}'"}
        return list(self._pages(path, "listing role assignments", params))

    def list_resources(self, resource_type: str, api_version: str) -> list[dict[str, Any]]:
        namespace, _, kind = resource_type.partition("/")
        if not re.fullmatch(r"[A-Za-z.]+", namespace) or not re.fullmatch(r"[A-Za-z/]+", kind):
            raise ValueError(f"not a resource type: {resource_type!r}")
        path = f"/subscriptions/{self._settings.subscription_id}/providers/{resource_type}"
        return list(self._pages(path, f"listing {kind}", {"api-version": api_version}))

    def read_resource(self, resource_id: str, api_version: str) -> dict[str, Any] | None:
        _check_id(resource_id)
        with translated(f"ARM: reading {_short(resource_id)}", detail=_arm_detail, absent=IGNORE) as call:
            body = self._resources().resources.get_by_id(resource_id, api_version=api_version, cls=_raw_json)
        return None if call.ignored or not isinstance(body, Mapping) else redact_json(dict(body))

    def permissions(self, scope: str) -> list[dict[str, Any]]:
        _check_id(scope)
        path = f"{scope.rstrip('/')}/providers/Microsoft.Authorization/permissions"
        return list(self._pages(path, "reading the app's permissions", {"api-version": ROLE_ASSIGNMENTS_API}))

    def supported_api_versions(self, resource_id: str) -> tuple[str, ...]:
        _check_id(resource_id)
        from azure.core.rest import HttpRequest

        request = HttpRequest("GET", resource_id, params={"api-version": self._settings.pipeline_api_version})
        with translated(f"ARM: reading {_short(resource_id)}", detail=_arm_detail):
            response = self._resources().send_request(request)  # refused versions answer with the header too
        header = response.headers.get("api-supported-versions") or ""
        return tuple(v.strip() for v in header.split(",") if v.strip())

    def _pages(
        self, path: str, what: str, params: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """GET a list and follow `nextLink`, only ever on the ARM endpoint (the bearer token goes along)."""
        from azure.core.rest import HttpRequest

        client = self._resources()
        arm_host = urlsplit(self._settings.arm_endpoint).netloc.lower()
        query = dict(params or {"api-version": self._settings.pipeline_api_version})
        request = HttpRequest("GET", path, params=query)
        for _ in range(MAX_PAGES):
            with translated(f"ARM: {what}", detail=_arm_detail):
                response = client.send_request(request)
                if response.status_code == 404:
                    raise NotFound(
                        f"ARM: {what}: registry {self._settings.registry} not found", target="registry"
                    )
                response.raise_for_status()
                page = response.json()
            yield from (redact_json(item) for item in page.get("value") or () if isinstance(item, dict))
            next_link = page.get("nextLink")
            if not next_link:
                return
            if urlsplit(next_link).netloc.lower() != arm_host:
                raise TransferError(f"ARM: {what}: refusing a nextLink to another host")
            request = HttpRequest("GET", next_link)
        raise TransferError(f"ARM: {what}: more than {MAX_PAGES} pages")


def _deployment_active(exc: Exception) -> bool:
    """A PUT of a deployment that is still running: adopted, not an error."""
    return status_of(exc) == 409 and _code(exc) == "DeploymentActive"


def _code(exc: BaseException) -> str:
    """ARM's `error.code` of an SDK error: from the parsed error, else from the response body."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:
        return ""
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return str(body["error"].get("code") or "")
    return ""


def _check_id(resource_id: str) -> None:
    if not resource_id.lower().startswith("/subscriptions/") or "?" in resource_id or "#" in resource_id:
        raise TransferError(f"not an ARM resource id: {redact(resource_id, 300)!r}")


def _short(resource_id: str) -> str:
    return "/".join(resource_id.rstrip("/").split("/")[-2:])
