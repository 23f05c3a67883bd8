"""The ARM adapter against the emulator where the live service is particular: nested preflight errors with
their correlation id, and the API versions the provider advertises."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.integration import test_arm_emulator
from tests.integration.test_arm_emulator import Arm, run_id
from transfer import bootstrap
from transfer.adapters import templates
from transfer.domain.errors import TransferError
from transfer.domain.runs import Run, RunStatus, Trigger
from transfer.service import PipelineSpec, TransferService

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

arm_world = test_arm_emulator.arm_world  # the same fixture: a registry, an export container, the real adapter


def test_a_preflight_rejection_keeps_the_innermost_reason_every_code_and_the_correlation_id(
    arm_world: Arm,
) -> None:
    assert arm_world.deploy_export_pipeline().provisioning_state == "Succeeded"
    name = run_id(7)
    parameters = {**arm_world.export_run_parameters(name), "artifacts": ["Samples/Upper:v1"]}
    template = templates.load(templates.EXPORT_RUN)
    with pytest.raises(TransferError) as rejected:
        arm_world.arm.begin_deployment(f"acrtransfer-{name}", template, parameters)
    error = rejected.value
    assert "InvalidTemplateDeployment" in error.service_codes
    assert len(error.service_codes) > 1  # the provider's own code, from inside the details
    assert "Samples/Upper:v1" in error.message  # the leaf's reason, not only "see inner errors"
    assert "See inner errors" not in error.message
    assert error.correlation_id


def test_the_provider_advertises_its_api_versions(arm_world: Arm) -> None:
    assert arm_world.deploy_export_pipeline().provisioning_state == "Succeeded"
    versions = arm_world.arm.supported_api_versions(arm_world.settings.pipeline_id("export"))
    assert arm_world.settings.pipeline_api_version in versions
    assert "2026-03-01-preview" in versions


def _finished(service: TransferService, run_id: str, timeout: float = 30) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.reconcile()
        run = service.get_run(run_id)
        if run.status.terminal:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_a_managed_identity_pipeline_without_its_storage_role_fails_with_that_cause(arm_world: Arm) -> None:
    spec = PipelineSpec(storage_uri=arm_world.container_url, storage_access_mode="ManagedIdentity")
    name = "acrtransfer-export-pipeline-norole"
    arm_world.arm.begin_deployment(
        name,
        templates.load(templates.EXPORT_PIPELINE),
        spec.parameters("export", arm_world.settings.registry, "exportpipeline"),
    )
    assert arm_world.wait(name).provisioning_state == "Succeeded"
    service = bootstrap.build_service(arm_world.settings)
    [check] = [c for c in service.health() if c.name == "exportStorageRole"]
    assert not check.ok
    assert "lacks Storage Blob Data Contributor on storage account devstoreaccount1" in check.detail

    [run] = service.start_export(["samples/hello:v1"], Trigger.HTTP).runs  # the app does not block this one
    failed = _finished(service, run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.error_cause == "StorageRoleMissing"
    assert "Storage Blob Data Contributor" in (failed.hint or "")
    assert "AuthorizationPermissionMismatch" in (failed.error or "")

    pipeline = arm_world.arm.get_resource(arm_world.settings.pipeline_id("export"))
    assert pipeline is not None
    principal = pipeline["identity"]["principalId"]
    arm_world.emulator.admin.assign_role(principal, storage_account="devstoreaccount1")
    [check] = [c for c in service.health() if c.name == "exportStorageRole"]
    assert check.ok, check.detail
    assert "holds Storage Blob Data Contributor" in check.detail


def test_a_run_still_active_past_the_timeout_fails_as_timed_out(arm_world: Arm) -> None:
    assert arm_world.deploy_export_pipeline().provisioning_state == "Succeeded"
    arm_world.emulator.admin.configure(run_seconds=120)  # the run stays Running in the emulator
    service = bootstrap.build_service(arm_world.settings)
    [run] = service.start_export(["samples/hello:v1"], Trigger.HTTP).runs
    service.reconcile()
    assert service.get_run(run.id).status in (RunStatus.DEPLOYING, RunStatus.RUNNING)
    hours = arm_world.settings.run_timeout_hours
    later = bootstrap.build_service(
        arm_world.settings, clock=lambda: run.created_at + timedelta(hours=hours, minutes=1)
    )
    later.reconcile()
    timed_out = later.get_run(run.id)
    assert (timed_out.status, timed_out.error_cause) == (RunStatus.FAILED, "TimedOut")
    assert f"after {hours} hours" in (timed_out.error or "")
