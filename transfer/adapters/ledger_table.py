"""The export ledger on Azure Table Storage: per repository and tag, the digest a succeeded run exported,
kept in bucket entities (transfer/adapters/entities.py) so that a repository's ledger, or those of every
repository under a prefix, is one range query. A bucket is written by an ETag-conditional replace (or a
create), read again and retried when another run wrote it meanwhile; an entry replaces the stored one only
when it was read at least as late. TableStateStore holds one and hands it its table."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from transfer.adapters.ledger_entities import (
    LEDGER_PARTITION,
    ledger_bucket,
    ledger_entity,
    ledger_from_entity,
    ledger_prefix_range,
    ledger_range,
    ledger_row,
    ledger_supersedes,
)
from transfer.adapters.sdk_errors import IGNORE, translated
from transfer.domain.errors import TransferError
from transfer.domain.ports import MAX_TOP
from transfer.domain.records import LedgerEntry

if TYPE_CHECKING:
    from azure.data.tables import TableClient

LEDGER_TRIES = 8  # conditional writes of one ledger bucket before giving up
POINT_READ_WORKERS = 8

_T = TypeVar("_T")


class TableLedger:
    def __init__(
        self,
        get: Callable[[str, str, str], Any | None],
        query: Callable[..., Iterable[Any]],
        table: Callable[[], TableClient],
    ) -> None:
        self._get = get
        self._query = query
        self._table = table

    def exported(self, repository: str) -> dict[str, LedgerEntry]:
        return self._ledgers(self._ledger_keys(ledger_range, repository)).get(repository, {})

    def exported_under(self, prefix: str) -> dict[str, dict[str, LedgerEntry]]:
        found = self._ledgers(self._ledger_keys(ledger_prefix_range, prefix))
        return {repository: entries for repository, entries in found.items() if repository.startswith(prefix)}

    @staticmethod
    def _ledger_keys(keys: Callable[[str], _T], name: str) -> _T:
        try:
            return keys(name)
        except ValueError as exc:
            raise TransferError(f"table storage: {exc}") from None

    def _ledgers(self, rows: tuple[str, str] | None) -> dict[str, dict[str, LedgerEntry]]:
        """The ledger entities whose RowKeys are in [low, high) (None: all), by repository."""
        query = "PartitionKey eq @partition"
        parameters: dict[str, Any] = {"partition": LEDGER_PARTITION}
        if rows is not None:
            query += " and RowKey ge @low and RowKey lt @high"
            parameters.update(low=rows[0], high=rows[1])
        ledgers: dict[str, dict[str, LedgerEntry]] = {}
        for row in self._query("ledger", query, parameters, page_size=MAX_TOP):
            ledgers.setdefault(str(row["repository"]), {}).update(ledger_from_entity(row))
        return ledgers

    def record_exports(self, entries: Sequence[LedgerEntry]) -> None:
        buckets: dict[tuple[str, str], list[LedgerEntry]] = {}
        for entry in entries:
            buckets.setdefault((entry.repository, ledger_bucket(entry.reference)), []).append(entry)
        if not buckets:
            return
        with ThreadPoolExecutor(max_workers=min(POINT_READ_WORKERS, len(buckets))) as pool:
            list(pool.map(self._record_bucket, buckets, buckets.values()))  # re-raises the first failure

    def _record_bucket(self, key: tuple[str, str], entries: list[LedgerEntry]) -> None:
        """Merge entries into one bucket entity by an ETag-conditional write: an entry replaces the stored
        one only when it was read at least as late; a racing writer makes this read and merge again."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        repository, bucket = key
        row = self._ledger_keys(lambda name: ledger_row(name, bucket), repository)
        for _ in range(LEDGER_TRIES):
            stored = self._get("ledger", LEDGER_PARTITION, row)
            current = ledger_from_entity(stored) if stored is not None else {}
            newer = {e.reference: e for e in entries if ledger_supersedes(e, current.get(e.reference))}
            if not newer:
                return  # later readings are recorded already
            try:
                entity = ledger_entity(repository, bucket, {**current, **newer})
            except ValueError as exc:
                raise TransferError(f"table storage: {exc}") from None
            with translated(
                "table storage: recording an export", exists=IGNORE, changed=IGNORE, absent=IGNORE
            ) as call:
                if stored is None:
                    self._table().create_entity(entity)
                else:
                    self._table().update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=stored.metadata.get("etag"),
                        match_condition=MatchConditions.IfNotModified,
                    )
            if not call.ignored:
                return
            # another run wrote the bucket in between: read it again
        raise TransferError("table storage: the export ledger keeps changing; try again")
