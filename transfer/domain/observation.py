"""What ARM's deployment and pipelineRun say about a run, as an Observation of it. Pure."""

from __future__ import annotations

from transfer.domain.arm_views import DeploymentState, PipelineRun
from transfer.domain.runs import Observation, RunStatus

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
        return _of_pipeline_run(pipeline_run, deployment)
    if deployment is not None:
        return _of_deployment(deployment)
    return None


def _of_pipeline_run(pipeline_run: PipelineRun, deployment: DeploymentState | None) -> Observation:
    status = _RUN_STATUS.get((pipeline_run.status or "").lower())
    if status is None:
        status = _DEPLOYMENT_TERMINAL.get((pipeline_run.provisioning_state or "").lower(), RunStatus.RUNNING)
    failed = status is RunStatus.FAILED
    failing = deployment if failed else None  # the deployment tells why a run failed, nothing else
    return Observation(
        status=status,
        pipeline_run_id=pipeline_run.id,
        progress=pipeline_run.progress,
        error=(pipeline_run.error or (failing.error if failing else None)) if failed else None,
        imported_artifacts=pipeline_run.imported_artifacts,
        catalog_digest=pipeline_run.catalog_digest,
        warning=pipeline_run.error if status is RunStatus.SUCCEEDED else None,
        error_codes=failing.error_codes if failing else (),
        correlation_id=failing.correlation_id if failing else None,
    )


def _of_deployment(deployment: DeploymentState) -> Observation:
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
