"""How a run and the health checks look to users: one rendering for the HTTP API and the CLI
(the run JSON of README.md's HTTP API)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from transfer.domain.runs import Run

if TYPE_CHECKING:
    from transfer.service import BlobDiagnosis, Check


def _check_json(check: Check) -> dict[str, Any]:
    found: dict[str, Any] = {"name": check.name, "ok": check.ok, "detail": check.detail}
    if check.cause is not None:  # a known cause: the code runs' errorCause uses, and what to do
        found["errorCause"], found["hint"] = check.cause.code, check.cause.hint
    return found


def health_json(checks: list[Check]) -> dict[str, Any]:
    healthy = all(check.ok for check in checks)
    return {
        "status": "healthy" if healthy else "unhealthy",
        "checks": [_check_json(c) for c in checks],
    }


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_json(run: Run, base: str | None = None) -> dict[str, Any]:
    """The run with the fields README.md's HTTP API names; `url` only when answering an HTTP request."""
    body: dict[str, Any] = {
        "id": run.id,
        "kind": run.kind.value,
        "trigger": run.trigger.value,
        "status": run.status.value,
        "artifacts": list(run.artifacts),
        "blob": run.blob,
        "pipelineRunId": run.pipeline_run_id,
        "deploymentName": run.deployment_name or None,
        "progress": run.progress,
        "importedArtifacts": list(run.imported_artifacts),
        "error": run.error,
        "createdAt": timestamp(run.created_at),
        "updatedAt": timestamp(run.updated_at),
        "finishedAt": timestamp(run.finished_at),
        "cleanedUp": run.cleaned_up,
        "owned": run.owned,
        "requestId": run.request_id,
        "copyStatus": run.copy_status.value if run.copy_status else None,
        "copyError": run.copy_error,
        "errorCause": run.error_cause,
        "hint": run.hint,
        "correlationId": run.correlation_id,
        "warning": run.warning,
        "attempt": run.attempt,
        "skippedArtifacts": list(run.skipped_artifacts),
        "manifest": run.manifest,
        "verification": run.verification,
        "verificationDetail": run.verification_detail,
    }
    if base is not None:
        body["url"] = f"{base}runs/{run.id}"
    return body


def blob_json(diagnosis: BlobDiagnosis, base: str | None = None) -> dict[str, Any]:
    """GET /api/blobs/{name}: the blob as the 60-day rule sees it, the decision and what happens next."""
    blob = diagnosis.blob
    return {
        "name": blob.name,
        "lastModified": timestamp(blob.last_modified),
        "ageDays": round(diagnosis.age.total_seconds() / 86400, 2),
        "size": blob.size,
        "contentMd5": diagnosis.content_md5,
        "category": diagnosis.category,
        "sourceTrigger": "Enabled" if diagnosis.trigger_enabled else "Disabled",
        "decision": diagnosis.decision.outcome.value,
        "reason": diagnosis.decision.reason,
        "next": diagnosis.next_step,
        "records": [
            {
                "action": r.action.value,
                "decidedAt": timestamp(r.decided_at),
                "runId": r.run_id,
                "reason": r.reason,
            }
            for r in diagnosis.records
        ],
        "runs": [run_json(run, base) for run in diagnosis.runs],
    }
