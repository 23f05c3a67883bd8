"""ResourceManager contract: FakeResourceManager and ArmResourceManager (on the emulator) agree on what the
service relies on: absent is None, deleting absent is fine, a deployment starts without waiting, a running
one is adopted, its pipelineRun shows up by id and in the registry's list, ids compare case-insensitively."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes import FakeResourceManager
from tests.integration.polling import wait_for
from transfer.adapters import templates
from transfer.domain import naming
from transfer.domain.ports import ResourceManager
from transfer.domain.runs import RunKind
from transfer.domain.settings import Settings, load_settings
from transfer.service import PipelineSpec


@dataclass
class ArmWorld:
    arm: ResourceManager
    settings: Settings
    make_pipeline: Callable[[], None]


def settings_for(subscription: str, group: str, registry: str, endpoint: str | None = None) -> Settings:
    env = {
        "AZURE_SUBSCRIPTION_ID": subscription,
        "TRANSFER_RESOURCE_GROUP": group,
        "TRANSFER_REGISTRY": registry,
        "TRANSFER_EXPORT_PIPELINE": "exportpipeline",
        "TransferState": "UseDevelopmentStorage=true",
    }
    if endpoint:
        env["TRANSFER_ARM_ENDPOINT"] = endpoint
    return load_settings(env)


@pytest.fixture(params=["fake", pytest.param("emulator", marks=[pytest.mark.emulator, pytest.mark.azurite])])
def arm_world(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ArmWorld:
    registry = "reg" + uuid.uuid4().hex[:10]
    if request.param == "fake":
        settings = settings_for("00000000-0000-0000-0000-000000000001", "transfer-rg", registry)
        fake = FakeResourceManager(settings.registry_id)

        def fake_pipeline() -> None:
            fake.put_resource(
                {
                    "id": settings.pipeline_id("export"),
                    "name": "exportpipeline",
                    "type": "Microsoft.ContainerRegistry/registries/exportPipelines",
                    "properties": {"provisioningState": "Succeeded"},
                }
            )

        return ArmWorld(fake, settings, fake_pipeline)

    from azure.storage.blob import BlobServiceClient

    from transfer.adapters.arm import ArmResourceManager
    from transfer.adapters.credentials import make_credential

    emulator = request.getfixturevalue("emulator_reset")
    azurite = request.getfixturevalue("azurite")
    for variable in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", emulator.identity_header)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)
    emulator.admin.create_registry(registry, {"samples/hello": {"v1": None}})
    emulator.admin.configure(run_seconds=3.0)
    endpoint = emulator.arm_endpoint
    settings = settings_for(emulator.subscription_id, emulator.resource_group, registry, endpoint)
    arm = ArmResourceManager(settings, make_credential(settings))
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = "exports" + uuid.uuid4().hex[:8]
    blobs.create_container(container)

    def emulator_pipeline() -> None:
        spec = PipelineSpec(storage_uri=f"{blobs.url}/{container}", storage_access_mode="ManagedIdentity")
        name = "acrtransfer-export-pipeline-" + uuid.uuid4().hex[:6]
        arm.begin_deployment(
            name,
            templates.load(templates.EXPORT_PIPELINE),
            spec.parameters("export", registry, "exportpipeline"),
        )
        wait_for(
            lambda: (s := arm.get_deployment(name)) and s.provisioning_state == "Succeeded",
            "the export pipeline to deploy",
        )

    return ArmWorld(arm, settings, emulator_pipeline)


def run_parameters(settings: Settings, run_id: str) -> dict[str, Any]:
    return {
        "registryName": settings.registry,
        "pipelineRunName": run_id,
        "pipelineResourceId": settings.pipeline_id("export"),
        "forceUpdateTag": run_id,
        "artifacts": ["samples/hello:v1"],
        "targetName": f"export-{run_id}",
    }


def test_absent_is_none_and_deleting_absent_is_fine(arm_world: ArmWorld) -> None:
    arm, settings = arm_world.arm, arm_world.settings
    assert arm.get_deployment("acrtransfer-absent") is None
    assert arm.get_resource(settings.pipeline_id("export")) is None
    arm.delete_deployment("acrtransfer-absent")
    arm.delete_resource(f"{settings.registry_id}/pipelineRuns/absentrun1")
    assert arm.list_pipeline_runs() == []
    assert arm.count_deployments() == 0


def test_a_run_deployment_starts_without_waiting_and_is_adopted_while_running(arm_world: ArmWorld) -> None:
    arm, settings = arm_world.arm, arm_world.settings
    arm_world.make_pipeline()
    run_id = naming.run_id(RunKind.EXPORT, datetime.now(UTC), "000001")
    deployment = naming.deployment_name(run_id)
    parameters = run_parameters(settings, run_id)
    arm.begin_deployment(deployment, templates.load(templates.EXPORT_RUN), parameters)
    state = arm.get_deployment(deployment)
    assert state is not None
    assert state.provisioning_state not in ("Succeeded", "Failed", "Canceled")
    arm.begin_deployment(deployment, templates.load(templates.EXPORT_RUN), parameters)  # adopted, no error

    run_resource_id = f"{settings.registry_id}/pipelineRuns/{run_id}"
    as_arm_writes_it = run_resource_id.replace("/resourceGroups/", "/resourcegroups/").replace(
        "/Microsoft.ContainerRegistry/", "/microsoft.containerregistry/"
    )
    resource = wait_for(lambda: arm.get_resource(as_arm_writes_it), "the run, by an id in ARM's casing")
    assert resource is not None  # found with an id in another case
    assert resource["id"].lower() == run_resource_id.lower()
    assert resource["properties"]["request"]["artifacts"] == ["samples/hello:v1"]
    assert [r["name"] for r in arm.list_pipeline_runs()] == [run_id]
    assert arm.count_deployments() >= 1

    arm.delete_resource(run_resource_id)
    wait_for(lambda: arm.get_resource(run_resource_id) is None, "the run to be deleted")


def test_pipelines_are_listed_by_kind_and_deleted_by_id(arm_world: ArmWorld) -> None:
    arm, settings = arm_world.arm, arm_world.settings
    assert arm.list_pipelines("export") == []
    assert arm.list_pipelines("import") == []
    arm_world.make_pipeline()
    [listed] = arm.list_pipelines("export")
    assert listed["name"] == "exportpipeline"
    assert listed["id"].lower() == settings.pipeline_id("export").lower()
    assert listed["properties"]["provisioningState"] == "Succeeded"
    assert arm.list_pipelines("import") == []
    arm.delete_resource(settings.pipeline_id("export"))
    wait_for(lambda: arm.get_resource(settings.pipeline_id("export")) is None, "the pipeline to be deleted")
    assert arm.list_pipelines("export") == []
