"""The optional copy of an exported blob to the target container (TRANSFER_COPY_TARGET_URL).

A succeeded export is recorded with `copy_status=queued` in the same write as its success (after_success
.py), and stays in the active index until its copy settles: reconcile follows it from here without reading
ARM again. The run's manifest (`<blob>.manifest.json`) is copied with it, first; its copy is not followed
(it is small).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from transfer.domain.errors import NotConfigured, TransferError
from transfer.domain.manifests import signature_name
from transfer.domain.ports import BlobCopier
from transfer.domain.records import CopyState
from transfer.domain.runs import CopyStatus, Run
from transfer.service.lifecycle import RunLifecycle
from transfer.service.passes import Pass, unless_transient
from transfer.service.pipelines import Pipelines

log = logging.getLogger("transfer")

COPY_CLAIM_GRACE = timedelta(minutes=2)  # a claimed copy not started after this was left by a dead worker
_STORAGE_STATES = {
    CopyStatus.PENDING.value,
    CopyStatus.SUCCEEDED.value,
    CopyStatus.FAILED.value,
    CopyStatus.ABORTED.value,
}


class CopyStep:
    def __init__(
        self,
        copier: BlobCopier | None,
        pipelines: Pipelines,
        lifecycle: RunLifecycle,
        clock: Callable[[], datetime],
        *,
        signed: bool = False,
    ) -> None:
        self.copier = copier
        self.pipelines = pipelines
        self.lifecycle = lifecycle
        self.clock = clock
        self.signed = signed  # manifests have a signature beside them, copied before them

    def advance(self, work: Pass, runs: list[Run]) -> None:
        """Start queued copies and follow pending ones; the index keeps them active until they settle."""
        for run, after in work.each(runs, lambda r: f"copy {r.id}", self.step, arm=False):
            if after is not None and after.copy_status is not run.copy_status:
                work.report.counts[f"copy-{after.copy_status}"] += 1

    def step(self, run: Run) -> Run:
        """One run's copy moved on; what fails as configured is recorded on the run."""
        return unless_transient(lambda: self._step(run), self._failed(run))

    def _step(self, run: Run) -> Run:
        copier = self._copier()
        if run.copy_status is CopyStatus.STARTING and self.clock() - run.updated_at < COPY_CLAIM_GRACE:
            return run  # another worker claimed it a moment ago and is starting it
        assert run.blob is not None
        current = copier.copy_state(run.blob) if run.copy_status is not CopyStatus.QUEUED else None
        if current is None and run.copy_status is CopyStatus.PENDING:
            return self.lifecycle.save(run.copy_failed("the copied blob disappeared"))
        if current is None:
            claimed = self.lifecycle.claim(run.copy_claimed(self.clock()))
            return self._start(copier, claimed) if claimed else self.lifecycle.current(run)
        return self._settle(run, current)

    def _start(self, copier: BlobCopier, run: Run) -> Run:
        """Claimed before the side effect: of racing reconciles, one wins the claim and copies. A transient
        failure leaves the claim: after COPY_CLAIM_GRACE a pass looks at the target and goes on."""
        assert run.blob is not None
        blob = run.blob

        def started() -> Run:
            container = self.pipelines.export_container(needs_sas=True)
            if run.manifest and self.signed:
                signature = signature_name(run.manifest)
                copier.start_copy(container.blob_url(signature), signature)
            if run.manifest:  # first: the manifest is there before the blob's import can finish
                copier.start_copy(container.blob_url(run.manifest), run.manifest)
            current = copier.start_copy(container.blob_url(blob), blob)
            log.info("copy started", extra={"run_id": run.id, "blob": blob})
            return self._settle(run, current)

        return unless_transient(started, self._failed(run))

    def _failed(self, run: Run) -> Callable[[TransferError], Run]:
        return lambda exc: self.lifecycle.save(run.copy_failed(exc.message))

    def _settle(self, run: Run, current: CopyState) -> Run:
        status = CopyStatus(current.status) if current.status in _STORAGE_STATES else CopyStatus.PENDING
        if status is run.copy_status:
            return run
        return self.lifecycle.save(run.copy_reported(status, current.error))

    def _copier(self) -> BlobCopier:
        if self.copier is None:
            raise NotConfigured("TRANSFER_COPY_TARGET_URL is not set")
        return self.copier
