"""The admin API under /_emulator/ (no ARM call uses it; no authentication): seeding, clock, faults,
request log, configuration and reset. `emulator/admin.py` is its Python client."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol

from emulator import ids, registry_admin
from emulator.acr import REGISTRIES, Registries, seed_digest
from emulator.arm_errors import ApiError, bad_request
from emulator.authorization import ROLE_ASSIGNMENTS, RoleAssignments, role_id
from emulator.clock import Clock, iso
from emulator.events import Events, subscription_from
from emulator.faults import Faults
from emulator.identities import USER_ASSIGNED
from emulator.permissions import ArmAccess
from emulator.registry_content import seed_manifest
from emulator.resources import ResourceManager
from emulator.server import Request, Response
from emulator.storage import StorageAccounts
from emulator.store import Config, State
from emulator.vaults import VAULTS, KeyVault


class SourceTriggerControl(Protocol):
    def scan(self) -> None: ...

    def poke(self) -> None: ...


class AdminHost(Protocol):
    """What the admin API uses of the emulator (runtime.Emulator is one; admin_api never imports it)."""

    state: State
    config: Config
    clock: Clock
    resources: ResourceManager
    registries: Registries
    keyvault: KeyVault
    faults: Faults
    trigger: SourceTriggerControl
    storage_accounts: StorageAccounts
    authorization: RoleAssignments
    access: ArmAccess
    events: Events

    def settings(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...


REGISTRY_API = "2025-06-01-preview"
ROLE_ASSIGNMENT_API = "2022-04-01"
VAULT_API = "2023-07-01"
IDENTITY_API = "2023-01-31"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class AdminRoutes:
    def __init__(self, emulator: AdminHost) -> None:
        self.emulator = emulator
        self.state = emulator.state
        self.config = emulator.config

    def dispatch(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")[1:]
        method = request.method
        body = request.json() if method in ("POST", "PUT", "PATCH") else None
        body = body if isinstance(body, dict) else {}
        route = (method, *parts[:1])
        if route == ("GET", "health") or route == ("GET",):
            return Response(200, {"status": "ok"})
        if route == ("GET", "settings"):
            return Response(200, self.emulator.settings())
        if route == ("GET", "config"):
            return Response(200, self.config.as_dict())
        if route in (("POST", "config"), ("PATCH", "config")):
            with self.state.lock:
                self.config.update(body)
            self.emulator.trigger.poke()
            return Response(200, self.config.as_dict())
        if route == ("POST", "reset"):
            self.emulator.reset()
            return Response(200, {"status": "reset"})
        if parts[:1] == ["registries"]:
            return self._registries(method, parts[1:], body)
        if method == "POST" and len(parts) == 3 and parts[0] == "vaults" and parts[2] == "access-policies":
            return Response(200, self._access_policy(parts[1], body))
        if route == ("POST", "vaults") and len(parts) == 1:
            return Response(201, self._vault(body))
        if method == "PUT" and len(parts) == 4 and parts[0] == "vaults" and parts[2] == "secrets":
            return Response(200, self._secret(parts[1], parts[3], body))
        if route == ("POST", "identities"):
            return Response(201, self._identity(body))
        if route == ("POST", "storage-accounts"):
            return Response(201, self._storage_account(body))
        if route == ("POST", "role-assignments"):
            return Response(201, self._role_assignment(body))
        if parts[:1] == ["arm-access"]:
            return self._arm_access(method, body)
        if parts[:1] == ["events"]:
            return self._events(method, parts[1:], body)
        if parts[:1] == ["clock"]:
            return self._clock(method, body)
        if parts[:1] == ["faults"]:
            return self._faults(method, parts[1:], body)
        if parts[:1] == ["requests"]:
            return self._requests(method, request.query)
        if route == ("POST", "trigger"):
            self.emulator.trigger.scan()
            return Response(200, {"status": "scanned"})
        raise ApiError(404, "NotFound", f"No admin route {method} {request.path}.")

    # --- helpers

    def _scope(self, body: dict[str, Any]) -> tuple[str, str]:
        return (
            str(body.get("subscriptionId") or self.config.subscription_id),
            str(body.get("resourceGroup") or self.config.resource_group),
        )

    def _put(self, resource_id: str, api_version: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self.emulator.resources.put(resource_id, api_version, body)
        with self.state.lock:
            return copy.deepcopy(result.resource.body)

    # --- registries

    def _registry(self, name: str, query_group: str | None = None) -> str:
        for resource in self.emulator.resources.by_type(REGISTRIES):
            group = ids.parse(resource.id)
            if resource.body["name"].lower() == name.lower() and (
                query_group is None or (group and group.resource_group.lower() == query_group.lower())
            ):
                return resource.id
        raise ApiError(404, "RegistryNotFound", f"No registry named '{name}' exists in the emulator.")

    def _registries(self, method: str, rest: list[str], body: dict[str, Any]) -> Response:
        registries = self.emulator.registries
        if method == "POST" and not rest:
            name = body.get("name")
            if not isinstance(name, str):
                raise bad_request("'name' (the registry name) is required.")
            subscription, group = self._scope(body)
            registry_id = f"{ids.group_id(subscription, group)}/providers/{REGISTRIES}/{name}"
            resource = self._put(
                registry_id,
                REGISTRY_API,
                {"location": body.get("location") or self.config.location, "properties": _policies(body)},
            )
            self._add_repositories(resource["id"], body.get("repositories") or {})
            return Response(201, {"resource": resource, "content": registries.describe(resource["id"])})
        if not rest:
            raise ApiError(405, "MethodNotAllowed", "GET /_emulator/registries/{name} reads one registry.")
        registry_id = self._registry(rest[0])
        if method == "GET" and len(rest) == 1:
            endpoint = registry_admin.endpoint_of(registries, rest[0])
            return Response(
                200, {"id": registry_id, "endpoint": endpoint, "content": registries.describe(registry_id)}
            )
        if len(rest) == 2 and rest[1] in registry_admin.ADMIN_ROUTES:  # retag, manifests, access, ...
            return registry_admin.admin(registries, method, registry_id, rest[1:], body)
        if method == "POST" and rest[1:] == ["policies"]:
            return Response(200, self._registry_policies(registry_id, body))
        if method == "POST" and rest[1:] == ["images"]:
            return Response(201, self._image(registry_id, body))
        if method == "POST" and rest[1:] == ["repositories"]:
            self._add_repositories(registry_id, body.get("repositories") or {})
            return Response(200, {"id": registry_id, "content": registries.describe(registry_id)})
        raise ApiError(404, "NotFound", "Unknown registry admin route.")

    def _registry_policies(self, registry_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """{"exportPolicy"?: "enabled" | "disabled", "publicNetworkAccess"?: "Enabled" | "Disabled"}: a PUT of
        the registry with them (the rules apply: no change of the export policy while export pipelines
        exist, disabled only without public network access)."""
        resource = self.emulator.resources.get(registry_id)
        with self.state.lock:
            current = copy.deepcopy(resource.body)
        properties = {k: v for k, v in current.get("properties", {}).items() if k != "provisioningState"}
        requested = _policies(body)
        if "policies" in requested:
            properties.setdefault("policies", {}).update(requested.pop("policies"))
        properties.update(requested)
        envelope = {k: current[k] for k in ("location", "sku", "tags") if k in current}
        return self._put(registry_id, REGISTRY_API, {**envelope, "properties": properties})

    def _add_repositories(self, registry_id: str, repositories: dict[str, Any]) -> None:
        """{"repo": {"tag": "sha256:..." | null}} or {"repo": ["tag", ...]}; a null digest gets a manifest
        document derived from repo:tag (its sha256 is the digest); a given digest has none unless the
        emulator already holds a document with that digest."""
        if not isinstance(repositories, dict):
            raise bad_request("'repositories' must be an object: {repository: {tag: digest or null}}.")
        for repository, tags in repositories.items():
            entries = dict.fromkeys(tags) if isinstance(tags, list) else dict(tags or {})
            for tag, given in entries.items():
                digest = given or seed_digest(repository, tag)
                if not _DIGEST.match(digest):
                    raise bad_request(f"The digest '{digest}' of {repository}:{tag} is not sha256:<64 hex>.")
                registries = self.emulator.registries
                manifest = registries.store.document(given) if given else seed_manifest(repository, tag)
                registries.add(
                    registry_id, repository, tag if not tag.startswith("@") else None, digest, manifest
                )

    def _image(self, registry_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return registry_admin.push_image(self.emulator.registries, registry_id, body)

    # --- Key Vault and identities

    def _vault(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str):
            raise bad_request("'name' (the vault name) is required.")
        subscription, group = self._scope(body)
        vault_id = f"{ids.group_id(subscription, group)}/providers/{VAULTS}/{name}"
        properties = {"enableRbacAuthorization": bool(body.get("enableRbacAuthorization", False))}
        resource = self._put(
            vault_id, VAULT_API, {"location": self.config.location, "properties": properties}
        )
        for secret_name, value in (body.get("secrets") or {}).items():
            self._secret(name, secret_name, {"value": value})
        return resource

    def _secret(self, vault: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        value = body.get("value")
        if not isinstance(value, str):
            raise bad_request("'value' (the secret value) is required.")
        expires = body.get("expires")
        version = self.emulator.keyvault.set_secret(
            vault,
            name,
            value,
            content_type=body.get("contentType"),
            expires=datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None,
        )
        vault_resource = self.emulator.keyvault.vault(vault)
        assert vault_resource is not None
        uri = vault_resource.body["properties"]["vaultUri"]
        return {"id": f"{uri}secrets/{name}/{version.version}", "secretUri": f"{uri}secrets/{name}"}

    def _access_policy(self, vault: str, body: dict[str, Any]) -> dict[str, Any]:
        """{"objectId", "permissions": {"secrets": [...], "keys": [...]}}: an access policy added through the
        vault's `accessPolicies/add` resource, as the official templates add one."""
        object_id, permissions = body.get("objectId"), body.get("permissions")
        if not isinstance(object_id, str) or not isinstance(permissions, dict):
            raise bad_request(
                'Body: {"objectId", "permissions": {"secrets": ["get"], "keys": ["get", "sign"]}}.'
            )
        resource = self.emulator.keyvault.vault(vault)
        if resource is None:
            raise ApiError(404, "VaultNotFound", f"No vault named '{vault}' exists in the emulator.")
        policy = {"tenantId": self.config.tenant_id, "objectId": object_id, "permissions": permissions}
        self._put(
            f"{resource.id}/accessPolicies/add", VAULT_API, {"properties": {"accessPolicies": [policy]}}
        )
        with self.state.lock:
            return copy.deepcopy(
                resource.body if (found := self.emulator.keyvault.vault(vault)) is None else found.body
            )

    def _identity(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str):
            raise bad_request("'name' (the identity name) is required.")
        subscription, group = self._scope(body)
        identity_id = f"{ids.group_id(subscription, group)}/providers/{USER_ASSIGNED}/{name}"
        return self._put(identity_id, IDENTITY_API, {"location": self.config.location})

    # --- storage accounts and role assignments

    def _storage_account(self, body: dict[str, Any]) -> dict[str, Any]:
        """{"name", "key"?, "resourceGroup"?, "subscriptionId"?}: the account's ARM resource (the scope of
        role assignments on it) and, with "key", the Azurite key the emulator reaches it with."""
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]{3,24}", name):
            raise bad_request(
                "'name' (the storage account name, 3-24 lower-case letters and digits) is required."
            )
        key = body.get("key")
        if key is not None and not isinstance(key, str):
            raise bad_request("'key' must be the account key (base64).")
        subscription, group = self._scope(body)
        network = {
            "public_network_access": body.get("publicNetworkAccess"),
            "default_action": str(body.get("networkDefaultAction") or "Allow"),
            "bypass": str(body.get("bypass") or "AzureServices"),
            "private_endpoints": list(body.get("privateEndpoints") or []),
        }
        if network["default_action"] not in ("Allow", "Deny") or network["public_network_access"] not in (
            None,
            "Enabled",
            "Disabled",
        ):
            raise bad_request(
                "'networkDefaultAction' is Allow or Deny; 'publicNetworkAccess' Enabled or Disabled."
            )
        return self.emulator.storage_accounts.register(
            name, key=key, resource_group=group, subscription_id=subscription, network=network
        )

    def _role_assignment(self, body: dict[str, Any]) -> dict[str, Any]:
        """{"principalId", "role" (a built-in role's name or id, or a roleDefinitionId), "scope"? (default:
        the subscription), "storageAccount"? (the scope: that account's)}: PUT through the ARM handler."""
        principal, role = body.get("principalId"), body.get("role")
        if not isinstance(principal, str) or not isinstance(role, str):
            raise bad_request("'principalId' and 'role' are required.")
        if isinstance(body.get("storageAccount"), str):
            scope = self.emulator.storage_accounts.scope(body["storageAccount"])
        else:
            scope = str(body.get("scope") or f"/subscriptions/{self.config.subscription_id}").rstrip("/")
        name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope.lower()}|{principal.lower()}|{role_id(role)}"))
        resource_id = f"{scope}/providers/{ROLE_ASSIGNMENTS}/{name}"
        properties = {"roleDefinitionId": role, "principalId": principal}
        existing = self.emulator.resources.find(resource_id)
        if existing is not None:
            with self.state.lock:
                return copy.deepcopy(existing.body)
        return self._put(resource_id, ROLE_ASSIGNMENT_API, {"properties": properties})

    def _arm_access(self, method: str, body: dict[str, Any]) -> Response:
        """{"principal"?: object id or "*" (default: the app's), "restricted": bool}: a restricted principal
        holds only its role assignments (ARM refuses the rest: 403 AuthorizationFailed)."""
        access = self.emulator.access
        if method == "POST":
            principal = body.get("principal") or self.config.app_principal_id
            restricted = body.get("restricted", True)
            if not isinstance(principal, str) or not isinstance(restricted, bool):
                raise bad_request('Body: {"principal"?: "<object id>" or "*", "restricted": true|false}.')
            access.restrict(principal, restricted)
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", "GET or POST /_emulator/arm-access.")
        with self.state.lock:
            restricted_now = sorted(access.restricted)
        return Response(200, {"restricted": restricted_now, "appPrincipalId": self.config.app_principal_id})

    # --- Event Grid events of the registries

    def _events(self, method: str, rest: list[str], body: dict[str, Any]) -> Response:
        events = self.emulator.events
        route = (method, *rest[:1])
        if route == ("GET",):
            return Response(200, {**events.describe(), **events.log()})
        if route == ("POST", "subscriptions") and len(rest) == 1:
            return Response(201, self._subscribe(body))
        if route == ("DELETE", "subscriptions") and len(rest) == 2:
            found = [s for s in events.describe()["subscriptions"] if s["name"] == rest[1]]
            for subscription in found:
                events.unsubscribe(subscription["id"])
            return Response(200 if found else 404, {"deleted": [s["id"] for s in found]})
        if route == ("POST", "delivery"):
            return Response(200, events.set_knobs(body).as_dict())
        if route == ("POST", "flush"):
            return Response(200, {"released": events.flush()})
        raise ApiError(404, "NotFound", f"No events admin route {method} {'/'.join(rest)}.")

    def _subscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        """{"registry", "endpoint", "name"?, "includedEventTypes"?, "maxEventsPerBatch"?, "schema"?,
        "subjectBeginsWith"?, "subjectEndsWith"?, "maxDeliveryAttempts"?, "validate"?: false}: a WebHook
        subscription to the registry's events (not an ARM resource; no handshake unless "validate")."""
        registry, endpoint = body.get("registry"), body.get("endpoint")
        if not isinstance(registry, str) or not isinstance(endpoint, str):
            raise bad_request("'registry' (a registry's name) and 'endpoint' (the webhook URL) are required.")
        registry_id = self._registry(registry)
        name = str(body.get("name") or f"sub{uuid.uuid4().hex[:12]}")
        properties = {
            "destination": {
                "endpointType": "WebHook",
                "properties": {
                    "endpointUrl": endpoint,
                    "maxEventsPerBatch": body.get("maxEventsPerBatch", 1),
                },
            },
            "filter": {
                k: body[k]
                for k in (
                    "includedEventTypes",
                    "subjectBeginsWith",
                    "subjectEndsWith",
                    "isSubjectCaseSensitive",
                )
                if k in body
            },
            "eventDeliverySchema": body.get("schema") or "EventGridSchema",
            "retryPolicy": {"maxDeliveryAttempts": body.get("maxDeliveryAttempts") or 30},
        }
        subscription_id = f"{registry_id}/providers/Microsoft.EventGrid/eventSubscriptions/{name}"
        subscription = subscription_from(subscription_id, name, registry_id, properties)
        if body.get("validate"):
            self.emulator.events.validate(subscription)
        return self.emulator.events.subscribe(subscription).describe()

    # --- clock, faults, request log

    def _clock(self, method: str, body: dict[str, Any]) -> Response:
        clock = self.emulator.clock
        if method == "POST":
            try:
                delta = timedelta(
                    days=float(body.get("days") or 0),
                    hours=float(body.get("hours") or 0),
                    seconds=float(body.get("seconds") or 0),
                )
                clock.advance(delta)
            except (TypeError, ValueError) as exc:
                raise bad_request(f"Cannot move the clock: {exc}") from None
            self.emulator.trigger.poke()
        elif method != "GET":
            raise ApiError(405, "MethodNotAllowed", "GET or POST /_emulator/clock.")
        return Response(200, {"now": iso(clock.now()), "offsetSeconds": clock.offset.total_seconds()})

    def _faults(self, method: str, rest: list[str], body: dict[str, Any]) -> Response:
        faults = self.emulator.faults
        if method == "GET" and not rest:
            return Response(200, faults.describe())
        if method == "DELETE" and not rest:
            faults.clear()
            return Response(200, faults.describe())
        if method == "POST" and not rest:
            return Response(201, faults.add_rule(body).describe())
        if method == "POST" and rest == ["runs"]:
            failure = faults.add_run_failure(body)
            return Response(
                201, {"id": failure.id, "pipeline": failure.pipeline, "remaining": failure.remaining}
            )
        raise ApiError(404, "NotFound", "Unknown faults admin route.")

    def _requests(self, method: str, query: dict[str, str]) -> Response:
        with self.state.lock:
            if method == "DELETE":
                self.state.requests.clear()
                return Response(200, {"requests": [], "count": 0})
            start = int(query.get("since") or 0)
            records = [
                {"index": i, "time": r.time, "method": r.method, "path": r.path, "status": r.status}
                for i, r in enumerate(self.state.requests)
                if i >= start
            ]
        return Response(200, {"requests": records, "count": len(records)})


def _policies(body: dict[str, Any]) -> dict[str, Any]:
    """A registry's exportPolicy / publicNetworkAccess from an admin body, as ARM properties."""
    properties: dict[str, Any] = {}
    export = body.get("exportPolicy")
    if export is not None:
        if export not in ("enabled", "disabled"):
            raise bad_request("'exportPolicy' is enabled or disabled.")
        properties["policies"] = {"exportPolicy": {"status": export}}
    public = body.get("publicNetworkAccess")
    if public is not None:
        if public not in ("Enabled", "Disabled"):
            raise bad_request("'publicNetworkAccess' is Enabled or Disabled.")
        properties["publicNetworkAccess"] = public
    return properties
