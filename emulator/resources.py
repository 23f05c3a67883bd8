"""Generic ARM resources by id: store, GET/PUT/DELETE/list, and the hooks of resource types with behaviour.

Types without a handler are stored as sent with provisioningState Succeeded, so infra-like templates deploy.
"""

from __future__ import annotations

import copy
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol, runtime_checkable

from emulator import ids, provider_defaults, resource_types
from emulator.arm_errors import ApiError, bad_request, not_found
from emulator.arm_template import TemplateError
from emulator.clock import Clock
from emulator.store import Config, Operation, Resource, State
from emulator.tokens import UNKNOWN_CALLER, Caller

# Who the current request (or the deployment that makes it) acts for: routes set it from the bearer token,
# a deployment's worker runs in the context of its PUT.
CALLER: ContextVar[Caller] = ContextVar("emulator_caller", default=UNKNOWN_CALLER)

# Top-level keys of a PUT body that ARM keeps; everything else is ignored as ARM's RPs do.
_ENVELOPE = ("location", "tags", "sku", "kind", "identity", "zones", "plan", "properties", "extendedLocation")


@dataclass
class PutResult:
    status: int  # 200 (updated / done at once) or 201 (created)
    resource: Resource
    operation: Operation | None = None  # set when the PUT continues asynchronously (Azure-AsyncOperation)


class TypeHandler(Protocol):
    def put(
        self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]
    ) -> PutResult: ...

    def delete(self, resource: Resource) -> None: ...


@runtime_checkable
class Preflight(Protocol):
    """A handler that can judge a body before any resource exists (ARM's pre-flight validation)."""

    def preflight(self, rid: ids.ResourceId, api_version: str, body: dict[str, Any]) -> None: ...


