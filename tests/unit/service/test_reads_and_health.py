"""Reading runs, health, and deploying a pipeline."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import World, sas_copy_world
from transfer.domain.errors import (
    InvalidInput,
    NotFound,
    Unavailable,
)
from transfer.domain.runs import Trigger
from transfer.service import PipelineSpec


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


# ---- reads and health ---------------------------------------------------------------------------------


def test_get_and_list_runs(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.CLI).runs
    assert world.service.get_run(run.id) == run
    with pytest.raises(InvalidInput):
        world.service.get_run("bad id!")
    with pytest.raises(NotFound):
        world.service.get_run("nosuchrun1")
    assert world.service.list_runs(kind="export") == [run]
    assert world.service.list_runs(kind="import") == []
    with pytest.raises(InvalidInput):
        world.service.list_runs(kind="x")
    with pytest.raises(InvalidInput):
        world.service.list_runs(status="Done")
    with pytest.raises(InvalidInput):
        world.service.list_runs(top=0)


def test_health_reports_pipelines_modes_and_sas_expiry(world: World) -> None:
    checks = {c.name: c for c in world.service.health()}
    assert all(c.ok for c in checks.values()), checks
    assert "SasToken" in checks["exportPipeline"].detail
    assert "ManagedIdentity; source trigger Enabled" in checks["importPipeline"].detail
    assert "importSas" not in checks
    assert "2027-06-01" in checks["exportSas"].detail
    world.clock.advance(days=200)
    checks = {c.name: c for c in world.service.health()}
    assert not checks["exportSas"].ok
    assert "expired" in checks["exportSas"].detail
    world.state.fail("ping", Unavailable("tables down"))
    assert not {c.name: c for c in world.service.health()}["state"].ok


def test_health_names_a_missing_pipeline(world: World) -> None:
    world.arm.resources.pop(world.service.settings.pipeline_id("import").lower())
    check = {c.name: c for c in world.service.health()}["importPipeline"]
    assert not check.ok
    assert "deploy it first" in check.detail


def test_deploy_pipeline_passes_the_template_parameters(world: World) -> None:
    name = world.service.deploy_pipeline(
        "import",
        PipelineSpec(
            "https://t.blob.core.windows.net/transfer", "ManagedIdentity", options=("OverwriteTags",)
        ),
    )
    [call] = world.arm.deployment_calls
    assert call.name == name
    assert call.parameters["sourceTriggerStatus"] == "Enabled"
    assert call.parameters["storageAccessMode"] == "ManagedIdentity"
    assert call.template["resources"][0]["type"].endswith("importPipelines")
    with pytest.raises(InvalidInput):
        world.service.deploy_pipeline("import", PipelineSpec("https://t/x", options=("OverwriteBlobs",)))
    with pytest.raises(InvalidInput):
        world.service.deploy_pipeline("export", PipelineSpec("https://t/x", "SasToken"))
