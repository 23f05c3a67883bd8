"""The push ledger on Azure Table Storage (export on push). One partition, `push`, two rows per push:
`seen-<key>`, kept (a redelivered event finds it), and `pending-<key>`, deleted once the run that took the
push is recorded. Both are created in one transaction, so a push is either wholly recorded or not at all;
pushes are taken by a run in one transaction of ETag-conditional updates (at most 50 + a few, within the
100 operations a transaction allows), so of two workers one takes a batch and the other none of it.
TableStateStore holds one and hands it its table."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from transfer.adapters.entities import utc
from transfer.adapters.sdk_errors import error_code_of, status_of, translated
from transfer.domain.pushes import Push

if TYPE_CHECKING:
    from azure.data.tables import TableClient

PARTITION = "push"
SEEN = "seen-"
PENDING = "pending-"
TRANSACTION_LIMIT = 100  # operations per entity group transaction
# A transaction fails as a whole with the status of the operation that failed (TableTransactionError).
_EXISTS = (409, "EntityAlreadyExists")
_LOST = (404, 409, 412, "ResourceNotFound", "UpdateConditionNotSatisfied")


def _failed_with(reasons: tuple[object, ...]) -> Callable[[Exception], bool]:
    return lambda exc: status_of(exc) in reasons or error_code_of(exc) in reasons


def _entity(push: Push, prefix: str) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": PARTITION,
        "RowKey": prefix + push.key,
        "repository": push.repository,
        "tag": push.tag,
        "digest": push.digest,
        "receivedAt": utc(push.received_at),
        "eventId": push.event_id[:200],
    }
    if push.run_id is not None:
        entity["runId"] = push.run_id
    if push.taken_at is not None:
        entity["takenAt"] = utc(push.taken_at)
    return entity


def _push(entity: Any) -> Push:
    taken_at = entity.get("takenAt")
    return Push(
        repository=entity["repository"],
        tag=entity["tag"],
        digest=entity["digest"],
        received_at=utc(entity["receivedAt"]),
        event_id=entity.get("eventId") or "",
        run_id=entity.get("runId") or None,
        taken_at=utc(taken_at) if isinstance(taken_at, datetime) else None,
        etag=entity.metadata.get("etag"),
    )


class TablePushes:
    def __init__(self, query: Callable[..., Iterable[Any]], table: Callable[[], TableClient]) -> None:
        self._query = query
        self._table = table

    def record_push(self, push: Push) -> bool:
        operations = [("create", _entity(push, SEEN)), ("create", _entity(push, PENDING))]
        with translated("table storage: recording a push", ignore_if=_failed_with(_EXISTS)) as call:
            self._table().submit_transaction(operations)
        return not call.ignored

    def pending_pushes(self) -> list[Push]:
        rows = self._query(
            "pushes",
            "PartitionKey eq @partition and RowKey ge @low and RowKey lt @high",
            {"partition": PARTITION, "low": PENDING, "high": PENDING[:-1] + "."},
        )
        return sorted((_push(row) for row in rows), key=lambda p: (p.received_at, p.key))

    def take_pushes(self, pushes: Sequence[Push], run_id: str, now: datetime) -> bool:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        if len(pushes) > TRANSACTION_LIMIT:
            raise ValueError(f"at most {TRANSACTION_LIMIT} pushes are taken at once")
        unchanged = MatchConditions.IfNotModified
        operations: list[Any] = [
            (
                "update",
                _entity(push.taken(run_id, now), PENDING),
                {"mode": UpdateMode.REPLACE, "etag": push.etag, "match_condition": unchanged},
            )
            for push in pushes
        ]
        with translated("table storage: taking pushes for a run", ignore_if=_failed_with(_LOST)) as call:
            self._table().submit_transaction(operations)
        return not call.ignored

    def release_pushes(self, pushes: Sequence[Push]) -> None:
        for start in range(0, len(pushes), TRANSACTION_LIMIT):
            chunk = pushes[start : start + TRANSACTION_LIMIT]
            rows = [{"PartitionKey": PARTITION, "RowKey": PENDING + p.key} for p in chunk]
            with translated("table storage: releasing pushes", ignore_if=_failed_with(_LOST)) as call:
                self._table().submit_transaction([("delete", row) for row in rows])
            if call.ignored:  # one was gone already (a racing release): the rest one by one
                for row in rows:
                    with translated("table storage: releasing a push"):
                        self._table().delete_entity(row["PartitionKey"], row["RowKey"])
