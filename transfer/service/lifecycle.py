"""A run's life from the app's side, in one place: new, record, deploy, save. The record is written before
the deployment, only the caller whose record it is sends the PUT (racing retries of one request cost one
deployment), and a run left Accepted (its starter died, or ARM throttled it) is deployed by reconcile.
Every later write goes through `write`: of two writers racing on one record, the newer record wins."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from transfer.domain import naming
from transfer.domain.arm_views import EXPORT_RUN, IMPORT_RUN, run_parameters
from transfer.domain.errors import (
    TRANSIENT_ERRORS,
    AlreadyExists,
    PreconditionFailed,
    Throttled,
    TransferError,
)
from transfer.domain.manifests import Verification
from transfer.domain.ports import Deployments, RunStore, TemplateSource
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.domain.settings import Settings
from transfer.service.memory import WorkerMemory
from transfer.service.passes import pause_arm

log = logging.getLogger("transfer")


def random_token() -> str:
    return secrets.token_hex(3)


def run_context(run: Run) -> dict[str, object]:
    """What every log record about a run carries (Application Insights dimensions)."""
    return {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}


def log_finished(run: Run) -> None:
    """The one record of a run turning terminal: event `run.succeeded`, `run.failed` or `run.canceled`,
    which the alert on failed runs reads (infra/README.md, docs/operations.md)."""
    log.log(
        logging.INFO if run.status is RunStatus.SUCCEEDED else logging.WARNING,
        "run %s: %s",
        run.status.value,
        run.error or run.warning or "",
        extra={
            **run_context(run),
            "event": f"run.{run.status.value.lower()}",
            "outcome": run.status.value,
            "error_cause": run.error_cause,
        },
    )


class RunLifecycle:
    def __init__(
        self,
        settings: Settings,
        runs: RunStore,
        deployments: Deployments,
        templates: TemplateSource,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
        token: Callable[[], str],
    ) -> None:
        self.settings = settings
        self.runs = runs
        self.deployments = deployments
        self.templates = templates
        self.memory = memory
        self.clock = clock
        self.token = token

    def new_id(self, kind: RunKind, now: datetime | None = None) -> str:
        return naming.run_id(kind, now or self.clock(), self.token())

    def new(
        self,
        run_id: str,
        kind: RunKind,
        trigger: Trigger,
        *,
        request_id: str | None = None,
        artifacts: Iterable[str] = (),
        blob: str | None = None,
        attempt: int = 1,
        digests: tuple[tuple[str, str], ...] = (),
        now: datetime | None = None,
    ) -> Run:
        """A run the app is about to start: Accepted, its deployment and pipelineRun named after it."""
        now = now or self.clock()
        return Run(
            id=run_id,
            kind=kind,
            trigger=trigger,
            status=RunStatus.ACCEPTED,
            created_at=now,
            updated_at=now,
            request_id=request_id or uuid.uuid4().hex,
            deployment_name=naming.deployment_name(run_id),
            artifacts=tuple(artifacts),
            blob=blob,
            pipeline_run_id=f"{self.settings.registry_id}/pipelineRuns/{run_id}",
            verification=Verification.PENDING if kind is RunKind.IMPORT else None,
            attempt=attempt,
            digests=digests,
        )

    def record_and_deploy(self, run: Run) -> Run:
        """Record the run, then deploy it; a run recorded already is returned as it is stored."""
        try:
            run = self.runs.add_run(run)
        except AlreadyExists:
            stored = self.runs.get_run(run.id)
            if stored is None:
                raise
            return stored
        return self.deploy(run)

    def deploy(self, run: Run) -> Run:
        """Send the run's deployment: a transient refusal leaves it Accepted (reconcile deploys it), any
        other fails the run."""
        context = run_context(run)
        try:
            self.deployments.begin_deployment(run.deployment_name, self._template(run), self._parameters(run))
        except TRANSIENT_ERRORS as exc:
            log.warning("deployment deferred to reconcile: %s", exc.message, extra=context)
            if isinstance(exc, Throttled):  # a pass deploying Accepted runs stops at its next item
                pause_arm(self.memory, self.clock, exc)
            return self.save(run.deployment_deferred(exc.message))
        except TransferError as exc:
            failed = {"event": "run.failed", "outcome": RunStatus.FAILED.value}  # the failed-runs alert
            log.error("deployment rejected: %s", exc.message, extra={**context, **failed})
            return self.save(run.rejected(exc.message, exc.correlation_id))
        log.info("deployment started: %s", run.deployment_name, extra=context)
        return self.save(run.deploying())

    def _template(self, run: Run) -> Mapping[str, object]:
        return self.templates.load(EXPORT_RUN if run.kind is RunKind.EXPORT else IMPORT_RUN)

    def _parameters(self, run: Run) -> dict[str, object]:
        return run_parameters(
            run.kind.value,
            registry=self.settings.registry,
            run_name=run.id,
            pipeline_id=self.settings.pipeline_id(run.kind.value),
            force_update_tag=naming.force_update_tag(run.id),
            artifacts=run.artifacts,
            blob=run.blob,
        )

    def save(self, run: Run) -> Run:
        """Write the run as changed now (a run turning terminal records when it finished)."""
        return self.write(run.touched(self.clock()))

    def write(self, run: Run) -> Run:
        """Write the run if its record is unchanged since read; a racing writer's newer record wins and is
        returned instead (it is the one the next pass reads)."""
        return self.claim(run) or self.current(run)

    def claim(self, run: Run) -> Run | None:
        """Write the run if its record is unchanged since read; None when another writer changed it first."""
        try:
            return self.runs.update_run(run)
        except PreconditionFailed:
            return None

    def current(self, run: Run) -> Run:
        """The run as stored now (as given, should it be gone)."""
        return self.runs.get_run(run.id) or run
