"""The run record and its transitions: pure, no I/O, the clock passed in. Every change of a run is a
method here that returns the new run; the service decides when, the run says what changes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from transfer.domain.causes import TIMED_OUT, Cause
from transfer.domain.manifests import Verification


class RunKind(StrEnum):
    EXPORT = "export"
    IMPORT = "import"


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    HTTP = "http"
    BLOB = "blob"
    SWEEP = "sweep"
    CLI = "cli"
    SOURCE = "source"  # started by the import pipeline's own source trigger; observed, not created by us
    PUSH = "push"  # an export of pushes the registry reported (Event Grid ImagePushed)


class RunStatus(StrEnum):
    ACCEPTED = "Accepted"
    DEPLOYING = "Deploying"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED})
_RANK = {
    RunStatus.ACCEPTED: 0,
    RunStatus.DEPLOYING: 1,
    RunStatus.RUNNING: 2,
    RunStatus.SUCCEEDED: 3,
    RunStatus.FAILED: 3,
    RunStatus.CANCELED: 3,
}


class CopyStatus(StrEnum):
    QUEUED = "queued"  # ours: the export succeeded and its copy is still to start
    STARTING = "starting"  # ours: a worker claimed the copy and is starting it
    PENDING = "pending"
    SUCCEEDED = "success"
    FAILED = "failed"
    ABORTED = "aborted"


_COPY_UNSETTLED = (CopyStatus.QUEUED, CopyStatus.STARTING, CopyStatus.PENDING)


def advance(current: RunStatus, observed: RunStatus) -> RunStatus:
    """Runs only move forward: a terminal run stays as it is, and a stale read never moves a run back."""
    if current.terminal or _RANK[observed] < _RANK[current]:
        return current
    return observed


@dataclass(frozen=True)
class Observation:
    """What ARM says about a run, reduced to the fields we record (transfer/domain/observation.py)."""

    status: RunStatus
    pipeline_run_id: str | None = None
    progress: str | None = None
    error: str | None = None
    imported_artifacts: tuple[str, ...] = ()
    warning: str | None = None  # a succeeded run's pipelineRunErrorMessage (ContinueOnErrors)
    error_codes: tuple[str, ...] = ()  # the deployment's nested error codes, for the failure cause
    correlation_id: str | None = None
    missing: bool = False  # the deployment succeeded but ARM shows no pipelineRun: maybe not yet


@dataclass(frozen=True)
class Run:
    id: str
    kind: RunKind
    trigger: Trigger
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    request_id: str
    deployment_name: str
    artifacts: tuple[str, ...] = ()
    blob: str | None = None
    pipeline_run_id: str | None = None
    progress: str | None = None
    imported_artifacts: tuple[str, ...] = ()
    error: str | None = None
    finished_at: datetime | None = None
    cleaned_up: bool = False
    owned: bool = True  # False for runs the source trigger started: cleanup never deletes them
    copy_status: CopyStatus | None = None
    copy_error: str | None = None
    error_cause: str | None = None  # a known failure cause (transfer/domain/causes.py), beside the raw error
    hint: str | None = None  # what to do about it
    correlation_id: str | None = None  # ARM's x-ms-correlation-request-id of the failing call
    warning: str | None = None  # a succeeded run's message (ContinueOnErrors skipped something)
    attempt: int = 1  # manual imports: which try of this blob version
    skipped_artifacts: tuple[str, ...] = ()  # asked for (the manifest) but not in importedArtifacts
    digests: tuple[tuple[str, str], ...] = ()  # export: (repo:tag, digest) as expanded, for the manifest
    manifest: str | None = None  # the manifest blob written beside the export / read for the import
    verification: Verification | None = None  # an import's: pending until it succeeds
    verification_detail: str | None = None  # what differs, or why it is unavailable
    missing_since: datetime | None = None  # when ARM first showed neither deployment nor pipelineRun
    delete_started: datetime | None = None  # cleanup: when ARM accepted deletes it had not finished
    etag: str | None = field(default=None, compare=False)

    # ---- what the run is ----

    @property
    def awaits_copy(self) -> bool:
        """A finished export whose copy to the target container has not settled: reconcile follows it."""
        return self.copy_status in _COPY_UNSETTLED

    @property
    def awaits_deployment(self) -> bool:
        """Recorded by the app, its deployment not sent yet (or not seen by ARM yet)."""
        return self.status is RunStatus.ACCEPTED and self.owned

    def succeeded_since(self, before: Run | None) -> bool:
        """It is Succeeded now and was not finished in `before` (None: a run seen for the first time)."""
        return self.status is RunStatus.SUCCEEDED and (before is None or not before.status.terminal)

    def same_as(self, other: Run) -> bool:
        """Nothing but the time of the last update differs."""
        return self == replace(other, updated_at=self.updated_at)

    # ---- transitions: each returns the new run ----

    def touched(self, now: datetime) -> Run:
        """As written now: a run turning terminal records when it finished."""
        finished = self.finished_at or (now if self.status.terminal else None)
        return replace(self, updated_at=now, finished_at=finished)

    def observed(self, seen: Observation, now: datetime) -> Run:
        """After recording what ARM shows; unchanged fields keep their values, a finished run stays."""
        if self.status.terminal:
            return self
        status = advance(self.status, seen.status)
        return replace(
            self,
            status=status,
            pipeline_run_id=seen.pipeline_run_id or self.pipeline_run_id,
            progress=seen.progress if seen.progress is not None else self.progress,
            error=seen.error or self.error,
            imported_artifacts=seen.imported_artifacts or self.imported_artifacts,
            warning=seen.warning or self.warning,
            correlation_id=seen.correlation_id or self.correlation_id,
            missing_since=None,
            updated_at=now,
            finished_at=now if status.terminal else None,
        )

    def timed_out(self, now: datetime, hours: int) -> Run:
        """Failed as TimedOut when still active `hours` after it was created; else unchanged."""
        if self.status.terminal or now - self.created_at <= timedelta(hours=hours):
            return self
        return replace(
            self,
            status=RunStatus.FAILED,
            error=f"still {self.status.value} after {hours} hours (TRANSFER_RUN_TIMEOUT_HOURS)",
            error_cause=TIMED_OUT.code,
            hint=TIMED_OUT.hint,
            finished_at=now,
        )

    @property
    def needs_cause(self) -> bool:
        return self.status is RunStatus.FAILED and self.error_cause is None

    def with_cause(self, cause: Cause | None) -> Run:
        return replace(self, error_cause=cause.code, hint=cause.hint) if cause else self

    def verification_settled(self) -> Run:
        """A failed or canceled import imported nothing to verify: no verification is pending any more."""
        ended = self.status in (RunStatus.FAILED, RunStatus.CANCELED)
        return (
            replace(self, verification=None) if ended and self.verification is Verification.PENDING else self
        )

    def verified(
        self, verification: Verification, detail: str, skipped: tuple[str, ...], manifest: str | None
    ) -> Run:
        return replace(
            self,
            verification=verification,
            verification_detail=detail,
            skipped_artifacts=skipped,
            manifest=manifest,
        )

    def with_warning(self, warning: str) -> Run:
        """The run with `warning` added to any warning it has."""
        return replace(self, warning=f"{self.warning}; {warning}" if self.warning else warning)

    def with_manifest(self, manifest: str | None) -> Run:
        return replace(self, manifest=manifest)

    def deploying(self) -> Run:
        return replace(self, status=RunStatus.DEPLOYING, warning=None)  # a deferral note is over

    def deployment_deferred(self, why: str) -> Run:
        return replace(self, warning=f"not deployed yet ({why}); reconcile deploys it on its next pass")

    def rejected(self, why: str) -> Run:
        return replace(self, status=RunStatus.FAILED, error=why)

    def missing(self, now: datetime) -> Run:
        """ARM showed nothing for it at `now`: believed only after a grace period."""
        return replace(self, missing_since=now)

    def lost(self) -> Run:
        return replace(
            self,
            status=RunStatus.FAILED,
            error="ARM has no deployment or pipelineRun for it (read again after the grace period)",
            missing_since=None,
        )

    def copy_queued(self) -> Run:
        return replace(self, copy_status=CopyStatus.QUEUED)

    def copy_claimed(self, now: datetime) -> Run:
        return replace(self, copy_status=CopyStatus.STARTING, updated_at=now)

    def copy_reported(self, status: CopyStatus, error: str | None) -> Run:
        return replace(self, copy_status=status, copy_error=error)

    def copy_failed(self, why: str) -> Run:
        return replace(self, copy_status=CopyStatus.FAILED, copy_error=why)

    def deletes_sent(self, now: datetime) -> Run:
        return replace(self, delete_started=now)

    def cleaned(self) -> Run:
        return replace(self, cleaned_up=True, delete_started=None)
