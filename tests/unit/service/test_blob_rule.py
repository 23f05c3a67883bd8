"""A failed manual import of a blob version is tried again with backoff up to TRANSFER_IMPORT_MAX_ATTEMPTS;
then the blob waits for a person, and health, GET /api/blobs/{name} and the CLI say so. A new version of
the blob starts over."""

from __future__ import annotations

from tests.conftest import World
from transfer.domain.runs import Run, RunStatus, Trigger
from transfer.domain.staleness import Outcome


def fail_import(world: World, trigger: Trigger = Trigger.SWEEP) -> Run:
    result = world.service.handle_blob("odd", trigger)
    assert result.outcome is Outcome.IMPORT, result.reason
    assert result.run is not None
    assert result.run.verification == "pending"
    world.service.reconcile()
    world.arm.finish_run(result.run.id, "Failed", error="BlobNotFound: The specified blob does not exist.")
    world.service.reconcile()
    failed = world.stored_run(result.run.id)
    assert failed.status is RunStatus.FAILED
    assert failed.verification is None  # nothing was imported to verify
    return failed


def test_a_failed_import_is_retried_with_backoff_then_waits_for_a_person(world: World) -> None:
    world.add_blob("odd", category=False)  # a copy that lost its metadata: only a manual import helps
    first = fail_import(world)
    assert first.attempt == 1
    assert first.error_cause == "BlobMissing"
    soon = world.service.handle_blob("odd", Trigger.SWEEP)
    assert soon.outcome is Outcome.NOTHING
    assert "the next try is due at" in soon.reason
    world.clock.advance(minutes=31)
    second = fail_import(world)
    assert second.attempt == 2
    world.clock.advance(minutes=59)
    assert world.service.handle_blob("odd").outcome is Outcome.NOTHING  # the backoff doubled: 1 h
    world.clock.advance(minutes=2)
    third = fail_import(world)
    assert third.attempt == 3
    world.clock.advance(days=1)
    waiting = world.service.handle_blob("odd", Trigger.SWEEP)
    assert waiting.outcome is Outcome.WAITING
    assert "3 manual imports of this blob version failed" in waiting.reason
    assert world.service.sweep().counts == {"waiting": 1}
    diagnosis = world.service.diagnose_blob("odd")
    assert diagnosis.decision.outcome is Outcome.WAITING
    assert "a person" in diagnosis.next_step
    [check] = [c for c in world.service.health() if c.name == "blobsWaiting"]
    assert not check.ok
    assert "odd" in check.detail
    assert len([r for r in world.stored_runs() if r.blob == "odd"]) == 3  # never a fourth


def test_a_new_version_of_the_blob_starts_over(world: World) -> None:
    world.add_blob("odd", category=False)
    for _ in range(3):
        fail_import(world)
        world.clock.advance(hours=3)
    assert world.service.handle_blob("odd").outcome is Outcome.WAITING
    world.blobs.put("odd", metadata={}, content=b"uploaded again")  # another Content-MD5: another version
    result = world.service.handle_blob("odd")
    assert result.outcome is Outcome.IMPORT
    assert result.run is not None
    assert result.run.attempt == 1
    [check] = [c for c in world.service.health() if c.name == "blobsWaiting"]
    assert check.ok


def test_a_running_or_succeeded_import_is_never_retried(world: World) -> None:
    world.add_blob("odd", category=False)
    result = world.service.handle_blob("odd")
    assert result.run is not None
    world.clock.advance(days=1)
    assert world.service.handle_blob("odd").outcome is Outcome.NOTHING
    world.arm.finish_run(result.run.id, "Succeeded")
    world.service.reconcile()
    world.clock.advance(days=1)
    assert world.service.handle_blob("odd").outcome is Outcome.NOTHING


def test_an_import_by_hand_ends_the_wait(world: World) -> None:
    world.add_blob("odd", category=False)
    for _ in range(3):
        fail_import(world)
        world.clock.advance(hours=3)
    assert world.service.handle_blob("odd").outcome is Outcome.WAITING
    [by_hand] = world.service.start_import("odd", Trigger.HTTP).runs  # what the reason tells a person
    world.arm.finish_run(by_hand.id, "Failed", error="BlobNotFound: The specified blob does not exist.")
    world.service.reconcile()
    assert world.service.handle_blob("odd").outcome is Outcome.WAITING  # a failed one changes nothing
    [by_hand] = world.service.start_import("odd", Trigger.CLI).runs
    running = world.service.handle_blob("odd", Trigger.SWEEP)
    assert (running.outcome, running.run) == (Outcome.NOTHING, None)
    world.arm.finish_run(by_hand.id, "Succeeded")
    world.service.reconcile()
    assert world.service.handle_blob("odd", Trigger.SWEEP).outcome is Outcome.NOTHING
    assert world.service.diagnose_blob("odd").decision.outcome is Outcome.NOTHING
    assert len([r for r in world.stored_runs() if r.blob == "odd"]) == 5  # the app started no other
