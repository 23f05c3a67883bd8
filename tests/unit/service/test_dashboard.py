"""The dashboard's view: bounded reads (a page of runs from a cursor, a page of the blob listing), the counts
over 24 h / 7 d / 30 d, blobs that wait for a person first, the schedule's next export and the ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import World, sas_copy_world
from transfer.domain import naming
from transfer.domain.errors import InvalidInput, Unavailable
from transfer.domain.manifests import Verification
from transfer.domain.records import LedgerEntry
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.service.dashboard import RUNS_PAGE, TALLY_RUNS
from transfer.service.dashboard_blobs import BLOBS_PAGE


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return lambda: sas_copy_world(TRANSFER_EXPORT_ARTIFACTS='["team/*:v1.*", "samples/nginx:1.27"]')


def add_run(world: World, age: timedelta, n: int, **fields: object) -> Run:
    created = world.clock() - age
    kind = fields.pop("kind", RunKind.EXPORT)
    assert isinstance(kind, RunKind)
    run = Run(
        id=naming.run_id(kind, created, f"{n:06x}"),
        kind=kind,
        trigger=Trigger.HTTP,
        created_at=created,
        updated_at=created,
        request_id=f"req{n}",
        deployment_name=f"dep{n}",
        **{"status": RunStatus.SUCCEEDED, **fields},  # type: ignore[arg-type]
    )
    return world.state.add_run(run)


def test_counts_each_window_by_kind_and_status(world: World) -> None:
    add_run(world, timedelta(hours=1), 1)
    add_run(
        world, timedelta(hours=2), 2, status=RunStatus.FAILED, error_cause="StorageSasExpired", hint="renew"
    )
    add_run(world, timedelta(days=3), 3, kind=RunKind.IMPORT)
    add_run(world, timedelta(days=20), 4)
    add_run(world, timedelta(days=40), 5)  # older than every window
    history = world.service.dashboard().history.value
    assert history is not None
    assert history.complete
    counts = {w.name: dict(w.counts) for w in history.windows}
    assert counts["24h"] == {("export", "Succeeded"): 1, ("export", "Failed"): 1}
    assert counts["7d"] == {("export", "Succeeded"): 1, ("export", "Failed"): 1, ("import", "Succeeded"): 1}
    assert sum(counts["30d"].values()) == 4
    assert [len(w.buckets) for w in history.windows] == [24, 28, 30]
    assert sum(sum(c.values()) for _, c in history.windows[2].buckets) == 4
    [failure] = history.failures()
    assert (failure.error_cause, failure.hint) == ("StorageSasExpired", "renew")


def test_counts_read_at_most_the_newest_runs_and_say_how_far_back_they_reach(world: World) -> None:
    for n in range(TALLY_RUNS + 5):
        add_run(world, timedelta(minutes=n + 1), n)
    history = world.service.dashboard().history.value
    assert history is not None
    assert not history.complete
    assert len(history.runs) == TALLY_RUNS
    assert history.reaches == history.runs[-1].created_at


def test_runs_page_from_a_cursor_newest_first(world: World) -> None:
    runs = [add_run(world, timedelta(minutes=n + 1), n) for n in range(RUNS_PAGE * 2 + 3)]
    first = world.service.dashboard().runs.value
    assert first is not None
    assert [r.id for r in first.runs] == [r.id for r in runs[:RUNS_PAGE]]
    assert first.next_before == runs[RUNS_PAGE - 1].id
    second = world.service.dashboard(before=first.next_before).runs.value
    assert second is not None
    assert [r.id for r in second.runs] == [r.id for r in runs[RUNS_PAGE : RUNS_PAGE * 2]]
    third = world.service.dashboard(before=second.next_before).runs.value
    assert third is not None
    assert len(third.runs) == 3
    assert third.next_before is None
    # each render reads two pages of runs: the counts' (at most TALLY_RUNS) and the list's
    assert world.state.calls["runs_before"] == 2 * 3
    with pytest.raises(InvalidInput):
        world.service.dashboard(before="not a run id!")


def test_blobs_page_by_marker_with_their_decisions_and_manifests_left_out(world: World) -> None:
    for n in range(BLOBS_PAGE + 10):
        world.put_blob(f"blob{n:03d}", age=timedelta(days=n))
    world.put_blob("blob000.manifest.json")
    first = world.service.dashboard().blobs
    assert first is not None
    assert first.value is not None
    page = first.value
    assert page.next_marker is not None
    assert page.manifests == 1
    assert [row.blob.name for row in page.page][:3] == ["blob000", "blob001", "blob002"]
    rest = world.service.dashboard(marker=page.next_marker).blobs
    assert rest is not None
    assert rest.value is not None
    assert [row.blob.name for row in rest.value.page] == [f"blob{n:03d}" for n in range(BLOBS_PAGE - 1, 60)]
    decisions = {row.blob.name: row.decision.outcome.value for row in rest.value.page}
    assert decisions["blob058"] == "leave"
    assert decisions["blob059"] == "refresh"
    assert world.blobs.calls["list_blobs"] == 0  # pages only
    with pytest.raises(InvalidInput):
        world.service.dashboard(marker="bad\nmarker")


def test_blobs_waiting_for_a_person_come_first(world: World) -> None:
    world.put_blob("aaa-fresh")
    world.put_blob("zzz-stuck", age=timedelta(days=70))
    limit = world.settings.import_max_attempts
    add_run(
        world,
        timedelta(hours=1),
        1,
        kind=RunKind.IMPORT,
        status=RunStatus.FAILED,
        blob="zzz-stuck",
        attempt=limit,
    )
    view = world.service.dashboard().blobs
    assert view is not None
    assert view.value is not None
    assert [row.blob.name for row in view.value.waiting] == ["zzz-stuck"]
    assert view.value.waiting[0].runs  # its run is linked


def test_imports_and_their_verification(world: World) -> None:
    add_run(world, timedelta(hours=1), 1, kind=RunKind.IMPORT, verification=Verification.PASSED, blob="b1")
    add_run(
        world,
        timedelta(hours=2),
        2,
        kind=RunKind.IMPORT,
        verification=Verification.FAILED,
        verification_detail="team/api:v1.1 not imported",
        skipped_artifacts=("team/api:v1.1",),
        blob="b2",
    )
    history = world.service.dashboard().history.value
    assert history is not None
    assert history.verifications() == {"passed": 1, "failed": 1}
    [problem] = history.verification_problems()
    assert problem.skipped_artifacts == ("team/api:v1.1",)


def test_the_schedule_and_the_ledger_say_what_happens_next(world: World) -> None:
    now = world.clock()
    world.state.record_exports(
        [
            LedgerEntry("team/api", "v1.0", "sha256:" + "a" * 64, "run1", now),
            LedgerEntry("team/api", "v2.0", "sha256:" + "b" * 64, "run1", now),  # not v1.*
            LedgerEntry("samples/nginx", "1.27", "sha256:" + "c" * 64, "run2", now),
            LedgerEntry("other/x", "v1.0", "sha256:" + "d" * 64, "run3", now),
        ]
    )
    view = world.service.dashboard()
    assert view.plan is not None
    assert view.plan.value is not None
    plan = view.plan.value
    assert plan.next_export == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # 0 0 2 * * * after noon
    assert plan.incremental
    assert [(e.repository, e.reference) for e in plan.exported] == [
        ("samples/nginx", "1.27"),
        ("team/api", "v1.0"),
    ]
    assert view.next_reconcile == now + timedelta(minutes=5)


def test_the_sas_expiry_is_read_for_a_countdown(world: World) -> None:
    [sas] = [s.value for s in world.service.dashboard().sas if s.value is not None]
    assert sas.kind == "export"
    assert sas.expires_at == datetime(2027, 6, 1, tzinfo=UTC)


def test_a_section_that_cannot_be_read_says_why_and_the_rest_still_shows(world: World) -> None:
    world.put_blob("b")
    world.blobs.fail("blob_page", Unavailable("storage down"))
    view = world.service.dashboard()
    assert view.blobs is not None
    assert view.blobs.error == "storage down"
    assert view.runs.value is not None
    assert view.history.value is not None
