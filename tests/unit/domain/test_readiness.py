"""A locked-down tenant's findings, decided from ARM's JSON: each with its stable cause, unknown when the app
could not read what it needs, and the run errors of the same situations mapped to the same causes."""

from __future__ import annotations

from typing import Any

import pytest

from transfer.domain import causes, readiness
from transfer.domain.causes import classify

VAULT_ID = "/subscriptions/s/resourceGroups/kv-rg/providers/Microsoft.KeyVault/vaults/kv1"
SECRET = "https://kv1.vault.azure.net/secrets/exportsas"
PRINCIPAL = "11111111-2222-3333-4444-555555555555"


def account(**props: Any) -> dict[str, Any]:
    return {"name": "acct", "properties": props}


def vault(rbac: bool, policies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": VAULT_ID,
        "name": "kv1",
        "properties": {
            "vaultUri": "https://kv1.vault.azure.net/",
            "enableRbacAuthorization": rbac,
            "accessPolicies": policies or [],
        },
    }


def assignment(role: str, scope: str) -> dict[str, Any]:
    definition = f"/providers/Microsoft.Authorization/roleDefinitions/{role}"
    return {"properties": {"principalId": PRINCIPAL, "roleDefinitionId": definition, "scope": scope}}


@pytest.mark.parametrize(
    ("props", "why"),
    [
        ({"networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"}}, "defaultAction: Deny"),
        ({"publicNetworkAccess": "Disabled", "privateEndpointConnections": [{}]}, "1 connection"),
    ],
)
def test_a_network_restricted_storage_account_is_found_with_why_it_cannot_work(
    props: dict[str, Any], why: str
) -> None:
    found = readiness.storage_network("exportStorageNetwork", "acct", account(**props))
    assert found.blocks
    assert found.cause is causes.STORAGE_NETWORK
    assert why in found.detail
    assert "not a trusted Azure service" in found.detail
    assert "allow public network access" in found.cause.hint


def test_an_open_account_is_fine_and_an_unseen_one_is_unknown() -> None:
    open_account = account(networkAcls={"defaultAction": "Allow"}, publicNetworkAccess="Enabled")
    assert readiness.storage_network("c", "acct", open_account).cause is None
    unseen = readiness.storage_network("c", "acct", None)
    assert not unseen.known
    assert not unseen.blocks
    assert unseen.detail.startswith("unknown")


def test_an_rbac_vault_needs_key_vault_secrets_user_for_the_pipeline_identity() -> None:
    missing = readiness.vault_access("v", vault(True), SECRET, PRINCIPAL, [])
    assert missing.blocks
    assert missing.cause is causes.KEY_VAULT_ROLE
    assert "4633458b-17de-408a-b874-0445c86b69e6" in missing.cause.hint
    # an access policy does not count on an RBAC vault
    with_policy = vault(True, [{"objectId": PRINCIPAL, "permissions": {"secrets": ["get"]}}])
    assert readiness.vault_access("v", with_policy, SECRET, PRINCIPAL, []).blocks
    for scope in (VAULT_ID, f"{VAULT_ID}/secrets/exportsas", "/subscriptions/s/resourceGroups/kv-rg"):
        held = [assignment(readiness.KEY_VAULT_SECRETS_USER, scope)]
        assert readiness.vault_access("v", vault(True), SECRET, PRINCIPAL, held).cause is None
    other_secret = [assignment(readiness.KEY_VAULT_SECRETS_USER, f"{VAULT_ID}/secrets/other")]
    assert readiness.vault_access("v", vault(True), SECRET, PRINCIPAL, other_secret).blocks
    assert not readiness.vault_access("v", vault(True), SECRET, PRINCIPAL, None).known


