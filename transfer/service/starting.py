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
from datetime import datetime
from typing import Any

from transfer import artifacts, naming, templates
from transfer.arm_views import run_parameters
from transfer.errors import AlreadyExists, Conflict, NotConfigured, NotFound, TransferError
from transfer.ports import RequestRecord
from transfer.runs import Run, RunKind, RunStatus, Trigger
from transfer.service.context import TRANSIENT_ERRORS, Context

log = logging.getLogger("transfer")


@dataclass(frozen=True)
class Accepted:
    request_id: str
    runs: list[Run]
    repeated: bool = False


class Starter:
    def __init__(self, context: Context) -> None:
        self.context = context

    def start_export(
        self,
        requested: Any,
        trigger: Trigger,
        target_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        if not self.context.settings.export_pipeline:
            raise NotConfigured("this instance has no export pipeline (TRANSFER_EXPORT_PIPELINE)")
        refs = artifacts.parse_artifacts(requested)
        naming.check_target_name(target_name)
        chunks = artifacts.split(refs)
        request = {"kind": "export", "artifacts": refs, "targetName": target_name}
        request_id, run_ids, repeated = self._claim(idempotency_key, request, len(chunks))
        now = self.context.clock()
        runs = []
        for run_id, chunk in zip(run_ids, chunks, strict=True):
            run = self.new_run(run_id, RunKind.EXPORT, trigger, request_id, now, artifacts=chunk)
            run = replace(run, blob=naming.export_blob_name(target_name, run_id))
            runs.append(self.record_and_deploy(run))
        if not repeated:
            log.info(
                "export accepted: %d artifacts in %d runs",
                len(refs),
                len(runs),
                extra={"request_id": request_id, "trigger": trigger.value, "run_ids": run_ids},
            )
        return Accepted(request_id, runs, repeated)

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
        )

    def start_import(self, blob: Any, trigger: Trigger, idempotency_key: str | None = None) -> Accepted:
        blobs = self.context.require_import()
        name = naming.check_blob_name(blob)
        request = {"kind": "import", "blob": name}
        if idempotency_key is not None:
            repeat = self._stored_request(naming.check_idempotency_key(idempotency_key), request)
            if repeat is not None:
                return repeat
        if blobs.get_properties(name) is None:
            raise NotFound(
                f"blob {name!r} is not in container {self.context.settings.target_container}", target="blob"
            )
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
        )

    def record_and_deploy(self, run: Run) -> Run:
        try:
            run = self.context.state.add_run(run)
        except AlreadyExists:
            stored = self.context.state.get_run(run.id)
            if stored is None:
                raise
            run = stored
        if run.status is RunStatus.ACCEPTED:
            run = self.deploy(run)
        return run

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
        template = templates.load(
            templates.EXPORT_RUN if run.kind is RunKind.EXPORT else templates.IMPORT_RUN
        )
        context = {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}
        try:
            self.context.arm.begin_deployment(run.deployment_name, template, parameters)
        except TRANSIENT_ERRORS as exc:
            log.warning("deployment deferred to reconcile: %s", exc.message, extra=context)
            return run
        except TransferError as exc:
            log.error("deployment rejected: %s", exc.message, extra=context)
            return self.context.save(run, status=RunStatus.FAILED, error=exc.message)
        log.info("deployment started: %s", run.deployment_name, extra=context)
        return self.context.save(run, status=RunStatus.DEPLOYING)


def _same_request(stored: RequestRecord, request: Mapping[str, Any]) -> None:
    if stored.fingerprint != naming.fingerprint(request):
        raise Conflict(
            "this Idempotency-Key was already used for a different request",
            target="Idempotency-Key",
            code="IdempotencyKeyReused",
        )
