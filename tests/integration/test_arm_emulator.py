"""ArmResourceManager (and the credential factory) against the ARM / ACR Transfer emulator.

The adapter runs unchanged: DefaultAzureCredential gets its token from the emulator's managed-identity
endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER) and trusts its CA through REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.azurite import Azurite
from emulator.testing import RunningEmulator
from tests.integration.polling import wait_for
from transfer.adapters import templates
from transfer.adapters.arm import ArmResourceManager
from transfer.adapters.credentials import make_credential
from transfer.adapters.retry import capped_retry_policy
from transfer.domain import naming
from transfer.domain.arm_views import DeploymentState
from transfer.domain.errors import NotFound, Throttled, TransferError, Unavailable
from transfer.domain.runs import RunKind
from transfer.domain.settings import Settings, load_settings
from transfer.service import PipelineSpec

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

TERMINAL = ("Succeeded", "Failed", "Canceled")
IDENTITY_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
)


@dataclass
class Arm:
    emulator: RunningEmulator
    settings: Settings
    arm: ArmResourceManager
    container_url: str
    sleeps: list[float]

    def manager(self, **options: Any) -> ArmResourceManager:
        return ArmResourceManager(self.settings, make_credential(self.settings), **options)

    def wait(self, name: str, timeout: float = 20.0) -> DeploymentState:
        return wait_for(lambda: _terminal(self.arm.get_deployment(name)), timeout)

    def deploy_export_pipeline(self) -> DeploymentState:
        spec = PipelineSpec(storage_uri=self.container_url, storage_access_mode="ManagedIdentity")
        name = f"{naming.DEPLOYMENT_PREFIX}export-pipeline-{uuid.uuid4().hex[:6]}"
        parameters = spec.parameters("export", self.settings.registry, "exportpipeline")
        self.arm.begin_deployment(name, templates.load(templates.EXPORT_PIPELINE), parameters)
        state = self.wait(name)
        pipeline = self.arm.get_resource(self.settings.pipeline_id("export"))
        if state.provisioning_state == "Succeeded" and pipeline is not None:
            # What the pipeline's owner does next (ManagedIdentity mode): Storage Blob Data Contributor for
            # its identity on the storage account; the emulator, like Azure, refuses the runs without it.
            self.emulator.admin.assign_role(
                pipeline["identity"]["principalId"], storage_account="devstoreaccount1"
            )
        return state

    def export_run_parameters(self, run_id: str) -> dict[str, Any]:
        return {
            "registryName": self.settings.registry,
            "pipelineRunName": run_id,
            "pipelineResourceId": self.settings.pipeline_id("export"),
            "forceUpdateTag": run_id,
            "artifacts": ["samples/hello:v1"],
            "targetName": f"export-{run_id}",
        }


def _terminal(state: DeploymentState | None) -> DeploymentState | None:
    return state if state is not None and state.provisioning_state in TERMINAL else None


def run_id(n: int = 0) -> str:
    return naming.run_id(RunKind.EXPORT, datetime.now(UTC), f"{n:06d}")


@pytest.fixture
def arm_world(emulator_reset: RunningEmulator, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Arm:
    emulator = emulator_reset
    for variable in IDENTITY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", emulator.identity_header)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)

    from azure.storage.blob import BlobServiceClient

    registry = "reg" + uuid.uuid4().hex[:10]
    emulator.admin.create_registry(registry, {"samples/hello": {"v1": None}})
    container = "exports" + uuid.uuid4().hex[:8]
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    blobs.create_container(container)
    settings = load_settings(
        {
            "AZURE_SUBSCRIPTION_ID": emulator.subscription_id,
            "TRANSFER_RESOURCE_GROUP": emulator.resource_group,
            "TRANSFER_REGISTRY": registry,
            "TRANSFER_EXPORT_PIPELINE": "exportpipeline",
            "TRANSFER_ARM_ENDPOINT": emulator.arm_endpoint,
            "TransferState": azurite.connection_string,
        }
    )
    sleeps: list[float] = []
    arm = ArmResourceManager(
        settings,
        make_credential(settings),
        retry_policy=lambda: capped_retry_policy(sleep=sleeps.append, budget=60),
    )
    return Arm(emulator, settings, arm, f"{blobs.url.rstrip('/')}/{container}", sleeps)


def test_deploy_a_pipeline_and_read_it_back(arm_world: Arm) -> None:
    state = arm_world.deploy_export_pipeline()
    assert state.provisioning_state == "Succeeded", state.error
    pipeline_id = arm_world.settings.pipeline_id("export")
    assert any(rid.lower() == pipeline_id.lower() for rid in state.output_resource_ids)
    assert all(not isinstance(v, dict) or "value" not in v for v in state.outputs.values())

    pipeline = arm_world.arm.get_resource(pipeline_id)
    assert pipeline is not None
    assert pipeline["id"].lower() == pipeline_id.lower()
    assert pipeline["name"] == "exportpipeline"
    assert pipeline["type"].lower() == "microsoft.containerregistry/registries/exportpipelines"
    props = pipeline["properties"]
    assert props["provisioningState"] == "Succeeded"  # ARM's camelCase, not SDK snake_case
    assert props["target"]["storageAccessMode"] == "ManagedIdentity"
    assert props["target"]["uri"] == arm_world.container_url
    assert "identity" in pipeline


def test_absent_things_are_none_and_deleting_them_is_fine(arm_world: Arm) -> None:
    assert arm_world.arm.get_deployment("acrtransfer-never-deployed") is None
    assert arm_world.arm.get_resource(arm_world.settings.pipeline_id("export")) is None
    assert arm_world.arm.get_resource(f"{arm_world.settings.registry_id}/pipelineRuns/neverran1") is None
    arm_world.arm.delete_deployment("acrtransfer-never-deployed")
    arm_world.arm.delete_resource(f"{arm_world.settings.registry_id}/pipelineRuns/neverran1")
    assert arm_world.arm.list_pipeline_runs() == []


def test_an_export_run_from_deployment_to_cleanup(arm_world: Arm) -> None:
    assert arm_world.deploy_export_pipeline().provisioning_state == "Succeeded"
    rid = run_id(1)
    deployment = naming.deployment_name(rid)
    arm_world.arm.begin_deployment(
        deployment, templates.load(templates.EXPORT_RUN), arm_world.export_run_parameters(rid)
    )
    started = arm_world.arm.get_deployment(deployment)
    assert started is not None  # the initial PUT happened; nothing waited for it

    done = arm_world.wait(deployment)
    assert done.provisioning_state == "Succeeded", done.error
    run_resource_id = f"{arm_world.settings.registry_id}/pipelineRuns/{rid}"
    assert str(done.outputs["pipelineRunResourceId"]).lower() == run_resource_id.lower()

    resource = arm_world.arm.get_resource(run_resource_id)
    assert resource is not None
    assert resource["properties"]["response"]["status"] == "Succeeded"
    assert resource["properties"]["request"]["artifacts"] == ["samples/hello:v1"]
    listed = arm_world.arm.list_pipeline_runs()
    assert [r["name"] for r in listed] == [rid]

    count = arm_world.arm.count_deployments()
    assert count >= 2
    arm_world.arm.delete_resource(run_resource_id)
    arm_world.arm.delete_deployment(deployment)
    assert wait_for(lambda: arm_world.arm.get_resource(run_resource_id) is None)
    assert wait_for(lambda: arm_world.arm.get_deployment(deployment) is None)
    assert arm_world.arm.count_deployments() == count - 1
    arm_world.arm.delete_resource(run_resource_id)  # twice is fine
    arm_world.arm.delete_deployment(deployment)


def test_a_running_deployment_is_adopted(arm_world: Arm) -> None:
    assert arm_world.deploy_export_pipeline().provisioning_state == "Succeeded"
    arm_world.emulator.admin.configure(run_seconds=3.0)  # a float: the emulator keeps the type it last saw
    rid = run_id(2)
    deployment = naming.deployment_name(rid)
    parameters = arm_world.export_run_parameters(rid)
    arm_world.arm.begin_deployment(deployment, templates.load(templates.EXPORT_RUN), parameters)
    running = arm_world.arm.get_deployment(deployment)
    assert running is not None
    assert running.provisioning_state not in TERMINAL
    template = templates.load(templates.EXPORT_RUN)
    arm_world.arm.begin_deployment(deployment, template, parameters)  # 409 adopted
    puts = [
        r for r in arm_world.emulator.admin.requests() if r["method"] == "PUT" and deployment in r["path"]
    ]
    assert [r["status"] for r in puts] == [201, 409]


def test_a_rejected_template_says_why(arm_world: Arm) -> None:
    broken = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [{"type": "Microsoft.ContainerRegistry/registries/pipelineRuns", "name": "[bogus("}],
    }
    with pytest.raises(TransferError) as caught:  # ARM validates the template in the PUT: 400
        arm_world.arm.begin_deployment("acrtransfer-broken", broken, {})
    assert not isinstance(caught.value, (Throttled, Unavailable))
    assert "acrtransfer-broken" in caught.value.message
    assert "InvalidTemplate" in caught.value.message
    assert arm_world.arm.get_deployment("acrtransfer-broken") is None


def test_lists_follow_next_links(arm_world: Arm) -> None:
    assert arm_world.deploy_export_pipeline().provisioning_state == "Succeeded"
    arm_world.emulator.admin.configure(page_size=2, run_seconds=0.05)
    ids = [run_id(n) for n in range(5)]
    for rid in ids:
        arm_world.arm.begin_deployment(
            naming.deployment_name(rid),
            templates.load(templates.EXPORT_RUN),
            arm_world.export_run_parameters(rid),
        )
    for rid in ids:
        arm_world.wait(naming.deployment_name(rid))
    assert sorted(r["name"] for r in arm_world.arm.list_pipeline_runs()) == sorted(ids)
    assert arm_world.arm.count_deployments() == 6
    pages = [
        r for r in arm_world.emulator.admin.requests() if r["method"] == "GET" and "pipelineRuns" in r["path"]
    ]
    assert len(pages) >= 3


def test_a_short_throttling_is_retried(arm_world: Arm) -> None:
    arm_world.emulator.admin.inject_fault(
        status=429, method="GET", path=".*/deployments/acrtransfer-x$", retry_after=5
    )
    assert arm_world.arm.get_deployment("acrtransfer-x") is None  # retried after the 429, then 404
    assert arm_world.sleeps == [5.0]  # the sleep is recorded, not slept


def test_a_long_retry_after_is_handed_back_at_once(arm_world: Arm) -> None:
    arm_world.emulator.admin.inject_fault(
        status=429, method="GET", path=".*/deployments/acrtransfer-w$", retry_after=600
    )
    with pytest.raises(Throttled) as caught:
        arm_world.arm.get_deployment("acrtransfer-w")
    assert caught.value.retry_after == 600  # for the pass to wait out across ticks
    assert arm_world.sleeps == []  # no invocation sleeps through ARM's throttling


def test_throttling_that_outlasts_the_retries_is_throttled(arm_world: Arm) -> None:
    arm_world.emulator.admin.inject_fault(
        status=429, method="GET", path=".*/deployments/acrtransfer-y$", retry_after=5, count=10
    )
    with pytest.raises(Throttled) as caught:
        arm_world.arm.get_deployment("acrtransfer-y")
    assert caught.value.retry_after == 5
    assert arm_world.sleeps == [5.0, 5.0, 5.0]  # three retries at most (recorded sleeps take no time)


def test_server_errors_are_unavailable(arm_world: Arm) -> None:
    arm_world.emulator.admin.inject_fault(status=503, method="*", path=".*pipelineRuns.*", count=10)
    with pytest.raises(Unavailable):
        arm_world.arm.list_pipeline_runs()


def test_denied_is_a_clear_error_without_the_token(arm_world: Arm, caplog: pytest.LogCaptureFixture) -> None:
    arm_world.emulator.admin.inject_fault(
        status=403, path=".*/deployments/acrtransfer-z$", code="AuthorizationFailed", message="no role"
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransferError) as caught:
        arm_world.arm.get_deployment("acrtransfer-z")
    assert caught.value.code == "AccessDenied"
    assert "not authorized" in caught.value.message
    assert "Bearer" not in caught.value.message
    assert "Bearer ey" not in caplog.text


def test_registry_not_found_when_listing_runs(arm_world: Arm) -> None:
    from dataclasses import replace

    other = ArmResourceManager(
        replace(arm_world.settings, registry="noregistry1"), make_credential(arm_world.settings)
    )
    with pytest.raises(NotFound):
        other.list_pipeline_runs()
