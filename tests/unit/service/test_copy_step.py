"""The copy of an exported blob to the target container."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest

from tests.conftest import CATEGORY, COPY_SAS, World, sas_copy_world
from transfer.domain.runs import CopyStatus, Trigger


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


# ---- copy ---------------------------------------------------------------------------------------------


def test_copy_after_export_uses_the_pipeline_sas_and_never_logs_it(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.blob is not None
    world.source.put(run.blob, metadata=CATEGORY, content=b"exported")
    world.arm.finish_run(run.id, "Succeeded")
    world.service.reconcile()
    assert (
        world.copier.source_urls[run.blob]
        == f"https://source.blob.core.windows.net/exports/{run.blob}?{COPY_SAS}"
    )
    assert world.stored_run(run.id).copy_status is CopyStatus.PENDING
    world.copier.finish(run.blob)
    world.service.reconcile()
    assert world.stored_run(run.id).copy_status is CopyStatus.SUCCEEDED
    assert world.copier.target is not None
    copied = world.copier.target.blobs[run.blob]
    assert copied.content_md5 == hashlib.md5(b"exported").digest()  # noqa: S324
    assert copied.metadata == CATEGORY
    assert "SUPERSECRETSIGNATURE" not in caplog.text
    assert world.service.reconcile().counts.get("copy-success") is None


def test_a_pending_copy_is_followed_from_the_active_runs_without_reading_arm(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.blob is not None
    world.source.put(run.blob, metadata=CATEGORY, content=b"exported")
    world.arm.finish_run(run.id, "Succeeded")
    world.service.reconcile()
    assert [r.id for r in world.state.active_runs()] == [run.id]  # finished, but its copy pends
    arm_reads = world.arm.calls["get_deployment"] + world.arm.calls["get_resource"]
    for _ in range(3):
        world.service.reconcile()
    assert world.arm.calls["get_deployment"] + world.arm.calls["get_resource"] == arm_reads
    assert world.copier.calls["copy_state"] == 3
    world.copier.finish(run.blob, "failed", error="source unreachable")
    world.service.reconcile()
    failed = world.state.get_run(run.id)
    assert failed is not None
    assert (failed.copy_status, failed.copy_error) == (CopyStatus.FAILED, "source unreachable")
    assert world.state.active_runs() == []
    assert [r.id for r in world.state.runs_to_clean()] == [run.id]
