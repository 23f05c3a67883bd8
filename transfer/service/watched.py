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
from functools import partial

from transfer.domain import naming
from transfer.domain.errors import NotFound, PreconditionFailed
from transfer.domain.manifests import is_manifest
from transfer.domain.ports import BlobAction, BlobInfo, BlobRecord, BlobStore
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.domain.staleness import (
    MANIFEST_REASON,
    Decision,
    ImportAttempt,
    Outcome,
    SourceTriggerRun,
    content_version,
    decide,
    has_category,
    import_records,
    refresh_metadata,
)
from transfer.service.context import Context, Pass, Report
from transfer.service.starting import Starter

log = logging.getLogger("transfer")

REFRESH_RETRY_AFTER = timedelta(minutes=10)
# An import claim whose run record is missing after this long belongs to a worker that died in between:
# far longer than a claim-then-record takes in a live worker.
CLAIM_GRACE = timedelta(minutes=2)
MAX_EVIDENCE = 1000  # newest import runs read for source-trigger evidence
EVIDENCE_TTL = timedelta(minutes=1)


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
        self._evidence: tuple[datetime, list[SourceTriggerRun]] | None = None
        self._sweep_cursor: str | None = None  # the last blob the previous sweep reached

    def handle_blob(
        self, name: str, trigger: Trigger = Trigger.BLOB, info: BlobInfo | None = None
    ) -> BlobResult:
        blobs = self.context.require_import()
        name = naming.check_blob_name(name)
        if is_manifest(name):  # beside a transfer blob, read by verification; never imported
            return BlobResult(name, Outcome.NOTHING, MANIFEST_REASON)
        blob = info or blobs.get_properties(name)
        if blob is None:
            return BlobResult(name, Outcome.NOTHING, "the blob no longer exists")
        now = self.context.clock()
        decision, records, attempts = self._decide(blob, now)
        if decision.outcome is not Outcome.LEAVE:
            orphan = self._orphaned_import(blob, records, now)
            if orphan is not None:
                return self._resume_import(orphan, trigger, now)
        context = {"blob": name, "trigger": trigger.value, "outcome": decision.outcome.value}
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
        if decision.outcome is Outcome.REFRESH:
            return self._refresh(blobs, blob, decision, now)
        if decision.outcome is Outcome.IMPORT:
            attempt = 1 + max((a.attempt for a in attempts if a.failed), default=0)
            return self._import_blob(blob, decision, trigger, now, attempt)
        return BlobResult(name, decision.outcome, decision.reason)

    def _decide(
        self, blob: BlobInfo, now: datetime
    ) -> tuple[Decision, list[BlobRecord], list[ImportAttempt]]:
        """The 60-day decision for one blob, reading state only when the blob may need action: a fresh blob
        eligible for the source trigger costs no request at all (most of a sweep)."""
        trigger_enabled = self.context.pipeline("import").source_trigger_enabled
        rule = partial(decide, blob, trigger_enabled=trigger_enabled, policy=self.context.policy, now=now)
        quick = rule(records=[])
        if quick.outcome is Outcome.LEAVE or is_manifest(blob.name):
            return quick, [], []
        records = self.context.state.blob_records(blob.name)
        attempts = self._attempts(blob, records)
        rule = partial(
            rule,
            records=records,
            import_attempts=attempts,
            max_attempts=self.context.settings.import_max_attempts,
        )
        decision = rule()
        if decision.outcome in (Outcome.REFRESH, Outcome.IMPORT) and trigger_enabled:
            # Only a blob about to be acted on pays for the evidence: what the source trigger started lately.
            decision = rule(source_trigger_runs=self._source_trigger_runs(now))
        return decision, records, attempts

    def _attempts(self, blob: BlobInfo, records: list[BlobRecord]) -> list[ImportAttempt]:
        """The manual imports of this version so far, as their run records say now."""
        found = []
        for record in import_records(blob, records):
            run = self.context.state.get_run(record.run_id) if record.run_id else None
            if run is None:
                continue  # claimed, never recorded: the orphan path finishes it
            failed = run.status in (RunStatus.FAILED, RunStatus.CANCELED)
            found.append(ImportAttempt(run.attempt, failed, run.finished_at, run.error_cause or run.error))
        if found and any(attempt.failed for attempt in found):
            found += self._imports_by_hand(blob)
        return found

    def _imports_by_hand(self, blob: BlobInfo) -> list[ImportAttempt]:
        """Imports a person started for this blob since its last write (POST /api/imports, the CLI): one
        running or succeeded ends the retries and the wait, as the app's own would. Counted as the first
        attempt, so a failed one adds no failure. Read only for a blob whose manual imports failed."""
        by_hand = (Trigger.HTTP, Trigger.CLI)
        return [
            ImportAttempt(1, run.status in (RunStatus.FAILED, RunStatus.CANCELED), run.finished_at, run.error)
            for run in self.context.state.list_runs(kind=RunKind.IMPORT, top=MAX_EVIDENCE)
            if run.blob == blob.name and run.trigger in by_hand and run.created_at >= blob.last_modified
        ]

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
        decision, _, _ = self._decide(blob, now)
        records = state.blob_records(name)
        trigger_enabled = self.context.pipeline("import").source_trigger_enabled
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
        """The source-trigger runs reconcile recorded (their createdAt is the trigger's own timestamp), with
        their blob where ARM named one; read once a minute at most, so a sweep of many aged blobs reads
        them once."""
        if self._evidence is not None and now - self._evidence[0] < EVIDENCE_TTL:
            return self._evidence[1]
        runs = [
            SourceTriggerRun(
                run.created_at, run.blob, failed=run.status in (RunStatus.FAILED, RunStatus.CANCELED)
            )
            for run in self.context.state.list_runs(kind=RunKind.IMPORT, top=MAX_EVIDENCE)
            if run.trigger is Trigger.SOURCE
        ]
        self._evidence = (now, runs)
        return runs

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

    def _import_blob(
        self, blob: BlobInfo, decision: Decision, trigger: Trigger, now: datetime, attempt: int = 1
    ) -> BlobResult:
        run_id = naming.run_id(RunKind.IMPORT, now, self.context.token())
        if not self.context.state.claim_blob(decision.record(blob, BlobAction.IMPORT, now, run_id)):
            return BlobResult(
                blob.name, Outcome.NOTHING, "an import of this blob version is already recorded"
            )
        run = self.starter.new_run(run_id, RunKind.IMPORT, trigger, uuid.uuid4().hex, now, blob=blob.name)
        run = replace(run, attempt=attempt)
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
        """Apply the 60-day rule to every blob in the watched container (blobs age without events). Each
        blob on its own: an error is recorded against it and the sweep goes on; a pass cut short by its
        budget or by throttling starts after the last blob it reached next time."""
        blobs = self.context.require_import()
        report = Report()
        work = Pass(self.context, report)
        earlier: list[BlobInfo] = []  # up to the last blob the previous sweep reached: looked at last
        listing = blobs.list_blobs()
        for blob in [*(b for b in listing if self._after_cursor(b, earlier)), *earlier]:
            if is_manifest(blob.name):
                report.counts["manifest"] += 1
                continue
            if not work.may_continue(arm=False):
                report.counts["not-reached"] += 1
                continue
            result = work.item(
                f"blob {blob.name!r}", partial(self.handle_blob, blob.name, Trigger.SWEEP, blob)
            )
            self._sweep_cursor = blob.name
            if result is None:
                continue
            report.counts[result.outcome.value] += 1
            if result.outcome in (Outcome.REFRESH, Outcome.IMPORT, Outcome.WAITING):
                report.items.append(
                    {
                        "blob": blob.name,
                        "outcome": result.outcome.value,
                        "run": result.run.id if result.run else None,
                    }
                )
        if report.counts["not-reached"]:
            report.errors.append(
                f"{report.counts['not-reached']} blobs left for the next sweep: {work.stopped}"
            )
        return report

    def _after_cursor(self, blob: BlobInfo, earlier: list[BlobInfo]) -> bool:
        if self._sweep_cursor is not None and blob.name <= self._sweep_cursor:
            earlier.append(blob)
            return False
        return True


def _next_step(decision: Decision, stale_action: str) -> str:
    if decision.outcome is Outcome.LEAVE:
        return "none: the import pipeline's source trigger imports it while it is eligible"
    if decision.outcome is Outcome.REFRESH:
        return "its next event or the sweep merges a metadata key, so the source trigger imports it again"
    if decision.outcome is Outcome.IMPORT:
        return "its next event or the sweep starts a manual import run"
    if decision.outcome is Outcome.WAITING:
        return "a person: the app will not try again for this version of the blob"
    return f"none ({decision.reason})"
