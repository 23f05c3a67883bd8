"""The state store's Table entities: keys, and runs, blob records, request records and index rows as
entities and back. Pure: the Table adapter (transfer/adapters/state.py) and the in-memory fake
(tests/fakes.py) share it, so both keep a record exactly alike (texts cut, datetimes in UTC, the same order).

- runs: PartitionKey `run_key(run.id)`, RowKey "run": each run its own partition, keyed by its id mapped to
  an order-reversing key, so the table's natural order (ascending PartitionKey) is newest run first, and a
  point read costs the same however many runs the table keeps (one partition of all runs is a scan of that
  partition in Azurite and one hot partition in Azure: bench/reconcile_history.py);
- index: PartitionKey "active" (runs not terminal, or a copy still to follow) or "cleanup" (terminal,
  owned, not cleaned up), RowKey the run id, `since` when the row was written (`index_partition`); and
  PartitionKey "source": every recorded run the source trigger started, `since` its trigger time;
- blobs: PartitionKey `table_key(blob name)`, RowKey `table_key(record.key)`;
- requests: PartitionKey "request", RowKey `request_key(key)` (sha256 of the Idempotency-Key);
- ledger: PartitionKey "ledger", RowKey `ledger_row(repository, bucket)`: the repository in a prefix-keeping
  encoding, "|", one of LEDGER_BUCKETS buckets (a hash of the tag or `@sha256:...` reference); each bucket
  one entity holding its entries as JSON (split over properties). A repository's ledger is one range of at
  most 16 entities, however many tags it has, and the ledgers of every repository under a prefix (what a
  selector's repository pattern starts with) are one range too: one query, not one per repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from transfer.domain import naming
from transfer.domain.manifests import Verification
from transfer.domain.records import BlobAction, BlobRecord, RequestRecord
from transfer.domain.runs import CopyStatus, Run, RunKind, RunStatus, Trigger

RUN_ROW = "run"
ACTIVE = "active"
CLEANUP = "cleanup"
SOURCE = "source"  # index partition of the runs the import pipeline's source trigger started
REQUEST_PARTITION = "request"
MAX_TEXT = 8 * 1024  # error messages and reasons are cut to this many characters

# Azure Table Storage's limits, stated once: what every entity written here stays within by construction.
TABLE_PROPERTY_BYTES = 64 * 1024  # a string property: 64 KiB of UTF-16, so 32 Ki characters
TABLE_ENTITY_BYTES = 1024 * 1024  # a whole entity
TABLE_PROPERTIES = 255  # properties of an entity, the three system ones included
# A list kept in one property is JSON with ASCII escapes (each character one UTF-16 unit) of at most this
# many characters: 60,000 bytes, under the property limit. A run has four such lists and five texts of
# MAX_TEXT: about 340 KB, under the entity limit. An export run's artifacts (at most 50 references of at
# most 384 characters) always fit; what grows with input (an import's imported and skipped artifacts, a
# source-trigger run's artifacts) is cut to its first items, and the run counts what was left out.
LIST_CHARS = 30_000

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ascending, as ASCII
_INVERT = str.maketrans(_ALPHABET, _ALPHABET[::-1])
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.:=-]{1,512}$")


# ---- keys ---------------------------------------------------------------------------------------------


def run_key(run_id: str) -> str:
    """An order-reversing map of run ids: a < b exactly when key(a) > key(b), prefixes included.

    Each character is mirrored in the alphabet and '~' (above every alphanumeric) ends the key, so a
    shorter id sorts after the longer ids it is a prefix of, as reversing requires."""
    checked = naming.check_run_id(run_id)
    if naming.RUN_ID.fullmatch(checked):
        return checked.translate(_INVERT) + "~"
    # A name the service gave one of its own runs: above every mirrored key, so it lists after the app's.
    return "~" + base64.urlsafe_b64encode(checked.encode()).decode("ascii").rstrip("=")


def table_key(value: str) -> str:
    """A PartitionKey / RowKey for any string. Safe ASCII stays readable; anything else (`/ \\ # ?`,
    control characters, unicode, long names) becomes '~' + url-safe base64 without padding, or, past
    the key size limit, '!' + sha256. The three forms cannot collide: plain keys start with neither."""
    if _PLAIN_KEY.match(value):
        return value
    encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii").rstrip("=")
    if len(encoded) <= 1000:
        return "~" + encoded
    return "!" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def request_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def cut(text: str | None, limit: int = MAX_TEXT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def utc(value: datetime) -> datetime:
    """A plain timezone-aware UTC datetime (naive values are taken as UTC, never as local time)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )


