"""The optional copy of an exported blob to the target container (TRANSFER_COPY_TARGET_URL).

A succeeded export is recorded with `copy_status=queued` in the same write as its success, and stays in
the active index until its copy settles: reconcile follows it from there without reading ARM again. The
run's manifest (`<blob>.manifest.json`) is copied with it, first; its copy is not followed (it is small).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from functools import partial

from transfer.domain.errors import NotConfigured, PreconditionFailed, TransferError
from transfer.domain.runs import CopyStatus, Run, RunKind, RunStatus
from transfer.service.context import TRANSIENT_ERRORS, Context, Pass

log = logging.getLogger("transfer")

COPY_CLAIM_GRACE = timedelta(minutes=2)  # a claimed copy not started after this was left by a dead worker
_STORAGE_STATES = {
    CopyStatus.PENDING.value,
    CopyStatus.SUCCEEDED.value,
    CopyStatus.FAILED.value,
    CopyStatus.ABORTED.value,
}


class Copies:
    def __init__(self, context: Context) -> None:
        self.context = context

    def due(self, run: Run) -> bool:
        return (
            bool(self.context.settings.copy_target_url)
            and run.kind is RunKind.EXPORT
            and run.status is RunStatus.SUCCEEDED
            and run.copy_status is None
            and run.blob is not None
        )

    def advance(self, work: Pass, runs: list[Run]) -> None:
        """Start queued copies and follow pending ones; the index keeps them active until they settle."""
        for run in runs:
            if not work.may_continue(arm=False):
                work.not_reached(len(runs) - runs.index(run))
                return
            after = work.item(f"copy {run.id}", partial(self._step_or_fail, run))
            if after is not None and after.copy_status is not run.copy_status:
                work.report.counts[f"copy-{after.copy_status}"] += 1

    def _step_or_fail(self, run: Run) -> Run:
        try:
            return self._step(run)
        except TRANSIENT_ERRORS:
            raise
        except TransferError as exc:  # recorded on the run: the copy will not work as configured
            return self.context.save(run, copy_status=CopyStatus.FAILED, copy_error=exc.message)

    def _step(self, run: Run) -> Run:
        blob = run.blob
        assert blob is not None
        copier = self.context.copier()
        now = self.context.clock()
        if run.copy_status is CopyStatus.STARTING and now - run.updated_at < COPY_CLAIM_GRACE:
            return run  # another worker claimed it a moment ago and is starting it
        current = copier.copy_state(blob) if run.copy_status is not CopyStatus.QUEUED else None
        if current is None and run.copy_status is CopyStatus.PENDING:
            return self.context.save(
                run, copy_status=CopyStatus.FAILED, copy_error="the copied blob disappeared"
            )
        if current is None:
            # Claimed before the side effect: of racing reconciles, one wins this write and copies.
            try:
                claimed = self.context.state.update_run(
                    replace(run, copy_status=CopyStatus.STARTING, updated_at=now)
                )
            except PreconditionFailed:
                return self.context.state.get_run(run.id) or run
            run = claimed
            try:
                if run.manifest:  # first: the manifest is there before the blob's import can finish
                    copier.start_copy(self._export_blob_url(run.manifest), run.manifest)
                current = copier.start_copy(self._export_blob_url(blob), blob)
            except TRANSIENT_ERRORS:
                raise  # the claim stays: after COPY_CLAIM_GRACE a pass looks at the target and goes on
            except TransferError as exc:
                return self.context.save(run, copy_status=CopyStatus.FAILED, copy_error=exc.message)
            log.info("copy started", extra={"run_id": run.id, "blob": blob})
        status = CopyStatus(current.status) if current.status in _STORAGE_STATES else CopyStatus.PENDING
        if status is run.copy_status:
            return run
        return self.context.save(run, copy_status=status, copy_error=current.error)

    def _export_blob_url(self, blob: str) -> str:
        """The exported blob's URL with a SAS read from the export pipeline's own Key Vault secret."""
        pipeline = self.context.pipeline("export")
        uri = (pipeline.storage_uri or "").rstrip("/")
        if not uri:
            raise NotConfigured("the export pipeline has no target.uri")
        if not pipeline.uses_sas or not pipeline.key_vault_uri or self.context.secrets is None:
            raise NotConfigured(
                "the copy step reads the source SAS from the export pipeline's Key Vault secret; "
                "a ManagedIdentity export pipeline needs azcopy or a SasToken pipeline for the copy"
            )
        sas = self.context.sas(pipeline)
        return f"{uri}/{blob}?{sas.token.lstrip('?')}"
