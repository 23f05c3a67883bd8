"""The service's use cases against hand-written fakes of every port, with a settable clock."""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import timedelta

import pytest

from tests.conftest import World, make_world
from transfer.domain.errors import (
    Conflict,
    InvalidInput,
    NotConfigured,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
)
from transfer.domain.runs import CopyStatus, RunStatus, Trigger
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE, REFRESH_KEY, Outcome
from transfer.service import PipelineSpec

SUB = "00000000-0000-0000-0000-000000000001"
ENV = {
    "AZURE_SUBSCRIPTION_ID": SUB,
    "TRANSFER_RESOURCE_GROUP": "transfer-rg",
    "TRANSFER_REGISTRY": "myregistry",
    "TRANSFER_EXPORT_PIPELINE": "exportpipe",
    "TRANSFER_IMPORT_PIPELINE": "importpipe",
    "TransferStorage": "UseDevelopmentStorage=true",
    "TransferState": "UseDevelopmentStorage=true",
    "TRANSFER_COPY_TARGET_URL": "https://target.blob.core.windows.net/transfer",
}
VAULT = "https://sourcevault.vault.azure.net"
SAS = "sv=2024-11-04&se=2027-06-01T00%3A00%3A00Z&sp=rwla&spr=https&sig=SUPERSECRETSIGNATURE"
CATEGORY = {CATEGORY_KEY: CATEGORY_VALUE}


def sas_copy_world(stale_action: str = "refresh", trigger: str = "Enabled", **env: str) -> World:
    """The one world builder, set for both roles: exports through a SasToken pipeline whose secret the copy
    step reads; copies pend."""
    return make_world(
        {**ENV, "TRANSFER_STALE_BLOB_ACTION": stale_action, **env},
        export_storage={
            "uri": "https://source.blob.core.windows.net/exports",
            "storageAccessMode": "SasToken",
            "keyVaultUri": f"{VAULT}/secrets/exportsas",
        },
        import_storage={"uri": "https://target.blob.core.windows.net/transfer"},
        trigger=trigger,
        secrets={f"{VAULT}/secrets/exportsas": SAS},
        copy_status="pending",
    )


@pytest.fixture
def world() -> World:
    return sas_copy_world()


# ---- exports ------------------------------------------------------------------------------------------


def test_export_records_the_run_then_deploys_the_run_template(world: World) -> None:
    accepted = world.service.start_export(["samples/hello", "samples/nginx:v1"], Trigger.HTTP, "nightly")
    [run] = accepted.runs
    assert run.status is RunStatus.DEPLOYING
    assert run.artifacts == ("samples/hello:latest", "samples/nginx:v1")
    assert run.blob == f"nightly-{run.id}"
    [call] = world.arm.deployment_calls
    assert call.name == run.deployment_name == f"acrtransfer-{run.id}"
    assert call.parameters == {
        "registryName": "myregistry",
        "pipelineRunName": run.id,
        "pipelineResourceId": world.service.settings.pipeline_id("export"),
        "forceUpdateTag": run.id,
        "artifacts": ["samples/hello:latest", "samples/nginx:v1"],
        "targetName": run.blob,
    }
    assert call.template["resources"][0]["type"] == "Microsoft.ContainerRegistry/registries/pipelineRuns"
    assert world.state.get_run(run.id) == run


def test_the_record_exists_before_the_deployment_and_reconcile_finishes_a_crashed_start(world: World) -> None:
    world.arm.fail("begin_deployment", Unavailable("ARM is down"))
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.status is RunStatus.ACCEPTED
    assert "reconcile deploys it" in (run.warning or "")  # the answer says why it waits
    assert world.state.get_run(run.id) is not None
    assert world.arm.deployment_calls == []

    world.service.reconcile()  # at once: its own start may still be on its way, so no second PUT yet
    assert world.stored_run(run.id).status is RunStatus.ACCEPTED
    world.clock.advance(minutes=1, seconds=1)
    world.service.reconcile()
    assert world.stored_run(run.id).status is RunStatus.DEPLOYING
    assert world.stored_run(run.id).warning is None  # the deferral note is over
    assert [c.name for c in world.arm.deployment_calls] == [run.deployment_name]


def test_more_than_fifty_artifacts_become_several_runs(world: World) -> None:
    refs = [f"repo{i}" for i in range(120)]
    accepted = world.service.start_export(refs, Trigger.HTTP)
    assert [len(r.artifacts) for r in accepted.runs] == [50, 50, 20]
    assert len({r.id for r in accepted.runs}) == 3
    assert len({r.blob for r in accepted.runs}) == 3
    assert {r.request_id for r in accepted.runs} == {accepted.request_id}
    assert len(world.arm.deployment_calls) == 3