# ---- runs ---------------------------------------------------------------------------------------------


def bounded(values: tuple[Any, ...], limit: int = LIST_CHARS) -> tuple[tuple[Any, ...], int]:
    """The longest prefix of `values` whose JSON has at most `limit` characters; how many were left out."""
    size = 2  # the brackets
    for index, value in enumerate(values):
        size += len(json.dumps(value)) + (2 if index else 0)  # json.dumps separates items with ", "
        if size > limit:
            return values[:index], len(values) - index
    return values, 0


def _bounded_lists(run: Run) -> Run:
    """The run's lists cut to LIST_CHARS each, each cut counted in `left_out` (added to an earlier count
    of the same list: a list read back cut is cut no further)."""
    counts = dict(run.left_out)
    lists: dict[str, Any] = {}
    for field, name in _LISTS:
        values = getattr(run, field)
        if field == "digests":
            values = tuple(list(pair) for pair in values)
        kept, dropped = bounded(values)
        if dropped:
            counts[name] = counts.get(name, 0) + dropped
            lists[field] = tuple(tuple(pair) for pair in kept) if field == "digests" else kept
    if not lists:
        return run
    return replace(run, **lists, left_out=tuple(sorted(counts.items())))


_LISTS = (
    ("artifacts", "artifacts"),
    ("imported_artifacts", "importedArtifacts"),
    ("skipped_artifacts", "skippedArtifacts"),
    ("digests", "digests"),
)


def entity_size(entity: Mapping[str, Any]) -> int:
    """An entity's size as Table Storage counts it, roughly: strings in UTF-16, names too, 8 bytes a value
    otherwise (tests hold every entity written here to TABLE_ENTITY_BYTES with it)."""
    size = 0
    for name, value in entity.items():
        size += 2 * len(name) + (2 * len(value) if isinstance(value, str) else 8)
    return size


def stored_run(run: Run) -> Run:
    """The run as the store keeps it: lists and texts cut, datetimes in UTC."""
    run = _bounded_lists(run)
    return replace(
        run,
        error=cut(run.error),
        copy_error=cut(run.copy_error),
        hint=cut(run.hint),
        warning=cut(run.warning),
        verification_detail=cut(run.verification_detail),
        created_at=utc(run.created_at),
        updated_at=utc(run.updated_at),
        finished_at=utc(run.finished_at) if run.finished_at else None,
        missing_since=utc(run.missing_since) if run.missing_since else None,
        delete_started=utc(run.delete_started) if run.delete_started else None,
    )


def index_partition(run: Run) -> str | None:
    """Which index partition the run belongs in: "active", "cleanup", or none."""
    if not run.status.terminal or run.awaits_copy:
        return ACTIVE
    if run.owned and not run.cleaned_up:
        return CLEANUP
    return None


def index_row(partition: str, run_id: str, since: datetime) -> dict[str, Any]:
    """The index row that lists `run_id` in `partition` ("active" or "cleanup") since `since`."""
    return {"PartitionKey": partition, "RowKey": run_id, "since": utc(since)}


def run_entity(run: Run) -> dict[str, Any]:
    run = stored_run(run)
    entity: dict[str, Any] = {
        "PartitionKey": run_key(run.id),
        "RowKey": RUN_ROW,
        "id": run.id,
        "kind": run.kind.value,
        "trigger": run.trigger.value,
        "status": run.status.value,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "request_id": run.request_id,
        "deployment_name": run.deployment_name,
        "artifacts": json.dumps(list(run.artifacts)),
        "imported_artifacts": json.dumps(list(run.imported_artifacts)),
        "cleaned_up": run.cleaned_up,
        "owned": run.owned,
        "attempt": run.attempt,
    }
    optional: dict[str, Any] = {
        "blob": run.blob,
        "pipeline_run_id": run.pipeline_run_id,
        "progress": run.progress,
        "error": run.error,
        "finished_at": run.finished_at,
        "copy_status": run.copy_status.value if run.copy_status else None,
        "copy_error": run.copy_error,
        "error_cause": run.error_cause,
        "hint": run.hint,
        "correlation_id": run.correlation_id,
        "warning": run.warning,
        "skipped_artifacts": json.dumps(list(run.skipped_artifacts)) if run.skipped_artifacts else None,
        "digests": json.dumps([list(pair) for pair in run.digests]) if run.digests else None,
        "catalog_digest": run.catalog_digest,
        "referrers": json.dumps([list(item) for item in run.referrers]) if run.referrers else None,
        "manifest": run.manifest,
        "verification": run.verification.value if run.verification else None,
        "verification_detail": run.verification_detail,
        "missing_since": run.missing_since,
        "delete_started": run.delete_started,
        "left_out": json.dumps(dict(run.left_out)) if run.left_out else None,
    }
    entity.update({k: v for k, v in optional.items() if v is not None})
    return entity


