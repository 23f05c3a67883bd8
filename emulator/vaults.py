"""Key Vault: the vault resources (ARM side), access policies, and the data plane (secrets here, keys in
keys.py), with the vault's permission model: an RBAC vault (`enableRbacAuthorization`) ignores access
policies and asks for a role whose data actions cover the call at the vault (or the secret / key) or above;
an access-policy vault asks its policies for the pipelines always and for other callers when
`enforce_vault_access_policies` is set.

Each vault is served on its own HTTPS port of 127.0.0.1, so its vaultUri is `https://127.0.0.1:{port}/` and
secret ids have the shape the SDK parses (`https://host/secrets/{name}/{version}`). The data plane answers
an unauthenticated request with Key Vault's 401 challenge; its `resource` is `https://0.0.1:{port}` so the
SDK's check that the request host ends with `.{resource host}` holds without `verify_challenge_resource`.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from emulator import ids, keys
from emulator.arm_errors import ApiError, bad_request
from emulator.clock import Clock
from emulator.permissions import client_of, definition
from emulator.resources import PutResult, ResourceManager
from emulator.store import Config, Resource, SecretVersion, State

VAULTS = "Microsoft.KeyVault/vaults"
ACCESS_POLICIES = "Microsoft.KeyVault/vaults/accessPolicies"
ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
# Each data-plane call: its RBAC data action, and the access-policy permission it needs.
DATA_ACTIONS = {
    ("secrets", "get"): "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    ("secrets", "list"): "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    ("secrets", "set"): "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    ("secrets", "delete"): "Microsoft.KeyVault/vaults/secrets/delete",
    ("keys", "get"): "Microsoft.KeyVault/vaults/keys/read",
    ("keys", "list"): "Microsoft.KeyVault/vaults/keys/read",
    ("keys", "create"): "Microsoft.KeyVault/vaults/keys/create/action",
    ("keys", "sign"): "Microsoft.KeyVault/vaults/keys/sign/action",
    ("keys", "verify"): "Microsoft.KeyVault/vaults/keys/verify/action",
    ("keys", "delete"): "Microsoft.KeyVault/vaults/keys/delete",
}
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


class SecretAccessError(Exception):
    """Why a pipeline could not read its SAS secret; the message goes into pipelineRunErrorMessage."""


def _epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


class KeyVault:
    """Vault resources and secrets. `listen(vault_name) -> port` opens (or reuses) the vault's HTTPS port."""

    def __init__(
        self,
        state: State,
        config: Config,
        clock: Clock,
        resources: ResourceManager,
        listen: Callable[[str], int],
    ) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.resources = resources
        self._listen = listen
        self.vault_by_port: dict[int, str] = {}
        self.keys = keys.KeyStore(state.lock)

    # --- ARM: Microsoft.KeyVault/vaults

    def vault_url(self, name: str) -> str:
        port = self._listen(name.lower())
        self.vault_by_port[port] = name.lower()
        return f"https://127.0.0.1:{port}/"

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", rid.name) or "--" in rid.name:
            raise bad_request(
                f"The vault name '{rid.name}' is invalid. A vault's name must be between 3-24 alphanumeric "
                "characters. The name must begin with a letter, end with a letter or digit, and not contain "
                "consecutive hyphens.",
                code="VaultNameNotValid",
            )
        existing = self.resources.find(resource_id)
        properties = copy.deepcopy(body.get("properties") or {})
        properties.setdefault("tenantId", self.config.tenant_id)
        properties.setdefault("sku", {"family": "A", "name": "standard"})
        if existing and "accessPolicies" not in properties:
            properties["accessPolicies"] = existing.body["properties"].get("accessPolicies", [])
        properties.setdefault("accessPolicies", [])
        properties.setdefault("enableRbacAuthorization", False)
        properties["vaultUri"] = self.vault_url(rid.name)
        body = {**body, "location": body.get("location") or self.config.location}
        with self.state.lock:
            self.state.secrets.setdefault(rid.name.lower(), {})
        return self.resources.store_generic(rid, resource_id, api_version, body, properties)

    def delete(self, resource: Resource) -> None:
        with self.state.lock:
            self.state.secrets.pop(resource.body["name"].lower(), None)
        self.keys.forget(resource.body["name"])

    def vault(self, name: str) -> Resource | None:
        for resource in self.resources.by_type(VAULTS):
            if resource.body["name"].lower() == name.lower():
                return resource
        return None

    # --- secrets

    def set_secret(
        self,
        vault_name: str,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        expires: datetime | None = None,
        not_before: datetime | None = None,
        tags: dict[str, str] | None = None,
    ) -> SecretVersion:
        if not SECRET_NAME.match(name):
            raise bad_request(
                f"The secret name '{name}' is invalid: 1-127 letters, digits and dashes.", code="BadParameter"
            )
        with self.state.lock:
            if vault_name.lower() not in self.state.secrets:
                raise ApiError(
                    404, "VaultNotFound", f"The vault '{vault_name}' does not exist in the emulator."
                )
            version = SecretVersion(
                uuid.uuid4().hex, value, self.clock.now(), content_type, expires, not_before, dict(tags or {})
            )
            self.state.secrets[vault_name.lower()].setdefault(name.lower(), []).append(version)
            return version

    def get_secret(self, vault_name: str, name: str, version: str | None = None) -> SecretVersion:
        with self.state.lock:
            versions = self.state.secrets.get(vault_name.lower(), {}).get(name.lower(), [])
            found = [v for v in versions if version in (None, "", v.version)]
            if not found:
                detail = f"{name}/{version}" if version else name
                raise ApiError(
                    404,
                    "SecretNotFound",
                    f"A secret with (name/id) {detail} was not found in this key vault. If you recently "
                    "deleted "
                    "this secret you may be able to recover it using the correct recovery command. For help "
                    "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
                )
            return found[-1]

    # --- what a pipeline run does: read the SAS token with the pipeline's identity

    def read_for(self, secret_uri: str, principal_ids: list[str]) -> str:
        parsed = urlparse(secret_uri)
        vault_name = self.vault_by_port.get(parsed.port or 443) if parsed.hostname == "127.0.0.1" else None
        if vault_name is None or self.vault(vault_name) is None:
            raise SecretAccessError(
                f"Failed to read the SAS token from Key Vault secret '{secret_uri}': the vault does not "
                "exist "
                "(this emulator serves only vaults created through it)."
            )
        parts = [p for p in parsed.path.split("/") if p]
        if len(parts) < 2 or parts[0] != "secrets":
            raise SecretAccessError(f"The keyVaultUri '{secret_uri}' is not a Key Vault secret URI.")
        vault = self.vault(vault_name)
        assert vault is not None
        if not self.allowed(vault, principal_ids, "secrets", "get", parts[1], policies=True):
            raise SecretAccessError(self._forbidden(vault, secret_uri, parts[1], principal_ids))
        try:
            return self.get_secret(vault_name, parts[1], parts[2] if len(parts) > 2 else None).value
        except ApiError as exc:
            raise SecretAccessError(
                f"Failed to read the SAS token from Key Vault secret '{secret_uri}': {exc.status} "
                f"{exc.code}: {exc.message}"
            ) from None

    def _forbidden(self, vault: Resource, secret_uri: str, secret: str, principal_ids: list[str]) -> str:
        """Key Vault's own 403 (an access policy vault: AccessDenied; an RBAC vault: ForbiddenByRbac)."""
        name = vault.body["name"]
        location = vault.body.get("location") or self.config.location
        oid = principal_ids[0] if principal_ids else "00000000-0000-0000-0000-000000000000"
        caller = f"appid={uuid.uuid5(uuid.NAMESPACE_OID, oid)};oid={oid};iss=https://sts.windows.net/{self.config.tenant_id}/"
        head = f"Failed to read the SAS token from Key Vault secret '{secret_uri}': 403 Forbidden"
        if vault.body["properties"].get("enableRbacAuthorization"):
            return (
                f"{head} (ForbiddenByRbac): Caller is not authorized to perform action on resource. If role "
                "assignments, deny assignments or role definitions were changed recently, please observe "
                f"propagation time. Caller: {caller} "
                "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action' "
                f"Resource: '{ids.key(vault.id)}/secrets/{secret.lower()}' Assignment: (not found) "
                f"DenyAssignmentId: null DecisionReason: null Vault: {name};location={location}"
            )
        return (
            f"{head} (AccessDenied): The user, group or application '{caller}' does not have secrets get "
            f"permission on key vault '{name};location={location}'. For help resolving this issue, please "
            "see https://go.microsoft.com/fwlink/?linkid=2125287"
        )

    def allowed(
        self,
        vault: Resource,
        principal_ids: list[str],
        kind: str,
        operation: str,
        item: str | None = None,
        *,
        policies: bool,
    ) -> bool:
        """May one of the principals do `operation` on the vault's `kind` ("secrets", "keys")? An RBAC vault:
        a role assignment at the vault, the item or above whose role has the data action. An access-policy
        vault: a policy with the permission (`policies`; otherwise, for a caller the emulator is lenient
        with, yes)."""
        wanted = {p.lower() for p in principal_ids}
        properties = vault.body["properties"]
        if properties.get("enableRbacAuthorization"):
            action = DATA_ACTIONS[(kind, operation)]
            target = f"{vault.id}/{kind}/{item}" if item else vault.id
            for assignment in self.resources.by_type(ROLE_ASSIGNMENTS):
                props = assignment.body.get("properties") or {}
                role = definition(str(props.get("roleDefinitionId", "")))
                if (
                    str(props.get("principalId", "")).lower() in wanted
                    and _within(target, str(props.get("scope", "")))
                    and role is not None
                    and role.allows(action, data=True)
                ):
                    return True
            return False
        if not policies:
            return True
        for policy in properties.get("accessPolicies") or []:
            granted = [p.lower() for p in (policy.get("permissions") or {}).get(kind) or []]
            if str(policy.get("objectId", "")).lower() in wanted and (
                operation in granted or "all" in granted
            ):
                return True
        return False

    def refusal(
        self, vault: Resource, principal: str, kind: str, operation: str, item: str | None
    ) -> dict[str, Any]:
        """Key Vault's 403 body for a caller: ForbiddenByRbac (an RBAC vault) or AccessDenied (policies)."""
        name = vault.body["name"]
        location = vault.body.get("location") or self.config.location
        caller = f"appid={client_of(principal)};oid={principal};iss=https://sts.windows.net/{self.config.tenant_id}/"
        if vault.body["properties"].get("enableRbacAuthorization"):
            resource = f"{ids.key(vault.id)}/{kind}/{item.lower()}" if item else ids.key(vault.id)
            message = (
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
                "assignments or role definitions were changed recently, please observe propagation time.\r\n"
                f"Caller: {caller}\r\nAction: '{DATA_ACTIONS[(kind, operation)]}'\r\nResource: '{resource}'"
                "\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\n"
                f"Vault: {name};location={location}\r\n"
            )
            inner = "ForbiddenByRbac"
        else:
            message = (
                f"The user, group or application '{caller}' does not have {kind} {operation} permission on "
                f"key vault '{name};location={location}'. For help resolving this issue, please see "
                "https://go.microsoft.com/fwlink/?linkid=2125287"
            )
            inner = "AccessDenied"
        return {"error": {"code": "Forbidden", "message": message, "innererror": {"code": inner}}}

    # --- data plane (served on the vault's own port)

    def challenge(self, port: int) -> dict[str, str]:
        return {
            "WWW-Authenticate": (
                f'Bearer authorization="https://login.microsoftonline.com/{self.config.tenant_id}", '
                f'resource="https://0.0.1:{port}"'
            )
        }

    def handle(
        self, port: int, method: str, path: str, body: Any, principal: str
    ) -> tuple[int, dict[str, Any] | None]:
        vault_name = self.vault_by_port.get(port)
        vault = self.vault(vault_name) if vault_name else None
        if vault_name is None or vault is None:
            raise ApiError(404, "VaultNotFound", "No vault is served on this port (it was deleted or reset).")
        base = f"https://127.0.0.1:{port}"
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["keys"]:
            return self._keys(vault, base, method, parts[1:], body, principal)
        if not parts or parts[0] != "secrets" or len(parts) > 3:
            raise ApiError(
                404, "NotFound", f"The Key Vault emulator serves /secrets and /keys, not '{path}'."
            )
        operation = {"GET": "get" if len(parts) > 1 else "list", "PUT": "set", "DELETE": "delete"}.get(method)
        item = parts[1] if len(parts) > 1 else None
        strict = self.config.enforce_vault_access_policies
        if operation and not self.allowed(vault, [principal], "secrets", operation, item, policies=strict):
            return 403, self.refusal(vault, principal, "secrets", operation, item)
        if len(parts) == 1 and method == "GET":
            with self.state.lock:
                names = sorted(self.state.secrets.get(vault_name, {}).items())
                items = [
                    {"id": f"{base}/secrets/{name}", **self._bundle(base, name, versions[-1], value=False)}
                    for name, versions in names
                ]
            return 200, {"value": items, "nextLink": None}
        name = parts[1]
        if method == "GET":
            version = self.get_secret(vault_name, name, parts[2] if len(parts) == 3 else None)
            return 200, self._bundle(base, name, version)
        if method == "PUT" and len(parts) == 2:
            if not isinstance(body, dict) or not isinstance(body.get("value"), str):
                raise bad_request("The request body must hold the secret's 'value'.", code="BadParameter")
            attributes = body.get("attributes") or {}
            version = self.set_secret(
                vault_name,
                name,
                body["value"],
                content_type=body.get("contentType"),
                expires=_from_epoch(attributes.get("exp")),
                not_before=_from_epoch(attributes.get("nbf")),
                tags=body.get("tags"),
            )
            return 200, self._bundle(base, name, version)
        if method == "DELETE" and len(parts) == 2:
            version = self.get_secret(vault_name, name)
            with self.state.lock:
                self.state.secrets[vault_name].pop(name.lower(), None)
            return 200, self._bundle(base, name, version, value=False)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on '{path}' by the emulator.")

    def _keys(
        self, vault: Resource, base: str, method: str, parts: list[str], body: Any, principal: str
    ) -> tuple[int, dict[str, Any] | None]:
        """/keys, /keys/{name}[/{version}], /keys/{name}/versions, /keys/{name}/create,
        /keys/{name}[/{version}]/sign|verify."""
        name = parts[0] if parts else None
        tail = parts[1:]
        action = tail[-1] if tail and tail[-1] in ("create", "sign", "verify", "versions") else None
        version = tail[0] if tail and (action is None or len(tail) == 2) else None
        if action is None and len(tail) > 1:
            raise ApiError(
                404, "NotFound", f"The Key Vault emulator serves no key route '/keys/{'/'.join(parts)}'."
            )
        operation = {
            ("GET", None): "get" if name else "list",
            ("GET", "versions"): "list",
            ("POST", "create"): "create",
            ("POST", "sign"): "sign",
            ("POST", "verify"): "verify",
            ("DELETE", None): "delete",
        }.get((method, action))
        if operation is None or (name is None and operation != "list"):
            raise ApiError(
                405, "MethodNotAllowed", f"{method} is not supported on this key route by the emulator."
            )
        strict = self.config.enforce_vault_access_policies
        if not self.allowed(vault, [principal], "keys", operation, name, policies=strict):
            return 403, self.refusal(vault, principal, "keys", operation, name)
        vault_name = vault.body["name"]
        if name is None:
            items = [
                {"kid": f"{base}/keys/{key_name}", "attributes": _key_attributes(versions[-1])}
                for key_name, versions in self.keys.names(vault_name).items()
            ]
            return 200, {"value": items, "nextLink": None}
        if operation == "create":
            created_name, created = self.keys.create(vault_name, name, body or {}, self.clock.now())
            return 200, _key_bundle(base, created_name, created)
        if action == "versions":
            found = self.keys.get(vault_name, name)  # 404 for an unknown key
            items = [
                {"kid": f"{base}/keys/{name}/{v.version}", "attributes": _key_attributes(v)}
                for v in self.keys.names(vault_name).get(name.lower(), [found])
            ]
            return 200, {"value": items, "nextLink": None}
        key = self.keys.get(vault_name, name, version)
        kid = f"{base}/keys/{name}/{key.version}"
        if operation == "get":
            return 200, _key_bundle(base, name, key)
        if operation == "delete":
            self.keys.delete(vault_name, name)
            return 200, _key_bundle(base, name, key)
        algorithm = str((body or {}).get("alg") or "")
        if operation == "sign":
            signature = keys.sign(key, algorithm, keys.decode_value(body))
            return 200, {"kid": kid, "value": keys.b64url(signature)}
        valid = keys.verify(key, algorithm, keys.decode_value(body, "digest"), keys.decode_value(body))
        return 200, {"value": valid}

    def _bundle(self, base: str, name: str, version: SecretVersion, value: bool = True) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "enabled": True,
            "created": _epoch(version.created),
            "updated": _epoch(version.created),
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        }
        if version.expires:
            attributes["exp"] = _epoch(version.expires)
        if version.not_before:
            attributes["nbf"] = _epoch(version.not_before)
        bundle: dict[str, Any] = {"id": f"{base}/secrets/{name}/{version.version}", "attributes": attributes}
        if value:
            bundle["value"] = version.value
        if version.content_type:
            bundle["contentType"] = version.content_type
        if version.tags:
            bundle["tags"] = version.tags
        return bundle