class ResourceManager:
    def __init__(self, state: State, config: Config, clock: Clock | None = None) -> None:
        self.state = state
        self.config = config
        self.clock = clock or Clock()
        self._handlers: dict[str, TypeHandler] = {}
        self._parents: dict[str, str] = {}  # child type -> parent type that must exist

    def register(self, resource_type: str, handler: TypeHandler, *, parent: str | None = None) -> None:
        self._handlers[resource_type.lower()] = handler
        if parent:
            self._parents[resource_type.lower()] = parent

    # --- lookups

    def parse(self, resource_id: str) -> ids.ResourceId:
        rid = ids.parse(resource_id)
        if rid is None:
            raise bad_request(f"The resource id '{resource_id}' is not valid.", code="InvalidResourceId")
        return rid

    def find(self, resource_id: str) -> Resource | None:
        with self.state.lock:
            return self.state.resources.get(ids.key(resource_id))

    def get(self, resource_id: str) -> Resource:
        resource = self.find(resource_id)
        if resource is None:
            rid = self.parse(resource_id)
            raise not_found(rid.type, rid.full_name, rid.resource_group)
        return resource

    def children(self, parent_id: str, child_type: str) -> list[Resource]:
        parent_key = ids.key(parent_id)
        with self.state.lock:
            found = [
                r
                for r in self.state.resources.values()
                if r.type.lower() == child_type.lower() and r.id.rsplit("/", 2)[0].lower() == parent_key
            ]
        return sorted(found, key=lambda r: r.seq)

    def by_type(self, resource_type: str) -> list[Resource]:
        with self.state.lock:
            return sorted(
                (r for r in self.state.resources.values() if r.type.lower() == resource_type.lower()),
                key=lambda r: r.seq,
            )

    # --- writes

    def put(self, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        rid = self.parse(resource_id)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.", code="InvalidRequestContent")
        with self.state.lock:
            canonical = self.state.canonical_id(rid, self.config.location)
            parent_type = self._parents.get(rid.type.lower())
            parent = rid.parent
            if parent_type and parent is not None and self.find(parent.id) is None:
                raise ApiError(
                    404,
                    "ParentResourceNotFound",
                    f"Can not perform requested operation on nested resource. Parent resource "
                    f"'{parent.full_name}' not found.",
                )
            handler = self._handlers.get(rid.type.lower())
            if handler is not None:
                return handler.put(rid, canonical, api_version, body)
            return self.store_generic(rid, canonical, api_version, body)

    def preflight(self, resource_id: str, api_version: str, body: dict[str, Any]) -> None:
        """What the resource's provider says of the body before the deployment starts: raises ApiError
        with the provider's code. Types without a pre-flight check accept anything."""
        rid = self.parse(resource_id)
        handler = self._handlers.get(rid.type.lower())
        if isinstance(handler, Preflight):
            handler.preflight(rid, api_version, body)

    def store_generic(
        self,
        rid: ids.ResourceId,
        resource_id: str,
        api_version: str,
        body: dict[str, Any],
        properties: dict[str, Any] | None = None,
        *,
        system_data: bool = False,
    ) -> PutResult:
        """Store a resource as ARM returns it: id, name, type, envelope keys (and systemData where the
        provider sends it), properties + provisioningState."""
        with self.state.lock:
            existing = self.state.resources.get(ids.key(resource_id))
            stored: dict[str, Any] = {"id": resource_id, "name": rid.name, "type": rid.type}
            for key in _ENVELOPE:
                if key in body and key != "properties":
                    stored[key] = copy.deepcopy(body[key])
            if system_data:
                stored["systemData"] = self.system_data(existing)
            props = copy.deepcopy(properties if properties is not None else body.get("properties") or {})
            props["provisioningState"] = "Succeeded"
            stored["properties"] = props
            provider_defaults.complete(
                rid,
                stored,
                existing.body if existing else None,
                self.config.tenant_id,
                self.clock.now().astimezone(UTC).isoformat(),
                lambda other: found.body if (found := self.find(other)) else None,
            )
            resource = self.save(resource_id, rid.type, api_version, stored, existing)
            return PutResult(200 if existing else 201, resource)

    def save(
        self,
        resource_id: str,
        resource_type: str,
        api_version: str,
        body: dict[str, Any],
        existing: Resource | None,
    ) -> Resource:
        with self.state.lock:
            seq = existing.seq if existing else self.state.next_seq()
            resource = Resource(resource_id, resource_type, api_version, body, seq)
            self.state.resources[ids.key(resource_id)] = resource
            self.state.changed.notify_all()
            return resource

    def delete(self, resource_id: str) -> bool:
        """Delete a resource and its children; False when it did not exist."""
        rid = self.parse(resource_id)
        with self.state.lock:
            resource = self.find(resource_id)
            if resource is None:
                return False
            handler = self._handlers.get(rid.type.lower())
            if handler is not None:
                handler.delete(resource)
            prefix = ids.key(resource_id)
            for key in [k for k in self.state.resources if k == prefix or k.startswith(prefix + "/")]:
                del self.state.resources[key]
            self.state.changed.notify_all()
            return True

    def system_data(self, existing: Resource | None) -> dict[str, str]:
        """ARM's systemData of a write by the current caller: creation kept from `existing`, the last
        modification now (the provider's format, as recorded: `2026-04-07T14:20:10.752646+00:00`)."""
        caller = CALLER.get()
        now = self.clock.now().astimezone(UTC).isoformat()
        modified = {"lastModifiedBy": caller.name, "lastModifiedByType": caller.kind, "lastModifiedAt": now}
        previous = (existing.body.get("systemData") or {}) if existing else {}
        if previous.get("createdBy"):
            created = {k: previous[k] for k in ("createdBy", "createdByType", "createdAt") if k in previous}
        else:
            created = {"createdBy": caller.name, "createdByType": caller.kind, "createdAt": now}
        return {**created, **modified}

    def new_operation(self, kind: str, target: str) -> Operation:
        with self.state.lock:
            operation = Operation(str(uuid.uuid4()), kind, target)
            self.state.operations[operation.id] = operation
            return operation

    def list_keys(self, resource_id: str, api_version: str) -> dict[str, Any]:
        """What POST {id}/listKeys answers (the engine's listKeys() and the HTTP action)."""
        rid = self.parse(resource_id)
        try:
            resource_types.check(
                rid.type, api_version, self.config.pipeline_api_versions, self.config.location
            )
        except ApiError as exc:
            raise TemplateError(exc.code, exc.message, resource_id) from None
        keys = provider_defaults.list_keys(resource_id)
        if keys is None:
            raise TemplateError(
                "InvalidResourceOperation",
                f"The resource type '{rid.type}' does not support the operation 'listKeys' in this emulator.",
                resource_id,
            )
        if rid.parent is not None and self.find(rid.parent.id) is None:
            raise TemplateError(
                "ResourceNotFound",
                f"The Resource '{rid.parent.type}/{rid.parent.full_name}' under resource group "
                f"'{rid.resource_group}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
                resource_id,
            )
        return keys

    # --- the engine's reference()

    def reference(self, resource_id: str, api_version: str | None, full: bool) -> dict[str, Any]:
        """What ARM's GET of the resource at `api_version` answers, for the engine's reference()."""
        rid = ids.parse(resource_id)
        if rid is not None and api_version:
            try:
                resource_types.check(
                    rid.type, api_version, self.config.pipeline_api_versions, self.config.location
                )
            except ApiError as exc:
                raise TemplateError(exc.code, exc.message, resource_id) from None
        resource = self.find(resource_id)
        if resource is None:
            rid = ids.parse(resource_id)
            what = f"{rid.type}/{rid.full_name}" if rid else resource_id
            group = rid.resource_group if rid else ""
            raise TemplateError(
                "ResourceNotFound",
                f"The Resource '{what}' under resource group '{group}' was not found. For more details "
                "please go "
                "to https://aka.ms/ARMResourceNotFoundFix",
                resource_id,
            )
        with self.state.lock:
            body = copy.deepcopy(resource.body)
        if full:
            body.setdefault("apiVersion", api_version or resource.api_version)
            return body
        return body.get("properties") or {}
