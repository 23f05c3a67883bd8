"""Managed identities: user-assigned identity resources, the identity of pipelines, and the App Service
managed identity token endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER) that DefaultAzureCredential uses."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from emulator import ids
from emulator.arm_errors import ApiError, bad_request
from emulator.resources import PutResult, ResourceManager
from emulator.store import Config, Resource
from emulator.tokens import Signer, managed_identity_claims

USER_ASSIGNED = "Microsoft.ManagedIdentity/userAssignedIdentities"


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
    """The App Service managed identity protocol (api-version 2019-08-01) at /msi/token: JWTs (tokens.py) for
    the host's system-assigned identity, or a user-assigned identity chosen by `client_id`, `principal_id` /
    `object_id` or `mi_res_id`, as App Service does."""

    PATH = "/msi/token"

    def __init__(self, config: Config, resources: ResourceManager, secret: str | None = None) -> None:
        self.config = config
        self.resources = resources
        self.secret = secret or secrets.token_hex(16)
        self.signer = Signer()

    def host_identity(self) -> tuple[str, str, str]:
        """(principal id, client id, resource id) of the identity the emulator's host has: stable for a
        tenant, like the system-assigned identity of one function app."""
        principal = str(uuid.uuid5(uuid.NAMESPACE_URL, f"emulator-host-principal/{self.config.tenant_id}"))
        client = str(uuid.uuid5(uuid.NAMESPACE_URL, f"emulator-host-client/{self.config.tenant_id}"))
        site = (
            f"/subscriptions/{self.config.subscription_id}/resourcegroups/{self.config.resource_group}"
            "/providers/Microsoft.Web/sites/emulator-host"
        )
        return principal, client, site

    def _user_assigned(self, query: dict[str, str]) -> tuple[str, str, str] | None:
        wanted = {
            "clientId": query.get("client_id"),
            "principalId": query.get("principal_id") or query.get("object_id"),
            "id": query.get("mi_res_id"),
        }
        wanted = {k: v.lower() for k, v in wanted.items() if v}
        if not wanted:
            return None
        for found in self.resources.by_type(USER_ASSIGNED):
            properties = found.body.get("properties") or {}
            values = {"clientId": properties.get("clientId"), "principalId": properties.get("principalId")}
            values["id"] = found.id
            if all(str(values[k] or "").lower() == v for k, v in wanted.items()):
                return properties["principalId"], properties["clientId"], found.id
        raise ApiError(
            400,
            "invalid_request",
            "Unable to load the proper Managed Identity: no user-assigned identity matches "
            f"{', '.join(f'{k}={v}' for k, v in wanted.items())}.",
        )

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
        principal, client, resource_id = self._user_assigned(query) or self.host_identity()
        claims = managed_identity_claims(
            tenant_id=self.config.tenant_id,
            audience=resource,
            principal_id=principal,
            client_id=client,
            resource_id=resource_id,
        )
        return {
            "access_token": self.signer.sign(claims),
            "expires_on": str(claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client,
        }
