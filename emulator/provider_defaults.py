"""What the providers of the infrastructure types add to a resource they store, and nothing more: the
read-only members that templates read back with reference() or listKeys(), so `infra/` deploys.

- Any type with `identity.type` SystemAssigned gets a principalId (kept across updates) and the tenantId;
  user-assigned identities get the principalId and clientId of the identity resources that exist.
- Storage accounts: `primaryEndpoints` (blob, queue, table, file, dfs, web on `core.windows.net`),
  `primaryLocation`, `statusOfPrimary`, `creationTime`.
- Application Insights components: `InstrumentationKey`, `AppId`, `ConnectionString` (kept across updates).
- Web sites: `defaultHostName` (`<name>.azurewebsites.net`), `state`.
- `listKeys` of a site's host (`.../sites/{name}/host/default`): stable generated keys, the system key
  `blobs_extension` among them (the blob trigger's Event Grid webhook needs it).
No behaviour follows from any of these: an app is not run, no event is delivered.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from emulator import ids

IDENTITIES = "Microsoft.ManagedIdentity/userAssignedIdentities"


def _stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(p.lower() for p in parts)))


def _key(*parts: str) -> str:
    return hashlib.sha256("/".join(p.lower() for p in parts).encode()).hexdigest()[:40]


def complete_identity(
    stored: dict[str, Any],
    previous: dict[str, Any] | None,
    tenant_id: str,
    find: Callable[[str], dict[str, Any] | None],
) -> None:
    identity = stored.get("identity")
    if not isinstance(identity, dict):
        return
    kind = str(identity.get("type", "")).replace(" ", "").lower()
    if "systemassigned" in kind:
        before = (previous or {}).get("identity") or {}
        identity["principalId"] = before.get("principalId") or str(uuid.uuid4())
        identity["tenantId"] = tenant_id
    if "userassigned" in kind and isinstance(identity.get("userAssignedIdentities"), dict):
        for identity_id in identity["userAssignedIdentities"]:
            found = find(identity_id)
            if found is not None:
                properties = found.get("properties") or {}
                identity["userAssignedIdentities"][identity_id] = {
                    "principalId": properties.get("principalId"),
                    "clientId": properties.get("clientId"),
                }


def _storage_account(rid: ids.ResourceId, stored: dict[str, Any], previous: dict[str, Any] | None) -> None:
    properties = stored["properties"]
    name = rid.name.lower()
    properties["primaryEndpoints"] = {
        service: f"https://{name}.{service}.core.windows.net/"
        for service in ("blob", "queue", "table", "file", "dfs", "web")
    }
    properties["primaryLocation"] = stored.get("location")
    properties["statusOfPrimary"] = "available"
    before = (previous or {}).get("properties") or {}
    properties.setdefault("creationTime", before.get("creationTime") or stored.get("_created"))


def _components(rid: ids.ResourceId, stored: dict[str, Any], previous: dict[str, Any] | None) -> None:
    properties = stored["properties"]
    before = (previous or {}).get("properties") or {}
    key = before.get("InstrumentationKey") or _stable_guid(rid.id, "instrumentation-key")
    app = before.get("AppId") or _stable_guid(rid.id, "app-id")
    location = str(stored.get("location") or "").replace(" ", "").lower()
    properties["InstrumentationKey"] = key
    properties["AppId"] = app
    properties["ConnectionString"] = (
        f"InstrumentationKey={key};IngestionEndpoint=https://{location}.in.applicationinsights.azure.com/;"
        f"LiveEndpoint=https://{location}.livediagnostics.monitor.azure.com/;ApplicationId={app}"
    )


def _sites(rid: ids.ResourceId, stored: dict[str, Any], previous: dict[str, Any] | None) -> None:
    properties = stored["properties"]
    properties["defaultHostName"] = f"{rid.name.lower()}.azurewebsites.net"
    properties.setdefault("state", "Running")


_COMPUTED: dict[str, Callable[[ids.ResourceId, dict[str, Any], dict[str, Any] | None], None]] = {
    "microsoft.storage/storageaccounts": _storage_account,
    "microsoft.insights/components": _components,
    "microsoft.web/sites": _sites,
}


def complete(
    rid: ids.ResourceId,
    stored: dict[str, Any],
    previous: dict[str, Any] | None,
    tenant_id: str,
    created: str,
    find: Callable[[str], dict[str, Any] | None],
) -> None:
    """Add what the type's provider adds to `stored` (a resource body as ARM returns it)."""
    complete_identity(stored, previous, tenant_id, find)
    compute = _COMPUTED.get(rid.type.lower())
    if compute is not None:
        stored["_created"] = created
        compute(rid, stored, previous)
        stored.pop("_created", None)


HOST_KEYS = "microsoft.web/sites/host"


def list_keys(resource_id: str) -> dict[str, Any] | None:
    """What POST {id}/listKeys answers, for the types that have keys here; None for the others."""
    rid = ids.parse(resource_id)
    if rid is None or rid.type.lower() != HOST_KEYS:
        return None
    site = rid.parent.id if rid.parent else resource_id
    return {
        "masterKey": _key(site, "master"),
        "functionKeys": {"default": _key(site, "default")},
        "systemKeys": {"blobs_extension": _key(site, "blobs_extension")},
    }
