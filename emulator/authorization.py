"""Microsoft.Authorization/roleAssignments: PUT at any scope (an extension resource), GET, DELETE, and the
lists ARM serves (`{scope}/providers/Microsoft.Authorization/roleAssignments` with `$filter` principalId eq,
assignedTo(), atScope()), plus the question the emulator's services ask: does one of these principals hold
one of these roles at this scope or above?"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from emulator import ids
from emulator.arm_errors import ApiError, bad_request
from emulator.clock import Clock, iso
from emulator.resources import PutResult, ResourceManager
from emulator.store import Resource

ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions"

# Built-in role definition ids (names as the portal shows them).
BUILT_IN_ROLES = {
    "owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcd635",
    "contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "storage blob data contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storage blob data owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storage blob data reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "key vault secrets user": "4633458b-17de-408a-b874-0445c86b69e6",
    "key vault secrets officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "key vault administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "acrpull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "acrpush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "user access administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "container registry transfer pipeline contributor": "bf94e731-3a51-4a7c-8c54-a1ab9971dfc1",
    "storage blob delegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    "key vault crypto user": "12338af0-0e69-4776-bea7-57ae8d297424",
    "key vault crypto officer": "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
    "key vault reader": "21090545-7ca7-4776-b22c-e363652d74d2",
}
# A pipeline in ManagedIdentity mode reads, writes, lists and deletes blobs: data actions that Storage Blob
# Data Contributor (what the docs ask for) and Storage Blob Data Owner grant. Owner and Contributor do not:
# they hold no data actions, so storage answers 403 to them too.
BLOB_DATA_WRITERS = (
    BUILT_IN_ROLES["storage blob data contributor"],
    BUILT_IN_ROLES["storage blob data owner"],
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_FILTER_TERM = re.compile(
    r"^\s*(?:principalId\s+eq\s+'(?P<principal>[^']*)'|assignedTo\('(?P<assigned>[^']*)'\)|(?P<at>atScope\(\)))\s*$",
    re.IGNORECASE,
)


def role_id(value: str) -> str:
    """A role's GUID from a roleDefinitionId (`/subscriptions/{s}/providers/Microsoft.Authorization/
    roleDefinitions/{guid}`), a bare GUID or a built-in role's name."""
    text = str(value).strip()
    return BUILT_IN_ROLES.get(text.lower(), text.rstrip("/").rsplit("/", 1)[-1].lower())


def _within(inner: str, outer: str) -> bool:
    """`inner` is `outer` or below it (scopes compared segment-wise, case-insensitively)."""
    inner_key, outer_key = ids.key(inner), ids.key(outer)
    return inner_key == outer_key or inner_key.startswith(outer_key + "/") or outer_key == ""


class RoleAssignments:
    """The resource handler of Microsoft.Authorization/roleAssignments and the questions about them."""

    def __init__(self, resources: ResourceManager, clock: Clock) -> None:
        self.resources = resources
        self.clock = clock

    # --- ARM

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        if not _GUID.match(rid.name):
            raise bad_request(
                f"The role assignment ID '{rid.name}' is not valid. The role assignment ID must be a GUID.",
                code="InvalidRoleAssignmentId",
            )
        requested = body.get("properties") or {}
        role_definition = str(requested.get("roleDefinitionId") or "")
        principal = str(requested.get("principalId") or "")
        if not _GUID.match(role_id(role_definition)):
            raise bad_request(
                f"The role definition ID '{role_definition}' is not valid.", code="InvalidRoleDefinitionId"
            )
        if not _GUID.match(principal):
            raise bad_request(
                "A valid principal ID must be provided for role assignment.", code="InvalidPrincipalId"
            )
        scope = rid.scope
        with self.resources.state.lock:
            existing = self.resources.find(resource_id)
            if existing is not None:
                old = existing.body["properties"]
                if old["principalId"].lower() != principal.lower() or role_id(
                    old["roleDefinitionId"]
                ) != role_id(role_definition):
                    raise bad_request(
                        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                        code="RoleAssignmentUpdateNotPermitted",
                    )
            for other in self.resources.by_type(ROLE_ASSIGNMENTS):
                props = other.body["properties"]
                if (
                    ids.key(other.id) != ids.key(resource_id)
                    and ids.key(props["scope"]) == ids.key(scope)
                    and props["principalId"].lower() == principal.lower()
                    and role_id(props["roleDefinitionId"]) == role_id(role_definition)
                ):
                    raise ApiError(409, "RoleAssignmentExists", "The role assignment already exists.")
            subscription = rid.subscription_id
            properties: dict[str, Any] = {
                "roleDefinitionId": (
                    role_definition
                    if role_definition.startswith("/")
                    else f"/subscriptions/{subscription}/providers/{ROLE_DEFINITIONS}/"
                    + role_id(role_definition)
                ),
                "principalId": principal,
                "principalType": requested.get("principalType") or "ServicePrincipal",
                "scope": scope,
                "condition": requested.get("condition"),
                "conditionVersion": requested.get("conditionVersion"),
                "createdOn": existing.body["properties"]["createdOn"] if existing else iso(self.clock.now()),
                "updatedOn": iso(self.clock.now()),
            }
            stored = {"id": resource_id, "name": rid.name, "type": ROLE_ASSIGNMENTS, "properties": properties}
            resource = self.resources.save(resource_id, ROLE_ASSIGNMENTS, api_version, stored, existing)
            return PutResult(200 if existing else 201, resource)

    def delete(self, resource: Resource) -> None:
        return None

    # --- questions

    def assignments(self) -> list[Resource]:
        return self.resources.by_type(ROLE_ASSIGNMENTS)

    def has_role(self, principal_ids: list[str], scope: str, roles: tuple[str, ...]) -> bool:
        """Does one of the principals hold one of the roles at `scope` or above (resource group,
        subscription)?"""
        wanted = {p.lower() for p in principal_ids}
        for assignment in self.assignments():
            props = assignment.body.get("properties") or {}
            if (
                str(props.get("principalId", "")).lower() in wanted
                and role_id(str(props.get("roleDefinitionId", ""))) in roles
                and _within(scope, str(props["scope"]))
            ):
                return True
        return False

    def listing(self, scope: str, expression: str | None) -> list[dict[str, Any]]:
        """What ARM lists at a scope: assignments at it, above it (inherited) and, without atScope(), below
        it; `$filter` terms joined by `and`: principalId eq '<id>', assignedTo('<id>'), atScope()."""
        principal, at_scope = None, False
        for term in re.split(r"\s+and\s+", expression or "", flags=re.IGNORECASE) if expression else []:
            match = _FILTER_TERM.match(term)
            if match is None:
                raise bad_request(
                    f"The filter '{expression}' is not supported. Supported: principalId eq '<id>', "
                    "assignedTo('<id>'), atScope().",
                    code="UnsupportedQuery",
                )
            principal = match.group("principal") or match.group("assigned") or principal
            at_scope = at_scope or bool(match.group("at"))
        found = []
        for assignment in self.assignments():
            props = assignment.body["properties"]
            above = _within(scope, props["scope"])
            below = _within(props["scope"], scope)
            if not (above or (below and not at_scope)):
                continue
            if principal is not None and props["principalId"].lower() != principal.lower():
                continue
            found.append(copy.deepcopy(assignment.body))
        return found


def new_assignment_name() -> str:
    return str(uuid.uuid4())
