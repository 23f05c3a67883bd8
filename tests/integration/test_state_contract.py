"""StateStore contract: the same tests against FakeStateStore and TableStateStore on Azurite."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from transfer.domain import naming
from transfer.domain.errors import AlreadyExists, InvalidInput, PreconditionFailed
from transfer.domain.ports import StateStore
from transfer.domain.records import BlobAction, BlobRecord, LedgerEntry, RequestRecord
from transfer.domain.runs import CopyStatus, Run, RunKind, RunStatus, Trigger

T0 = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
NASTY_NAMES = [
    "dir/sub/export-1.tar",
    "back\\slash",
    "hash#tag",
    "what?now",
    "ünïcödé/блоб/名前.tar",
    "percent%2Fencoded",
    "quote'and\"double",
    "a" * 1024,
]


def make_run(
    n: int = 0,
    *,
    kind: RunKind = RunKind.EXPORT,
    status: RunStatus = RunStatus.ACCEPTED,
    at: datetime = T0,
    **changes: object,
) -> Run:
    created = at + timedelta(seconds=n)
    run_id = naming.run_id(kind, created, f"{n:06d}")
    run = Run(
        id=run_id,
        kind=kind,
        trigger=Trigger.HTTP,
        status=status,
        created_at=created,
        updated_at=created,
        request_id=f"req{n}",
        deployment_name=naming.deployment_name(run_id),
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def record(name: str, key: str = "import-md5-0001", **changes: object) -> BlobRecord:
    base = BlobRecord(
        name=name,
        key=key,
        action=BlobAction.IMPORT,
        decided_at=T0,
        last_modified=T0 - timedelta(days=61),
        reason="aged",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_add_and_get_round_trip_every_field(state_store: StateStore) -> None:
    run = make_run(
        1,
        status=RunStatus.RUNNING,
        artifacts=("samples/hello:v1", "samples/nginx@sha256:" + "a" * 64),
        blob="export-x",
        pipeline_run_id="/subscriptions/x/pipelineRuns/r1",
        progress="42",
        imported_artifacts=("samples/hello:v1",),
        error="boom",
        finished_at=T0 + timedelta(hours=1),
        cleaned_up=False,
        owned=False,
        copy_status=CopyStatus.PENDING,
        copy_error="not yet",
    )
    added = state_store.add_run(run)
    assert added.etag
    assert added == run
    got = state_store.get_run(run.id)
    assert got == run
    assert got is not None
    assert got.etag == added.etag
    assert got.created_at.tzinfo is not None
    assert got.created_at == run.created_at  # microseconds kept
    assert isinstance(got.kind, RunKind)
    assert isinstance(got.artifacts, tuple)


def test_naive_datetimes_are_taken_as_utc(state_store: StateStore) -> None:
    run = make_run(2, created_at=datetime(2026, 1, 1, 10, 0), updated_at=datetime(2026, 1, 1, 10, 0))
    got = state_store.get_run(state_store.add_run(run).id)
    assert got is not None
    assert got.created_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_get_absent_run_is_none_and_bad_ids_are_refused(state_store: StateStore) -> None:
    assert state_store.get_run("20000101000000000eabsent") is None
    with pytest.raises(InvalidInput):
        state_store.get_run("../etc")
    with pytest.raises(InvalidInput):
        state_store.add_run(replace(make_run(3), id="bad/id"))


def test_names_the_service_gives_its_source_trigger_runs_are_stored_and_listed(
    state_store: StateStore,
) -> None:
    own = make_run(1, kind=RunKind.IMPORT)
    names = ["b1c2-d3e4-f5a6", "importpipeline-20261126T120000.5Z", "run_with_underscore"]
    for name in names:
        state_store.add_run(replace(own, id=name, trigger=Trigger.SOURCE, owned=False))
    state_store.add_run(own)
    for name in names:
        stored = state_store.get_run(name)
        assert stored is not None
        assert stored.id == name
    listed = [run.id for run in state_store.list_runs(top=10)]
    assert sorted(listed) == sorted([*names, own.id])
    assert listed[0] == own.id  # the app's own ids keep their newest-first order, the others list after


def test_source_runs_names_the_source_trigger_runs_recorded_since(state_store: StateStore) -> None:
    base = make_run(1, kind=RunKind.IMPORT, trigger=Trigger.SOURCE, owned=False)
    state_store.add_run(replace(base, id="b1c2-d3e4-old", created_at=T0 - timedelta(days=61)))
    state_store.add_run(replace(base, id="b1c2-d3e4-new", created_at=T0 - timedelta(days=1)))
    state_store.add_run(replace(base, id="b1c2-d3e4-now", created_at=T0))
    state_store.add_run(make_run(2, kind=RunKind.IMPORT))  # the app's own: never named
    assert state_store.source_runs(T0 - timedelta(days=60)) == {"b1c2-d3e4-new", "b1c2-d3e4-now"}
    assert state_store.source_runs(T0) == {"b1c2-d3e4-now"}
    assert state_store.source_runs(T0 + timedelta(seconds=1)) == set()


def test_add_is_create_if_absent(state_store: StateStore) -> None:
    run = state_store.add_run(make_run(4))
    with pytest.raises(AlreadyExists):
        state_store.add_run(replace(run, request_id="another", etag=None))
    stored = state_store.get_run(run.id)
    assert stored is not None
    assert stored.request_id == "req4"


def test_update_is_etag_conditional(state_store: StateStore) -> None:
    first = state_store.add_run(make_run(5))
    second = state_store.update_run(replace(first, status=RunStatus.DEPLOYING))
    assert second.etag
    assert second.etag != first.etag
    with pytest.raises(PreconditionFailed):
        state_store.update_run(replace(first, status=RunStatus.FAILED))  # stale etag
    with pytest.raises(PreconditionFailed):
        state_store.update_run(replace(second, etag=None))
    with pytest.raises(PreconditionFailed):
        state_store.update_run(replace(make_run(6), etag=second.etag))  # never added
    stored = state_store.get_run(first.id)
    assert stored is not None
    assert stored.status is RunStatus.DEPLOYING
    assert stored.etag == second.etag


def test_update_clears_optional_fields(state_store: StateStore) -> None:
    run = state_store.add_run(make_run(7, error="first failure", progress="10"))
    updated = state_store.update_run(replace(run, error=None, progress=None))
    stored = state_store.get_run(run.id)
    assert stored == updated
    assert stored is not None
    assert stored.error is None
    assert stored.progress is None


def test_long_error_messages_are_cut(state_store: StateStore) -> None:
    run = state_store.add_run(make_run(8, error="x" * 100_000))
    stored = state_store.get_run(run.id)
    assert stored is not None
    assert stored.error is not None
    assert len(stored.error) <= 8 * 1024
    assert stored == run  # add_run returns what it stored


def test_list_runs_newest_first_with_filters_and_top(state_store: StateStore) -> None:
    runs = [make_run(n, kind=RunKind.IMPORT if n % 3 == 0 else RunKind.EXPORT) for n in range(12)]
    for run in random.Random(7).sample(runs, len(runs)):
        state_store.add_run(run)
    done = state_store.get_run(runs[4].id)
    assert done is not None
    state_store.update_run(replace(done, status=RunStatus.SUCCEEDED, finished_at=T0))

    newest_first = sorted(runs, key=lambda r: r.created_at, reverse=True)
    assert [r.id for r in state_store.list_runs(top=5)] == [r.id for r in newest_first[:5]]
    assert [r.id for r in state_store.list_runs(top=1000)] == [r.id for r in newest_first]
    imports = [r.id for r in newest_first if r.kind is RunKind.IMPORT]
    assert [r.id for r in state_store.list_runs(kind=RunKind.IMPORT)] == imports
    assert [r.id for r in state_store.list_runs(kind=RunKind.IMPORT, top=2)] == imports[:2]
    assert [r.id for r in state_store.list_runs(status=RunStatus.SUCCEEDED)] == [runs[4].id]
    assert state_store.list_runs(kind=RunKind.IMPORT, status=RunStatus.SUCCEEDED) == []
    assert all(r.etag for r in state_store.list_runs(top=3))


def test_active_runs_and_runs_to_clean_follow_the_state(state_store: StateStore) -> None:
    a = state_store.add_run(make_run(20))
    b = state_store.add_run(make_run(21, status=RunStatus.RUNNING))
    c = state_store.add_run(make_run(22))
    foreign = state_store.add_run(make_run(23, kind=RunKind.IMPORT, owned=False, trigger=Trigger.SOURCE))
    assert [r.id for r in state_store.active_runs()] == [a.id, b.id, c.id, foreign.id]
    assert state_store.runs_to_clean() == []

    b = state_store.update_run(replace(b, status=RunStatus.SUCCEEDED, finished_at=T0))
    foreign = state_store.update_run(replace(foreign, status=RunStatus.SUCCEEDED, finished_at=T0))
    c = state_store.update_run(replace(c, status=RunStatus.DEPLOYING))
    assert [r.id for r in state_store.active_runs()] == [a.id, c.id]
    assert [r.id for r in state_store.runs_to_clean()] == [b.id]  # the foreign run is never ours to clean
    assert state_store.runs_to_clean()[0].etag == b.etag

    state_store.update_run(replace(b, cleaned_up=True))
    assert state_store.runs_to_clean() == []
    assert [r.id for r in state_store.active_runs()] == [a.id, c.id]


def test_a_finished_export_stays_active_until_its_copy_settles(state_store: StateStore) -> None:
    run = state_store.add_run(make_run(25, status=RunStatus.RUNNING))
    run = state_store.update_run(
        replace(run, status=RunStatus.SUCCEEDED, finished_at=T0, copy_status=CopyStatus.QUEUED)
    )
    assert [r.id for r in state_store.active_runs()] == [run.id]
    assert state_store.runs_to_clean() == []
    run = state_store.update_run(replace(run, copy_status=CopyStatus.PENDING))
    assert [r.id for r in state_store.active_runs()] == [run.id]
    run = state_store.update_run(replace(run, copy_status=CopyStatus.SUCCEEDED))
    assert state_store.active_runs() == []
    assert [r.id for r in state_store.runs_to_clean()] == [run.id]


def test_a_run_added_terminal_goes_straight_to_cleanup(state_store: StateStore) -> None:
    run = state_store.add_run(make_run(30, status=RunStatus.FAILED, finished_at=T0))
    assert state_store.active_runs() == []
    assert [r.id for r in state_store.runs_to_clean()] == [run.id]


def test_claim_blob_first_wins(state_store: StateStore) -> None:
    assert state_store.claim_blob(record("b1", run_id="r1")) is True
    assert state_store.claim_blob(record("b1", run_id="r2")) is False
    assert state_store.claim_blob(record("b1", key="refresh-1-md5-0001")) is True
    assert state_store.claim_blob(record("b2")) is True
    records = state_store.blob_records("b1")
    assert {(r.key, r.run_id) for r in records} == {("import-md5-0001", "r1"), ("refresh-1-md5-0001", None)}
    assert state_store.blob_records("absent") == []


def test_two_threads_racing_on_one_blob_get_one_claim(state_store: StateStore) -> None:
    state_store.ping()  # tables exist before the race, as they do after the first call in production
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        results.append(state_store.claim_blob(record("raced/blob#1", run_id=f"r{n}")))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(state_store.blob_records("raced/blob#1")) == 1


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_any_blob_name_is_a_safe_key(state_store: StateStore, name: str) -> None:
    key = "import-md5-0002"
    rec = record(name, key=key, reason="r" * 20_000)
    assert state_store.claim_blob(rec) is True
    assert state_store.claim_blob(rec) is False
    [stored] = state_store.blob_records(name)
    assert stored.name == name
    assert stored.key == key
    assert len(stored.reason) <= 8 * 1024
    assert stored.decided_at == T0
    state_store.update_blob_record(replace(stored, run_id="r9"))
    [updated] = state_store.blob_records(name)
    assert updated.run_id == "r9"


def test_similar_blob_names_do_not_share_records(state_store: StateStore) -> None:
    for name in ("a/b", "a%2Fb", "a_b", "A/B"):
        assert state_store.claim_blob(record(name)) is True
    assert [r.name for r in state_store.blob_records("a/b")] == ["a/b"]


def test_update_blob_record_creates_or_replaces(state_store: StateStore) -> None:
    rec = record("upserted", action=BlobAction.REFRESH)
    state_store.update_blob_record(rec)
    state_store.update_blob_record(replace(rec, reason="refreshed: aged"))
    assert state_store.blob_records("upserted") == [replace(rec, reason="refreshed: aged")]


def test_claim_request_returns_the_first(state_store: StateStore) -> None:
    key = "client-key/with?odd#chars"
    first = RequestRecord(key, "req-a", "fp1", ("r1", "r2"), T0)
    assert state_store.get_request(key) is None
    assert state_store.claim_request(first) == first
    second = RequestRecord(key, "req-b", "fp2", ("r3",), T0 + timedelta(seconds=1))
    assert state_store.claim_request(second) == first
    assert state_store.get_request(key) == first
    other = RequestRecord("another", "req-c", "fp3", ("r4",), T0)
    assert state_store.claim_request(other) == other


def test_ping(state_store: StateStore) -> None:
    state_store.ping()


# ---- the export ledger ---------------------------------------------------------------------------------


def entry(
    reference: str, digest: str, read_at: datetime = T0, run: str = "r1", repository: str = "team/api"
) -> LedgerEntry:
    return LedgerEntry(repository, reference, digest, run, read_at)


def test_the_ledger_keeps_one_row_per_repository_and_tag(state_store: StateStore) -> None:
    digest = "sha256:" + "a" * 64
    assert state_store.exported("team/api") == {}
    state_store.record_exports(
        [
            entry("v1.0", "sha256:1"),
            entry("v1.1", "sha256:2"),
            entry(f"@{digest}", digest),
            entry("v1.0", "sha256:9", repository="team/web"),
            entry("v1", "sha256:3", repository="dir/ünï#?/x"),
        ]
    )
    api = state_store.exported("team/api")
    assert {ref: e.digest for ref, e in api.items()} == {
        "v1.0": "sha256:1",
        "v1.1": "sha256:2",
        f"@{digest}": digest,
    }
    assert api["v1.0"] == entry("v1.0", "sha256:1")  # every field, read_at in UTC
    assert api[f"@{digest}"].artifact == f"team/api@{digest}"
    assert api["v1.1"].artifact == "team/api:v1.1"
    assert set(state_store.exported("team/web")) == {"v1.0"}
    assert set(state_store.exported("dir/ünï#?/x")) == {"v1"}
    assert state_store.exported("team") == {}


def test_the_ledgers_under_a_prefix_are_read_together(state_store: StateStore) -> None:
    names = ["team/api", "team/api-v2", "team/web", "team", "teams/x", "tea", "dir/ünï#?/x", "dir/u"]
    state_store.record_exports([entry(f"v{n}", f"sha256:{n}", repository=r) for n, r in enumerate(names)])
    every = {r: state_store.exported(r) for r in names}
    assert all(len(ledger) == 1 for ledger in every.values())
    for prefix, expected in [
        ("team/", ["team/api", "team/api-v2", "team/web"]),
        ("team/api", ["team/api", "team/api-v2"]),
        ("team", ["team/api", "team/api-v2", "team/web", "team", "teams/x"]),
        ("tea", ["team/api", "team/api-v2", "team/web", "team", "teams/x", "tea"]),
        ("dir/ü", ["dir/ünï#?/x"]),
        ("dir/", ["dir/ünï#?/x", "dir/u"]),
        ("", names),
        ("nothing/", []),
    ]:
        assert state_store.exported_under(prefix) == {r: every[r] for r in expected}, prefix


def test_a_ledger_row_moves_only_to_a_later_reading(state_store: StateStore) -> None:
    state_store.record_exports([entry("v1", "sha256:new", T0 + timedelta(minutes=5), run="later")])
    state_store.record_exports([entry("v1", "sha256:old", T0, run="earlier")])  # finished last, read first
    assert state_store.exported("team/api")["v1"].digest == "sha256:new"
    state_store.record_exports([entry("v1", "sha256:newer", T0 + timedelta(minutes=6), run="latest")])
    assert state_store.exported("team/api")["v1"].run_id == "latest"


def test_concurrent_runs_lose_no_ledger_update(state_store: StateStore) -> None:
    """Eight runs finish at once, each with its own tags and one tag they share: every tag is recorded,
    and the shared one holds the latest reading."""
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def finish(n: int) -> None:
        entries = [entry(f"own{n}-{i}", f"sha256:{n}-{i}", T0, run=f"run{n}") for i in range(3)]
        entries.append(entry("shared", f"sha256:shared-{n}", T0 + timedelta(seconds=n), run=f"run{n}"))
        barrier.wait()
        try:
            state_store.record_exports(entries)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ledger = state_store.exported("team/api")
    assert len(ledger) == 8 * 3 + 1
    assert ledger["shared"].digest == "sha256:shared-7"
