"""The StateStore on Azure Table Storage: run, blob and request records.

Tables (created if absent, once per instance), named `{prefix}{name}`; their keys and entities are
transfer/adapters/entities.py's:
- `runs`: one partition per run, whose key reverses the order of run ids, which sort by creation time (see
  naming.run_id), so `list_runs(top=N)` reads N entities, newest first, plus what its filters skip, never
  the whole table sorted client-side; a point read does not slow as the table grows.
- `index`: `active_runs` and `runs_to_clean` read one partition ("active", "cleanup") and then the runs
  by point reads: their cost follows the number of active runs, not of all runs kept. `source_runs` reads
  the "source" partition alone: the source-trigger runs recorded, which a new worker would otherwise look
  up one by one; its rows past the window are deleted as it goes.
- `blobs`: creating the entity is the lock for (blob name, record key).
- `requests`: one per Idempotency-Key (or schedule tick).
- `pushes`: export on push: every push recorded once, pending until its run is recorded (push_table.py).
- `ledger`: the export ledger: per repository and tag, the digest a succeeded run exported, kept in 16
  bucket entities per repository (transfer/adapters/entities.py), so that a repository's ledger, or those of
  every repository under a prefix, is one range query. A bucket is written by an ETag-conditional replace
  (or a create), read again and retried when another run wrote it meanwhile, and an entry only by one read at
  least as late as the stored one.

Index maintenance, and how a crash between two writes heals:
- add_run writes the index row first, then the run. A crash between leaves an index row without a run:
  `active_runs` / `runs_to_clean` skip it, and delete it once it is older than ORPHAN_GRACE (so an
  add_run in flight on another worker is not disturbed).
- update_run writes the run first (ETag-conditional), then, for a terminal run, upserts its "cleanup"
  row and deletes its "active" row. A crash between leaves a terminal run in "active": `active_runs`
  drops it from the result and repairs both rows; a cleaned-up run left in "cleanup" is repaired by
  `runs_to_clean` likewise.

Filters are parameterised only (`parameters=`, each `@name` its own word). Azure SDKs load lazily.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from transfer.adapters.entities import (
    ACTIVE,
    CLEANUP,
    REQUEST_PARTITION,
    RUN_ROW,
    SOURCE,
    blob_entity,
    blob_from_entity,
    index_partition,
    index_row,
    request_entity,
    request_from_entity,
    request_key,
    run_entity,
    run_from_entity,
    run_key,
    stored_run,
    table_key,
    utc,
)
from transfer.adapters.ledger_table import TableLedger
from transfer.adapters.push_table import TablePushes
from transfer.adapters.sdk_errors import IGNORE, install_log_redaction, translated
from transfer.domain import naming
from transfer.domain.errors import AlreadyExists, PreconditionFailed, TransferError
from transfer.domain.ports import MAX_TOP
from transfer.domain.pushes import Push
from transfer.domain.records import BlobRecord, LedgerEntry, RequestRecord
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.domain.settings import StorageConnection

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient, TableServiceClient

TABLES = ("runs", "index", "blobs", "requests", "ledger", "pushes")
POINT_READ_WORKERS = 8
ORPHAN_GRACE = timedelta(minutes=10)
SOURCE_PRUNE = 100  # "source" index rows past the window deleted per read
LEDGER_TRIES = 8  # conditional writes of one ledger bucket before giving up

_T = TypeVar("_T")
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,40}$")


# ---- the adapter --------------------------------------------------------------------------------------


class TableStateStore:
    """StateStore on Azure Table Storage (or Azurite)."""

    def __init__(
        self,
        connection: StorageConnection,
        credential: TokenCredential | None = None,
        *,
        prefix: str = "transfer",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not _PREFIX.match(prefix):
            raise ValueError("the table prefix must be a letter then up to 40 letters or digits")
        if not connection.connection_string and not connection.table_service_uri:
            raise TransferError(f"{connection.setting} has no table endpoint")
        if not connection.connection_string and credential is None:
            raise TransferError(f"{connection.setting}: a table endpoint without a credential")
        install_log_redaction()
        self._connection = connection
        self._credential = credential
        self._prefix = prefix
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._service: TableServiceClient | None = None
        self._tables: dict[str, TableClient] = {}
        self._ledger = TableLedger(self._get, self._query, lambda: self._table("ledger"))
        self._pushes = TablePushes(self._query, lambda: self._table("pushes"))

    def __repr__(self) -> str:
        return f"TableStateStore({self._connection.setting!r}, prefix={self._prefix!r})"

    # ---- plumbing ----

    def _table(self, name: str) -> TableClient:
        client = self._tables.get(name)
        if client is not None:
            return client
        with self._lock:
            if not self._tables:
                self._create_tables()
            return self._tables[name]

    def _create_tables(self) -> None:
        with translated("table storage: creating the state tables"):
            if self._service is None:
                from azure.data.tables import TableServiceClient

                if self._connection.connection_string:
                    self._service = TableServiceClient.from_connection_string(
                        self._connection.connection_string, retry_total=3
                    )
                else:
                    assert self._connection.table_service_uri is not None
                    assert self._credential is not None
                    self._service = TableServiceClient(
                        endpoint=self._connection.table_service_uri,
                        credential=self._credential,
                        retry_total=3,
                    )
            tables = {name: self._service.create_table_if_not_exists(self._prefix + name) for name in TABLES}
        self._tables.update(tables)

    def _get(self, table: str, partition: str, row: str) -> Any | None:
        with translated(f"table storage: reading from {table}", absent=IGNORE) as call:
            entity = self._table(table).get_entity(partition, row)
        return None if call.ignored else entity

    def _query(
        self, table: str, query: str, parameters: Mapping[str, Any], *, page_size: int | None = None
    ) -> Iterable[Any]:
        with translated(f"table storage: querying {table}"):
            yield from self._table(table).query_entities(
                query, parameters=dict(parameters), results_per_page=page_size
            )

    def _delete(self, table: str, partition: str, row: str) -> None:
        with translated(f"table storage: deleting from {table}"):
            self._table(table).delete_entity(partition, row)  # absent is fine: the SDK ignores 404

    def _upsert(self, table: str, entity: dict[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        with translated(f"table storage: writing to {table}"):
            self._table(table).upsert_entity(entity, mode=UpdateMode.REPLACE)

    # ---- runs ----

    def add_run(self, run: Run) -> Run:
        entity = run_entity(run)
        partition = index_partition(run)
        if partition is not None:
            self._upsert("index", index_row(partition, run.id, self._clock()))
        try:
            with translated("table storage: creating a run", exists=IGNORE) as call:
                metadata = self._table("runs").create_entity(entity)
        except TransferError:
            if partition is not None:
                self._forget_index_row(partition, run.id)
            raise
        if call.ignored:
            existing = self.get_run(run.id)
            if existing is not None:
                self._sync_index(existing)
            raise AlreadyExists(f"run {run.id} already exists", target="run_id")
        if run.trigger is Trigger.SOURCE:  # after the run: a row never names a run that is not recorded
            with contextlib.suppress(TransferError):  # best effort: source_runs may omit a run
                self._upsert("index", index_row(SOURCE, run.id, run.created_at))
        return replace(stored_run(run), etag=metadata.get("etag"))

    def get_run(self, run_id: str) -> Run | None:
        entity = self._get("runs", run_key(run_id), RUN_ROW)
        return None if entity is None else run_from_entity(entity, entity.metadata.get("etag"))

    def update_run(self, run: Run) -> Run:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        if run.etag is None:
            raise PreconditionFailed(f"run {run.id} has no etag: read it before updating it", target="run_id")
        lost = PreconditionFailed(f"run {run.id} changed meanwhile", target="run_id")
        with translated("table storage: updating a run", changed=lost, absent=lost):
            metadata = self._table("runs").update_entity(
                run_entity(run),
                mode=UpdateMode.REPLACE,
                etag=run.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        after = replace(stored_run(run), etag=metadata.get("etag"))
        if run.status.terminal:
            self._sync_index(after)
        return after

    def list_runs(
        self, *, kind: RunKind | None = None, status: RunStatus | None = None, top: int = 100
    ) -> list[Run]:
        """Newest first, by the runs table's own order (see run_key): reads `top` entities plus the ones a
        kind/status filter skips on the way."""
        top = min(top, MAX_TOP)
        if top < 1:
            return []
        query = "RowKey eq @row"
        parameters: dict[str, Any] = {"row": RUN_ROW}
        if kind is not None:
            query += " and kind eq @kind"
            parameters["kind"] = kind.value
        if status is not None:
            query += " and status eq @status"
            parameters["status"] = status.value
        runs: list[Run] = []
        for entity in self._query("runs", query, parameters, page_size=top):
            runs.append(run_from_entity(entity, entity.metadata.get("etag")))
            if len(runs) >= top:
                break
        return runs

    def runs_before(self, before: str | None, top: int) -> list[Run]:
        """A page of the runs table's own order (newest first) from a cursor: one range query of `top`."""
        top = min(top, MAX_TOP)
        if top < 1:
            return []
        query = "RowKey eq @row"
        parameters: dict[str, Any] = {"row": RUN_ROW}
        if before is not None:
            query += " and PartitionKey gt @after"
            parameters["after"] = run_key(before)
        runs: list[Run] = []
        for entity in self._query("runs", query, parameters, page_size=top):
            runs.append(run_from_entity(entity, entity.metadata.get("etag")))
            if len(runs) >= top:
                break
        return runs

    def active_runs(self) -> list[Run]:
        return [run for run in self._indexed(ACTIVE) if index_partition(run) == ACTIVE]

    def runs_to_clean(self) -> list[Run]:
        return [run for run in self._indexed(CLEANUP) if index_partition(run) == CLEANUP]

    def _indexed(self, partition: str) -> list[Run]:
        runs: list[Run] = []
        rows = list(self._query("index", "PartitionKey eq @partition", {"partition": partition}))
        ids = [str(row["RowKey"]) for row in rows]
        # Point reads in parallel: one round trip's latency instead of one per active run (bench/).
        with ThreadPoolExecutor(max_workers=POINT_READ_WORKERS) as pool:
            found = list(
                pool.map(
                    lambda run_id: self.get_run(run_id) if naming.RUN_NAME.fullmatch(run_id) else None, ids
                )
            )
        for row, run_id, run in zip(rows, ids, found, strict=True):
            if run is None:
                since = row.get("since")
                if not isinstance(since, datetime) or self._clock() - utc(since) > ORPHAN_GRACE:
                    self._forget_index_row(partition, run_id)
                continue
            if index_partition(run) != partition:
                self._sync_index(run)
            runs.append(run)
        return sorted(runs, key=lambda r: r.id)

    def source_runs(self, since: datetime) -> set[str]:
        rows = list(
            self._query("index", "PartitionKey eq @partition", {"partition": SOURCE}, page_size=MAX_TOP)
        )
        found, past = set(), []
        for row in rows:
            started = row.get("since")
            if isinstance(started, datetime) and utc(started) < utc(since):
                past.append(str(row["RowKey"]))
            else:
                found.add(str(row["RowKey"]))
        for run_id in past[:SOURCE_PRUNE]:  # what left the window is never asked for again
            self._forget_index_row(SOURCE, run_id)
        return found

    def _sync_index(self, run: Run) -> None:
        """Make the index rows of `run` match its state: upsert the right row first, then delete the
        wrong ones (a crash in between leaves a row too many, which the readers repair)."""
        wanted = index_partition(run)
        if wanted is not None:
            self._upsert("index", index_row(wanted, run.id, self._clock()))
        for partition in (ACTIVE, CLEANUP):
            if partition != wanted:
                self._delete("index", partition, run.id)

    def _forget_index_row(self, partition: str, run_id: str) -> None:
        with contextlib.suppress(TransferError):  # best effort: readers drop orphans after ORPHAN_GRACE
            self._delete("index", partition, run_id)

    # ---- blob records ----

    def claim_blob(self, record: BlobRecord) -> bool:
        with translated("table storage: claiming a blob", exists=IGNORE) as call:
            self._table("blobs").create_entity(blob_entity(record))
        return not call.ignored

    def blob_records(self, name: str) -> list[BlobRecord]:
        rows = self._query("blobs", "PartitionKey eq @partition", {"partition": table_key(name)})
        return [blob_from_entity(row) for row in rows]

    def update_blob_record(self, record: BlobRecord) -> None:
        self._upsert("blobs", blob_entity(record))

    # ---- requests ----

    def claim_request(self, record: RequestRecord) -> RequestRecord:
        entity = request_entity(record)
        for _ in range(3):
            with translated("table storage: recording a request", exists=IGNORE) as call:
                self._table("requests").create_entity(entity)
            if not call.ignored:
                return request_from_entity(entity)
            stored = self._get("requests", REQUEST_PARTITION, entity["RowKey"])
            if stored is not None:
                return request_from_entity(stored)
            # deleted in between: claim again
        raise TransferError("table storage: the request record keeps changing; try again")

    def get_request(self, key: str) -> RequestRecord | None:
        stored = self._get("requests", REQUEST_PARTITION, request_key(key))
        return None if stored is None else request_from_entity(stored)

    # ---- the export ledger (ledger_table.py) ----

    def exported(self, repository: str) -> dict[str, LedgerEntry]:
        return self._ledger.exported(repository)

    def exported_under(self, prefix: str) -> dict[str, dict[str, LedgerEntry]]:
        return self._ledger.exported_under(prefix)

    def record_exports(self, entries: Sequence[LedgerEntry]) -> None:
        self._ledger.record_exports(entries)

    # ---- the push ledger (transfer/adapters/push_table.py) ----

    def record_push(self, push: Push) -> bool:
        return self._pushes.record_push(push)

    def pending_pushes(self) -> list[Push]:
        return self._pushes.pending_pushes()

    def take_pushes(self, pushes: Sequence[Push], run_id: str, now: datetime) -> bool:
        return self._pushes.take_pushes(pushes, run_id, now)

    def release_pushes(self, pushes: Sequence[Push]) -> None:
        self._pushes.release_pushes(pushes)

    # ---- health ----

    def ping(self) -> None:
        for _ in self._query("runs", "RowKey eq @row", {"row": RUN_ROW}, page_size=1):
            break
