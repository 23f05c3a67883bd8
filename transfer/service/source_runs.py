"""The runs the import pipeline's source trigger started, recorded so their status is visible, their
import verified, and the 60-day rule can take them as evidence. The app did not start them: it never
deletes them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from transfer.domain import naming
from transfer.domain.arm_views import PipelineRun, ids_equal
from transfer.domain.errors import AlreadyExists
from transfer.domain.manifests import Verification
from transfer.domain.observation import observation
from transfer.domain.ports import PipelineResources, RunIndex, RunStore
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.domain.settings import Settings
from transfer.domain.staleness import Policy
from transfer.service.after_success import AfterSuccess
from transfer.service.lifecycle import log_finished
from transfer.service.memory import WorkerMemory
from transfer.service.passes import Report
from transfer.service.pipelines import Pipelines

KNOWN_RUNS_REFRESH = timedelta(hours=6)  # how often a worker reads the recorded source-trigger runs again


class AdoptSourceRuns:
    def __init__(
        self,
        settings: Settings,
        resources: PipelineResources,
        runs: RunStore,
        index: RunIndex,
        pipelines: Pipelines,
        after_success: AfterSuccess,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.runs = runs
        self.index = index
        self.pipelines = pipelines
        self.after_success = after_success
        self.memory = memory
        self.clock = clock
        self.window = Policy.of(settings.window_days, settings.margin_hours, settings.stale_action).window

    def __call__(self, report: Report) -> None:
        pipeline_id = self.settings.pipeline_id("import")
        listed = [PipelineRun.from_arm(resource) for resource in self.resources.list_pipeline_runs()]
        known = self._known()
        for seen in listed:
            if not seen.started_by_source_trigger or not ids_equal(seen.pipeline_resource_id, pipeline_id):
                continue
            if seen.name in known or self._too_old(seen):
                continue  # recorded already, or too old to matter to the 60-day rule
            if not naming.RUN_NAME.fullmatch(seen.name):  # a name no URL or Table key can carry: say so
                report.errors.append(f"source-trigger run {seen.name!r}: a name the app cannot record")
                continue
            if self._record(seen):
                report.counts["adopted"] += 1
            known.add(seen.name)

    def _known(self) -> set[str]:
        """The recorded ones, from one read of an index, not one per run: a new worker, then every few
        hours (what left the window leaves this set, and the index sheds its rows as it is read)."""
        now = self.clock()
        read_at = self.memory.known_source_runs_read_at
        if read_at is None or now - read_at >= KNOWN_RUNS_REFRESH:
            self.memory.known_source_runs = self.index.source_runs(now - self.window)
            self.memory.known_source_runs_read_at = now
        return self.memory.known_source_runs

    def _too_old(self, seen: PipelineRun) -> bool:
        started = seen.source_trigger_time
        return started is not None and self.clock() - started > self.window

    def _record(self, seen: PipelineRun) -> bool:
        """Record the run as ARM shows it (a finished one with what its success brings); False when it was
        recorded already."""
        if self.runs.get_run(seen.name) is not None:
            return False
        run = self._adopted(seen)
        try:
            self.runs.add_run(run)
        except AlreadyExists:
            return False
        if run.status.terminal:  # finished before reconcile first saw it
            log_finished(run)
        return True

    def _adopted(self, seen: PipelineRun) -> Run:
        blob = seen.request_source_name
        if blob is None and seen.response_source_uri:
            blob = seen.blob_in(self.pipelines.get("import").storage_uri)
        now = self.clock()
        run = Run(
            id=seen.name,
            kind=RunKind.IMPORT,
            trigger=Trigger.SOURCE,
            status=RunStatus.RUNNING,
            created_at=seen.source_trigger_time or now,  # the trigger's own time: the sweep compares with it
            updated_at=now,
            request_id=uuid.uuid4().hex,
            deployment_name="",
            blob=blob,
            pipeline_run_id=seen.id,
            owned=False,
            verification=Verification.PENDING,
        )
        observed = observation(None, seen)
        if observed is None:
            return run
        after = run.observed(observed, now)
        return self.after_success(after) if after.succeeded_since(None) else after
