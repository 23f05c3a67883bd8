"""The state store's Table entities (transfer/adapters/entities.py): keys, and records as entities and back.

Pure: the contract tests (tests/integration/test_state_contract.py) check the same shapes through the Table
adapter and the fake; these check the mapping itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from transfer.adapters import entities
from transfer.adapters.entities import (
    ACTIVE,
    CLEANUP,
    MAX_TEXT,
    blob_entity,
    blob_from_entity,
    index_partition,
    index_row,
    request_entity,
    request_from_entity,
    run_entity,
    run_from_entity,
    run_key,
    stored_run,
    table_key,
)
from transfer.domain.errors import InvalidInput
from transfer.domain.records import BlobAction, BlobRecord, RequestRecord
from transfer.domain.runs import CopyStatus, Run, RunKind, RunStatus, Trigger

T0 = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def make_run(**changes: object) -> Run:
    run = Run(
        id="20261126120000123e4f9a2b",
        kind=RunKind.EXPORT,
        trigger=Trigger.HTTP,
        status=RunStatus.RUNNING,
        created_at=T0,
        updated_at=T0,
        request_id="req-1",
        deployment_name="acrtransfer-20261126120000123e4f9a2b",
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def test_a_run_with_every_field_round_trips() -> None:
    run = make_run(
        artifacts=("samples/hello:v1", "samples/nginx@sha256:" + "a" * 64),
        blob="export-x",
        pipeline_run_id="/subscriptions/x/pipelineRuns/r1",
        progress="42",
        imported_artifacts=("samples/hello:v1",),
        error="boom",
        finished_at=T0 + timedelta(hours=1),
        owned=False,
        copy_status=CopyStatus.PENDING,
        copy_error="not yet",
    )
    entity = run_entity(run)
    assert (entity["PartitionKey"], entity["RowKey"]) == (run_key(run.id), "run")
    back = run_from_entity(entity, "etag-1")
    assert back == run
    assert back.etag == "etag-1"


def test_absent_optional_fields_are_left_out_of_the_entity() -> None:
    entity = run_entity(make_run())
    for name in ("blob", "pipeline_run_id", "progress", "error", "finished_at", "copy_status", "copy_error"):
        assert name not in entity
    assert run_from_entity(entity, None) == make_run()


def test_stored_runs_have_texts_cut_and_datetimes_in_utc() -> None:
    plus_five = timezone(timedelta(hours=5))
    run = stored_run(
        make_run(
            error="x" * (MAX_TEXT + 10),
            created_at=datetime(2026, 1, 1, 10, 0),
            updated_at=T0.astimezone(plus_five),
        )
    )
    assert run.error is not None
    assert len(run.error) == MAX_TEXT
    assert run.error.endswith("…")
    assert run.created_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)  # naive means UTC
    assert run.updated_at.tzinfo is UTC
    assert run.updated_at == T0


def test_run_keys_reverse_the_order_of_run_ids_prefixes_included() -> None:
    ids = [
        "20261126120000000e000001",
        "20261126120000000e00000",
        "20261126120000001iZZZZZZ",
        "abcde",
        "ABCDE",
    ]
    assert sorted(ids, key=run_key) == sorted(ids, reverse=True)


def test_names_the_service_gave_list_after_the_apps_run_ids() -> None:
    assert run_key("run_1") > run_key("20261126120000000e000001")
    assert run_key("importpipeline-20261126T120000Z").startswith("~")


@pytest.mark.parametrize("bad", ["", "../x", "a b"])
def test_run_keys_refuse_what_is_no_run_id(bad: str) -> None:
    with pytest.raises(InvalidInput):
        run_key(bad)


def test_table_keys_three_forms_that_cannot_collide() -> None:
    assert table_key("export-20261126.blob") == "export-20261126.blob"
    encoded = table_key("dir/blob#1")
    assert encoded.startswith("~")
    assert encoded != table_key("dir/blob#2")
    hashed = table_key("é" * 1000)
    assert hashed.startswith("!")
    assert len(hashed) == 1 + 64


def test_index_partitions() -> None:
    assert index_partition(make_run()) == ACTIVE
    done = make_run(status=RunStatus.SUCCEEDED, finished_at=T0)
    assert index_partition(done) == CLEANUP
    assert index_partition(replace(done, copy_status=CopyStatus.QUEUED)) == ACTIVE  # a copy to follow
    assert index_partition(replace(done, cleaned_up=True)) is None
    assert index_partition(replace(done, owned=False)) is None  # the app never deletes what it did not start


def test_index_rows_carry_their_time_in_utc() -> None:
    row = index_row(ACTIVE, "20261126120000123e4f9a2b", datetime(2026, 1, 1, 10, 0))
    assert row == {
        "PartitionKey": "active",
        "RowKey": "20261126120000123e4f9a2b",
        "since": datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
    }


def test_blob_records_round_trip_under_encoded_keys() -> None:
    record = BlobRecord(
        name="dir/export #1",
        key="import-abc==",
        action=BlobAction.IMPORT,
        decided_at=T0,
        last_modified=T0 - timedelta(days=61),
        run_id="20261126120000123i4f9a2b",
        reason="aged",
    )
    entity = blob_entity(record)
    assert (entity["PartitionKey"], entity["RowKey"]) == (table_key(record.name), table_key(record.key))
    assert blob_from_entity(entity) == record
    assert "run_id" not in blob_entity(replace(record, run_id=None))


def test_request_records_round_trip_keyed_by_a_hash() -> None:
    record = RequestRecord(
        key="Idempotency Key/1",
        request_id="req-1",
        fingerprint="f" * 64,
        run_ids=("a1b2c3d4e5",),
        created_at=T0,
    )
    entity = request_entity(record)
    assert entity["RowKey"] == entities.request_key(record.key)
    assert "Idempotency" not in entity["RowKey"]
    assert request_from_entity(entity) == record


def test_a_ledger_bucket_round_trips_and_splits_over_properties() -> None:
    from transfer.adapters.ledger_entities import (
        LEDGER_PART,
        ledger_bucket,
        ledger_entity,
        ledger_from_entity,
    )
    from transfer.domain.records import LedgerEntry

    read_at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    entries = {
        f"v{n:05d}": LedgerEntry(
            "team/api", f"v{n:05d}", "sha256:" + "a" * 64, "20261126120000000e000001", read_at
        )
        for n in range(600)
    }
    entity = ledger_entity("team/api", "03", entries)
    assert entity["parts"] > 1  # 600 entries do not fit one property
    assert all(len(entity[f"p{i}"]) <= LEDGER_PART for i in range(entity["parts"]))
    assert ledger_from_entity(entity) == entries
    assert ledger_bucket("v00001") == ledger_bucket("v00001")
    assert {ledger_bucket(f"v{n}") for n in range(200)} == {f"{b:02d}" for b in range(16)}


def test_a_bucket_too_big_for_one_entity_is_refused() -> None:
    from transfer.adapters.ledger_entities import ledger_entity
    from transfer.domain.records import LedgerEntry

    read_at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    entries = {
        f"t{n}": LedgerEntry("r", f"t{n}", "sha256:" + "b" * 64, "x" * 24, read_at) for n in range(8000)
    }
    with pytest.raises(ValueError, match="too many tags"):
        ledger_entity("r", "00", entries)


def test_ledger_rows_keep_repository_prefixes_and_never_share_a_range() -> None:
    from transfer.adapters.ledger_entities import ledger_prefix_range, ledger_range, ledger_row

    names = ["a", "a/b", "a-b", "ab", "a.b/c", "a_b", "z" * 255, "dir/ünï#?/x", "ü", "A", "a:b", "a|b", "a~b"]
    rows = {name: [ledger_row(name, f"{b:02d}") for b in range(16)] for name in names}
    for name in names:
        low, high = ledger_range(name)
        for other, keys in rows.items():
            inside = [low <= key < high for key in keys]
            assert all(inside) if other == name else not any(inside), (name, other)
        for cut in range(1, len(name) + 1):
            prefix = name[:cut]
            found = ledger_prefix_range(prefix)
            assert found is not None
            for other, keys in rows.items():
                inside = {found[0] <= key < found[1] for key in keys}
                assert inside == {other.startswith(prefix)}, (prefix, other)
    assert ledger_prefix_range("") is None
    assert all(not set(key) & set("/\\#?") and key.isprintable() for keys in rows.values() for key in keys)
    with pytest.raises(ValueError, match="too long"):
        ledger_row("ü" * 200, "00")


def test_a_list_is_cut_to_its_budget_and_counts_what_it_left_out() -> None:
    import json

    from transfer.adapters.entities import LIST_CHARS, bounded

    values = tuple("x" * 98 for _ in range(1000))
    kept, dropped = bounded(values)
    assert dropped > 0
    assert len(kept) + dropped == 1000
    assert len(json.dumps(list(kept))) <= LIST_CHARS < len(json.dumps(list(values[: len(kept) + 1])))
    assert bounded(kept) == (kept, 0)  # cut once, cut no further
