"""Whether a locked-down tenant lets a pipeline work, decided from what ARM says before any run fails: the
storage account's network rules, the vault's permission model, the registry's export policy and the app's
own permissions. Pure: ARM's JSON in, a Finding out (its cause a stable `errorCause` code with a hint).

What the app could not read (no permission to read the storage account, say) is a Finding that is not
`known`: health shows it as unknown and a start is not refused for it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from transfer.domain.causes import (
    APP_ROLE,
    EXPORT_POLICY,
    KEY_VAULT_ACCESS,
    KEY_VAULT_ROLE,
    STORAGE_NETWORK,
    Cause,
)

# Built-in roles whose data actions include Microsoft.KeyVault/vaults/secrets/getSecret/action.
SECRET_READER_ROLES = {
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"
DEPLOYMENT_WRITE = "Microsoft.Resources/deployments/write"
ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"


def needed_actions(kind: str) -> tuple[str, ...]:
    """What the app does on the registry for a pipeline of `kind`: read it, and create, read and delete
    its runs (Container Registry Transfer Pipeline Contributor holds all of them)."""
    return (
        f"{REGISTRY_TYPE}/{kind}Pipelines/read",
        f"{REGISTRY_TYPE}/pipelineRuns/read",
        f"{REGISTRY_TYPE}/pipelineRuns/write",
        f"{REGISTRY_TYPE}/pipelineRuns/delete",
    )


@dataclass(frozen=True)
class Finding:
    check: str  # its row in health: "exportStorageNetwork", ...
    detail: str
    cause: Cause | None = None  # what is wrong; None when nothing is
    known: bool = True  # False: the app could not read what it needs (health: unknown; starts go on)

    @property
    def blocks(self) -> bool:
        """A run of the pipeline would fail as it is set up now."""
        return self.known and self.cause is not None


def unknown(check: str, why: str) -> Finding:
    return Finding(check, f"unknown: {why}", known=False)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# ---- storage ----


def network_restriction(account: Mapping[str, Any]) -> str | None:
    """Why the storage account refuses public networks (an ACR pipeline among them), or None."""
    props = _dict(account.get("properties"))
    if str(props.get("publicNetworkAccess") or "").lower() == "disabled":
        endpoints = len(props.get("privateEndpointConnections") or ())
        return f"publicNetworkAccess is Disabled (private endpoints only: {endpoints} connection(s))"
    acls = _dict(props.get("networkAcls"))
    if str(acls.get("defaultAction") or "").lower() == "deny":
        bypass = acls.get("bypass") or "None"
        return f"its firewall denies public networks (networkAcls.defaultAction: Deny, bypass: {bypass})"
    return None


def storage_network(check: str, account_name: str, account: Mapping[str, Any] | None) -> Finding:
    if account is None:
        return unknown(check, f"ARM shows the app no storage account named {account_name}")
    why = network_restriction(account)
    if why is None:
        return Finding(check, f"storage account {account_name} allows public networks")
    return Finding(
        check,
        f"storage account {account_name} is network-restricted: {why}. ACR Transfer is not a trusted Azure "
        "service for Storage, so its pipelines cannot reach the account whatever their identity or SAS",
        STORAGE_NETWORK,
    )


def find_account(accounts: Iterable[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((a for a in accounts if str(a.get("name") or "").lower() == name.lower()), None)


# ---- Key Vault ----


def find_vault(vaults: Iterable[Mapping[str, Any]], secret_uri: str) -> Mapping[str, Any] | None:
    """The vault whose vaultUri the secret's URI is under (or whose name its host starts with)."""
    uri = secret_uri.lower()
    host = (urlsplit(secret_uri).hostname or "").lower()
    for vault in vaults:
        vault_uri = str(_dict(vault.get("properties")).get("vaultUri") or "").lower().rstrip("/")
        if vault_uri and uri.startswith(vault_uri + "/"):
            return vault
    return next((v for v in vaults if host.split(".", 1)[0] == str(v.get("name") or "").lower()), None)


def secret_name(secret_uri: str) -> str | None:
    match = re.search(r"/secrets/([^/?#]+)", secret_uri)
    return match.group(1) if match else None


def uses_rbac(vault: Mapping[str, Any]) -> bool:
    return bool(_dict(vault.get("properties")).get("enableRbacAuthorization"))


def _covers(scope: str, resource_id: str) -> bool:
    scope, target = scope.lower().rstrip("/"), resource_id.lower().rstrip("/")
    return bool(scope) and (target == scope or target.startswith(scope + "/"))


