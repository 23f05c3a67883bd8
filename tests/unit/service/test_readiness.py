"""A locked-down tenant, found before a run fails: each situation shows in health with its errorCause and
hint, refuses a start (422 PipelineNotReady naming the cause, no ARM write, no run recorded) and
`pipelines deploy`; what the app cannot read is unknown and blocks nothing; the run error of the same
situation, when the service fails a run anyway, carries the same cause."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ENV, SUB, World, make_world
from tests.faults import instead
from transfer.domain.errors import AccessDenied, PipelineNotReady
from transfer.domain.readiness import KEY_VAULT_SECRETS_USER, REGISTRY_TYPE
from transfer.domain.runs import RunStatus, Trigger
from transfer.service.pipeline_admin import PipelineSpec

GROUP = f"/subscriptions/{SUB}/resourceGroups/transfer-rg"
VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/kv-rg/providers/Microsoft.KeyVault/vaults/kv1"
SECRET = "https://kv1.vault.azure.net/secrets/exportsas"
SAS = "sv=2024-11-04&sr=c&sp=rwla&spr=https&se=2027-06-01T00:00:00Z&sig=SECRETSIG"
PRINCIPAL = "11111111-2222-3333-4444-555555555555"


def storage_account(world: World, name: str, **props: Any) -> None:
    world.arm.put_resource(
        {
            "id": f"{GROUP}/providers/Microsoft.Storage/storageAccounts/{name}",
            "name": name,
            "type": "Microsoft.Storage/storageAccounts",
            "properties": props,
        }
    )


def denied(*_: Any) -> Any:
    raise AccessDenied("ARM: 403 AuthorizationFailed: the app may not read this")


def checks(world: World) -> dict[str, Any]:
    return {c.name: c for c in world.service.health()}


def assert_refused(world: World, cause: str) -> PipelineNotReady:
    with pytest.raises(PipelineNotReady) as refused:
        world.service.start_export(["samples/hello:v1"], Trigger.HTTP)
    assert cause in refused.value.message
    assert refused.value.http_status == 422
    assert world.stored_runs() == []
    assert world.arm_writes() == []
    return refused.value


def assert_in_health(world: World, name: str, cause: str) -> None:
    check = checks(world)[name]
    assert not check.ok, check
    assert check.cause is not None
    assert check.cause.code == cause
    assert check.cause.hint in check.detail


@pytest.fixture
def world() -> World:
    world = make_world()
    storage_account(world, "exportacct", networkAcls={"defaultAction": "Allow"})
    storage_account(world, "importacct", networkAcls={"defaultAction": "Allow"})
    return world


def sas_world(rbac: bool) -> World:
    world = make_world(
        ENV,
        export_storage={"storageAccessMode": "SasToken", "keyVaultUri": SECRET},
        secrets={SECRET: SAS},
    )
    pipeline = world.arm.resources[world.settings.pipeline_id("export").lower()]
    pipeline["identity"] = {"type": "systemAssigned", "principalId": PRINCIPAL}
    world.arm.put_resource(
        {
            "id": VAULT_ID,
            "name": "kv1",
            "type": "Microsoft.KeyVault/vaults",
            "properties": {"vaultUri": "https://kv1.vault.azure.net/", "enableRbacAuthorization": rbac},
        }
    )
    return world


# ---- the storage account's network rules ----


@pytest.mark.parametrize(
    "props",
    [
        {"networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"}},
        {"publicNetworkAccess": "Disabled", "privateEndpointConnections": [{"name": "pe1"}]},
    ],
)
def test_a_network_restricted_export_account_is_found_in_health_and_refuses_starts(
    world: World, props: dict[str, Any]
) -> None:
    storage_account(world, "exportacct", **props)
    assert_in_health(world, "exportStorageNetwork", "StorageNetworkRestricted")
    refused = assert_refused(world, "StorageNetworkRestricted")
    assert "not a trusted Azure service for Storage" in refused.message
    assert checks(world)["importStorageNetwork"].ok


def test_an_account_the_app_cannot_see_is_unknown_in_health_and_blocks_no_start(world: World) -> None:
    world.arm.around("list_resources", instead(denied))
    check = checks(world)["exportStorageNetwork"]
    assert check.ok
    assert check.detail.startswith("unknown:")
    assert check.cause is None
    assert world.service.start_export(["samples/hello:v1"], Trigger.HTTP).runs


def test_pipelines_deploy_refuses_a_restricted_account_before_writing(world: World) -> None:
    storage_account(world, "lockedacct", publicNetworkAccess="Disabled")
    spec = PipelineSpec("https://lockedacct.blob.core.windows.net/exports", "ManagedIdentity")
    with pytest.raises(PipelineNotReady, match="StorageNetworkRestricted"):
        world.service.deploy_pipeline("export", spec)
    assert world.arm_writes() == []
    open_spec = PipelineSpec("https://exportacct.blob.core.windows.net/exports", "ManagedIdentity")
    assert world.service.deploy_pipeline("export", open_spec)


# ---- the vault's permission model ----


def test_an_rbac_vault_without_key_vault_secrets_user_refuses_starts_until_granted() -> None:
    world = sas_world(rbac=True)
    assert_in_health(world, "exportVaultAccess", "KeyVaultRoleMissing")
    assert_refused(world, "KeyVaultRoleMissing")
    world.arm.assign_role(PRINCIPAL, KEY_VAULT_SECRETS_USER, f"{VAULT_ID}/secrets/exportsas")
    assert checks(world)["exportVaultAccess"].ok
    world.clock.advance(minutes=6)  # a warm worker reads the tenant again after 5 minutes
    assert world.service.start_export(["samples/hello:v1"], Trigger.HTTP).runs


def test_an_access_policy_vault_needs_secret_get_for_the_pipeline_identity() -> None:
    world = sas_world(rbac=False)
    assert_in_health(world, "exportVaultAccess", "KeyVaultAccessDenied")
    assert_refused(world, "KeyVaultAccessDenied")
    vault = world.arm.resources[VAULT_ID.lower()]
    vault["properties"]["accessPolicies"] = [{"objectId": PRINCIPAL, "permissions": {"secrets": ["get"]}}]
    assert checks(world)["exportVaultAccess"].ok


# ---- the registry's export policy ----


def test_a_disabled_export_policy_is_found_and_refuses_exports_but_not_imports(world: World) -> None:
    world.arm.put_resource(
        {
            "id": world.settings.registry_id,
            "name": "myregistry",
            "properties": {"policies": {"exportPolicy": {"status": "disabled"}}},
        }
    )
    assert_in_health(world, "exportPolicy", "ExportPolicyDisabled")
    assert_refused(world, "ExportPolicyDisabled")
    world.add_blob("blob1")
    assert world.service.start_import("blob1", Trigger.HTTP).runs


# ---- the app's own role ----


def test_an_app_without_the_transfer_role_is_found_from_the_permissions_api(world: World) -> None:
    registry = world.settings.registry_id.lower()
    world.arm.grants[registry] = [{"actions": ["*/read"], "notActions": []}]
    assert_in_health(world, "exportAppRole", "TransferRoleMissing")
    refused = assert_refused(world, "TransferRoleMissing")
    assert f"{REGISTRY_TYPE}/pipelineRuns/write" in refused.message
    world.arm.grants[registry] = [
        {"actions": [f"{REGISTRY_TYPE}/exportPipelines/*", f"{REGISTRY_TYPE}/pipelineRuns/*"]}
    ]
    assert checks(world)["exportAppRole"].ok


def test_an_unreadable_permissions_api_is_unknown(world: World) -> None:
    world.arm.around("permissions", instead(denied))
    check = checks(world)["importAppRole"]
    assert check.ok
    assert check.detail.startswith("unknown:")


# ---- the service fails a run anyway ----


def test_a_run_the_firewall_fails_anyway_carries_the_network_cause(world: World) -> None:
    accepted = world.service.start_export(["samples/hello:v1"], Trigger.HTTP)
    run = accepted.runs[0]
    world.service.reconcile()
    world.arm.finish_run(
        run.id,
        "Failed",
        error="Access to container 'transfer' with the pipeline's managed identity failed: storage account "
        "'exportacct' answered 403 AuthorizationFailure: This request is not authorized to perform this "
        "operation. The storage account is network-restricted.",
    )
    world.service.reconcile()
    failed = world.stored_run(run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.error_cause == "StorageNetworkRestricted"
    assert failed.hint
    assert "public network access" in failed.hint


# ---- ManagedIdentity answers with null identity fields and an empty keyVaultUri ----


@pytest.mark.parametrize("vault_uri", [None, ""])
def test_null_identity_fields_and_an_empty_key_vault_uri_never_fail_health(
    world: World, vault_uri: str | None
) -> None:
    identity = (
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u"
    )
    for kind in ("export", "import"):
        pipeline = world.arm.resources[world.settings.pipeline_id(kind).lower()]
        side = pipeline["properties"]["target" if kind == "export" else "source"]
        side["keyVaultUri"] = vault_uri
        pipeline["identity"] = {
            "type": "userAssigned",
            "principalId": None,
            "tenantId": None,
            "userAssignedIdentities": {identity: {"principalId": None, "clientId": None}},
        }
    failing = {c.name: c.detail for c in world.service.health() if not c.ok}
    assert failing == {}, failing


# ---- pipelines deploy: the vault's permission model decides the template's grant ----


@pytest.mark.parametrize(
    ("rbac", "chosen", "sent"),
    [
        (True, "", "RoleAssignment"),
        (False, "", "AccessPolicy"),
        (None, "", "AccessPolicy"),  # a vault the app cannot see: the official templates' way
        (True, "None", "None"),  # a person's choice wins
    ],
)
def test_pipelines_deploy_grants_key_vault_secrets_user_on_an_rbac_vault(
    world: World, rbac: bool | None, chosen: str, sent: str
) -> None:
    if rbac is not None:
        world.arm.put_resource(
            {
                "id": f"{GROUP}/providers/Microsoft.KeyVault/vaults/kv2",
                "name": "kv2",
                "properties": {"enableRbacAuthorization": rbac},
            }
        )
    spec = PipelineSpec(
        "https://exportacct.blob.core.windows.net/exports", "SasToken", "kv2", "sas", key_vault_access=chosen
    )
    world.service.deploy_pipeline("export", spec)
    assert world.arm.deployment_calls[-1].parameters["keyVaultSecretAccess"] == sent
