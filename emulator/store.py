"""All mutable state of the emulator behind one lock, plus its settings.

Every module reads and writes `State` only while holding `state.lock`; `state.changed` is a condition on
that lock, notified whenever a run or a deployment changes, so waiters never poll.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from emulator import ids
from emulator.arm_errors import bad_request

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000e001"
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-[a-z]+)?$")


@dataclass
class Config:
    """Settings; those in MUTABLE can also be changed at run time through the admin API."""

    subscription_id: str = DEFAULT_SUBSCRIPTION
    resource_group: str = "transfer-rg"
    tenant_id: str = DEFAULT_TENANT
    location: str = "eastus"
    # The principal an opaque bearer token stands for: the app's managed identity (the emulator's /msi/token
    # hands out opaque tokens; a JWT names its own principal).
    app_principal_id: str = "9a7e1d00-4a2b-4c3d-8e5f-0a1b2c3d4e5f"
    run_seconds: float = 0.2  # how long a pipeline run takes
    trigger_interval: float = 0.2  # how often the source trigger lists its containers
    retry_after: int = 1  # Retry-After of long-running operations, seconds
    page_size: int = 100  # deployments and pipeline runs per page
    deployment_limit: int = 800  # deployments a resource group keeps at most
    deployment_cleanup_above: int = 700  # above this many, ARM deletes the oldest ...
    deployment_cleanup_to: int = 600  # ... down to this many
    deployment_grooming: bool = True  # False: no automatic deletion (the limit is then reached)
    source_trigger_window_days: float = 60.0  # fractions let a test age a blob in seconds
    # What a run the source trigger starts shows (the REST spec promises only its
    # response.trigger.sourceTrigger.timestamp and response.source {type, uri, keyVaultUri,
    # storageAccessMode}):
    # "spec": the container's uri, the blob named nowhere; "response-uri": response.source.uri is the
    # blob's URL; "request-name": request.source.name is the blob (the emulator's old shape).
    source_trigger_run_shape: str = "spec"
    # How the source trigger names its runs: "guid" (8-4-4-4-12 hex, hyphens), "pipeline-timestamp"
    # ("<pipeline>-<UTC yyyymmddThhmmssZ>-<4 hex>") or "alphanumeric" ("sourcetrigger<hex>", no hyphen).
    source_trigger_run_names: str = "guid"
    # How a ManagedIdentity pipeline comes back (pipeline_shapes.py): "omitted" (user-assigned identity: no
    # top-level principalId / tenantId; no keyVaultUri), "null" (those null) or "empty" (keyVaultUri "").
    managed_identity_answer_shape: str = "omitted"
    # The order of a deployment's properties.outputResources, which ARM does not document: "reverse" (the
    # last deployed first: the only order under which the guide's `outputResources[1]` is the pipeline of
    # an official SasToken-mode template, which also deploys an access policy after it), "deployed" (in
    # deployment order: [1] is then the access policy) or "sorted" (by id, case-insensitively).
    output_resources_order: str = "reverse"
    # ManagedIdentity mode: a pipeline's identity needs a blob data role on the storage account, as on
    # Azure. False: the old leniency (any identity reaches the container).
    enforce_storage_roles: bool = True
    # SasToken mode: the SAS must be HTTPS only (spr=https), as the service requires. False: also a SAS that
    # allows HTTP (for a stack whose other clients use the same SAS against Azurite's HTTP).
    require_https_sas: bool = True
    # An access-policy vault's data plane asks its policies of every caller (True), or only of the
    # pipelines (False: the app and tests read secrets and use keys without a policy of their own). An RBAC
    # vault always asks for a role.
    enforce_vault_access_policies: bool = False
    # A WebHook event subscription made through ARM passes Event Grid's validation handshake first.
    event_subscription_validation: bool = True
    # API versions the pipeline resources accept (and list in api-supported-versions); others are 400.
    pipeline_api_versions: list[str] = field(
        default_factory=lambda: [
            "2025-06-01-preview",
            "2025-12-01-preview",
            "2026-01-01-preview",
            "2026-03-01-preview",
        ]
    )

    CHOICES = {
        "source_trigger_run_shape": ("spec", "response-uri", "request-name"),
        "source_trigger_run_names": ("guid", "pipeline-timestamp", "alphanumeric"),
        "managed_identity_answer_shape": ("omitted", "null", "empty"),
        "output_resources_order": ("reverse", "deployed", "sorted"),
    }
    MUTABLE = (
        "run_seconds",
        "trigger_interval",
        "retry_after",
        "page_size",
        "deployment_limit",
        "deployment_cleanup_above",
        "deployment_cleanup_to",
        "deployment_grooming",
        "source_trigger_window_days",
        "source_trigger_run_shape",
        "source_trigger_run_names",
        "managed_identity_answer_shape",
        "output_resources_order",
        "pipeline_api_versions",
        "enforce_storage_roles",
        "require_https_sas",
        "enforce_vault_access_policies",
        "event_subscription_validation",
    )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in self.MUTABLE:
                raise bad_request(
                    f"'{name}' cannot be changed at run time; settable: {', '.join(self.MUTABLE)}"
                )
            current = getattr(Config(), name)  # the declared kind, not whatever was set last
            if isinstance(current, list):
                if (
                    not isinstance(value, list)
                    or not value
                    or not all(isinstance(v, str) and _API_VERSION.match(v) for v in value)
                ):
                    raise bad_request(
                        f"'{name}' must be a non-empty list of API versions (yyyy-mm-dd[-preview])"
                    )
                value = list(value)
            elif name in self.CHOICES:
                if value not in self.CHOICES[name]:
                    raise bad_request(f"'{name}' must be one of: {', '.join(self.CHOICES[name])}")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise bad_request(f"'{name}' must be a boolean")
            elif isinstance(current, int) and not isinstance(current, bool):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise bad_request(f"'{name}' must be a non-negative integer")
            elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise bad_request(f"'{name}' must be a non-negative number")
            setattr(self, name, value)


@dataclass
class Resource:
    """A resource as GET returns it (`body`), with the API version it was last written with."""

    id: str
    type: str
    api_version: str
    body: dict[str, Any]
    seq: int


@dataclass
class Deployment:
    id: str
    name: str
    subscription_id: str
    resource_group: str
    template: dict[str, Any]
    parameters: dict[str, Any]
    echo_parameters: dict[str, Any]
    mode: str
    state: str  # Accepted, Running, Succeeded, Failed, Canceled
    created: datetime
    updated: datetime
    correlation_id: str
    seq: int
    started: float = 0.0  # time.monotonic() at start, for the duration
    finished: float = 0.0
    outputs: dict[str, Any] = field(default_factory=dict)
    output_resources: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.state in ("Accepted", "Running")


@dataclass
class Operation:
    """A long-running operation that an Azure-AsyncOperation / Location URL points at."""

    id: str
    kind: str  # "deployment", "resource" (pipeline run) or "deleted"
    target: str  # key of the deployment or resource


@dataclass
class Repository:
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    manifests: set[str] = field(default_factory=set)  # every digest, tagged or not


@dataclass
class SecretVersion:
    version: str
    value: str
    created: datetime
    content_type: str | None = None
    expires: datetime | None = None
    not_before: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestRecord:
    time: str
    method: str
    path: str
    status: int


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._seq = itertools.count(1)
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.resource_groups: dict[str, dict[str, str]] = {}  # "sub/rg" lower -> name, location
            self.resources: dict[str, Resource] = {}
            self.deployments: dict[str, Deployment] = {}
            self.operations: dict[str, Operation] = {}
            self.registries: dict[str, dict[str, Repository]] = {}  # registry key -> repo name -> repo
            self.secrets: dict[str, dict[str, list[SecretVersion]]] = {}  # vault name lower -> name lower
            self.seen_blobs: set[tuple[str, str, str]] = set()  # (pipeline key, blob name, etag)
            self.storage_keys: dict[str, str] = {}  # Azurite account name lower -> its key (admin API)
            self.run_generations: dict[str, int] = {}  # run key -> generation (a re-run or delete bumps it)
            # run key -> the blob a source-trigger run imports, where its body does not name it
            self.trigger_blobs: dict[str, str] = {}
            self.requests: list[RequestRecord] = []
            self.changed.notify_all()

    def next_seq(self) -> int:
        return next(self._seq)

    # --- resource groups (created on first use: the emulator has no separate resource group API to call)

    def resource_group(self, subscription_id: str, name: str, location: str) -> dict[str, str]:
        with self.lock:
            group_key = f"{subscription_id}/{name}".lower()
            group = self.resource_groups.get(group_key)
            if group is None:
                group = {"subscription_id": subscription_id, "name": name, "location": location}
                self.resource_groups[group_key] = group
            return group

    def canonical_scope(self, scope: str, location: str) -> str:
        """A scope with `resourceGroups` spelt as ARM does and the group's name as first created."""
        parsed = [p for p in scope.split("/") if p]
        if (
            len(parsed) >= 4
            and parsed[0].lower() == "subscriptions"
            and parsed[2].lower() == "resourcegroups"
        ):
            group = self.resource_group(parsed[1], parsed[3], location)
            return "/".join(["", "subscriptions", parsed[1], "resourceGroups", group["name"], *parsed[4:]])
        return scope

    def canonical_id(self, rid: ids.ResourceId, location: str) -> str:
        scope = self.canonical_scope(rid.scope, location)
        segments = "".join(f"/{t}/{n}" for t, n in zip(rid.types, rid.names, strict=True))
        return f"{scope}/providers/{rid.namespace}{segments}"
