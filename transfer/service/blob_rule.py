"""The 60-day rule applied to one blob of the watched container with what the app knows of it: its blob
records, the manual imports of this version so far, and what the source trigger started lately. The blob
events, the sweep and the diagnosis decide through it, so they decide alike."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from transfer.domain.manifests import is_manifest
from transfer.domain.ports import BlobRecords, RunStore
from transfer.domain.records import BlobAction, BlobInfo, BlobRecord
from transfer.domain.runs import RunKind, RunStatus, Trigger
from transfer.domain.settings import Settings
from transfer.domain.staleness import (
    Decision,
    ImportAttempt,
    Outcome,
    Policy,
    SourceTriggerRun,
    content_version,
    decide,
    import_records,
)
from transfer.service.memory import WorkerMemory
from transfer.service.pipelines import Pipelines

# An import claim whose run record is missing after this long belongs to a worker that died in between:
# far longer than a claim-then-record takes in a live worker.
CLAIM_GRACE = timedelta(minutes=2)
MAX_EVIDENCE = 1000  # newest import runs read for source-trigger evidence
EVIDENCE_TTL = timedelta(minutes=1)


def failed(status: RunStatus) -> bool:
    return status in (RunStatus.FAILED, RunStatus.CANCELED)


class BlobRule:
    def __init__(
        self,
        settings: Settings,
        pipelines: Pipelines,
        records: BlobRecords,
        runs: RunStore,
        memory: WorkerMemory,
    ) -> None:
        self.settings = settings
        self.pipelines = pipelines
        self.records = records
        self.runs = runs
        self.memory = memory
        self.policy = Policy.of(settings.window_days, settings.margin_hours, settings.stale_action)

    def trigger_enabled(self) -> bool:
        return self.pipelines.get("import").source_trigger_enabled

    def decide(
        self, blob: BlobInfo, now: datetime, *, on_arrival: bool = False
    ) -> tuple[Decision, list[BlobRecord], list[ImportAttempt]]:
        """The 60-day decision for one blob, reading state only when the blob may need action: a fresh blob
        eligible for the source trigger costs no request at all (most of a sweep). `on_arrival`: the
        blob's own event with TRANSFER_IMPORT_ON_ARRIVAL, imported whatever its age."""
        trigger_enabled = self.trigger_enabled()
        rule = partial(
            decide, blob, trigger_enabled=trigger_enabled, policy=self.policy, now=now, on_arrival=on_arrival
        )
        quick = rule(records=[])
        if quick.outcome is Outcome.LEAVE or is_manifest(blob.name):
            return quick, [], []
        records = self.records.blob_records(blob.name)
        attempts = self._attempts(blob, records)
        rule = partial(
            rule, records=records, import_attempts=attempts, max_attempts=self.settings.import_max_attempts
        )
        decision = rule()
        if decision.outcome in (Outcome.REFRESH, Outcome.IMPORT) and trigger_enabled and not on_arrival:
            # Only a blob about to be acted on pays for the evidence: what the source trigger started lately.
            decision = rule(source_trigger_runs=self._source_trigger_runs(now))
        return decision, records, attempts

    def _attempts(self, blob: BlobInfo, records: list[BlobRecord]) -> list[ImportAttempt]:
        """The manual imports of this version so far, as their run records say now."""
        found = []
        for record in import_records(blob, records):
            run = self.runs.get_run(record.run_id) if record.run_id else None
            if run is None:
                continue  # claimed, never recorded: the orphan path finishes it
            found.append(
                ImportAttempt(run.attempt, failed(run.status), run.finished_at, run.error_cause or run.error)
            )
        if found and any(attempt.failed for attempt in found):
            found += self._imports_by_hand(blob)
        return found

    def _imports_by_hand(self, blob: BlobInfo) -> list[ImportAttempt]:
        """Imports a person started for this blob since its last write (POST /api/imports, the CLI): one
        running or succeeded ends the retries and the wait, as the app's own would. Counted as the first
        attempt, so a failed one adds no failure. Read only for a blob whose manual imports failed."""
        by_hand = (Trigger.HTTP, Trigger.CLI)
        return [
            ImportAttempt(1, failed(run.status), run.finished_at, run.error)
            for run in self.runs.list_runs(kind=RunKind.IMPORT, top=MAX_EVIDENCE)
            if run.blob == blob.name and run.trigger in by_hand and run.created_at >= blob.last_modified
        ]

    def _source_trigger_runs(self, now: datetime) -> list[SourceTriggerRun]:
        """The source-trigger runs reconcile recorded (their createdAt is the trigger's own timestamp), with
        their blob where ARM named one; read once a minute at most, so a sweep of many aged blobs reads
        them once."""
        cached = self.memory.evidence
        if cached is not None and now - cached[0] < EVIDENCE_TTL:
            return cached[1]
        runs = [
            SourceTriggerRun(run.created_at, run.blob, failed=failed(run.status))
            for run in self.runs.list_runs(kind=RunKind.IMPORT, top=MAX_EVIDENCE)
            if run.trigger is Trigger.SOURCE
        ]
        self.memory.evidence = (now, runs)
        return runs

    def orphaned_import(self, blob: BlobInfo, records: list[BlobRecord], now: datetime) -> BlobRecord | None:
        """An import claimed for this version whose run was never recorded: the worker died in between.
        A claim younger than the grace may belong to a worker still busy with it."""
        version = content_version(blob)
        for record in records:
            if (
                record.action is BlobAction.IMPORT
                and record.run_id
                and record.key.endswith(version)
                and now - record.decided_at > CLAIM_GRACE
                and self.runs.get_run(record.run_id) is None
            ):
                return record
        return None
