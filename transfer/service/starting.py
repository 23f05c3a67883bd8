"""Starting runs: exports (several runs past 50 artifacts), the scheduled export, imports.

Claim, record, deploy, in that order: an Idempotency-Key claims its run ids first, the run record is
written before its deployment, and a run found recorded but still Accepted is deployed again (reconcile
does the same for a worker that died in between).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from transfer.domain import artifacts, naming
from transfer.domain.arm_views import EXPORT_RUN, IMPORT_RUN, run_parameters
from transfer.domain.errors import (
    AlreadyExists,
    IdempotencyKeyReused,
    InvalidInput,
    NotConfigured,
    NotFound,
    Throttled,
    TransferError,
)
from transfer.domain.manifests import is_manifest
from transfer.domain.ports import RequestRecord
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.service.context import THROTTLE_PAUSE, TRANSIENT_ERRORS, Context
from transfer.service.selecting import Selecting

log = logging.getLogger("transfer")

PENDING = "pending"  # an import's verification until it succeeds (then passed, failed or unavailable)


@dataclass(frozen=True)
class Accepted:
    request_id: str
    runs: list[Run]
    repeated: bool = False
    skipped: tuple[str, ...] = ()  # an incremental export's tags left out: unchanged since exported
    unmatched: tuple[str, ...] = ()  # the schedule's selectors that matched nothing
    incremental: bool = False


class Starter:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.selecting = Selecting(context)

    def start_export(
        self,
        requested: Any,
        trigger: Trigger,
        target_name: str | None = None,
        idempotency_key: str | None = None,
        incremental: Any = False,
    ) -> Accepted:
        """Selectors are expanded and, when incremental, unchanged tags left out (service/selecting.py);
        nothing left to export starts nothing (no runs, the skipped tags named)."""
        if not self.context.settings.export_pipeline:
            raise NotConfigured("this instance has no export pipeline (TRANSFER_EXPORT_PIPELINE)")
        items = artifacts.parse_artifacts(requested, selectors=True)
        naming.check_target_name(target_name)
        if not isinstance(incremental, bool):
            raise InvalidInput("must be true or false", target="incremental")
        if idempotency_key is not None:
            naming.check_idempotency_key(idempotency_key)
        request: dict[str, Any] = {"kind": "export", "artifacts": items, "targetName": target_name}
        if incremental:
            request["incremental"] = True
        self.context.ensure_ready("export")
        if idempotency_key is not None:
            repeat = self._stored_request(idempotency_key, request)
            if repeat is not None:  # every run recorded: the answer of the first request, no new reads
                return replace(repeat, incremental=incremental)  # an Accepted one is reconcile's to deploy
        selection = self.selecting.select(
            items, incremental=incremental, strict=trigger is not Trigger.SCHEDULE, requested=requested
        )
        context = {"trigger": trigger.value, "skipped": len(selection.skipped)}
        if not selection.artifacts:
            log.info("export: nothing new to export (%d unchanged)", len(selection.skipped), extra=context)
            return Accepted(uuid.uuid4().hex, [], False, selection.skipped, selection.unmatched, incremental)
        chunks = artifacts.split(selection.artifacts)
        request_id, run_ids, repeated = self._claim(idempotency_key, request, len(chunks))
        if repeated:
            chunks = self._left_for(run_ids, chunks)
        now = self.context.clock()
        runs = []
        for run_id, chunk in zip(run_ids, chunks, strict=False):
            if not chunk:  # a repeat with fewer artifacts than claimed runs
                continue
            run = self.new_run(run_id, RunKind.EXPORT, trigger, request_id, now, artifacts=chunk)
            digests = tuple((a, selection.digests[a]) for a in chunk if a in selection.digests)
            run = replace(run, blob=naming.export_blob_name(target_name, run_id), digests=digests)
            runs.append(self.record_and_deploy(run))
        if not repeated:
            log.info(
                "export accepted: %d artifacts in %d runs",
                len(selection.artifacts),
                len(runs),
                extra={**context, "request_id": request_id, "run_ids": run_ids},
            )
        return Accepted(request_id, runs, repeated, selection.skipped, selection.unmatched, incremental)

    def _left_for(self, run_ids: list[str], chunks: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """A repeat whose first request claimed `run_ids` but did not record them all (a worker died in
        between): recorded runs keep their artifacts, the missing ones get what is left, in order (one
        chunk per claimed id, empty when nothing is left). Should the registry have changed meanwhile,
        what fits no claimed run waits for the next request."""
        recorded = {run_id: self.context.state.get_run(run_id) for run_id in run_ids}
        taken = {a for run in recorded.values() if run is not None for a in run.artifacts}
        rest = iter(artifacts.split([a for chunk in chunks for a in chunk if a not in taken]))
        left = [run.artifacts if run is not None else next(rest, ()) for run in recorded.values()]
        if next(rest, None) is not None:
            log.warning("a repeated export found more artifacts than its first request claimed runs for")
        return left

    def start_scheduled_export(self, occurrence: Mapping[str, Any] | None = None) -> Accepted | None:
        """One export per schedule occurrence. `occurrence` is the timer's schedule status (Last/Next, kept
        by the host's schedule monitor), the same for every delivery of one occurrence; without it, the
        minute on the clock stands in, which a redelivery across a minute boundary does not match."""
        settings = self.context.settings
        if not settings.export_artifacts:
            return None
        occurrence = occurrence or {}
        if occurrence.get("Last") or occurrence.get("Next"):
            tick = f"{occurrence.get('Last') or '-'}/{occurrence.get('Next') or '-'}"
        else:
            tick = self.context.clock().strftime("%Y%m%dT%H%M")
        return self.start_export(
            list(settings.export_artifacts),
            Trigger.SCHEDULE,
            idempotency_key=f"schedule-{tick.replace(' ', '')}"[:200],
            incremental=settings.export_incremental,
        )

    def start_import(self, blob: Any, trigger: Trigger, idempotency_key: str | None = None) -> Accepted:
        blobs = self.context.require_import()
        name = naming.check_blob_name(blob)
        if is_manifest(name):
            raise InvalidInput("is a manifest beside a transfer blob: import the blob itself", target="blob")
        request = {"kind": "import", "blob": name}
        if idempotency_key is not None:
            repeat = self._stored_request(naming.check_idempotency_key(idempotency_key), request)
            if repeat is not None:
                return repeat
        if blobs.get_properties(name) is None:
            raise NotFound(
                f"blob {name!r} is not in container {self.context.settings.target_container}", target="blob"
            )
        self.context.ensure_ready("import")
        request_id, run_ids, repeated = self._claim(idempotency_key, request, 1)
        run = self.new_run(run_ids[0], RunKind.IMPORT, trigger, request_id, self.context.clock(), blob=name)
        return Accepted(request_id, [self.record_and_deploy(run)], repeated)

    def _stored_request(self, key: str, request: Mapping[str, Any]) -> Accepted | None:
        """The runs of an earlier request with this key, when all are recorded: a repeat must get them even
        after the blob was imported and deleted."""
        stored = self.context.state.get_request(key)
        if stored is None:
            return None
        _same_request(stored, request)
        runs = [self.context.state.get_run(run_id) for run_id in stored.run_ids]
        if any(run is None for run in runs):
            return None
        return Accepted(stored.request_id, [run for run in runs if run is not None], repeated=True)

    def _claim(self, key: str | None, request: Mapping[str, Any], count: int) -> tuple[str, list[str], bool]:
        """Run ids for a request; with an idempotency key, the ids stored by its first use."""
        now = self.context.clock()
        kind = RunKind(request["kind"])
        request_id = uuid.uuid4().hex
        run_ids = [naming.run_id(kind, now, self.context.token()) for _ in range(count)]
        if key is None:
            return request_id, run_ids, False
        naming.check_idempotency_key(key)
        fingerprint = naming.fingerprint(request)
        stored = self.context.state.claim_request(
            RequestRecord(key, request_id, fingerprint, tuple(run_ids), now)
        )
        _same_request(stored, request)
        return stored.request_id, list(stored.run_ids), stored.request_id != request_id

    def new_run(
        self,
        run_id: str,
        kind: RunKind,
        trigger: Trigger,
        request_id: str,
        now: datetime,
        *,
        artifacts: Iterable[str] = (),
        blob: str | None = None,
    ) -> Run:
        return Run(
            id=run_id,
            kind=kind,
            trigger=trigger,
            status=RunStatus.ACCEPTED,
            created_at=now,
            updated_at=now,
            request_id=request_id,
            deployment_name=naming.deployment_name(run_id),
            artifacts=tuple(artifacts),
            blob=blob,
            pipeline_run_id=f"{self.context.settings.registry_id}/pipelineRuns/{run_id}",
            verification=PENDING if kind is RunKind.IMPORT else None,
        )

    def record_and_deploy(self, run: Run) -> Run:
        """Record the run, then deploy it: only the caller whose record this is sends the PUT, so racing
        retries of one request cost one deployment. A run left Accepted (the starter died, or ARM throttled
        it) is deployed by reconcile."""
        try:
            run = self.context.state.add_run(run)
        except AlreadyExists:
            stored = self.context.state.get_run(run.id)
            if stored is None:
                raise
            return stored
        return self.deploy(run)

    def deploy(self, run: Run) -> Run:
        settings = self.context.settings
        parameters = run_parameters(
            run.kind.value,
            registry=settings.registry,
            run_name=run.id,
            pipeline_id=settings.pipeline_id(run.kind.value),
            force_update_tag=naming.force_update_tag(run.id),
            artifacts=run.artifacts,
            blob=run.blob,
        )
        template = self.context.templates.load(EXPORT_RUN if run.kind is RunKind.EXPORT else IMPORT_RUN)
        context = {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}
        try:
            self.context.arm.begin_deployment(run.deployment_name, template, parameters)
        except TRANSIENT_ERRORS as exc:
            log.warning("deployment deferred to reconcile: %s", exc.message, extra=context)
            if isinstance(exc, Throttled):  # a pass deploying Accepted runs stops at its next item
                pause = timedelta(seconds=exc.retry_after) if exc.retry_after else THROTTLE_PAUSE
                self.context.arm_not_before = self.context.clock() + pause
            return self.context.save(
                run, warning=f"not deployed yet ({exc.message}); reconcile deploys it on its next pass"
            )
        except TransferError as exc:
            failed = {"event": "run.failed", "outcome": RunStatus.FAILED.value}  # the failed-runs alert
            log.error("deployment rejected: %s", exc.message, extra={**context, **failed})
            return self.context.save(run, status=RunStatus.FAILED, error=exc.message)
        log.info("deployment started: %s", run.deployment_name, extra=context)
        return self.context.save(run, status=RunStatus.DEPLOYING, warning=None)  # a deferral note is over


def _same_request(stored: RequestRecord, request: Mapping[str, Any]) -> None:
    if stored.fingerprint != naming.fingerprint(request):
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request", target="Idempotency-Key"
        )
