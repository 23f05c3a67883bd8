"""The optional copy of an exported blob to the target container (TRANSFER_COPY_TARGET_URL).

A succeeded export is recorded with `copy_status=queued` in the same write as its success, and stays in
the active index until its copy settles: reconcile follows it from there without reading ARM again.
"""

from __future__ import annotations

import logging

from transfer.errors import NotConfigured, TransferError
from transfer.runs import CopyStatus, Run, RunKind, RunStatus
from transfer.service.context import TRANSIENT_ERRORS, Context, Report

log = logging.getLogger("transfer")


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

    def advance(self, report: Report, runs: list[Run]) -> None:
        """Start queued copies and follow pending ones; the index keeps them active until they settle."""
        for run in runs:
            try:
                after = self._step(run)
            except TRANSIENT_ERRORS as exc:
                report.errors.append(f"copy {run.id}: {exc.message}")
                continue
            except TransferError as exc:
                after = self.context.save(run, copy_status=CopyStatus.FAILED, copy_error=exc.message)
            if after.copy_status is not run.copy_status:
                report.counts[f"copy-{after.copy_status}"] += 1

    def _step(self, run: Run) -> Run:
        assert run.blob is not None
        copier = self.context.copier()
        if run.copy_status is CopyStatus.QUEUED:
            state = copier.start_copy(self._export_blob_url(run.blob), run.blob)
            log.info("copy started", extra={"run_id": run.id, "blob": run.blob})
        else:
            current = copier.copy_state(run.blob)
            if current is None:
                return self.context.save(
                    run, copy_status=CopyStatus.FAILED, copy_error="the copied blob disappeared"
                )
            state = current
        status = (
            CopyStatus(state.status) if state.status in CopyStatus._value2member_map_ else CopyStatus.PENDING
        )
        if status is run.copy_status:
            return run
        return self.context.save(run, copy_status=status, copy_error=state.error)

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
        sas = self.context.secrets.read_sas(pipeline.key_vault_uri)
        return f"{uri}/{blob}?{sas.token.lstrip('?')}"
