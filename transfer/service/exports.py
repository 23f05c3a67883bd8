"""Starting exports: on request (HTTP, CLI) and on the schedule. Selectors are expanded and, when
incremental, unchanged tags left out (selecting.py); more than 50 artifacts become several runs; each run
is recorded, then deployed (lifecycle.py), under the run ids its Idempotency-Key claimed first."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from transfer.domain import artifacts, naming
from transfer.domain.errors import InvalidInput, NotConfigured
from transfer.domain.ports import RunStore
from transfer.domain.runs import Run, RunKind, Trigger
from transfer.domain.settings import Settings
from transfer.service.lifecycle import RunLifecycle
from transfer.service.pipelines import Pipelines
from transfer.service.requests import Accepted, IdempotentRequests
from transfer.service.selecting import Selecting, Selection

log = logging.getLogger("transfer")


class StartExport:
    def __init__(
        self,
        settings: Settings,
        pipelines: Pipelines,
        selecting: Selecting,
        requests: IdempotentRequests,
        lifecycle: RunLifecycle,
        runs: RunStore,
    ) -> None:
        self.settings = settings
        self.pipelines = pipelines
        self.selecting = selecting
        self.requests = requests
        self.lifecycle = lifecycle
        self.runs = runs

    def __call__(
        self,
        requested: Any,
        trigger: Trigger,
        target_name: str | None = None,
        idempotency_key: str | None = None,
        incremental: Any = False,
    ) -> Accepted:
        """Nothing left to export starts nothing (no runs, the skipped tags named)."""
        if not self.settings.export_pipeline:
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
        self.pipelines.ensure_ready("export")
        if idempotency_key is not None:
            repeat = self.requests.stored(idempotency_key, request)
            if repeat is not None:  # every run recorded: the answer of the first request, no new reads
                return replace(repeat, incremental=incremental)  # an Accepted one is reconcile's to deploy
        selection = self.selecting.select(
            items, incremental=incremental, strict=trigger is not Trigger.SCHEDULE, requested=requested
        )
        if not selection.artifacts:
            log.info(
                "export: nothing new to export (%d unchanged)",
                len(selection.skipped),
                extra={"trigger": trigger.value, "skipped": len(selection.skipped)},
            )
            return Accepted(uuid.uuid4().hex, [], False, selection.skipped, selection.unmatched, incremental)
        return self._start(selection, trigger, target_name, idempotency_key, request, incremental)

    def _start(
        self,
        selection: Selection,
        trigger: Trigger,
        target_name: str | None,
        key: str | None,
        request: Mapping[str, Any],
        incremental: bool,
    ) -> Accepted:
        chunks = selection.runs(artifacts.MAX_PER_RUN)
        claim = self.requests.claim(key, request, len(chunks))
        if claim.repeated:
            chunks = self._left_for(claim.run_ids, chunks)
        now = self.lifecycle.clock()
        runs = []
        for run_id, chunk in zip(claim.run_ids, chunks, strict=False):
            if not chunk:  # a repeat with fewer artifacts than claimed runs
                continue
            digests = tuple((a, selection.digests[a]) for a in chunk if a in selection.digests)
            run = self.lifecycle.new(
                run_id,
                RunKind.EXPORT,
                trigger,
                request_id=claim.request_id,
                artifacts=chunk,
                blob=naming.export_blob_name(target_name, run_id),
                digests=digests,
                now=now,
            )
            run = replace(run, referrers=selection.referrers_of(chunk))
            runs.append(self.lifecycle.record_and_deploy(run))
        if not claim.repeated:
            log.info(
                "export accepted: %d artifacts in %d runs",
                len(selection.artifacts),
                len(runs),
                extra={
                    "trigger": trigger.value,
                    "skipped": len(selection.skipped),
                    "request_id": claim.request_id,
                    "run_ids": claim.run_ids,
                },
            )
        return Accepted(
            claim.request_id, runs, claim.repeated, selection.skipped, selection.unmatched, incremental
        )

    def _left_for(self, run_ids: list[str], chunks: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """A repeat whose first request claimed `run_ids` but did not record them all (a worker died in
        between): recorded runs keep their artifacts, the missing ones get what is left, in order (one
        chunk per claimed id, empty when nothing is left). Should the registry have changed meanwhile,
        what fits no claimed run waits for the next request."""
        recorded: dict[str, Run | None] = {run_id: self.runs.get_run(run_id) for run_id in run_ids}
        taken = {a for run in recorded.values() if run is not None for a in run.artifacts}
        rest = iter(artifacts.split([a for chunk in chunks for a in chunk if a not in taken]))
        left = [run.artifacts if run is not None else next(rest, ()) for run in recorded.values()]
        if next(rest, None) is not None:
            log.warning("a repeated export found more artifacts than its first request claimed runs for")
        return left


class ScheduledExport:
    """One export per schedule occurrence of TRANSFER_EXPORT_ARTIFACTS."""

    def __init__(self, settings: Settings, start_export: StartExport, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.start_export = start_export
        self.clock = clock

    def __call__(self, occurrence: Mapping[str, Any] | None = None) -> Accepted | None:
        """`occurrence` is the timer's schedule status (Last/Next, kept by the host's schedule monitor), the
        same for every delivery of one occurrence; without it, the minute on the clock stands in, which a
        redelivery across a minute boundary does not match."""
        if not self.settings.export_artifacts:
            return None
        occurrence = occurrence or {}
        if occurrence.get("Last") or occurrence.get("Next"):
            tick = f"{occurrence.get('Last') or '-'}/{occurrence.get('Next') or '-'}"
        else:
            tick = self.clock().strftime("%Y%m%dT%H%M")
        return self.start_export(
            list(self.settings.export_artifacts),
            Trigger.SCHEDULE,
            idempotency_key=f"schedule-{tick.replace(' ', '')}"[:200],
            incremental=self.settings.export_incremental,
        )
