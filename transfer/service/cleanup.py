"""Cleanup: delete the pipelineRun and deployment of the app's own finished runs past the retention (the
resource group keeps at most 800 deployments), and delete one run's on request. A run is marked cleaned up
only once ARM shows both gone: a delete that failed later is tried again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from transfer.domain import naming
from transfer.domain.arm_views import ids_equal
from transfer.domain.errors import Conflict
from transfer.domain.ports import Deployments, PipelineResources, RunIndex
from transfer.domain.runs import Run
from transfer.domain.settings import Settings
from transfer.service.lifecycle import RunLifecycle
from transfer.service.memory import WorkerMemory
from transfer.service.passes import Pass, Report, rotated

log = logging.getLogger("transfer")

REDELETE_AFTER = timedelta(minutes=30)  # deletes ARM accepted but did not finish are sent again after this


class DeleteRunResources:
    """Delete a run's pipelineRun and deployment (only the app's own). ARM may answer 202 and delete later,
    or fail later: then the run records when its deletes went out, the next passes look (a read each) until
    both are gone, and after REDELETE_AFTER they are sent again."""

    def __init__(
        self,
        settings: Settings,
        deployments: Deployments,
        resources: PipelineResources,
        lifecycle: RunLifecycle,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.deployments = deployments
        self.resources = resources
        self.lifecycle = lifecycle
        self.clock = clock

    def __call__(self, run: Run) -> Run:
        resource_id, deployment = self._ours(run)
        now = self.clock()
        if run.delete_started is not None and now - run.delete_started < REDELETE_AFTER:
            if self._left(resource_id, deployment):
                return run
        else:
            left = self._delete(resource_id, deployment)
            if left:
                log.info("run resources being deleted: %s", ", ".join(left), extra={"run_id": run.id})
                return self.lifecycle.save(run.deletes_sent(now))
        log.info("run resources deleted", extra={"run_id": run.id})
        return self.lifecycle.save(run.cleaned())

    def _ours(self, run: Run) -> tuple[str | None, str | None]:
        """The run's pipelineRun and deployment, each only where the app made it."""
        own_run_id = f"{self.settings.registry_id}/pipelineRuns/{run.id}"
        resource_id = run.pipeline_run_id if ids_equal(run.pipeline_run_id, own_run_id) else None
        deployment = run.deployment_name if naming.is_ours(run.deployment_name) else None
        return resource_id, deployment

    def _left(self, resource_id: str | None, deployment: str | None) -> list[str]:
        """What ARM still shows of them (a read each)."""
        return [
            what
            for what, present in (
                (
                    "pipelineRun",
                    resource_id is not None and self.resources.get_resource(resource_id) is not None,
                ),
                (
                    "deployment",
                    deployment is not None and self.deployments.get_deployment(deployment) is not None,
                ),
            )
            if present
        ]

    def _delete(self, resource_id: str | None, deployment: str | None) -> list[str]:
        """Send the deletes; what ARM is still deleting."""
        return [
            what
            for what, gone in (
                ("pipelineRun", resource_id is None or self.resources.delete_resource(resource_id)),
                ("deployment", deployment is None or self.deployments.delete_deployment(deployment)),
            )
            if not gone
        ]


class Cleanup:
    """The reconcile timer's second pass (and `cleanup --dry-run`)."""

    def __init__(
        self,
        settings: Settings,
        index: RunIndex,
        delete_resources: DeleteRunResources,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.index = index
        self.delete_resources = delete_resources
        self.memory = memory
        self.clock = clock

    def __call__(self, dry_run: bool = False) -> Report:
        work = Pass(self.memory, self.clock)
        report = work.report
        cutoff = self.clock() - timedelta(hours=self.settings.retention_hours)
        due = []
        for run in self.index.runs_to_clean():
            if not run.owned or run.finished_at is None or run.finished_at > cutoff:
                report.counts["kept"] += 1
            else:
                due.append(run)
        due = rotated(sorted(due, key=lambda r: r.id), lambda r: r.id, self.memory.reconcile_cursor)
        if dry_run:
            report.items += [_item(run) for run in due]
            report.counts["would-delete"] += len(due)
            return report
        for _, after in work.each(due, lambda r: f"cleanup {r.id}", lambda r: self._delete(report, r)):
            if after is not None:
                report.counts["deleted" if after.cleaned_up else "deleting"] += 1
        return report

    def _delete(self, report: Report, run: Run) -> Run:
        report.items.append(_item(run))
        return self.delete_resources(run)


def _item(run: Run) -> dict[str, str | None]:
    return {"run": run.id, "deployment": run.deployment_name, "pipelineRun": run.pipeline_run_id}


class DeleteRun:
    """DELETE /api/runs/{id}: a finished run the app started, its resources deleted now."""

    def __init__(self, delete_resources: DeleteRunResources) -> None:
        self.delete_resources = delete_resources

    def __call__(self, run: Run) -> Run:
        if not run.status.terminal:
            raise Conflict(
                f"run {run.id} is {run.status.value}; delete it once it has finished", target="run_id"
            )
        if not run.owned:
            raise Conflict("the source trigger started this run; the app does not delete it", target="run_id")
        if run.cleaned_up:
            return run
        return self.delete_resources(run)