def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    return utc(datetime.fromisoformat(str(value)))


def _opt_dt(value: Any) -> datetime | None:
    return None if value is None else _dt(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def run_from_entity(entity: Mapping[str, Any], etag: str | None) -> Run:
    copy_status = entity.get("copy_status")
    return Run(
        id=str(entity["id"]),
        kind=RunKind(entity["kind"]),
        trigger=Trigger(entity["trigger"]),
        status=RunStatus(entity["status"]),
        created_at=_dt(entity["created_at"]),
        updated_at=_dt(entity["updated_at"]),
        request_id=str(entity["request_id"]),
        deployment_name=str(entity.get("deployment_name") or ""),
        artifacts=tuple(json.loads(entity.get("artifacts") or "[]")),
        blob=_opt_str(entity.get("blob")),
        pipeline_run_id=_opt_str(entity.get("pipeline_run_id")),
        progress=_opt_str(entity.get("progress")),
        imported_artifacts=tuple(json.loads(entity.get("imported_artifacts") or "[]")),
        error=_opt_str(entity.get("error")),
        finished_at=_opt_dt(entity.get("finished_at")),
        cleaned_up=bool(entity.get("cleaned_up", False)),
        owned=bool(entity.get("owned", True)),
        copy_status=CopyStatus(copy_status) if copy_status else None,
        copy_error=_opt_str(entity.get("copy_error")),
        error_cause=_opt_str(entity.get("error_cause")),
        hint=_opt_str(entity.get("hint")),
        correlation_id=_opt_str(entity.get("correlation_id")),
        warning=_opt_str(entity.get("warning")),
        attempt=int(entity.get("attempt") or 1),
        skipped_artifacts=tuple(json.loads(entity.get("skipped_artifacts") or "[]")),
        digests=tuple((str(a), str(d)) for a, d in json.loads(entity.get("digests") or "[]")),
        referrers=tuple((str(a), str(t), str(s)) for a, t, s in json.loads(entity.get("referrers") or "[]")),
        catalog_digest=_opt_str(entity.get("catalog_digest")),
        manifest=_opt_str(entity.get("manifest")),
        verification=_verification(entity.get("verification")),
        verification_detail=_opt_str(entity.get("verification_detail")),
        missing_since=_opt_dt(entity.get("missing_since")),
        delete_started=_opt_dt(entity.get("delete_started")),
        left_out=tuple(
            sorted((str(k), int(v)) for k, v in json.loads(entity.get("left_out") or "{}").items())
        ),
        etag=etag,
    )


# ---- blob and request records -------------------------------------------------------------------------


def blob_entity(record: BlobRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": table_key(record.name),
        "RowKey": table_key(record.key),
        "name": record.name,
        "key": record.key,
        "action": record.action.value,
        "decided_at": utc(record.decided_at),
        "last_modified": utc(record.last_modified),
        "reason": cut(record.reason) or "",
    }
    if record.run_id is not None:
        entity["run_id"] = record.run_id
    return entity


def blob_from_entity(entity: Mapping[str, Any]) -> BlobRecord:
    return BlobRecord(
        name=str(entity["name"]),
        key=str(entity["key"]),
        action=BlobAction(entity["action"]),
        decided_at=_dt(entity["decided_at"]),
        last_modified=_dt(entity["last_modified"]),
        run_id=_opt_str(entity.get("run_id")),
        reason=str(entity.get("reason") or ""),
    )


def stored_blob_record(record: BlobRecord) -> BlobRecord:
    return blob_from_entity(blob_entity(record))


def request_entity(record: RequestRecord) -> dict[str, Any]:
    return {
        "PartitionKey": REQUEST_PARTITION,
        "RowKey": request_key(record.key),
        "key": record.key,
        "request_id": record.request_id,
        "fingerprint": record.fingerprint,
        "run_ids": json.dumps(list(record.run_ids)),
        "created_at": utc(record.created_at),
    }


def request_from_entity(entity: Mapping[str, Any]) -> RequestRecord:
    return RequestRecord(
        key=str(entity["key"]),
        request_id=str(entity["request_id"]),
        fingerprint=str(entity["fingerprint"]),
        run_ids=tuple(json.loads(entity.get("run_ids") or "[]")),
        created_at=_dt(entity["created_at"]),
    )


def _verification(value: Any) -> Verification | None:
    return Verification(value) if value in Verification.__members__.values() else None
