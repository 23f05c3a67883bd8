"""Cleanup and delete: only the app's own finished runs, after the retention."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import World, sas_copy_world
from transfer.domain.errors import (
    Conflict,
    NotFound,
)
from transfer.domain.runs import Trigger


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


# ---- cleanup and delete -------------------------------------------------------------------------------


def test_cleanup_deletes_only_our_finished_runs_after_retention(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    world.service.reconcile()
    world.arm.finish_run(run.id, "Succeeded")
    world.arm.set_deployment("someone-elses", "Succeeded")
    world.service.reconcile()
    world.clock.advance(hours=71)
    assert world.service.cleanup().counts["kept"] == 1
    world.clock.advance(hours=2)
    dry = world.service.cleanup(dry_run=True)
    assert dry.counts["would-delete"] == 1
    assert world.arm.deleted_deployments == []
    report = world.service.cleanup()
    assert report.counts["deleted"] == 1
    assert world.arm.deleted_deployments == [run.deployment_name]
    assert world.arm.deleted_resources == [world.arm.pipeline_run_id(run.id)]
    assert world.stored_run(run.id).cleaned_up
    assert world.service.cleanup().counts == {}


def test_delete_run_refuses_active_and_foreign_runs(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    with pytest.raises(Conflict):
        world.service.delete_run(run.id)
    world.arm.finish_run(run.id, "Failed", error="boom")
    world.service.reconcile()
    deleted = world.service.delete_run(run.id)
    assert deleted.cleaned_up
    with pytest.raises(NotFound):
        world.service.delete_run("nosuchrun1")
