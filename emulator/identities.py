"""Managed identities: user-assigned identity resources, the identity of pipelines, and the App Service
managed identity token endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER) that DefaultAzureCredential uses."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from emulator import ids
from emulator.arm_errors import ApiError, bad_request
from emulator.resources import PutResult, ResourceManager
from emulator.store import Config, Resource

USER_ASSIGNED = "Microsoft.ManagedIdentity/userAssignedIdentities"
TOKEN_LIFETIME = 24 * 3600


class UserAssignedIdentities:
    """PUT/GET of Microsoft.ManagedIdentity/userAssignedIdentities: properties principalId, clientId,
    tenantId."""

    def __init__(self, resources: ResourceManager, config: Config) -> None:
        self.resources = resources
        self.config = config

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        existing = self.resources.find(resource_id)
        properties = dict(existing.body["properties"]) if existing else {}
        properties.setdefault("principalId", str(uuid.uuid4()))
        properties.setdefault("clientId", str(uuid.uuid4()))
        properties["tenantId"] = self.config.tenant_id
        body = {**body, "location": body.get("location") or self.config.location}
        return self.resources.store_generic(rid, resource_id, api_version, body, properties)

    def delete(self, resource: Resource) -> None:
        return None


def pipeline_identity(
    requested: dict[str, Any], previous: dict[str, Any] | None, resources: ResourceManager, tenant_id: str
) -> dict[str, Any]:
    """The identity a pipeline returns: type `systemAssigned` / `userAssigned` as the real service spells
    it."""
    kind = str(requested.get("type", "")).replace(" ", "").lower()
    identity: dict[str, Any] = {}
    types = []
    if "systemassigned" in kind:
        types.append("systemAssigned")
        previous_principal = (previous or {}).get("principalId")
        identity["principalId"] = previous_principal or str(uuid.uuid4())
        identity["tenantId"] = tenant_id
    if "userassigned" in kind:
        types.append("userAssigned")
        assigned: dict[str, Any] = {}
        for identity_id in requested.get("userAssignedIdentities") or {}:
            found = resources.find(identity_id)
            if found is None:
                raise ApiError(
                    400,
                    "InvalidIdentity",
                    f"The user-assigned identity '{identity_id}' was not found. Create it before the "
                    "pipeline.",
                    target="identity.userAssignedIdentities",
                )
            assigned[identity_id] = {
                "clientId": found.body["properties"]["clientId"],
                "principalId": found.body["properties"]["principalId"],
            }
        identity["userAssignedIdentities"] = assigned
    if not types:
        raise bad_request("The identity type must be SystemAssigned and/or UserAssigned.", target="identity")
    return {"type": ", ".join(types), **identity}


def principals(resource_body: dict[str, Any]) -> list[str]:
    """Object ids of every identity a resource has (system-assigned first)."""
    identity = resource_body.get("identity") or {}
    found = [identity["principalId"]] if identity.get("principalId") else []
    for entry in (identity.get("userAssignedIdentities") or {}).values():
        if entry.get("principalId"):
            found.append(entry["principalId"])
    return found


class TokenEndpoint:
    """The App Service managed identity protocol (api-version 2019-08-01) at /msi/token."""

    PATH = "/msi/token"

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret or secrets.token_hex(16)

    def token(self, query: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        if headers.get("x-identity-header") != self.secret:
            raise ApiError(
                401,
                "Unauthorized",
                "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.",
            )
        resource = query.get("resource")
        if not resource:
            raise bad_request("The 'resource' query parameter is required.", code="invalid_resource")
        expires_on = int(time.time()) + TOKEN_LIFETIME
        # A fake, opaque token: the emulator accepts any bearer token.
        return {
            "access_token": "emulator-" + secrets.token_urlsafe(24),
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": query.get("client_id") or query.get("mi_res_id") or "",
        }
