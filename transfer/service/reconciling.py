"""Reconcile and cleanup: move every active run forward from ARM, record the runs the import pipeline's
source trigger started, follow copies, and delete the ARM resources of finished runs the app started."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta

from transfer import naming
from transfer.arm_views import PipelineRun, ids_equal
from transfer.errors import AlreadyExists, Conflict, PreconditionFailed
from transfer.ports import BlobAction
from transfer.runs import (
    CopyStatus,
    Run,
    RunKind,
    RunStatus,
    Trigger,
    awaits_copy,
    observation,
    with_observation,
)
from transfer.service.context import TRANSIENT_ERRORS, Context, Report
from transfer.service.copying import Copies
from transfer.service.starting import Starter

log = logging.getLogger("transfer")

DEPLOY_GRACE = timedelta(minutes=10)  # ARM may not list a deployment right after its PUT


class Reconciler:
    def __init__(self, context: Context, starter: Starter, copies: Copies) -> None:
        self.context = context
        self.starter = starter
        self.copies = copies
        self._known_runs: set[str] = set()  # source-trigger runs already recorded (a warm worker keeps it)

    def reconcile(self) -> Report:
        report = Report()
        if self.context.settings.import_pipeline:
            try:
                self._adopt_source_trigger_runs(report)
            except TRANSIENT_ERRORS as exc:  # the active runs below still move forward
                report.counts["deferred"] += 1
                report.errors.append(f"source-trigger runs: {exc.message}")
        copies: list[Run] = []
        for run in self.context.state.active_runs():
            if run.status.terminal:  # finished in ARM; only its copy is still followed
                copies.append(run)
                continue
            try:
                after = self.reconcile_one(run)
            except TRANSIENT_ERRORS as exc:
                report.counts["deferred"] += 1
                report.errors.append(f"{run.id}: {exc.message}")
                continue
            report.counts[after.status.value] += 1
            if after.status is not run.status:
                report.items.append({"run": run.id, "from": run.status.value, "to": after.status.value})
            if awaits_copy(after):
                copies.append(after)
        self.copies.advance(report, copies)
        return report

    def reconcile_one(self, run: Run) -> Run:
        arm = self.context.arm
        deployment = arm.get_deployment(run.deployment_name) if run.owned else None
        resource = arm.get_resource(run.pipeline_run_id) if run.pipeline_run_id else None
        seen = observation(deployment, PipelineRun.from_arm(resource) if resource is not None else None)
        now = self.context.clock()
        context = {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}
        if seen is None:
            if run.status is RunStatus.ACCEPTED and run.owned:
                log.info("redeploying a run whose deployment never started", extra=context)
                return self.starter.deploy(run)
            if now - run.updated_at > DEPLOY_GRACE:
                return self.context.save(
                    run, status=RunStatus.FAILED, error="ARM has no deployment or pipelineRun for it"
                )
            return run
        after = with_observation(run, seen, now)
        if self.copies.due(after):
            after = replace(after, copy_status=CopyStatus.QUEUED)  # recorded with the success itself
        if after == replace(run, updated_at=after.updated_at):
            return run
        if after.status.terminal:
            log.info("run %s: %s", after.status.value, after.error or "", extra=context)
        try:
            return self.context.state.update_run(after)
        except PreconditionFailed:
            return self.context.state.get_run(run.id) or run

    def _adopt_source_trigger_runs(self, report: Report) -> None:
        """Record the runs the import pipeline's source trigger started, so their status is visible."""
        pipeline_id = self.context.settings.pipeline_id("import")
        state = self.context.state
        for resource in self.context.arm.list_pipeline_runs():
            seen_run = PipelineRun.from_arm(resource)
            name = seen_run.name
            if not seen_run.started_by_source_trigger or not ids_equal(
                seen_run.pipeline_resource_id, pipeline_id
            ):
                continue
            started = seen_run.source_trigger_time
            if name in self._known_runs or (
                started is not None and self.context.clock() - started > self.context.policy.window
            ):
                continue  # recorded already, or too old to matter to the 60-day rule
            if not naming.RUN_NAME.fullmatch(name):  # a name no URL or Table key can carry: say so, go on
                report.errors.append(f"source-trigger run {name!r}: a name the app cannot record")
                continue
            if state.get_run(name) is not None:
                self._known_runs.add(name)
                continue
            blob = seen_run.request_source_name
            if blob is None and seen_run.response_source_uri:
                blob = seen_run.blob_in(self.context.pipeline("import").storage_uri)
            now = self.context.clock()
            run = Run(
                id=name,
                kind=RunKind.IMPORT,
                trigger=Trigger.SOURCE,
                status=RunStatus.RUNNING,
                created_at=started or now,  # the trigger's own time: the sweep's evidence compares with it
                updated_at=now,
                request_id=uuid.uuid4().hex,
                deployment_name="",
                blob=blob,
                pipeline_run_id=seen_run.id,
                owned=False,
            )
            seen = observation(None, seen_run)
            if seen is not None:
                run = with_observation(run, seen, now)
            try:
                state.add_run(run)
            except AlreadyExists:
                self._known_runs.add(name)
                continue
            self._known_runs.add(name)
            if blob:
                self._tie_to_blob(blob, name)
            report.counts["adopted"] += 1

    def _tie_to_blob(self, blob: str, run_id: str) -> None:
        for record in self.context.state.blob_records(blob):
            if record.action is BlobAction.SOURCE_TRIGGER and record.run_id is None:
                self.context.state.update_blob_record(replace(record, run_id=run_id))

    def cleanup(self, dry_run: bool = False) -> Report:
        """Delete the pipelineRun and deployment of terminal runs past the retention; only our own."""
        report = Report()
        cutoff = self.context.clock() - timedelta(hours=self.context.settings.retention_hours)
        for run in self.context.state.runs_to_clean():
            if not run.owned or run.finished_at is None or run.finished_at > cutoff:
                report.counts["kept"] += 1
                continue
            report.items.append(
                {"run": run.id, "deployment": run.deployment_name, "pipelineRun": run.pipeline_run_id}
            )
            if dry_run:
                report.counts["would-delete"] += 1
                continue
            try:
                self._delete_resources(run)
            except TRANSIENT_ERRORS as exc:
                report.errors.append(f"{run.id}: {exc.message}")
                continue
            report.counts["deleted"] += 1
        return report

    def _delete_resources(self, run: Run) -> Run:
        own_run_id = f"{self.context.settings.registry_id}/pipelineRuns/{run.id}"
        if run.pipeline_run_id and ids_equal(run.pipeline_run_id, own_run_id):
            self.context.arm.delete_resource(run.pipeline_run_id)
        if naming.is_ours(run.deployment_name):
            self.context.arm.delete_deployment(run.deployment_name)
        log.info("run resources deleted", extra={"run_id": run.id})
        return self.context.save(run, cleaned_up=True)

    def delete_run(self, run: Run) -> Run:
        if not run.status.terminal:
            raise Conflict(
                f"run {run.id} is {run.status.value}; delete it once it has finished", target="run_id"
            )
        if not run.owned:
            raise Conflict("the source trigger started this run; the app does not delete it", target="run_id")
        if run.cleaned_up:
            return run
        return self._delete_resources(run)