def _key_attributes(key: keys.KeyVersion) -> dict[str, Any]:
    return {
        "enabled": True,
        "created": _epoch(key.created),
        "updated": _epoch(key.created),
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
        "exportable": False,
    }


def _key_bundle(base: str, name: str, key: keys.KeyVersion) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "key": key.jwk(f"{base}/keys/{name}/{key.version}"),
        "attributes": _key_attributes(key),
    }
    if key.tags:
        bundle["tags"] = key.tags
    return bundle


def _within(inner: str, outer: str) -> bool:
    inner_key, outer_key = ids.key(inner), ids.key(outer)
    return inner_key == outer_key or inner_key.startswith(outer_key + "/") or outer_key == ""


def _from_epoch(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


class AccessPolicies:
    """Microsoft.KeyVault/vaults/accessPolicies named add / replace / remove: edits the vault's policies."""

    def __init__(self, resources: ResourceManager) -> None:
        self.resources = resources

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        operation = rid.name.lower()
        if operation not in ("add", "replace", "remove"):
            raise bad_request(
                f"The access policy operation '{rid.name}' is not valid: use add, replace or remove.",
                code="InvalidAccessPolicyOperation",
            )
        parent = rid.parent
        assert parent is not None
        vault = self.resources.get(parent.id)
        requested = (body.get("properties") or {}).get("accessPolicies") or []
        with self.resources.state.lock:
            vault_body = copy.deepcopy(vault.body)
            policies: list[dict[str, Any]] = vault_body["properties"].setdefault("accessPolicies", [])
            if operation == "replace":
                policies.clear()
            for policy in requested:
                object_id = str(policy.get("objectId", "")).lower()
                current = next((p for p in policies if str(p.get("objectId", "")).lower() == object_id), None)
                if operation == "remove":
                    if current is not None:
                        policies.remove(current)
                    continue
                if current is None:
                    policies.append(copy.deepcopy(policy))
                    continue
                merged = current.setdefault("permissions", {})
                for kind, values in (policy.get("permissions") or {}).items():
                    merged[kind] = sorted({*merged.get(kind, []), *values})
            self.resources.save(vault.id, vault.type, vault.api_version, vault_body, vault)
            return self.resources.store_generic(rid, resource_id, api_version, body)

    def delete(self, resource: Resource) -> None:
        return None
