"""Who calls ARM and what their role assignments let them do.

- The caller: a bearer token that is a JWT names its principal (`oid`, else `appid` / `azp` / `sub`); an
  opaque token (the emulator's `/msi/token`, a test's static credential) stands for the app's identity,
  `config.app_principal_id`.
- Built-in role definitions (the roles the app and its pipelines meet) with their actions, notActions,
  dataActions and notDataActions, and ARM's matching (`*` wildcards, case-insensitive, notActions taken from
  their own role only).
- ARM's permissions API: `GET {scope}/providers/Microsoft.Authorization/permissions` lists, for the caller,
  one entry per role assignment at the scope or above it.
- Enforcement: by default every caller may do everything (as an Owner of the subscription, and the
  permissions API says so). A principal made *restricted* (admin API) holds only its role assignments: ARM
  answers what it may not do with 403 `AuthorizationFailed`, and a deployment whose template writes a resource
  it may not write fails pre-flight with 400 `InvalidTemplateDeployment` ("Authorization failed for template
  resource ...") as ARM does.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from emulator import ids
from emulator.arm_errors import ApiError
from emulator.authorization import ROLE_ASSIGNMENTS, RoleAssignments, role_id
from emulator.server import Request
from emulator.store import Config


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    name: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def permission(self) -> dict[str, Any]:
        """The role's entry as the permissions API answers it."""
        return {
            "actions": list(self.actions),
            "notActions": list(self.not_actions),
            "dataActions": list(self.data_actions),
            "notDataActions": list(self.not_data_actions),
            "condition": None,
            "conditionVersion": None,
        }

    def allows(self, action: str, data: bool = False) -> bool:
        granted, denied = (
            (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        )
        return any(_matches(p, action) for p in granted) and not any(_matches(p, action) for p in denied)


_BLOB = "Microsoft.Storage/storageAccounts/blobServices"
_KEYS = "Microsoft.KeyVault/vaults/keys"
_PIPELINE_TYPES = ("exportPipelines", "importPipelines", "pipelineRuns")
_CONTRIBUTOR_NOT_ACTIONS = (
    "Microsoft.Authorization/*/Delete",
    "Microsoft.Authorization/*/Write",
    "Microsoft.Authorization/elevateAccess/Action",
    "Microsoft.Blueprint/blueprintAssignments/write",
    "Microsoft.Blueprint/blueprintAssignments/delete",
    "Microsoft.Compute/galleries/share/action",
    "Microsoft.Purview/consents/write",
    "Microsoft.Purview/consents/delete",
    "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
    "Microsoft.Subscription/cancel/action",
    "Microsoft.Subscription/enable/action",
)
_KEY_VAULT_READS = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
)