@pytest.mark.parametrize(
    ("artifacts", "target"),
    [([], "artifacts"), (["ok", "Bad"], "artifacts[1]"), ("repo", "artifacts"), ([1], "artifacts[0]")],
)
def test_bad_input_writes_nothing_and_calls_no_arm(world: World, artifacts: object, target: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.service.start_export(artifacts, Trigger.HTTP)
    assert caught.value.target == target
    assert world.state.runs == {}
    assert sum(world.arm.calls.values()) == 0


def test_bad_target_name_is_rejected_before_anything(world: World) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.service.start_export(["a"], Trigger.HTTP, target_name="../escape")
    assert caught.value.target == "targetName"
    assert world.state.runs == {}


def test_idempotency_key_repeat_returns_the_same_runs_and_deploys_once(world: World) -> None:
    first = world.service.start_export(["a", "b"], Trigger.HTTP, idempotency_key="job-1")
    again = world.service.start_export(["a", "b"], Trigger.HTTP, idempotency_key="job-1")
    assert again.repeated
    assert again.request_id == first.request_id
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert len(world.arm.deployment_calls) == 1
    with pytest.raises(Conflict) as caught:
        world.service.start_export(["c"], Trigger.HTTP, idempotency_key="job-1")
    assert caught.value.code == "IdempotencyKeyReused"


def test_scheduled_export_is_once_per_occurrence_even_across_a_minute() -> None:
    scheduled = sas_copy_world(TRANSFER_EXPORT_ARTIFACTS="a")
    occurrence = {"Last": "2026-11-25T02:00:00Z", "Next": "2026-11-26T02:00:00Z"}
    first = scheduled.service.start_scheduled_export(occurrence)
    scheduled.clock.advance(minutes=1)
    again = scheduled.service.start_scheduled_export(dict(occurrence))
    later = scheduled.service.start_scheduled_export(
        {"Last": "2026-11-26T02:00:00Z", "Next": "2026-11-27T02:00:00Z"}
    )
    assert first is not None
    assert again is not None
    assert later is not None
    assert again.repeated
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert not later.repeated
    assert len(scheduled.arm.deployment_calls) == 2


def test_scheduled_export_is_once_per_tick(world: World) -> None:
    service = sas_copy_world(TRANSFER_EXPORT_ARTIFACTS="a,b:v1").service
    first = service.start_scheduled_export()
    again = service.start_scheduled_export()
    assert first is not None
    assert again is not None
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert world.service.start_scheduled_export() is None  # no TRANSFER_EXPORT_ARTIFACTS


def test_a_rejected_deployment_fails_the_run_with_the_reason(world: World) -> None:
    from transfer.domain.errors import TransferError

    world.arm.fail("begin_deployment", TransferError("InvalidTemplate: bad parameter"))
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.status is RunStatus.FAILED
    assert run.error == "InvalidTemplate: bad parameter"
    assert run.finished_at == world.clock()


def test_roles_are_enforced() -> None:
    export_only = sas_copy_world(TRANSFER_IMPORT_PIPELINE="").service
    with pytest.raises(NotConfigured):
        export_only.start_import("blob", Trigger.HTTP)
    with pytest.raises(NotConfigured):
        export_only.handle_blob("blob")


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


# ---- the 60-day rule ----------------------------------------------------------------------------------


def test_fresh_blob_is_left_to_the_source_trigger_and_needs_no_state(world: World) -> None:
    world.put_blob("fresh")
    calls = sum(world.state.calls.values())
    result = world.service.handle_blob("fresh")
    assert result.outcome is Outcome.LEAVE
    assert world.arm.deployment_calls == []
    assert world.blobs.calls["merge_metadata"] == 0
    assert sum(world.state.calls.values()) == calls  # no read, no write: most of a sweep costs nothing
    assert world.service.handle_blob("fresh").outcome is Outcome.LEAVE
    assert world.state.blob_records("fresh") == []


def test_stale_blob_is_refreshed_keeping_every_key_and_the_next_event_does_nothing(world: World) -> None:
    world.put_blob("old", timedelta(days=61))
    before = world.blobs.get_properties("old")
    result = world.service.handle_blob("old")
    assert result.outcome is Outcome.REFRESH
    after = world.blobs.get_properties("old")
    assert before is not None
    assert after is not None
    assert after.last_modified == world.clock()
    assert after.content_md5 == before.content_md5
    assert {**before.metadata, REFRESH_KEY: "2026-11-26T12:00:00Z"} == dict(after.metadata)
    # the trigger fires again (new ETag): now eligible, so nothing more than a record
    assert world.service.handle_blob("old").outcome is Outcome.LEAVE
    assert world.blobs.calls["merge_metadata"] == 1
    assert world.arm.deployment_calls == []


def test_stale_blob_with_import_policy_starts_exactly_one_manual_import() -> None:
    world = sas_copy_world("import")
    world.put_blob("old", timedelta(days=70))
    first = world.service.handle_blob("old")
    assert first.outcome is Outcome.IMPORT
    assert first.run is not None
    assert first.run.trigger is Trigger.BLOB
    assert first.run.blob == "old"
    assert world.service.handle_blob("old").outcome is Outcome.NOTHING
    assert world.service.sweep().counts["nothing"] == 1
    [call] = world.arm.deployment_calls
    assert call.parameters["sourceName"] == "old"
    assert call.parameters["pipelineResourceId"] == world.service.settings.pipeline_id("import")


@pytest.mark.parametrize(
    ("kwargs", "trigger"),
    [
        ({"content_md5": None, "content": None}, "Enabled"),
        ({"metadata": {"owner": "team"}}, "Enabled"),
        ({}, "Disabled"),
    ],
)
def test_blobs_the_source_trigger_cannot_take_are_imported_even_when_fresh(
    kwargs: dict, trigger: str
) -> None:
    world = sas_copy_world(trigger=trigger)
    world.put_blob("odd", **kwargs)
    result = world.service.handle_blob("odd")
    assert result.outcome is Outcome.IMPORT
    assert len(world.arm.deployment_calls) == 1


def test_two_workers_racing_on_one_blob_start_one_run() -> None:
    world = sas_copy_world("import")
    world.put_blob("old", timedelta(days=70))
    barrier = threading.Barrier(8)
    outcomes: list[Outcome] = []

    def worker() -> None:
        barrier.wait()
        outcomes.append(world.service.handle_blob("old").outcome)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count(Outcome.IMPORT) == 1
    assert len(world.arm.deployment_calls) == 1
    assert len(world.state.runs) == 1


def test_a_crash_between_claim_and_run_record_is_finished_by_the_next_event() -> None:
    world = sas_copy_world("import")
    world.put_blob("old", timedelta(days=70))
    world.state.fail("add_run", Unavailable("table down"))
    with pytest.raises(Unavailable):
        world.service.handle_blob("old")
    [claim] = world.state.blob_records("old")
    assert claim.run_id is not None
    assert world.state.runs == {}
    assert world.service.handle_blob("old").outcome is Outcome.NOTHING  # maybe a worker still busy with it
    world.clock.advance(minutes=3)
    result = world.service.handle_blob("old")
    assert result.run is not None
    assert result.run.id == claim.run_id
    assert len(world.arm.deployment_calls) == 1


def test_a_blob_that_changed_during_refresh_is_left_for_its_next_event(world: World) -> None:
    world.put_blob("old", timedelta(days=61))
    world.blobs.fail("merge_metadata", PreconditionFailed("changed"))
    assert world.service.handle_blob("old").outcome is Outcome.NOTHING


def test_a_vanished_blob_is_nothing_to_do(world: World) -> None:
    assert world.service.handle_blob("gone").outcome is Outcome.NOTHING


def test_sweep_applies_the_rule_to_every_blob(world: World) -> None:
    world.put_blob("fresh")
    world.put_blob("old", timedelta(days=65))
    world.put_blob("nomd5", content_md5=None, content=None)
    report = world.service.sweep()
    assert dict(report.counts) == {"leave": 1, "refresh": 1, "import": 1}
    assert {i["blob"] for i in report.items} == {"old", "nomd5"}
    assert world.service.sweep().counts == {"leave": 2, "nothing": 1}


def test_one_blob_with_an_unusable_name_does_not_stop_the_sweep(world: World) -> None:
    world.put_blob("ends-with-a-dot.")
    world.put_blob("old", timedelta(days=65))
    report = world.service.sweep()
    assert report.counts == {"refresh": 1, "errors": 1}  # the report counts the items that failed
    assert report.errors == ["blob 'ends-with-a-dot.': must not end with '.' or '/'"]


# ---- imports ------------------------------------------------------------------------------------------


def test_import_of_a_missing_blob_is_404_without_arm(world: World) -> None:
    with pytest.raises(NotFound) as caught:
        world.service.start_import("nope", Trigger.HTTP)
    assert caught.value.target == "blob"
    assert world.arm.deployment_calls == []


def test_import_repeat_with_the_key_answers_even_after_the_blob_is_gone(world: World) -> None:
    world.put_blob("in1")
    first = world.service.start_import("in1", Trigger.HTTP, idempotency_key="k1")
    world.blobs.delete("in1")
    again = world.service.start_import("in1", Trigger.HTTP, idempotency_key="k1")
    assert again.repeated
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert len(world.arm.deployment_calls) == 1


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
        world.copier.source_urls[run.blob] == f"https://source.blob.core.windows.net/exports/{run.blob}?{SAS}"
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
