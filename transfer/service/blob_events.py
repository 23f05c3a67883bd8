"""One blob of the watched container, as its event (or the sweep) delivers it: the refresh or manual import
the 60-day rule asks for (blob_rule.py).

Each action is claimed by a blob record keyed by the blob's content version before it happens: a repeated
event, a racing handler or the app's own refresh firing the trigger again finds the claim and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from transfer.domain import naming
from transfer.domain.errors import PreconditionFailed
from transfer.domain.manifests import is_manifest
from transfer.domain.ports import BlobRecords, BlobStore
from transfer.domain.records import BlobAction, BlobInfo, BlobRecord
from transfer.domain.runs import Run, RunKind, Trigger
from transfer.domain.settings import Settings
from transfer.domain.staleness import MANIFEST_REASON, Decision, Outcome, import_records, refresh_metadata
from transfer.service.blob_rule import BlobRule
from transfer.service.imports import watched_container
from transfer.service.lifecycle import RunLifecycle

log = logging.getLogger("transfer")

REFRESH_RETRY_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class BlobResult:
    blob: str
    outcome: Outcome
    reason: str
    run: Run | None = None


class HandleBlob:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore | None,
        rule: BlobRule,
        records: BlobRecords,
        lifecycle: RunLifecycle,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.rule = rule
        self.records = records
        self.lifecycle = lifecycle
        self.clock = clock

    def __call__(
        self, name: str, trigger: Trigger = Trigger.BLOB, info: BlobInfo | None = None
    ) -> BlobResult:
        blobs = watched_container(self.settings, self.blobs)
        name = naming.check_blob_name(name)
        if is_manifest(name):  # beside a transfer blob, read by verification; never imported
            return BlobResult(name, Outcome.NOTHING, MANIFEST_REASON)
        blob = info or blobs.get_properties(name)
        if blob is None:
            return BlobResult(name, Outcome.NOTHING, "the blob no longer exists")
        now = self.clock()
        on_arrival = self.settings.import_on_arrival and trigger is Trigger.BLOB
        decision, records, attempts = self.rule.decide(blob, now, on_arrival=on_arrival)
        if decision.outcome is not Outcome.LEAVE:
            orphan = self.rule.orphaned_import(blob, records, now)
            if orphan is not None:
                return self._resume_import(orphan, trigger, now)
        _log_decision(blob, decision, records, trigger)
        if decision.outcome is Outcome.REFRESH:
            return self._refresh(blobs, blob, decision, now)
        if decision.outcome is Outcome.IMPORT:
            attempt = 1 + max((a.attempt for a in attempts if a.failed), default=0)
            return self._import_blob(blob, decision, trigger, now, attempt)
        return BlobResult(name, decision.outcome, decision.reason)

    def _refresh(self, blobs: BlobStore, blob: BlobInfo, decision: Decision, now: datetime) -> BlobResult:
        record = decision.record(blob, BlobAction.REFRESH, now)
        if not self.records.claim_blob(record):
            stored = next(
                (r for r in self.records.blob_records(blob.name) if r.key == decision.lock_key), None
            )
            if (
                stored is None
                or stored.reason.startswith("refreshed")
                or now - stored.decided_at < REFRESH_RETRY_AFTER
            ):
                return BlobResult(blob.name, Outcome.NOTHING, "a refresh of this blob is already recorded")
            record = replace(stored, decided_at=now)
        try:
            refreshed = blobs.merge_metadata(blob.name, refresh_metadata(now), blob.etag)
        except PreconditionFailed:
            return BlobResult(
                blob.name, Outcome.NOTHING, "the blob changed meanwhile; its next event decides"
            )
        self.records.update_blob_record(replace(record, reason=f"refreshed: {decision.reason}"))
        log.info(
            "blob refreshed for the source trigger",
            extra={"blob": blob.name, "last_modified": refreshed.last_modified.isoformat()},
        )
        return BlobResult(blob.name, Outcome.REFRESH, decision.reason)

    def _import_blob(
        self, blob: BlobInfo, decision: Decision, trigger: Trigger, now: datetime, attempt: int = 1
    ) -> BlobResult:
        run_id = self.lifecycle.new_id(RunKind.IMPORT, now)
        if not self.records.claim_blob(decision.record(blob, BlobAction.IMPORT, now, run_id)):
            return BlobResult(
                blob.name, Outcome.NOTHING, "an import of this blob version is already recorded"
            )
        run = self.lifecycle.new(run_id, RunKind.IMPORT, trigger, blob=blob.name, attempt=attempt, now=now)
        return BlobResult(blob.name, Outcome.IMPORT, decision.reason, self.lifecycle.record_and_deploy(run))

    def _resume_import(self, record: BlobRecord, trigger: Trigger, now: datetime) -> BlobResult:
        assert record.run_id is not None
        log.warning("finishing an import whose run was never recorded", extra={"blob": record.name})
        run = self.lifecycle.new(record.run_id, RunKind.IMPORT, trigger, blob=record.name, now=now)
        return BlobResult(record.name, Outcome.IMPORT, record.reason, self.lifecycle.record_and_deploy(run))


def _log_decision(blob: BlobInfo, decision: Decision, records: list[BlobRecord], trigger: Trigger) -> None:
    context = {"blob": blob.name, "trigger": trigger.value, "outcome": decision.outcome.value}
    if decision.outcome is Outcome.WAITING:
        claims = sorted(import_records(blob, records), key=lambda r: r.decided_at)
        last_run = claims[-1].run_id if claims else None  # the last manual import that failed
        log.warning(
            "blob waits for a person: %s",
            decision.reason,
            extra={**context, "event": "blob.needs_attention", "run_id": last_run},
        )
    else:
        log.info("blob decision: %s (%s)", decision.outcome.value, decision.reason, extra=context)