# The built-in roles the app, its templates and its pipelines meet, as Azure defines them.
BUILT_IN = {
    role.id: role
    for role in (
        RoleDefinition("8e3af657-a8ff-443c-a75c-2fe8c4bcd635", "Owner", ("*",)),
        RoleDefinition(
            "b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", ("*",), _CONTRIBUTOR_NOT_ACTIONS
        ),
        RoleDefinition("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", ("*/read",)),
        RoleDefinition(
            "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
            "User Access Administrator",
            ("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
        ),
        RoleDefinition(
            "bf94e731-3a51-4a7c-8c54-a1ab9971dfc1",
            "Container Registry Transfer Pipeline Contributor",
            (
                *(
                    f"Microsoft.ContainerRegistry/registries/{kind}/{verb}"
                    for kind in _PIPELINE_TYPES
                    for verb in ("read", "write", "delete")
                ),
                "Microsoft.ContainerRegistry/registries/pipelineRuns/operationStatuses/read",
            ),
        ),
        RoleDefinition(
            "7f951dda-4ed3-4680-a7ca-43fe172d538d",
            "AcrPull",
            ("Microsoft.ContainerRegistry/registries/pull/read",),
        ),
        RoleDefinition(
            "8311e382-0749-4cb8-b61a-304f252e45ec",
            "AcrPush",
            (
                "Microsoft.ContainerRegistry/registries/pull/read",
                "Microsoft.ContainerRegistry/registries/push/write",
            ),
        ),
        RoleDefinition(
            "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
            "Storage Blob Data Contributor",
            (
                f"{_BLOB}/containers/delete",
                f"{_BLOB}/containers/read",
                f"{_BLOB}/containers/write",
                f"{_BLOB}/generateUserDelegationKey/action",
            ),
            (),
            (
                f"{_BLOB}/containers/blobs/delete",
                f"{_BLOB}/containers/blobs/read",
                f"{_BLOB}/containers/blobs/write",
                f"{_BLOB}/containers/blobs/move/action",
                f"{_BLOB}/containers/blobs/add/action",
            ),
        ),
        RoleDefinition(
            "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
            "Storage Blob Data Owner",
            (f"{_BLOB}/containers/*", f"{_BLOB}/generateUserDelegationKey/action"),
            (),
            (f"{_BLOB}/containers/blobs/*",),
        ),
        RoleDefinition(
            "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
            "Storage Blob Data Reader",
            (f"{_BLOB}/containers/read", f"{_BLOB}/generateUserDelegationKey/action"),
            (),
            (f"{_BLOB}/containers/blobs/read",),
        ),
        RoleDefinition(
            "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
            "Storage Blob Delegator",
            (f"{_BLOB}/generateUserDelegationKey/action",),
        ),
        RoleDefinition(
            "4633458b-17de-408a-b874-0445c86b69e6",
            "Key Vault Secrets User",
            (),
            (),
            (
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ),
        ),
        RoleDefinition(
            "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
            "Key Vault Secrets Officer",
            _KEY_VAULT_READS,
            (),
            ("Microsoft.KeyVault/vaults/secrets/*",),
        ),
        RoleDefinition(
            "12338af0-0e69-4776-bea7-57ae8d297424",
            "Key Vault Crypto User",
            (),
            (),
            (
                f"{_KEYS}/read",
                f"{_KEYS}/update/action",
                f"{_KEYS}/backup/action",
                f"{_KEYS}/encrypt/action",
                f"{_KEYS}/decrypt/action",
                f"{_KEYS}/wrap/action",
                f"{_KEYS}/unwrap/action",
                f"{_KEYS}/sign/action",
                f"{_KEYS}/verify/action",
            ),
        ),
        RoleDefinition(
            "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
            "Key Vault Crypto Officer",
            _KEY_VAULT_READS,
            (),
            (f"{_KEYS}/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"),
        ),
        RoleDefinition(
            "21090545-7ca7-4776-b22c-e363652d74d2",
            "Key Vault Reader",
            _KEY_VAULT_READS,
            (),
            ("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"),
        ),
        RoleDefinition(
            "00482a5a-887f-4fb3-b363-3b7fe8e74483",
            "Key Vault Administrator",
            _KEY_VAULT_READS,
            (),
            ("Microsoft.KeyVault/vaults/*",),
        ),
    )
}
ROLE_NAMES = {role.name.lower(): role.id for role in BUILT_IN.values()}
OWNER = BUILT_IN["8e3af657-a8ff-443c-a75c-2fe8c4bcd635"]

_CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("emulator_arm_caller", default=None)


def _matches(pattern: str, action: str) -> bool:
    expression = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(expression, action, re.IGNORECASE) is not None


def definition(role_definition_id: str) -> RoleDefinition | None:
    """A built-in role from a roleDefinitionId, a bare GUID or a role's name."""
    text = str(role_definition_id).strip()
    return BUILT_IN.get(ROLE_NAMES.get(text.lower(), role_id(text)))


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (signature not checked); {} for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    text = parts[1].replace("-", "+").replace("_", "/")
    try:
        claims = json.loads(base64.b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def principal_of(authorization: str, default: str) -> str:
    """The object id a bearer token names, else `default` (the app's identity)."""
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    claims = jwt_claims(token)
    found = claims.get("oid") or claims.get("appid") or claims.get("azp") or claims.get("sub")
    return str(found) if found else default


def client_of(principal: str) -> str:
    """The application (client) id ARM names beside an object id (the emulator derives it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, principal.lower()))


def current_caller() -> str | None:
    """The principal of the ARM request being served (and of the deployment worker it started)."""
    return _CALLER.get()


def authorization_failed(principal: str, action: str, scope: str) -> ApiError:
    return ApiError(
        403,
        "AuthorizationFailed",
        f"The client '{client_of(principal)}' with object id '{principal}' does not have authorization to "
        f"perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
        "granted, please refresh your credentials.",
    )


class ArmAccess:
    """Which principals are restricted to their role assignments, and the checks ARM makes for them."""

    def __init__(self, lock: threading.RLock, config: Config, assignments: RoleAssignments) -> None:
        self.lock = lock
        self.config = config
        self.assignments = assignments
        self.restricted: set[str] = set()

    def clear(self) -> None:
        with self.lock:
            self.restricted.clear()

    def restrict(self, principal: str, restricted: bool) -> list[str]:
        with self.lock:
            if restricted:
                self.restricted.add(principal.lower())
            else:
                self.restricted.discard(principal.lower())
            return sorted(self.restricted)

    def is_restricted(self, principal: str) -> bool:
        with self.lock:
            return "*" in self.restricted or principal.lower() in self.restricted

    # --- what a principal holds

    def roles_at(self, principal: str, scope: str) -> list[RoleDefinition]:
        """The built-in roles of the principal's assignments at `scope` or above it (an unknown role
        definition grants nothing); an unrestricted principal also holds Owner at the subscription."""
        found = []
        for assignment in self.assignments.assignments():
            props = assignment.body.get("properties") or {}
            if str(props.get("principalId", "")).lower() != principal.lower():
                continue
            if not _within(scope, str(props.get("scope", ""))):
                continue
            role = definition(str(props.get("roleDefinitionId", "")))
            if role is not None:
                found.append(role)
        if not self.is_restricted(principal):
            found.insert(0, OWNER)
        return found

    def allows(self, principal: str, action: str, scope: str, data: bool = False) -> bool:
        return any(role.allows(action, data) for role in self.roles_at(principal, scope))

    def permissions(self, principal: str, scope: str) -> list[dict[str, Any]]:
        return [role.permission() for role in self.roles_at(principal, scope)]

    # --- ARM's checks

    def caller(self, request: Request) -> str:
        return principal_of(request.headers.get("authorization", ""), self.config.app_principal_id)

    def authorize(self, request: Request) -> None:
        """Remember the caller for the request (and what it starts); refuse what a restricted caller may
        not do with ARM's 403 AuthorizationFailed."""
        principal = self.caller(request)
        _CALLER.set(principal)
        if not self.is_restricted(principal):
            return
        needed = required_action(request)
        if needed is not None and not self.allows(principal, needed[0], needed[1]):
            raise authorization_failed(principal, needed[0], needed[1])

    def template_resource(self, resource_id: str, resource_type: str, name: str) -> str | None:
        """Why the caller may not deploy this template resource (ARM's pre-flight text), else None."""
        principal = current_caller()
        if principal is None or not self.is_restricted(principal):
            return None
        action = f"{_type_name(resource_type)}/write"
        if self.allows(principal, action, resource_id):
            return None
        return (
            f"Authorization failed for template resource '{name}' of type '{_type_name(resource_type)}'. "
            f"The client '{client_of(principal)}' with object id '{principal}' does not have permission to "
            f"perform action '{action}' at scope '{resource_id}'."
        )

    def resource_write(self, resource_id: str, resource_type: str) -> ApiError | None:
        """A deployment writes what its caller may not write (after pre-flight): AuthorizationFailed."""
        principal = current_caller()
        if principal is None or not self.is_restricted(principal):
            return None
        action = f"{_type_name(resource_type)}/write"
        if self.allows(principal, action, resource_id):
            return None
        return authorization_failed(principal, action, resource_id)


def _type_name(resource_type: str) -> str:
    return resource_type.rstrip("/")


def _within(inner: str, outer: str) -> bool:
    inner_key, outer_key = ids.key(inner), ids.key(outer)
    return inner_key == outer_key or inner_key.startswith(outer_key + "/") or outer_key == ""


_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
DEPLOYMENTS = "Microsoft.Resources/deployments"


def required_action(request: Request) -> tuple[str, str] | None:
    """(action, scope) ARM checks for a request; None for what needs no permission here (the permissions
    API, a long-running operation's status, the subscription's provider-level lists)."""
    path = request.path
    segments = [s for s in path.split("/") if s]
    lowered = [s.lower() for s in segments]
    verb = _VERBS.get(request.method, "read")
    if lowered[-3:] == ["providers", "microsoft.authorization", "permissions"]:
        return None
    if lowered[-3:] == ["providers", "microsoft.authorization", "roleassignments"]:
        return f"{ROLE_ASSIGNMENTS}/read", "/" + "/".join(segments[:-3])
    if len(segments) == 4 and lowered[2] == "resourcegroups":
        return f"Microsoft.Resources/subscriptions/resourceGroups/{verb}", path
    if "operationstatuses" in lowered or "operationresults" in lowered:
        marker = lowered.index("operationstatuses" if "operationstatuses" in lowered else "operationresults")
        owner = ids.parse("/" + "/".join(segments[:marker]))
        if owner is None or owner.is_type(DEPLOYMENTS):
            return None
        return f"{owner.type}/operationStatuses/read", owner.id
    if lowered[4:7] == ["providers", "microsoft.resources", "deployments"]:
        scope = "/" + "/".join(segments[:8])
        tail = lowered[8:]
        if not tail:
            return f"{DEPLOYMENTS}/{verb}", scope if len(segments) > 7 else path
        if tail in (["validate"], ["cancel"]):
            return f"{DEPLOYMENTS}/{tail[0]}/action", scope
        return None
    rid = ids.parse(path)
    if rid is not None:
        return f"{rid.type}/{verb}", path
    parent_path, _, child = path.rpartition("/")
    parent = ids.parse(parent_path)
    if parent is None:
        return None
    if request.method == "POST":
        return f"{parent.type}/{child}/action", parent_path
    return f"{parent.type}/{child}/read", parent_path
