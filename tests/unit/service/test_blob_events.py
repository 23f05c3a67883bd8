"""The watched container's blobs by the 60-day rule: refresh, manual import, races, the sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.conftest import World, sas_copy_world
from transfer.domain.errors import (
    PreconditionFailed,
    Refused,
    Unavailable,
)
from transfer.domain.records import BlobAction
from transfer.domain.runs import Trigger
from transfer.domain.staleness import REFRESH_KEY, REFRESH_REFUSED, Outcome


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


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


# ---- a refresh that cannot succeed --------------------------------------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        "failed (409) (BlobImmutableDueToPolicy)",
        "failed (412) (LeaseIdMissing)",
        "failed (400) (MetadataTooLarge)",
    ],
)
def test_a_refresh_storage_refuses_falls_back_to_one_manual_import_and_the_diagnosis_says_why(
    world: World, refusal: str
) -> None:
    world.put_blob("locked", timedelta(days=61))
    world.blobs.fail("merge_metadata", Refused(f"blob storage: writing metadata of locked: {refusal}"))
    result = world.service.handle_blob("locked")
    assert result.outcome is Outcome.IMPORT  # it was skipped with no error, or raised, pass after pass
    assert result.run is not None
    assert refusal in result.reason
    assert len(world.arm.deployment_calls) == 1
    [refresh] = [r for r in world.state.blob_records("locked") if r.action is BlobAction.REFRESH]
    assert refresh.reason.startswith(REFRESH_REFUSED)
    assert refusal in refresh.reason
    diagnosis = world.service.diagnose_blob("locked")
    assert diagnosis.decision.outcome is Outcome.NOTHING  # its import is recorded, no refresh promised
    assert any("a refresh cannot succeed" in r.reason for r in diagnosis.records)
    assert [run.id for run in diagnosis.runs] == [result.run.id]
    # the next event and the sweep: nothing more, no second refresh, no second run
    assert world.service.handle_blob("locked").outcome is Outcome.NOTHING
    world.service.sweep()
    assert world.blobs.calls["merge_metadata"] == 1
    assert len(world.arm.deployment_calls) == 1


def test_a_blob_whose_metadata_would_pass_8_kib_is_imported_without_a_refresh(world: World) -> None:
    metadata = {"category": "acr-transfer-blob", "notes": "x" * (8 * 1024 - 40)}
    world.put_blob("heavy", timedelta(days=61), metadata=metadata)
    diagnosis = world.service.diagnose_blob("heavy")
    assert diagnosis.decision.outcome is Outcome.IMPORT  # it promised a refresh Azure answers 400 to
    assert "MetadataTooLarge" in diagnosis.decision.reason
    result = world.service.handle_blob("heavy")
    assert result.outcome is Outcome.IMPORT
    assert world.blobs.calls["merge_metadata"] == 0


def test_a_refused_refresh_whose_imports_fail_waits_for_a_person(world: World) -> None:
    world.put_blob("stuck", timedelta(days=61))
    world.blobs.fail("merge_metadata", Refused("blob storage: writing metadata of stuck: failed (409)"))
    for _ in range(3):
        result = world.service.handle_blob("stuck")
        assert result.run is not None
        world.finish(result.run, "Failed", error="the import failed")
        world.service.reconcile()
        world.clock.advance(hours=5)
    assert world.service.handle_blob("stuck").outcome is Outcome.WAITING
    assert world.service.diagnose_blob("stuck").decision.outcome is Outcome.WAITING
    assert not {c.name: c for c in world.service.health()}["blobsWaiting"].ok
    assert world.blobs.calls["merge_metadata"] == 1
