"""The ARM adapter against the emulator where the live service is particular: nested preflight errors with
their correlation id, and the API versions the provider advertises."""

from __future__ import annotations

import pytest

from tests.integration import test_arm_emulator
from tests.integration.test_arm_emulator import Arm, run_id
from transfer import templates
from transfer.errors import TransferError

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

world = test_arm_emulator.world  # the same fixture: a registry, an export container, the real adapter


def test_a_preflight_rejection_keeps_the_innermost_reason_every_code_and_the_correlation_id(
    world: Arm,
) -> None:
    assert world.deploy_export_pipeline().provisioning_state == "Succeeded"
    name = run_id(7)
    parameters = {**world.export_run_parameters(name), "artifacts": ["Samples/Upper:v1"]}
    with pytest.raises(TransferError) as rejected:
        world.arm.begin_deployment(f"acrtransfer-{name}", templates.load(templates.EXPORT_RUN), parameters)
    error = rejected.value
    assert "InvalidTemplateDeployment" in error.service_codes
    assert len(error.service_codes) > 1  # the provider's own code, from inside the details
    assert "Samples/Upper:v1" in error.message  # the leaf's reason, not only "see inner errors"
    assert "See inner errors" not in error.message
    assert error.correlation_id


def test_the_provider_advertises_its_api_versions(world: Arm) -> None:
    assert world.deploy_export_pipeline().provisioning_state == "Succeeded"
    versions = world.arm.supported_api_versions(world.settings.pipeline_id("export"))
    assert world.settings.pipeline_api_version in versions
    assert "2026-03-01-preview" in versions