def vault_access(
    check: str,
    vault: Mapping[str, Any] | None,
    secret_uri: str,
    principal: str | None,
    assignments: Sequence[Mapping[str, Any]] | None,
) -> Finding:
    """Whether the pipeline's identity may read its SAS secret, by the vault's permission model:
    RBAC (a role with getSecret at the secret, the vault or above) or access policies (secret `get`).
    `assignments` None: the principal's role assignments could not be read."""
    if vault is None:
        return unknown(check, f"ARM shows the app no vault holding {secret_uri}")
    if not principal:
        return unknown(check, "the pipeline names no principal id")
    name = str(vault.get("name") or "")
    if not uses_rbac(vault):
        return _by_access_policy(check, vault, principal)
    if assignments is None:
        return unknown(check, f"vault {name} uses RBAC; the role assignments of {principal} are unreadable")
    role = _secret_reader_role(assignments, f"{vault.get('id')}/secrets/{secret_name(secret_uri) or ''}")
    if role:
        return Finding(check, f"vault {name} uses RBAC; {principal} holds {role}")
    return Finding(
        check,
        f"vault {name} uses RBAC (access policies are ignored) and the pipeline identity {principal} "
        "holds no Key Vault Secrets User on it or its secret",
        KEY_VAULT_ROLE,
    )


def _secret_reader_role(assignments: Iterable[Mapping[str, Any]], secret_id: str) -> str | None:
    for assignment in assignments:
        props = _dict(assignment.get("properties"))
        role = str(props.get("roleDefinitionId") or "").rstrip("/").rsplit("/", 1)[-1].lower()
        if role in SECRET_READER_ROLES and _covers(str(props.get("scope") or ""), secret_id):
            return SECRET_READER_ROLES[role]
    return None


def _by_access_policy(check: str, vault: Mapping[str, Any], principal: str) -> Finding:
    name = str(vault.get("name") or "")
    for policy in _dict(vault.get("properties")).get("accessPolicies") or ():
        policy = _dict(policy)
        if str(policy.get("objectId") or "").lower() != principal.lower():
            continue
        granted = {str(p).lower() for p in _dict(policy.get("permissions")).get("secrets") or ()}
        if granted & {"get", "all"}:
            return Finding(check, f"vault {name} uses access policies; {principal} may get secrets")
    return Finding(
        check,
        f"vault {name} uses access policies and none lets the pipeline identity {principal} get secrets",
        KEY_VAULT_ACCESS,
    )


# ---- the registry ----


def export_policy(check: str, registry: Mapping[str, Any] | None) -> Finding:
    if registry is None:
        return unknown(check, "the registry could not be read")
    policies = _dict(_dict(registry.get("properties")).get("policies"))
    status = str(_dict(policies.get("exportPolicy")).get("status") or "enabled")
    if status.lower() != "disabled":
        return Finding(check, f"export policy {status}")
    return Finding(
        check,
        "the registry's export policy is disabled: export pipelines and their runs are blocked",
        EXPORT_POLICY,
    )


def _matches(action: str, patterns: Iterable[Any]) -> bool:
    for pattern in patterns:
        regex = "^" + ".*".join(re.escape(part) for part in str(pattern).lower().split("*")) + "$"
        if re.match(regex, action.lower()):
            return True
    return False


def allowed(action: str, permissions: Iterable[Mapping[str, Any]]) -> bool:
    """ARM's rule: some entry's actions grant it and that entry's notActions do not take it away."""
    return any(
        _matches(action, entry.get("actions") or ()) and not _matches(action, entry.get("notActions") or ())
        for entry in permissions
    )


def app_permissions(
    check: str,
    kind: str,
    on_registry: Sequence[Mapping[str, Any]] | None,
    on_group: Sequence[Mapping[str, Any]] | None,
) -> Finding:
    """The app's own permissions (ARM's permissions API at the registry and at its resource group)."""
    if on_registry is None or on_group is None:
        return unknown(check, "ARM's permissions API could not be read")
    missing = [a for a in needed_actions(kind) if not allowed(a, on_registry)]
    if not allowed(DEPLOYMENT_WRITE, on_group):
        missing.append(f"{DEPLOYMENT_WRITE} (on the resource group)")
    if not missing:
        return Finding(check, f"the app may manage the {kind} pipeline's runs")
    return Finding(check, "the app's identity may not perform " + ", ".join(missing), APP_ROLE)
