"""The watched container on the target side: one blob's event, the refresh or manual import the 60-day
rule asks for, and the sweep that applies the rule to blobs that aged without an event.

Each action is claimed by a blob record keyed by the blob's content version before it happens: a repeated
event, a racing handler or the app's own refresh firing the trigger again finds the claim and does nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from transfer import naming
from transfer.errors import InvalidInput, NotFound, PreconditionFailed
from transfer.ports import BlobAction, BlobInfo, BlobRecord, BlobStore
from transfer.runs import Run, RunKind, RunStatus, Trigger
from transfer.service.context import TRANSIENT_ERRORS, Context, Report
from transfer.service.starting import Starter
from transfer.staleness import (
    Decision,
    Outcome,
    SourceTriggerRun,
    content_version,
    decide,
    has_category,
    refresh_metadata,
)

log = logging.getLogger("transfer")

REFRESH_RETRY_AFTER = timedelta(minutes=10)
# An import claim whose run record is missing after this long belongs to a worker that died in between:
# far longer than a claim-then-record takes in a live worker.
CLAIM_GRACE = timedelta(minutes=2)
MAX_EVIDENCE = 1000  # newest import runs read for source-trigger evidence


@dataclass(frozen=True)
class BlobResult:
    blob: str
    outcome: Outcome
    reason: str
    run: Run | None = None


@dataclass(frozen=True)
class BlobDiagnosis:
    """What the app knows and will do about one blob of the watched container (GET /api/blobs/{name})."""

    blob: BlobInfo
    age: timedelta
    content_md5: bool
    category: bool
    trigger_enabled: bool
    decision: Decision
    records: list[BlobRecord]
    runs: list[Run]
    next_step: str


class WatchedContainer:
    def __init__(self, context: Context, starter: Starter) -> None:
        self.context = context
        self.starter = starter

    def handle_blob(
        self, name: str, trigger: Trigger = Trigger.BLOB, info: BlobInfo | None = None
    ) -> BlobResult:
        blobs = self.context.require_import()
        name = naming.check_blob_name(name)
        blob = info or blobs.get_properties(name)
        if blob is None:
            return BlobResult(name, Outcome.NOTHING, "the blob no longer exists")
        now = self.context.clock()
        records = self.context.state.blob_records(name)
        orphan = self._orphaned_import(blob, records, now)
        if orphan is not None:
            return self._resume_import(orphan, trigger, now)
        trigger_enabled = self.context.pipeline("import").source_trigger_enabled
        decision = decide(
            blob, trigger_enabled=trigger_enabled, policy=self.context.policy, now=now, records=records
        )
        if decision.outcome in (Outcome.REFRESH, Outcome.IMPORT) and trigger_enabled:
            # Only a blob about to be acted on pays for the evidence: what the source trigger started lately.
            decision = decide(
                blob,
                trigger_enabled=trigger_enabled,
                policy=self.context.policy,
                now=now,
                records=records,
                source_trigger_runs=self._source_trigger_runs(now),
            )
        context = {"blob": name, "trigger": trigger.value, "outcome": decision.outcome.value}
        log.info("blob decision: %s (%s)", decision.outcome.value, decision.reason, extra=context)
        if decision.outcome is Outcome.LEAVE:
            self.context.state.claim_blob(decision.record(blob, BlobAction.SOURCE_TRIGGER, now))
            return BlobResult(name, decision.outcome, decision.reason)
        if decision.outcome is Outcome.REFRESH:
            return self._refresh(blobs, blob, decision, now)
        if decision.outcome is Outcome.IMPORT:
            return self._import_blob(blob, decision, trigger, now)
        return BlobResult(name, decision.outcome, decision.reason)

    def diagnose(self, name: str) -> BlobDiagnosis:
        """The 60-day diagnosis of one blob, decided exactly as its next event or sweep would decide."""
        blobs = self.context.require_import()
        name = naming.check_blob_name(name)
        blob = blobs.get_properties(name)
        if blob is None:
            raise NotFound(
                f"blob {name!r} is not in container {self.context.settings.target_container}", target="name"
            )
        now = self.context.clock()
        state = self.context.state
        records = state.blob_records(name)
        trigger_enabled = self.context.pipeline("import").source_trigger_enabled
        evidence = self._source_trigger_runs(now) if trigger_enabled else []
        decision = decide(
            blob,
            trigger_enabled=trigger_enabled,
            policy=self.context.policy,
            now=now,
            records=records,
            source_trigger_runs=evidence,
        )
        run_ids = dict.fromkeys(r.run_id for r in records if r.run_id)
        runs = [run for run in (state.get_run(run_id) for run_id in run_ids if run_id) if run is not None]
        return BlobDiagnosis(
            blob=blob,
            age=now - blob.last_modified,
            content_md5=blob.content_md5 is not None,
            category=has_category(blob),
            trigger_enabled=trigger_enabled,
            decision=decision,
            records=records,
            runs=runs,
            next_step=_next_step(decision, self.context.settings.stale_action.value),
        )

    def _source_trigger_runs(self, now: datetime) -> list[SourceTriggerRun]:
        """The source-trigger runs of the window that reconcile recorded (their createdAt is the trigger's
        own timestamp), with their blob where ARM named one."""
        since = now - self.context.policy.window
        return [
            SourceTriggerRun(
                run.created_at, run.blob, failed=run.status in (RunStatus.FAILED, RunStatus.CANCELED)
            )
            for run in self.context.state.list_runs(kind=RunKind.IMPORT, top=MAX_EVIDENCE)
            if run.trigger is Trigger.SOURCE and run.created_at >= since
        ]

    def _refresh(self, blobs: BlobStore, blob: BlobInfo, decision: Decision, now: datetime) -> BlobResult:
        state = self.context.state
        record = decision.record(blob, BlobAction.REFRESH, now)
        if not state.claim_blob(record):
            stored = next((r for r in state.blob_records(blob.name) if r.key == decision.lock_key), None)
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
        state.update_blob_record(replace(record, reason=f"refreshed: {decision.reason}"))
        log.info(
            "blob refreshed for the source trigger",
            extra={"blob": blob.name, "last_modified": refreshed.last_modified.isoformat()},
        )
        return BlobResult(blob.name, Outcome.REFRESH, decision.reason)

    def _import_blob(self, blob: BlobInfo, decision: Decision, trigger: Trigger, now: datetime) -> BlobResult:
        run_id = naming.run_id(RunKind.IMPORT, now, self.context.token())
        if not self.context.state.claim_blob(decision.record(blob, BlobAction.IMPORT, now, run_id)):
            return BlobResult(
                blob.name, Outcome.NOTHING, "an import of this blob version is already recorded"
            )
        run = self.starter.new_run(run_id, RunKind.IMPORT, trigger, uuid.uuid4().hex, now, blob=blob.name)
        return BlobResult(blob.name, Outcome.IMPORT, decision.reason, self.starter.record_and_deploy(run))

    def _orphaned_import(self, blob: BlobInfo, records: list[BlobRecord], now: datetime) -> BlobRecord | None:
        """An import claimed for this version whose run was never recorded: the worker died in between.
        A claim younger than the grace may belong to a worker still busy with it."""
        version = content_version(blob)
        for record in records:
            if (
                record.action is BlobAction.IMPORT
                and record.run_id
                and record.key.endswith(version)
                and now - record.decided_at > CLAIM_GRACE
                and self.context.state.get_run(record.run_id) is None
            ):
                return record
        return None

    def _resume_import(self, record: BlobRecord, trigger: Trigger, now: datetime) -> BlobResult:
        assert record.run_id is not None
        log.warning("finishing an import whose run was never recorded", extra={"blob": record.name})
        run = self.starter.new_run(
            record.run_id, RunKind.IMPORT, trigger, uuid.uuid4().hex, now, blob=record.name
        )
        return BlobResult(record.name, Outcome.IMPORT, record.reason, self.starter.record_and_deploy(run))

    def sweep(self) -> Report:
        """Apply the 60-day rule to every blob in the watched container (blobs age without events)."""
        blobs = self.context.require_import()
        report = Report()
        for blob in blobs.list_blobs():
            try:
                result = self.handle_blob(blob.name, Trigger.SWEEP, info=blob)
            except (
                InvalidInput,
                *TRANSIENT_ERRORS,
            ) as exc:  # one odd blob never stops the sweep of the others
                report.errors.append(f"{blob.name!r}: {exc.message}")
                continue
            report.counts[result.outcome.value] += 1
            if result.outcome in (Outcome.REFRESH, Outcome.IMPORT):
                report.items.append(
                    {
                        "blob": blob.name,
                        "outcome": result.outcome.value,
                        "run": result.run.id if result.run else None,
                    }
                )
        return report


def _next_step(decision: Decision, stale_action: str) -> str:
    if decision.outcome is Outcome.LEAVE:
        return "none: the import pipeline's source trigger imports it while it is eligible"
    if decision.outcome is Outcome.REFRESH:
        return "its next event or the sweep merges a metadata key, so the source trigger imports it again"
    if decision.outcome is Outcome.IMPORT:
        return "its next event or the sweep starts a manual import run"
    return f"none ({decision.reason})"
