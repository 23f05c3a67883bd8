"""Timer passes under faults: one bad item never stops a pass, a 429 ends its ARM work and is waited out
across ticks, the time budget ends it cleanly, nothing starves, and side effects are confirmed or claimed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ENV, World, make_world
from tests.faults import instead
from transfer.domain.errors import Conflict, PreconditionFailed, Throttled, TransferError
from transfer.domain.runs import CopyStatus, Run, RunStatus, Trigger
from transfer.service.passes import PASS_BUDGET


def running(world: World, count: int) -> list[Run]:
    runs = [world.service.start_export([f"repo{n}:v1"], Trigger.HTTP).runs[0] for n in range(count)]
    world.service.reconcile()
    return sorted(runs, key=lambda r: r.id)


def test_one_runs_unexpected_arm_error_is_recorded_and_the_pass_goes_on(world: World) -> None:
    first, second = running(world, 2)
    world.arm.finish_run(first.id, "Succeeded")
    world.arm.finish_run(second.id, "Succeeded")
    world.arm.fail("get_deployment", TransferError("ARM: reading the deployment: failed (400)"))
    report = world.service.reconcile()
    assert report.counts["errors"] == 1
    assert any(first.id in error and "failed (400)" in error for error in report.errors)
    assert world.stored_run(first.id).status is RunStatus.RUNNING  # looked at again next tick
    assert world.stored_run(second.id).status is RunStatus.SUCCEEDED
    world.service.reconcile()
    assert world.stored_run(first.id).status is RunStatus.SUCCEEDED


def test_a_surprise_on_one_item_does_not_stop_the_pass(world: World) -> None:
    _, second = running(world, 2)
    world.arm.finish_run(second.id, "Succeeded")
    world.arm.fail("get_deployment", KeyError("a bug"))
    report = world.service.reconcile()
    assert report.counts["errors"] == 1
    assert world.stored_run(second.id).status is RunStatus.SUCCEEDED


def test_a_429_ends_the_passes_arm_work_and_is_waited_out_across_ticks(world: World) -> None:
    runs = running(world, 3)
    for run in runs:
        world.arm.finish_run(run.id, "Succeeded")
    world.arm.fail("get_deployment", Throttled("ARM: throttled (429)", retry_after=120))
    reads = world.arm.calls["get_deployment"]
    report = world.service.reconcile()
    assert report.counts["deferred"] == 1
    assert report.counts["not-reached"] == 2
    assert world.arm.calls["get_deployment"] == reads + 1  # no ARM call after the 429
    world.clock.advance(seconds=60)
    assert world.service.reconcile().counts["not-reached"] == 3  # still within its Retry-After
    assert world.arm.calls["get_deployment"] == reads + 1
    world.clock.advance(seconds=61)
    world.service.reconcile()
    assert {world.stored_run(r.id).status for r in runs} == {RunStatus.SUCCEEDED}


def test_the_time_budget_ends_a_pass_and_the_next_starts_where_it_stopped(world: World) -> None:
    runs = running(world, 3)
    reached: list[str] = []

    def slow_read(read: Any, name: str) -> Any:
        reached.append(name.removeprefix("acrtransfer-"))
        world.clock.advance(seconds=PASS_BUDGET.total_seconds() + 1)
        return read(name)

    world.arm.around("get_deployment", slow_read)
    assert world.service.reconcile().counts["not-reached"] == 2
    world.service.reconcile()
    world.service.reconcile()
    assert reached == [r.id for r in runs]  # each pass picks up after the last run reached: none starves


def test_a_run_arm_stops_showing_is_read_again_after_a_grace_before_it_fails(world: World) -> None:
    [run] = running(world, 1)
    world.arm.deployments.pop(run.deployment_name)
    world.arm.resources.pop(world.arm.pipeline_run_id(run.id).lower())
    world.service.reconcile()
    waiting = world.stored_run(run.id)
    assert waiting.status is RunStatus.RUNNING
    assert waiting.missing_since == world.clock()
    world.clock.advance(minutes=5)
    world.service.reconcile()
    assert world.stored_run(run.id).status is RunStatus.RUNNING
    world.clock.advance(minutes=6)
    world.service.reconcile()
    failed = world.stored_run(run.id)
    assert failed.status is RunStatus.FAILED
    assert "read again after the grace period" in (failed.error or "")


def test_a_transient_miss_right_after_the_deployment_succeeded_does_not_fail_the_run(world: World) -> None:
    [run] = running(world, 1)
    world.arm.finish_run(run.id, "Succeeded")
    body = world.arm.resources.pop(world.arm.pipeline_run_id(run.id).lower())
    world.service.reconcile()  # the deployment says Succeeded, the pipelineRun read says 404
    assert world.stored_run(run.id).status is RunStatus.RUNNING
    world.arm.put_resource(body)  # eventually consistent: there it is
    world.clock.advance(minutes=1)
    world.service.reconcile()
    done = world.stored_run(run.id)
    assert (done.status, done.missing_since) == (RunStatus.SUCCEEDED, None)


def test_a_run_active_past_the_timeout_fails_as_timed_out_and_cleanup_takes_it(world: World) -> None:
    [run] = running(world, 1)
    world.clock.advance(hours=world.settings.run_timeout_hours, minutes=1)
    world.service.reconcile()
    timed_out = world.stored_run(run.id)
    assert (timed_out.status, timed_out.error_cause) == (RunStatus.FAILED, "TimedOut")
    assert "TRANSFER_RUN_TIMEOUT_HOURS" in (timed_out.hint or "")
    world.clock.advance(hours=world.settings.retention_hours + 1)
    assert world.service.cleanup().counts["deleted"] == 1


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("Failed to read the SAS from Key Vault: 403 Forbidden", "KeyVaultAccessDenied"),
        # the world's pipelines use ManagedIdentity: a storage 403 there is the identity's missing role
        ("AuthorizationPermissionMismatch: this request is not authorized", "StorageRoleMissing"),
        ("MANIFEST_UNKNOWN: manifest tagged by v9 is not found", "ArtifactMissing"),
    ],
)
def test_a_failed_run_gets_its_cause_and_hint_beside_the_raw_message(
    world: World, error: str, cause: str
) -> None:
    [run] = running(world, 1)
    world.arm.finish_run(run.id, "Failed", error=error)
    world.service.reconcile()
    failed = world.stored_run(run.id)
    assert (failed.error, failed.error_cause) == (error, cause)
    assert failed.hint


def test_a_succeeded_run_keeps_the_services_message_as_a_warning(world: World) -> None:
    [run] = running(world, 1)
    world.arm.finish_run(run.id, "Succeeded", error="Skipped artifact repo0:v1: MANIFEST_UNKNOWN")
    world.service.reconcile()
    done = world.stored_run(run.id)
    assert (done.status, done.error, done.warning) == (
        RunStatus.SUCCEEDED,
        None,
        "Skipped artifact repo0:v1: MANIFEST_UNKNOWN",
    )


def finished(world: World, count: int) -> list[Run]:
    runs = running(world, count)
    for run in runs:
        world.arm.finish_run(run.id, "Succeeded")
    world.service.reconcile()
    world.clock.advance(hours=world.settings.retention_hours + 1)
    return runs


def test_a_locked_delete_is_recorded_on_its_run_and_cleanup_goes_on(world: World) -> None:
    first, second = finished(world, 2)
    world.arm.fail("delete_resource", Conflict("ARM: deleting: failed (409) (ScopeLocked)"))
    report = world.service.cleanup()
    assert report.counts["errors"] == 1
    assert report.counts["deleted"] == 1
    assert not world.stored_run(first.id).cleaned_up
    assert world.stored_run(second.id).cleaned_up
    assert world.service.cleanup().counts["deleted"] == 1  # the next tick looks again
    assert world.stored_run(first.id).cleaned_up


def test_cleanup_marks_a_run_cleaned_up_only_when_arm_confirms(world: World) -> None:
    [run] = finished(world, 1)
    pipeline_run_id = world.arm.pipeline_run_id(run.id)
    body = world.arm.resources[pipeline_run_id.lower()]

    def accepted_delete(delete: Any, resource_id: str) -> bool:
        delete(resource_id)
        world.arm.put_resource(body)  # still there, being deleted
        return False  # ARM's 202 Accepted

    world.arm.around("delete_resource", accepted_delete)
    writes = len(world.arm_writes())
    assert world.service.cleanup().counts["deleting"] == 1
    assert not world.stored_run(run.id).cleaned_up
    assert len(world.arm_writes()) == writes + 2  # one DELETE each, nothing read back yet
    assert world.service.cleanup().counts["deleting"] == 1  # still there: looked at, not deleted again
    world.arm.resources.pop(pipeline_run_id.lower())  # ARM finished deleting it
    assert world.service.cleanup().counts["deleted"] == 1
    assert world.stored_run(run.id).cleaned_up
    assert len(world.arm_writes()) == writes + 2  # two deletes in all, not two per tick


def test_deletes_arm_accepted_but_never_finished_are_sent_again(world: World) -> None:
    [run] = finished(world, 1)
    pipeline_run_id = world.arm.pipeline_run_id(run.id)
    body = world.arm.resources[pipeline_run_id.lower()]
    world.arm.around("delete_resource", instead(lambda resource_id: False))  # 202, then nothing
    world.service.cleanup()
    world.clock.advance(minutes=31)
    calls: list[str] = []
    world.arm.around("delete_resource", instead(lambda resource_id: calls.append(resource_id) or True))
    assert world.arm.resources[pipeline_run_id.lower()] == body
    assert world.service.cleanup().counts["deleted"] == 1
    assert calls == [pipeline_run_id]


def copying_world() -> World:
    """Exports through a SasToken pipeline whose secret the copy step reads; copies pend."""
    vault_secret = "https://v.vault.azure.net/secrets/exportsas"
    return make_world(
        {**ENV, "TRANSFER_COPY_TARGET_URL": "https://target.blob.core.windows.net/transfer"},
        export_storage={
            "uri": "https://source.blob.core.windows.net/exports",
            "storageAccessMode": "SasToken",
            "keyVaultUri": vault_secret,
        },
        secrets={vault_secret: "sv=1&sp=rwla&spr=https&sig=S"},
        copy_status="pending",
    )


def test_a_copy_is_claimed_before_it_starts_so_racing_reconciles_copy_once() -> None:
    world = copying_world()
    [run] = running(world, 1)
    assert run.blob is not None
    world.source.put(run.blob, content=b"exported")
    world.arm.finish_run(run.id, "Succeeded")
    world.service.reconcile()  # records the success with the copy queued, claims it, starts it
    assert world.stored_run(run.id).copy_status is CopyStatus.PENDING
    assert world.copier.history.count(("start_copy", run.blob)) == 1
    world.service.reconcile()  # a racer that sees the claim taken does nothing
    assert world.copier.history.count(("start_copy", run.blob)) == 1


def test_the_copies_and_manifests_of_a_tick_share_one_read_of_the_secret() -> None:
    world = copying_world()
    runs = running(world, 5)
    for run in runs:
        assert run.blob is not None
        world.source.put(run.blob, content=b"exported")
        world.arm.finish_run(run.id, "Succeeded")
    world.secrets.calls.clear()
    world.service.reconcile()  # 5 manifests written, 5 copies started
    assert [world.stored_run(r.id).copy_status for r in runs] == [CopyStatus.PENDING] * 5
    assert world.copier.history.count(("start_copy", runs[0].blob)) == 1
    assert world.secrets.calls["read_sas"] <= 1  # cached like the pipeline (PIPELINE_CACHE_TTL)


def test_a_racer_that_loses_the_copy_claim_does_not_copy() -> None:
    world = copying_world()
    [run] = running(world, 1)
    assert run.blob is not None
    world.source.put(run.blob, content=b"exported")
    world.arm.finish_run(run.id, "Succeeded")
    calls = {"n": 0}

    def another_worker_claims_first(update: Any, changed: Run) -> Run:
        calls["n"] += 1
        if changed.copy_status is CopyStatus.STARTING:
            raise PreconditionFailed("another worker changed the run first")
        return update(changed)

    world.state.around("update_run", another_worker_claims_first)
    world.service.reconcile()
    assert ("start_copy", run.blob) not in world.copier.history


def test_a_409_on_one_blobs_metadata_write_does_not_stop_the_sweep(world: World) -> None:
    world.add_blob("aged1", age_days=61)
    world.add_blob("aged2", age_days=61)
    world.blobs.fail("merge_metadata", Conflict("blob storage: writing metadata of aged1: failed (409)"))
    report = world.service.sweep()
    assert report.counts["errors"] == 1
    assert report.counts["refresh"] == 1
    assert any("aged1" in error and "409" in error for error in report.errors)


def test_a_sweep_cut_short_starts_after_the_last_blob_it_reached(world: World) -> None:
    for name in ("a-blob", "b-blob", "c-blob"):
        world.add_blob(name, age_days=61)
    seen: list[str] = []

    def slow_merge(merge: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        world.clock.advance(seconds=PASS_BUDGET.total_seconds() + 1)
        return merge(name, *args, **kwargs)

    world.blobs.around("merge_metadata", slow_merge)
    first = world.service.sweep()
    assert first.counts["not-reached"] == 2
    world.service.sweep()
    world.service.sweep()
    assert seen == ["a-blob", "b-blob", "c-blob"]  # no blob starves behind the ones before it
