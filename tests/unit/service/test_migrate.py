"""`pipelines migrate KIND --to ManagedIdentity`: the pipeline is recreated under its name in ManagedIdentity
mode (the spec defines no update of a pipeline), with the storage grant where the deployer may, and what is
left reported; refused while its runs are active or when the tenant would refuse the new pipeline; a repeat
changes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import ENV, World, make_world
from tests.unit.service.test_readiness import SAS, SECRET, storage_account
from transfer.domain.errors import Conflict, InvalidInput, PipelineNotReady
from transfer.domain.runs import Trigger


@pytest.fixture
def world() -> World:
    world = make_world(
        ENV,
        export_storage={"storageAccessMode": "SasToken", "keyVaultUri": SECRET},
        secrets={SECRET: SAS},
    )
    pipeline = world.arm.resources[world.settings.pipeline_id("export").lower()]
    pipeline["properties"]["options"] = ["OverwriteBlobs"]
    storage_account(world, "exportacct", networkAcls={"defaultAction": "Allow"})
    return world


def test_a_sas_token_pipeline_is_recreated_under_its_name_in_managed_identity_mode(world: World) -> None:
    pipeline_id = world.settings.pipeline_id("export")
    done = world.service.migrate_pipeline("export", "ManagedIdentity")
    assert done.outcome == "migrated"
    assert world.arm_writes() == [("delete_resource", pipeline_id), ("begin_deployment", done.deployment)]
    sent = world.arm.deployment_calls[-1].parameters
    assert sent["exportPipelineName"] == world.settings.export_pipeline
    assert sent["storageAccessMode"] == "ManagedIdentity"
    assert sent["targetUri"] == "https://exportacct.blob.core.windows.net/transfer"
    assert sent["options"] == ["OverwriteBlobs"]
    assert sent["grantStorageRole"] is True  # the account is in the registry's group, and the app may grant
    assert any("Key Vault secret" in item for item in done.left)
    assert any("principal id changed" in item for item in done.left)


def test_where_the_deployer_may_not_grant_the_storage_role_it_is_left_to_a_person(world: World) -> None:
    group = world.settings.registry_id.split("/providers/")[0]
    account = f"{group}/providers/Microsoft.Storage/storageAccounts/exportacct"
    world.arm.grants[account.lower()] = [
        {"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write"]}
    ]
    done = world.service.migrate_pipeline("export", "ManagedIdentity")
    assert world.arm.deployment_calls[-1].parameters["grantStorageRole"] is False
    assert "may not write role assignments" in done.storage_role
    assert any("Storage Blob Data Contributor" in item for item in done.left)


def test_migrate_is_refused_while_runs_are_active(world: World) -> None:
    world.service.start_export(["samples/hello:v1"], Trigger.HTTP)
    writes = list(world.arm_writes())
    with pytest.raises(Conflict, match="active") as refused:
        world.service.migrate_pipeline("export", "ManagedIdentity")
    assert refused.value.http_status == 409
    assert world.arm_writes() == writes  # nothing deleted, nothing deployed


def test_a_run_the_source_trigger_started_counts_as_active() -> None:
    world = make_world(
        ENV, import_storage={"storageAccessMode": "SasToken", "keyVaultUri": SECRET}, secrets={SECRET: SAS}
    )
    run = world.arm.put_pipeline_run("sourcetriggerrun", source_trigger=True)
    run["properties"]["request"]["pipelineResourceId"] = world.settings.pipeline_id("import")
    with pytest.raises(Conflict, match="sourcetriggerrun"):
        world.service.migrate_pipeline("import", "ManagedIdentity")


def test_a_repeat_changes_nothing(world: World) -> None:
    first = world.service.migrate_pipeline("export", "ManagedIdentity")
    writes = list(world.arm_writes())
    again = world.service.migrate_pipeline("export", "ManagedIdentity")  # deleted; its deployment runs
    assert (again.outcome, again.deployment) == ("migrated", first.deployment)
    assert world.arm_writes() == writes
    world.arm.put_resource(  # the deployment made it
        {
            "id": world.settings.pipeline_id("export"),
            "name": world.settings.export_pipeline,
            "properties": {
                "target": {
                    "uri": "https://exportacct.blob.core.windows.net/transfer",
                    "storageAccessMode": "ManagedIdentity",
                }
            },
        }
    )
    assert world.service.migrate_pipeline("export", "ManagedIdentity").outcome == "already"
    assert world.arm_writes() == writes


def test_a_tenant_that_would_refuse_the_new_pipeline_refuses_before_anything_is_deleted(world: World) -> None:
    storage_account(world, "exportacct", publicNetworkAccess="Disabled")
    with pytest.raises(PipelineNotReady, match="StorageNetworkRestricted"):
        world.service.migrate_pipeline("export", "ManagedIdentity")
    assert world.arm_writes() == []


def test_only_managed_identity_is_a_target(world: World) -> None:
    with pytest.raises(InvalidInput):
        world.service.migrate_pipeline("export", "SasToken")
