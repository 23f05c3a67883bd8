"""Reconcile: runs followed from ARM, failures, runs ARM lost, and the source trigger's runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.conftest import World, sas_copy_world
from transfer.domain.errors import (
    Throttled,
)
from transfer.domain.runs import RunStatus, Trigger
from transfer.domain.staleness import Outcome


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


# ---- reconcile ----------------------------------------------------------------------------------------


def test_reconcile_follows_a_run_to_success_with_progress(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    report = world.service.reconcile()
    after = world.state.get_run(run.id)
    assert after is not None
    assert after.status is RunStatus.RUNNING
    assert report.counts["Running"] == 1

    world.clock.advance(minutes=5)
    world.arm.finish_run(run.id, "Succeeded")
    world.service.reconcile()
    done = world.state.get_run(run.id)
    assert done is not None
    assert (done.status, done.progress, done.finished_at) == (RunStatus.SUCCEEDED, "100", world.clock())
    assert world.state.active_runs() == []


def test_reconcile_records_failure_and_imported_artifacts(world: World) -> None:
    world.put_blob("in1")
    [imp] = world.service.start_import("in1", Trigger.HTTP).runs
    [exp] = world.service.start_export(["missing:v1"], Trigger.HTTP).runs
    world.arm.finish_run(imp.id, "Succeeded", imported_artifacts=("a:v1", "b:v2"))
    world.arm.finish_run(exp.id, "Failed", error="Artifact missing:v1 not found in registry")
    world.service.reconcile()
    assert world.stored_run(imp.id).imported_artifacts == ("a:v1", "b:v2")
    failed = world.state.get_run(exp.id)
    assert failed is not None
    assert failed.status is RunStatus.FAILED
    assert failed.error == "Artifact missing:v1 not found in registry"


def test_a_transient_arm_error_leaves_the_run_as_it_was(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    world.arm.fail("get_deployment", Throttled("slow down", retry_after=30))
    report = world.service.reconcile()
    assert report.counts["deferred"] == 1
    assert world.state.get_run(run.id) == run


def test_a_run_arm_never_heard_of_fails_after_a_grace_period(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    world.arm.deployments.clear()
    world.arm.resources.pop(world.arm.pipeline_run_id(run.id).lower())
    world.service.reconcile()
    assert world.stored_run(run.id).status is RunStatus.DEPLOYING
    world.clock.advance(minutes=11)
    world.service.reconcile()
    assert world.stored_run(run.id).status is RunStatus.FAILED


def test_reconcile_records_runs_the_source_trigger_started_with_the_blob_they_name(world: World) -> None:
    world.put_blob("fresh")
    assert world.service.handle_blob("fresh").outcome is Outcome.LEAVE
    world.arm.put_pipeline_run(
        "srcrun12345",
        source_trigger=True,
        request={
            "pipelineResourceId": world.service.settings.pipeline_id("import").upper(),
            "source": {"type": "AzureStorageBlob", "name": "fresh"},
        },
    )
    report = world.service.reconcile()
    assert report.counts["adopted"] == 1
    adopted = world.state.get_run("srcrun12345")
    assert adopted is not None
    assert (adopted.trigger, adopted.owned, adopted.blob) == (Trigger.SOURCE, False, "fresh")
    # once aged, the blob it imported is not refreshed or imported again
    world.clock.advance(days=61)
    assert world.service.handle_blob("fresh").outcome is Outcome.NOTHING
    assert world.service.reconcile().counts["adopted"] == 0


SOURCE_TRIGGER_SHAPES = {
    # What a run the source trigger started may say about its blob (docs/service-facts.md): the spec
    # promises nothing.
    # Named, the run is tied to the blob; unnamed, its time after the blob's last write is the evidence.
    "spec": ({}, "named no blob: it may have imported it"),
    "response-uri": ({"response_source": True}, "named it: it may have imported it"),
    "request-name": ({"request_source": True}, "named it: it may have imported it"),
}


@pytest.mark.parametrize("shape", list(SOURCE_TRIGGER_SHAPES))
def test_an_aged_blob_a_source_trigger_run_may_have_taken_is_left_alone(shape: str) -> None:
    world = sas_copy_world()
    world.put_blob("landed")
    assert world.service.handle_blob("landed").outcome is Outcome.LEAVE
    options, reason = SOURCE_TRIGGER_SHAPES[shape]
    request: dict[str, object] = {"pipelineResourceId": world.settings.pipeline_id("import")}
    if options.get("request_source"):
        request["source"] = {"type": "AzureStorageBlob", "name": "landed"}
    response_source = {
        "type": "AzureStorageBlob",
        "uri": "https://target.blob.core.windows.net/transfer/landed",
    }
    world.arm.put_pipeline_run(
        "b1c2-source-trigger-run",
        source_trigger=True,
        source_trigger_at=(world.clock() + timedelta(minutes=1)).isoformat(),
        request=request,
        status="Succeeded",
        provisioning_state="Succeeded",
        response_source=response_source if options.get("response_source") else None,
    )
    assert world.service.reconcile().counts["adopted"] == 1
    world.clock.advance(days=59.5)
    result = world.service.handle_blob("landed", Trigger.SWEEP)
    assert result.outcome is Outcome.NOTHING
    assert reason in result.reason
    assert world.service.sweep().counts == {"nothing": 1}
    assert (
        world.blobs.calls["merge_metadata"] == 0
    )  # no refresh, which would make the trigger import it again
    assert [r.trigger for r in world.stored_runs()] == [Trigger.SOURCE]  # and no manual import


def test_a_source_trigger_run_of_another_blob_or_before_the_last_write_is_no_evidence() -> None:
    world = sas_copy_world()
    world.put_blob("landed")
    world.arm.put_pipeline_run(
        "othersrcrun1",
        source_trigger=True,
        source_trigger_at=(world.clock() + timedelta(minutes=1)).isoformat(),
        request={
            "pipelineResourceId": world.settings.pipeline_id("import"),
            "source": {"type": "AzureStorageBlob", "name": "another"},
        },
    )
    world.arm.put_pipeline_run(
        "earliersrcrun",
        source_trigger=True,
        source_trigger_at=(world.clock() - timedelta(minutes=1)).isoformat(),
        request={"pipelineResourceId": world.settings.pipeline_id("import")},
    )
    assert world.service.reconcile().counts["adopted"] == 2
    world.clock.advance(days=59.5)
    assert world.service.handle_blob("landed", Trigger.SWEEP).outcome is Outcome.REFRESH


def test_source_trigger_runs_are_read_once_and_only_within_the_window(world: World) -> None:
    pipeline = world.service.settings.pipeline_id("import")
    for name, age in (("oldsrcrun1", timedelta(days=61)), ("newsrcrun1", timedelta(days=59))):
        world.arm.put_pipeline_run(name, source_trigger=True, request={"pipelineResourceId": pipeline})
        response = world.arm.resources[world.arm.pipeline_run_id(name).lower()]["properties"]["response"]
        response["trigger"] = {"sourceTrigger": {"timestamp": (world.clock() - age).isoformat()}}
    assert world.service.reconcile().counts["adopted"] == 1
    assert world.state.get_run("newsrcrun1") is not None
    assert world.state.get_run("oldsrcrun1") is None  # too old to matter to the 60-day rule
    reads = world.state.calls["get_run"]
    world.service.reconcile()
    assert world.state.calls["get_run"] == reads  # known runs are not looked up again


def test_a_new_worker_learns_the_recorded_source_trigger_runs_in_one_read(world: World) -> None:
    pipeline = world.service.settings.pipeline_id("import")
    names = [f"srcrun{n:05d}" for n in range(40)]
    for name in names:
        world.arm.put_pipeline_run(name, source_trigger=True, request={"pipelineResourceId": pipeline})
    assert world.service.reconcile().counts["adopted"] == 40
    world.arm.put_pipeline_run("srcrunlate1", source_trigger=True, request={"pipelineResourceId": pipeline})
    worker = world.new_worker()
    world.state.calls.clear()
    assert worker.reconcile().counts["adopted"] == 1
    assert world.state.calls["source_runs"] == 1
    assert world.state.calls["get_run"] == 1  # the new run only, not the 40 it had recorded
    assert world.state.get_run("srcrunlate1") is not None
    worker.reconcile()
    assert world.state.calls["source_runs"] == 1  # a warm worker keeps what it knows
    world.clock.advance(hours=6)
    assert worker.reconcile().counts["adopted"] == 0
    assert world.state.calls["source_runs"] == 2  # and reads it again every few hours


def test_a_failed_listing_of_source_trigger_runs_spares_the_active_runs(world: World) -> None:
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    world.arm.fail("list_pipeline_runs", Throttled("slow down", retry_after=5))
    report = world.service.reconcile()
    assert report.counts["deferred"] == 1
    assert world.stored_run(run.id).status is RunStatus.RUNNING
