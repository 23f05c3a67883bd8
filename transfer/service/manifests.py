"""What follows a run's success, recorded in the same write as the success itself (reconcile calls
`Manifests.on_success` once, as a run becomes Succeeded):

- an export: its manifest is written beside its blob in the export pipeline's container (with the SAS of
  the pipeline's Key Vault secret in SasToken mode, else the app's identity, which then needs Storage Blob
  Data Contributor on that account), and the export ledger records the digests its start read. Both are
  idempotent (the same manifest overwrites itself; a ledger row only moves to a later reading), and both
  happen before the success is recorded: a worker that dies in between leaves the run active, and the
  next pass does it again. A transient failure defers the run to the next pass the same way; any other
  failure is recorded as the run's warning (the run did succeed).
- an import: it is verified against its blob's manifest, read from the watched container (transfer/
  manifests.py decides); whatever cannot be read makes the verification `unavailable`, never an error.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from transfer.domain.errors import NotConfigured, TransferError
from transfer.domain.manifests import (
    CONTENT_TYPE,
    MAX_BYTES,
    Manifest,
    Outcome,
    Verification,
    build,
    manifest_name,
    parse,
    tags_to_check,
    verify,
)
from transfer.domain.ports import LedgerEntry
from transfer.domain.references import split_reference
from transfer.domain.runs import Run, RunKind, RunStatus
from transfer.service.context import TRANSIENT_ERRORS, Context
from transfer.service.selecting import ledger_key

log = logging.getLogger("transfer")


def with_warning(run: Run, warning: str) -> Run:
    """The run with `warning` added to any warning it has."""
    return replace(run, warning=f"{run.warning}; {warning}" if run.warning else warning)


class Manifests:
    def __init__(self, context: Context) -> None:
        self.context = context

    def on_success(self, before: Run | None, after: Run) -> Run:
        """`after` (the run as reconcile is about to record it) with what its success brings; unchanged
        unless the run has just become Succeeded."""
        if after.status is not RunStatus.SUCCEEDED or (before is not None and before.status.terminal):
            return after
        if after.kind is RunKind.EXPORT:
            return self._export_succeeded(after)
        return self.verified(after)

    # ---- exports ----

    def _export_succeeded(self, run: Run) -> Run:
        warnings = []
        manifest = None
        if run.blob is not None:
            name = manifest_name(run.blob)
            try:
                self._write(run, name)
                manifest = name
            except TRANSIENT_ERRORS:
                raise
            except TransferError as exc:
                warnings.append(f"manifest not written: {exc.message}")
                log.warning("manifest not written: %s", exc.message, extra={"run_id": run.id})
        entries = []
        for artifact, digest in run.digests:
            repository, reference = ledger_key(artifact)
            entries.append(LedgerEntry(repository, reference, digest, run.id, run.created_at))
        try:
            self.context.state.record_exports(entries)
        except TRANSIENT_ERRORS:
            raise
        except TransferError as exc:  # the next incremental export sends these tags again: safe
            warnings.append(f"export ledger not written: {exc.message}")
        after = replace(run, manifest=manifest)
        for warning in warnings:
            after = with_warning(after, warning)
        return after

    def manifest_of(self, run: Run) -> Manifest:
        """The run's manifest: the digests its start read, and for the other tags (exact references) the
        digests the registry shows now, where it can be read."""
        assert run.blob is not None
        settings = self.context.settings
        digests = dict(run.digests)
        unknown = [a for a in run.artifacts if a not in digests and split_reference(a)[1] is not None]
        if unknown and self.context.registry is not None:
            for artifact in unknown:
                repository, tag, _ = split_reference(artifact)
                assert tag is not None
                try:
                    found = self.context.registry.digest(repository, tag)
                except TRANSIENT_ERRORS:
                    raise
                except TransferError as exc:
                    log.warning("manifest without digests: %s", exc.message, extra={"run_id": run.id})
                    break
                if found is not None:
                    digests[artifact] = found
        return build(
            run_id=run.id,
            pipeline_run_id=run.pipeline_run_id,
            source_registry=f"{settings.registry.lower()}.{settings.cloud.registry_suffix}",
            exported_at=run.finished_at or self.context.clock(),
            blob=run.blob,
            artifacts=run.artifacts,
            digests=digests,
        )

    def _write(self, run: Run, name: str) -> None:
        writer = self.context.blob_writer
        if writer is None:
            raise NotConfigured("this instance writes no manifests (no blob writer)")
        pipeline = self.context.pipeline("export")
        container = (pipeline.storage_uri or "").rstrip("/")
        if not container:
            raise NotConfigured("the export pipeline has no target.uri")
        sas = None
        if pipeline.uses_sas:
            if not pipeline.key_vault_uri or self.context.secrets is None:
                raise NotConfigured("the export pipeline is in SasToken mode but has no keyVaultUri")
            sas = self.context.sas(pipeline).token
        data = self.manifest_of(run).encode()
        writer.write_blob(container, name, data, content_type=CONTENT_TYPE, sas_token=sas)
        log.info("manifest written", extra={"run_id": run.id, "blob": name})

    # ---- imports ----

    def verified(self, run: Run) -> Run:
        """The succeeded import compared with its blob's manifest; a failed verification is also the
        run's warning (health and the run list show it)."""
        name = manifest_name(run.blob) if run.blob else None
        outcome, read = self._verify(run, name)
        after = replace(
            run,
            manifest=name if read else None,
            verification=outcome.verification.value,
            verification_detail=outcome.detail,
            skipped_artifacts=outcome.skipped,
        )
        context = {
            "run_id": run.id,
            "blob": run.blob,
            "trigger": run.trigger.value,
            "verification": outcome.verification.value,
            "outcome": outcome.verification.value,
        }
        if outcome.verification is Verification.FAILED:  # the failed-verifications alert reads the event
            log.warning(
                "import verification failed: %s",
                outcome.detail,
                extra={**context, "event": "verification.failed"},
            )
            return with_warning(after, f"verification failed: {outcome.detail}")
        log.info("import verification %s: %s", outcome.verification.value, outcome.detail, extra=context)
        return after

    def _verify(self, run: Run, name: str | None) -> tuple[Outcome, bool]:
        """The outcome, and whether the manifest was read."""
        unavailable = Verification.UNAVAILABLE
        if name is None:
            return Outcome(unavailable, "the run names no blob (the source trigger's runs may not)"), False
        blobs = self.context.blobs
        if blobs is None:
            return Outcome(unavailable, "this instance watches no container"), False
        try:
            data = blobs.read_blob(name, MAX_BYTES)
        except TransferError as exc:
            return Outcome(unavailable, f"the manifest {name} could not be read: {exc.message}"), False
        if data is None:
            return Outcome(unavailable, f"no manifest {name} beside the blob"), False
        try:
            manifest = parse(data)
        except ValueError as exc:
            return Outcome(unavailable, f"{name} is not a manifest of this app: {exc}"), False
        imported = run.imported_artifacts
        registry = self.context.registry
        if registry is None:
            return verify(manifest, imported, None, unreadable="this instance reads no registry"), True
        digests: dict[str, str | None] = {}
        try:
            for item in tags_to_check(manifest, imported):
                assert item.tag is not None
                digests[item.artifact] = registry.digest(item.repository, item.tag)
        except TransferError as exc:
            return verify(manifest, imported, None, unreadable=exc.message), True
        return verify(manifest, imported, digests), True
