"""TableStateStore beyond the shared contract: the index tables, crash healing, errors (Azurite)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.azurite import Azurite
from tests.integration.conftest import unique
from tests.integration.test_state_contract import make_run
from transfer.adapters.entities import run_entity, run_key
from transfer.adapters.state import ORPHAN_GRACE, TableStateStore
from transfer.domain.errors import AlreadyExists, Unavailable
from transfer.domain.runs import RunKind, RunStatus, Trigger
from transfer.domain.settings import StorageConnection

pytestmark = pytest.mark.azurite


class Tables:
    def __init__(self, azurite: Azurite, prefix: str) -> None:
        from azure.data.tables import TableServiceClient

        self.service = TableServiceClient.from_connection_string(azurite.connection_string)
        self.prefix = prefix

    def client(self, name: str) -> Any:
        return self.service.get_table_client(self.prefix + name)

    def index_rows(self, partition: str) -> list[str]:
        rows = self.client("index").query_entities("PartitionKey eq @p", parameters={"p": partition})
        return sorted(str(row["RowKey"]) for row in rows)


@pytest.fixture
def now() -> list[datetime]:
    return [datetime(2026, 11, 26, 12, 0, tzinfo=UTC)]


@pytest.fixture
def store_and_tables(azurite: Azurite, now: list[datetime]) -> tuple[TableStateStore, Tables]:
    prefix = unique("h")
    connection = StorageConnection("TransferState", connection_string=azurite.connection_string)
    store = TableStateStore(connection, prefix=prefix, clock=lambda: now[0])
    store.ping()
    return store, Tables(azurite, prefix)


def test_index_holds_only_active_and_uncleaned_runs(store_and_tables: tuple[TableStateStore, Tables]) -> None:
    store, tables = store_and_tables
    for n in range(15):
        run = store.add_run(make_run(n))
        run = store.update_run(replace(run, status=RunStatus.SUCCEEDED, finished_at=run.created_at))
        store.update_run(replace(run, cleaned_up=True))
    active = store.add_run(make_run(100))
    assert tables.index_rows("active") == [active.id]
    assert tables.index_rows("cleanup") == []
    assert [r.id for r in store.active_runs()] == [active.id]


def test_each_run_is_its_own_partition_in_newest_first_order(
    store_and_tables: tuple[TableStateStore, Tables],
) -> None:
    store, tables = store_and_tables
    runs = [store.add_run(make_run(n)) for n in range(6)]
    raw = list(tables.client("runs").list_entities())  # the table's natural order, no filter
    assert [row["RowKey"] for row in raw] == ["run"] * 6
    assert [row["PartitionKey"] for row in raw] == [run_key(r.id) for r in reversed(runs)]
    assert [str(row["id"]) for row in raw] == [r.id for r in reversed(runs)]
    # something else in the table (say, an entity of an older layout) is neither listed nor read
    tables.client("runs").upsert_entity({"PartitionKey": "run", "RowKey": run_key(runs[0].id), "id": "x"})
    assert [r.id for r in store.list_runs()] == [r.id for r in reversed(runs)]


def test_a_crash_after_the_run_write_is_healed_by_the_readers(
    store_and_tables: tuple[TableStateStore, Tables],
) -> None:
    store, tables = store_and_tables
    run = store.add_run(make_run(1, status=RunStatus.RUNNING))
    # the run became terminal but the process died before touching the index
    failed = replace(run, status=RunStatus.FAILED, finished_at=run.created_at)
    tables.client("runs").upsert_entity(run_entity(failed))
    assert tables.index_rows("active") == [run.id]

    assert store.active_runs() == []
    assert tables.index_rows("active") == []
    assert tables.index_rows("cleanup") == [run.id]
    assert [r.id for r in store.runs_to_clean()] == [run.id]

    # cleaned up, and the process died again before removing the cleanup row
    stored = store.get_run(run.id)
    assert stored is not None
    tables.client("runs").upsert_entity(run_entity(replace(stored, cleaned_up=True)))
    assert store.runs_to_clean() == []
    assert tables.index_rows("cleanup") == []


def test_source_runs_prunes_the_window_it_left_and_may_omit_but_never_invents(
    store_and_tables: tuple[TableStateStore, Tables], now: list[datetime]
) -> None:
    store, tables = store_and_tables
    base = make_run(1, kind=RunKind.IMPORT, trigger=Trigger.SOURCE, owned=False)
    for name, age in (("srcold", 61), ("srcnew", 1), ("srclost", 1)):
        store.add_run(replace(base, id=name, created_at=now[0] - timedelta(days=age)))
    assert tables.index_rows("source") == ["srclost", "srcnew", "srcold"]
    tables.client("index").delete_entity("source", "srclost")  # a crash after the run, before its row
    assert store.source_runs(now[0] - timedelta(days=60)) == {"srcnew"}
    assert tables.index_rows("source") == ["srcnew"]  # what left the window is gone
    assert store.get_run("srclost") is not None  # left out, still recorded: the caller reads it by id


def test_orphan_index_rows_are_dropped_after_the_grace(
    store_and_tables: tuple[TableStateStore, Tables], now: list[datetime]
) -> None:
    store, tables = store_and_tables
    ghost = make_run(2)
    # add_run writes the index row first; a crash before the run write leaves the row alone
    tables.client("index").upsert_entity({"PartitionKey": "active", "RowKey": ghost.id, "since": now[0]})
    assert store.active_runs() == []
    assert tables.index_rows("active") == [ghost.id]  # maybe an add_run in flight: kept for now
    now[0] += ORPHAN_GRACE + timedelta(seconds=1)
    assert store.active_runs() == []
    assert tables.index_rows("active") == []


def test_add_run_conflict_repairs_the_index_of_the_existing_run(
    store_and_tables: tuple[TableStateStore, Tables],
) -> None:
    store, tables = store_and_tables
    run = store.add_run(make_run(3))
    tables.client("index").delete_entity("active", run.id)
    with pytest.raises(AlreadyExists):
        store.add_run(replace(run, status=RunStatus.SUCCEEDED, etag=None))
    assert tables.index_rows("active") == [run.id]
    assert tables.index_rows("cleanup") == []
    assert [r.id for r in store.active_runs()] == [run.id]


def test_unreachable_storage_is_unavailable_without_secrets() -> None:
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    connection = StorageConnection(
        "TransferState",
        connection_string=(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={key};TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        ),
    )
    store = TableStateStore(connection, prefix=unique("u"))
    with pytest.raises(Unavailable) as caught:
        store.ping()
    assert key not in str(caught.value)
    assert key not in repr(store)
