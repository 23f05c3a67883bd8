"""The run record and its state machine: pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from transfer.domain.arm_views import DeploymentState, PipelineRun


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
    error_cause: str | None = None  # a known failure cause (transfer.domain.causes), beside the raw error
    hint: str | None = None  # what to do about it
    correlation_id: str | None = None  # ARM's x-ms-correlation-request-id of the failing call
    warning: str | None = None  # a succeeded run's message (ContinueOnErrors skipped something)
    attempt: int = 1  # manual imports: which try of this blob version
    skipped_artifacts: tuple[str, ...] = ()  # asked for (the manifest) but not in importedArtifacts
    digests: tuple[tuple[str, str], ...] = ()  # export: (repo:tag, digest) as expanded, for the manifest
    manifest: str | None = None  # the manifest blob written beside the export / read for the import
    verification: str | None = None  # pending, passed, failed, unavailable
    verification_detail: str | None = None  # what differs, or why it is unavailable
    missing_since: datetime | None = None  # when ARM first showed neither deployment nor pipelineRun
    delete_started: datetime | None = None  # cleanup: when ARM accepted deletes it had not finished
    etag: str | None = field(default=None, compare=False)


def awaits_copy(run: Run) -> bool:
    """A finished export whose copy to the target container has not settled: reconcile still follows it."""
    return run.copy_status in (CopyStatus.QUEUED, CopyStatus.STARTING, CopyStatus.PENDING)


def advance(current: RunStatus, observed: RunStatus) -> RunStatus:
    """Runs only move forward: a terminal run stays as it is, and a stale read never moves a run back."""
    if current.terminal or _RANK[observed] < _RANK[current]:
        return current
    return observed


@dataclass(frozen=True)
class Observation:
    """What ARM says about a run, reduced to the fields we record."""

    status: RunStatus
    pipeline_run_id: str | None = None
    progress: str | None = None
    error: str | None = None
    imported_artifacts: tuple[str, ...] = ()
    warning: str | None = None  # a succeeded run's pipelineRunErrorMessage (ContinueOnErrors)
    error_codes: tuple[str, ...] = ()  # the deployment's nested error codes, for the failure cause
    correlation_id: str | None = None
    missing: bool = False  # the deployment succeeded but ARM shows no pipelineRun: maybe not yet


_RUN_STATUS = {
    "succeeded": RunStatus.SUCCEEDED,
    "failed": RunStatus.FAILED,
    "canceled": RunStatus.CANCELED,
    "cancelled": RunStatus.CANCELED,
}
_DEPLOYMENT_TERMINAL = {"failed": RunStatus.FAILED, "canceled": RunStatus.CANCELED}


def observation(deployment: DeploymentState | None, pipeline_run: PipelineRun | None) -> Observation | None:
    """Map ARM's deployment and pipelineRun state to ours; None when ARM knows nothing of the run yet.

    `response.status` is a free string in the REST spec: unknown values count as still running.
    """
    if pipeline_run is not None:
        status = _RUN_STATUS.get((pipeline_run.status or "").lower())
        if status is None:
            status = _DEPLOYMENT_TERMINAL.get(
                (pipeline_run.provisioning_state or "").lower(), RunStatus.RUNNING
            )
        failed = status is RunStatus.FAILED
        error = pipeline_run.error if failed else None
        if failed and error is None and deployment is not None:
            error = deployment.error
        return Observation(
            status=status,
            pipeline_run_id=pipeline_run.id,
            progress=pipeline_run.progress,
            error=error,
            imported_artifacts=pipeline_run.imported_artifacts,
            warning=pipeline_run.error if status is RunStatus.SUCCEEDED else None,
            error_codes=deployment.error_codes if failed and deployment is not None else (),
            correlation_id=deployment.correlation_id if failed and deployment is not None else None,
        )
    if deployment is not None:
        state = deployment.provisioning_state.lower()
        if state in _DEPLOYMENT_TERMINAL:
            return Observation(
                status=_DEPLOYMENT_TERMINAL[state],
                error=deployment.error,
                error_codes=deployment.error_codes,
                correlation_id=deployment.correlation_id,
            )
        if state == "succeeded":
            return Observation(
                status=RunStatus.FAILED,
                error="the deployment succeeded but its pipelineRun is gone",
                correlation_id=deployment.correlation_id,
                missing=True,
            )
        return Observation(status=RunStatus.DEPLOYING)
    return None


def with_observation(run: Run, seen: Observation, now: datetime) -> Run:
    """The run after recording an observation; unchanged fields keep their values."""
    status = advance(run.status, seen.status)
    if run.status.terminal:
        return run
    return replace(
        run,
        status=status,
        pipeline_run_id=seen.pipeline_run_id or run.pipeline_run_id,
        progress=seen.progress if seen.progress is not None else run.progress,
        error=seen.error or run.error,
        imported_artifacts=seen.imported_artifacts or run.imported_artifacts,
        warning=seen.warning or run.warning,
        correlation_id=seen.correlation_id or run.correlation_id,
        missing_since=None,
        updated_at=now,
        finished_at=now if status.terminal else None,
    )