def test_an_access_policy_vault_needs_secret_get_for_the_pipeline_identity() -> None:
    nothing = readiness.vault_access("v", vault(False), SECRET, PRINCIPAL, None)
    assert nothing.blocks
    assert nothing.cause is causes.KEY_VAULT_ACCESS
    only_list = vault(False, [{"objectId": PRINCIPAL, "permissions": {"secrets": ["list"]}}])
    assert readiness.vault_access("v", only_list, SECRET, PRINCIPAL, None).blocks
    get = vault(False, [{"objectId": PRINCIPAL.upper(), "permissions": {"secrets": ["Get", "List"]}}])
    assert readiness.vault_access("v", get, SECRET, PRINCIPAL, None).cause is None


def test_a_disabled_export_policy_blocks_exports() -> None:
    disabled = {"properties": {"policies": {"exportPolicy": {"status": "disabled"}}}}
    found = readiness.export_policy("exportPolicy", disabled)
    assert found.blocks
    assert found.cause is causes.EXPORT_POLICY
    assert "cannot be changed while export pipelines exist" in found.cause.hint
    assert readiness.export_policy("exportPolicy", {"properties": {}}).cause is None


def test_the_apps_own_role_is_read_from_the_permissions_api() -> None:
    owner = [{"actions": ["*"], "notActions": []}]
    contributor = [{"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write"]}]
    assert readiness.app_permissions("r", "export", owner, contributor).cause is None
    transfer_role = [
        {"actions": [f"{readiness.REGISTRY_TYPE}/{t}/*" for t in ("exportPipelines", "pipelineRuns")]}
    ]
    assert readiness.app_permissions("r", "export", transfer_role, contributor).cause is None
    reader = [{"actions": ["*/read"], "notActions": []}]
    found = readiness.app_permissions("r", "export", reader, reader)
    assert found.blocks
    assert found.cause is causes.APP_ROLE
    assert "pipelineRuns/write" in found.detail
    assert "deployments/write" in found.detail
    denied = [{"actions": ["*"], "notActions": [f"{readiness.REGISTRY_TYPE}/pipelineRuns/delete"]}]
    assert "pipelineRuns/delete" in readiness.app_permissions("r", "import", denied, owner).detail
    assert not readiness.app_permissions("r", "import", None, owner).known


NETWORK_403 = (
    "Access to container 'exports' with the SAS token of Key Vault secret 'https://kv/secrets/s' failed: "
    "storage account 'acct' answered 403 AuthorizationFailure: This request is not authorized to perform "
    "this operation. The storage account is network-restricted: its firewall denies public networks."
)


@pytest.mark.parametrize("managed_identity", [False, True])
def test_the_403_of_a_restricted_account_maps_to_the_network_not_to_sas_or_identity(
    managed_identity: bool,
) -> None:
    assert classify(NETWORK_403, managed_identity=managed_identity) is causes.STORAGE_NETWORK
    bare = "Failed to access storage: 403 (This request is not authorized to perform this operation.)"
    assert classify(bare, managed_identity=managed_identity) is causes.STORAGE_NETWORK
    permission = "403 This request is not authorized to perform this operation using this permission."
    assert classify(permission, managed_identity=managed_identity) is not causes.STORAGE_NETWORK


@pytest.mark.parametrize(
    ("message", "codes", "cause"),
    [
        ("Key Vault: 403 Forbidden (ForbiddenByRbac): Caller is not authorized", (), causes.KEY_VAULT_ROLE),
        ("export policy disabled", ("ExportPolicyDisabled",), causes.EXPORT_POLICY),
        ("client x does not have authorization to perform action a", (), causes.APP_ROLE),
        ("Authorization failed for 'a': denied or the scope is invalid.", (), causes.APP_ROLE),
        ("deployment failed", ("AuthorizationFailed",), causes.APP_ROLE),
    ],
)  # fmt: skip
def test_run_errors_of_a_locked_down_tenant_carry_their_cause(
    message: str, codes: tuple[str, ...], cause: causes.Cause
) -> None:
    assert classify(message, codes) is cause
