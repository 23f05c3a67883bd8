"""Reconcile: move every active run forward from what ARM shows, follow copies, and record the runs the
import pipeline's source trigger started (source_runs.py). A run's changes are its own transitions
(transfer/domain/runs.py); what follows a success is after_success.py's list."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from transfer.domain.arm_views import PipelineRun
from transfer.domain.causes import classify
from transfer.domain.observation import observation
from transfer.domain.ports import Deployments, PipelineResources, RunIndex
from transfer.domain.runs import Observation, Run, RunStatus
from transfer.domain.settings import Settings
from transfer.service.after_success import AfterSuccess
from transfer.service.copy_step import CopyStep
from transfer.service.lifecycle import RunLifecycle, log_finished, run_context
from transfer.service.memory import WorkerMemory
from transfer.service.passes import Pass, Report, rotated
from transfer.service.pipelines import Pipelines
from transfer.service.source_runs import AdoptSourceRuns

log = logging.getLogger("transfer")

# ARM's reads are eventually consistent: a run it knew and now does not show is read again after this.
MISSING_GRACE = timedelta(minutes=10)
REDEPLOY_AFTER = timedelta(minutes=1)  # an Accepted run's own start is given this long before reconcile PUTs


class ReconcileRun:
    """One run moved forward from ARM now (a pass's item, and the CLI's --wait)."""

    def __init__(
        self,
        settings: Settings,
        deployments: Deployments,
        resources: PipelineResources,
        pipelines: Pipelines,
        lifecycle: RunLifecycle,
        after_success: AfterSuccess,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.deployments = deployments
        self.resources = resources
        self.pipelines = pipelines
        self.lifecycle = lifecycle
        self.after_success = after_success
        self.clock = clock

    def __call__(self, run: Run) -> Run:
        seen = self._observe(run)
        now = self.clock()
        if seen is None and run.awaits_deployment:
            return self._deploy_again(run, now)
        if seen is None or seen.missing:
            return self._missing(run, now)
        after = run.observed(seen, now).timed_out(now, self.settings.run_timeout_hours)
        if after.needs_cause:
            managed_identity = self.pipelines.managed_identity(after.kind.value)
            after = after.with_cause(
                classify(after.error, seen.error_codes, managed_identity=managed_identity)
            )
        after = after.verification_settled()
        if after.succeeded_since(run):
            after = self.after_success(after)
        if after.same_as(run):
            return run
        if after.status.terminal:
            log_finished(after)
        return self.lifecycle.write(after)

    def _observe(self, run: Run) -> Observation | None:
        deployment = self.deployments.get_deployment(run.deployment_name) if run.owned else None
        resource = self.resources.get_resource(run.pipeline_run_id) if run.pipeline_run_id else None
        return observation(deployment, PipelineRun.from_arm(resource) if resource is not None else None)

    def _deploy_again(self, run: Run, now: datetime) -> Run:
        if now - run.updated_at < REDEPLOY_AFTER:
            return run  # its first start may still be on its way: one PUT per run
        log.info("deploying a run whose deployment never started", extra=run_context(run))
        return self.lifecycle.deploy(run)

    def _missing(self, run: Run, now: datetime) -> Run:
        """ARM shows no deployment or pipelineRun for a run it knew: reads are eventually consistent, so it
        is believed only when a read after MISSING_GRACE still finds nothing."""
        if run.missing_since is None:
            log.info(
                "ARM shows nothing for the run: looking again after a grace period", extra=run_context(run)
            )
            return self.lifecycle.save(run.missing(now))
        if now - run.missing_since < MISSING_GRACE:
            return run
        failed = self.lifecycle.save(run.lost())
        if failed.status is RunStatus.FAILED:  # not a racing writer's record
            log_finished(failed)
        return failed


class Reconcile:
    """The reconcile timer's pass: every active run, then the copies, then the source-trigger runs."""

    def __init__(
        self,
        settings: Settings,
        index: RunIndex,
        reconcile_run: ReconcileRun,
        copies: CopyStep,
        adopt_source_runs: AdoptSourceRuns,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.index = index
        self.reconcile_run = reconcile_run
        self.copies = copies
        self.adopt_source_runs = adopt_source_runs
        self.memory = memory
        self.clock = clock

    def __call__(self) -> Report:
        return self._pass(self.index.active_runs(), adopt=True)

    def follow(self) -> Report:
        """The follow timer's pass: the active runs alone, and nothing at all (one index read, no ARM
        call) when there is none, so a short interval costs an idle app nothing on ARM."""
        active = self.index.active_runs()
        return self._pass(active, adopt=False) if active else Report()

    def _pass(self, active_runs: list[Run], *, adopt: bool) -> Report:
        work = Pass(self.memory, self.clock)
        runs = rotated(sorted(active_runs, key=_id), _id, self.memory.reconcile_cursor)
        copies = [run for run in runs if run.status.terminal]  # finished in ARM; only the copy is followed
        active = [run for run in runs if not run.status.terminal]
        for run, after in work.each(active, lambda r: f"run {r.id}", self._reached):
            if after is None:
                continue
            work.report.counts[after.status.value] += 1
            if after.status is not run.status:
                work.report.items.append({"run": run.id, "from": run.status.value, "to": after.status.value})
            if after.awaits_copy:
                copies.append(after)
        self.copies.advance(work, copies)
        # Last, so a throttled listing (one call, paged) never holds back the active runs.
        if adopt and self.settings.import_pipeline and work.may_continue():
            work.item("source-trigger runs", lambda: self.adopt_source_runs(work.report))
        return work.report

    def _reached(self, run: Run) -> Run:
        self.memory.reconcile_cursor = run.id  # reached, whatever becomes of it
        return self.reconcile_run(run)


def _id(run: Run) -> str:
    return run.id
