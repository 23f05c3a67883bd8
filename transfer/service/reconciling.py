"""Reconcile and cleanup: move every active run forward from ARM, record the runs the import pipeline's
source trigger started, follow copies, and delete the ARM resources of finished runs the app started."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from transfer.domain import naming
from transfer.domain.arm_views import MANAGED_IDENTITY, PipelineRun, ids_equal
from transfer.domain.causes import TIMED_OUT, classify
from transfer.domain.errors import AlreadyExists, Conflict, PreconditionFailed, TransferError
from transfer.domain.runs import (
    CopyStatus,
    Run,
    RunKind,
    RunStatus,
    Trigger,
    awaits_copy,
    observation,
    with_observation,
)
from transfer.service.context import Context, Pass, Report
from transfer.service.copying import Copies
from transfer.service.manifests import Manifests
from transfer.service.starting import PENDING, Starter

log = logging.getLogger("transfer")

# ARM's reads are eventually consistent: a run it knew and now does not show is read again after this.
MISSING_GRACE = timedelta(minutes=10)
REDEPLOY_AFTER = timedelta(minutes=1)  # an Accepted run's own start is given this long before reconcile PUTs
REDELETE_AFTER = timedelta(minutes=30)  # deletes ARM accepted but did not finish are sent again after this
KNOWN_RUNS_REFRESH = timedelta(hours=6)  # how often a worker reads the recorded source-trigger runs again


class Reconciler:
    def __init__(self, context: Context, starter: Starter, copies: Copies) -> None:
        self.context = context
        self.starter = starter
        self.copies = copies
        self.manifests = Manifests(context)
        self._known_runs: set[str] = set()  # source-trigger runs already recorded (a warm worker keeps it)
        self._known_read_at: datetime | None = None  # when they were last read from the state's index
        self._cursor: str | None = None  # the last run the previous pass reached

    def reconcile(self) -> Report:
        report = Report()
        work = Pass(self.context, report)
        runs = self._rotated(self.context.state.active_runs())
        copies: list[Run] = []
        for index, run in enumerate(runs):
            if run.status.terminal:  # finished in ARM; only its copy is still followed
                copies.append(run)
                continue
            if not work.may_continue():
                work.not_reached(sum(1 for r in runs[index:] if not r.status.terminal))
                break
            after: Run | None = work.item(f"run {run.id}", partial(self.reconcile_one, run))
            self._cursor = run.id
            if after is None:
                continue
            report.counts[after.status.value] += 1
            if after.status is not run.status:
                report.items.append({"run": run.id, "from": run.status.value, "to": after.status.value})
            if awaits_copy(after):
                copies.append(after)
        self.copies.advance(work, copies)
        # Last, so a throttled listing (one call, paged) never holds back the active runs.
        if self.context.settings.import_pipeline and work.may_continue():
            work.item("source-trigger runs", lambda: self._adopt_source_trigger_runs(report))
        return report

    def _rotated(self, runs: list[Run]) -> list[Run]:
        """The runs in id order, starting after the last one the previous pass reached: a pass cut short
        by its budget or by throttling leaves the rest first in line, so no run starves."""
        ordered = sorted(runs, key=lambda r: r.id)
        if self._cursor is None:
            return ordered
        later = [r for r in ordered if r.id > self._cursor]
        return later + [r for r in ordered if r.id <= self._cursor]

    def reconcile_one(self, run: Run) -> Run:
        arm = self.context.arm
        deployment = arm.get_deployment(run.deployment_name) if run.owned else None
        resource = arm.get_resource(run.pipeline_run_id) if run.pipeline_run_id else None
        seen = observation(deployment, PipelineRun.from_arm(resource) if resource is not None else None)
        now = self.context.clock()
        context = {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}
        if seen is None and run.status is RunStatus.ACCEPTED and run.owned:
            if now - run.updated_at < REDEPLOY_AFTER:
                return run  # its first start may still be on its way: one PUT per run
            log.info("deploying a run whose deployment never started", extra=context)
            return self.starter.deploy(run)
        if seen is None or seen.missing:
            return self._missing(run, now, context)
        after = with_observation(run, seen, now)
        if not after.status.terminal and now - run.created_at > self._timeout:
            hours = self.context.settings.run_timeout_hours
            after = replace(
                after,
                status=RunStatus.FAILED,
                error=f"still {after.status.value} after {hours} hours (TRANSFER_RUN_TIMEOUT_HOURS)",
                error_cause=TIMED_OUT.code,
                hint=TIMED_OUT.hint,
                finished_at=now,
            )
        if after.status is RunStatus.FAILED and after.error_cause is None:
            after = self._with_cause(after, seen.error_codes)
        if after.status in (RunStatus.FAILED, RunStatus.CANCELED) and after.verification == PENDING:
            after = replace(after, verification=None)  # nothing was imported to verify
        after = self.manifests.on_success(run, after)  # an export's manifest and ledger, an import's check
        if self.copies.due(after):
            after = replace(after, copy_status=CopyStatus.QUEUED)  # recorded with the success itself
        if after == replace(run, updated_at=after.updated_at):
            return run
        if after.status.terminal:
            _log_finished(after, context)
        try:
            return self.context.state.update_run(after)
        except PreconditionFailed:
            return self.context.state.get_run(run.id) or run

    @property
    def _timeout(self) -> timedelta:
        return timedelta(hours=self.context.settings.run_timeout_hours)

    def _missing(self, run: Run, now: datetime, context: Mapping[str, object]) -> Run:
        """ARM shows no deployment or pipelineRun for a run it knew: reads are eventually consistent, so it
        is believed only when a read after MISSING_GRACE still finds nothing."""
        if run.missing_since is None:
            log.info("ARM shows nothing for the run: looking again after a grace period", extra=context)
            return self.context.save(run, missing_since=now)
        if now - run.missing_since < MISSING_GRACE:
            return run
        failed = self.context.save(
            run,
            status=RunStatus.FAILED,
            error="ARM has no deployment or pipelineRun for it (read again after the grace period)",
            missing_since=None,
        )
        if failed.status is RunStatus.FAILED:  # not a racing writer's record
            _log_finished(failed, context)
        return failed

    def _with_cause(self, run: Run, codes: tuple[str, ...]) -> Run:
        try:
            managed_identity = self.context.pipeline(run.kind.value).storage_access_mode == MANAGED_IDENTITY
        except TransferError:
            managed_identity = False
        cause = classify(run.error, codes, managed_identity=managed_identity)
        return replace(run, error_cause=cause.code, hint=cause.hint) if cause else run

    def _adopt_source_trigger_runs(self, report: Report) -> None:
        """Record the runs the import pipeline's source trigger started, so their status is visible."""
        pipeline_id = self.context.settings.pipeline_id("import")
        state = self.context.state
        listed = self.context.arm.list_pipeline_runs()
        now = self.context.clock()
        if self._known_read_at is None or now - self._known_read_at >= KNOWN_RUNS_REFRESH:
            # One read of an index, not one per run: a new worker, then every few hours (what left the
            # window leaves this set, and the index sheds its rows as it is read).
            self._known_runs = state.source_runs(now - self.context.policy.window)
            self._known_read_at = now
        for resource in listed:
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
                verification=PENDING,
            )
            seen = observation(None, seen_run)
            if seen is not None:
                run = self.manifests.on_success(None, with_observation(run, seen, now))
            try:
                state.add_run(run)
            except AlreadyExists:
                self._known_runs.add(name)
                continue
            self._known_runs.add(name)
            report.counts["adopted"] += 1
            if run.status.terminal:  # finished before reconcile first saw it
                _log_finished(run, {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value})

    def cleanup(self, dry_run: bool = False) -> Report:
        """Delete the pipelineRun and deployment of terminal runs past the retention; only our own. A run
        is marked cleaned up only once ARM shows both gone: a delete that failed later is tried again."""
        report = Report()
        work = Pass(self.context, report)
        cutoff = self.context.clock() - timedelta(hours=self.context.settings.retention_hours)
        due = []
        for run in self.context.state.runs_to_clean():
            if not run.owned or run.finished_at is None or run.finished_at > cutoff:
                report.counts["kept"] += 1
            else:
                due.append(run)
        for index, run in enumerate(self._rotated(due)):
            report.items.append(
                {"run": run.id, "deployment": run.deployment_name, "pipelineRun": run.pipeline_run_id}
            )
            if dry_run:
                report.counts["would-delete"] += 1
                continue
            if not work.may_continue():
                work.not_reached(len(due) - index)
                break
            after = work.item(f"cleanup {run.id}", partial(self._delete_resources, run))
            if after is not None:
                report.counts["deleted" if after.cleaned_up else "deleting"] += 1
        return report

    def _delete_resources(self, run: Run) -> Run:
        """Delete the run's pipelineRun and deployment (only the app's own). ARM may answer 202 and delete
        later, or fail later: then the run records when its deletes went out, the next passes look (a read
        each) until both are gone, and after REDELETE_AFTER they are sent again."""
        arm = self.context.arm
        own_run_id = f"{self.context.settings.registry_id}/pipelineRuns/{run.id}"
        resource_id = (
            run.pipeline_run_id
            if run.pipeline_run_id and ids_equal(run.pipeline_run_id, own_run_id)
            else None
        )
        deployment = run.deployment_name if naming.is_ours(run.deployment_name) else None
        now = self.context.clock()
        if run.delete_started is not None and now - run.delete_started < REDELETE_AFTER:
            left = [
                what
                for what, present in (
                    ("pipelineRun", resource_id is not None and arm.get_resource(resource_id) is not None),
                    ("deployment", deployment is not None and arm.get_deployment(deployment) is not None),
                )
                if present
            ]
        else:
            left = [
                what
                for what, gone in (
                    ("pipelineRun", resource_id is None or arm.delete_resource(resource_id)),
                    ("deployment", deployment is None or arm.delete_deployment(deployment)),
                )
                if not gone
            ]
            if left:
                log.info("run resources being deleted: %s", ", ".join(left), extra={"run_id": run.id})
                return self.context.save(run, delete_started=now)
        if left:
            return run
        log.info("run resources deleted", extra={"run_id": run.id})
        return self.context.save(run, cleaned_up=True, delete_started=None)

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


def _log_finished(run: Run, context: Mapping[str, object]) -> None:
    """The one record of a run turning terminal: event `run.succeeded`, `run.failed` or `run.canceled`,
    which the alert on failed runs reads (infra/README.md, docs/operations.md)."""
    log.log(
        logging.INFO if run.status is RunStatus.SUCCEEDED else logging.WARNING,
        "run %s: %s",
        run.status.value,
        run.error or run.warning or "",
        extra={
            **context,
            "event": f"run.{run.status.value.lower()}",
            "outcome": run.status.value,
            "error_cause": run.error_cause,
        },
    )
