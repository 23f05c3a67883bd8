"""What follows a run's success, recorded in the same write as the success itself: an explicit list of
steps, each its own small function that says which runs it applies to. Reconcile runs the list once, as a
run becomes Succeeded (also a source-trigger run that is first seen finished).

Every step is idempotent and happens before the success is recorded: a worker that dies in between leaves
the run active and the next pass does it again; a transient failure defers the run the same way. Any other
failure becomes the run's warning (the run did succeed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from transfer.domain.errors import NotConfigured, TransferError
from transfer.domain.manifests import (
    CONTENT_TYPE,
    MAX_BYTES,
    MAX_SIGNATURE_BYTES,
    Manifest,
    Outcome,
    Verification,
    build,
    manifest_name,
    parse,
    signature_name,
    tags_to_check,
    verify,
)
from transfer.domain.ports import (
    BlobStore,
    BlobWriter,
    ExportLedger,
    ManifestSigner,
    ManifestVerifier,
    Registry,
)
from transfer.domain.records import LedgerEntry
from transfer.domain.references import split_reference
from transfer.domain.runs import Run, RunKind
from transfer.domain.settings import Settings
from transfer.service.lifecycle import run_context
from transfer.service.passes import unless_transient
from transfer.service.pipelines import Pipelines
from transfer.service.selecting import ledger_key

log = logging.getLogger("transfer")


class Step(Protocol):
    def applies(self, run: Run) -> bool: ...

    def __call__(self, run: Run) -> Run: ...


class AfterSuccess:
    """The steps, in order; each sees the run as the previous one left it."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)

    def __call__(self, run: Run) -> Run:
        for step in self.steps:
            if step.applies(run):
                run = step(run)
        return run


class WriteManifest:
    """An export's manifest, beside its blob in the export pipeline's container: the digests its start
    read, and for exact references those the registry shows now, where it can be read."""

    def __init__(
        self,
        settings: Settings,
        writer: BlobWriter | None,
        pipelines: Pipelines,
        registry: Registry | None,
        clock: Callable[[], datetime],
        signer: ManifestSigner | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.pipelines = pipelines
        self.registry = registry
        self.clock = clock
        self.signer = signer

    def applies(self, run: Run) -> bool:
        return run.kind is RunKind.EXPORT and run.blob is not None

    def __call__(self, run: Run) -> Run:
        return unless_transient(lambda: self._write(run), lambda exc: _not_written(run, exc))

    def _write(self, run: Run) -> Run:
        assert run.blob is not None
        if self.writer is None:
            raise NotConfigured("this instance writes no manifests (no blob writer)")
        container = self.pipelines.export_container(needs_sas=False)
        name = manifest_name(run.blob)
        data = self.manifest_of(run).encode()
        if self.signer is not None:  # first: a manifest that is there is signed
            self.writer.write_blob(
                container.url,
                signature_name(name),
                self.signer.sign(data),
                content_type=SIGNATURE_CONTENT_TYPE,
                sas_token=container.sas_token,
            )
        self.writer.write_blob(
            container.url, name, data, content_type=CONTENT_TYPE, sas_token=container.sas_token
        )
        log.info("manifest written", extra={"run_id": run.id, "blob": name})
        return run.with_manifest(name)

    def manifest_of(self, run: Run) -> Manifest:
        assert run.blob is not None
        return build(
            run_id=run.id,
            pipeline_run_id=run.pipeline_run_id,
            source_registry=f"{self.settings.registry.lower()}.{self.settings.cloud.registry_suffix}",
            exported_at=run.finished_at or self.clock(),
            blob=run.blob,
            artifacts=run.artifacts,
            digests=self._digests(run),
            referrers=run.referrers,
            catalog_digest=run.catalog_digest,
        )

    def _digests(self, run: Run) -> dict[str, str]:
        digests = dict(run.digests)
        unknown = [a for a in run.artifacts if a not in digests and split_reference(a)[1] is not None]
        if unknown and self.registry is not None:
            registry = self.registry
            unless_transient(
                lambda: _read_digests(registry, unknown, digests),
                lambda exc: log.warning(
                    "manifest without digests: %s", exc.message, extra={"run_id": run.id}
                ),
            )
        return digests


def _read_digests(registry: Registry, artifacts: list[str], into: dict[str, str]) -> None:
    for artifact in artifacts:
        repository, tag, _ = split_reference(artifact)
        assert tag is not None
        found = registry.digest(repository, tag)
        if found is not None:
            into[artifact] = found


def _not_written(run: Run, exc: TransferError) -> Run:
    log.warning("manifest not written: %s", exc.message, extra={"run_id": run.id})
    return run.with_manifest(None).with_warning(f"manifest not written: {exc.message}")


class RecordLedger:
    """The export ledger records the digests the run's start read (a row only moves to a later reading)."""

    def __init__(self, ledger: ExportLedger) -> None:
        self.ledger = ledger

    def applies(self, run: Run) -> bool:
        return run.kind is RunKind.EXPORT

    def __call__(self, run: Run) -> Run:
        entries = [
            LedgerEntry(*ledger_key(artifact), digest, run.id, run.created_at)
            for artifact, digest in run.digests
        ]
        # Not written, the next incremental export sends these tags again: safe.
        return unless_transient(
            lambda: self._record(run, entries),
            lambda exc: run.with_warning(f"export ledger not written: {exc.message}"),
        )

    def _record(self, run: Run, entries: list[LedgerEntry]) -> Run:
        self.ledger.record_exports(entries)
        return run


class VerifyImport:
    """A succeeded import compared with its blob's manifest, read from the watched container (transfer/
    domain/manifests.py decides); whatever cannot be read makes the verification `unavailable`, never an
    error. A failed verification is also the run's warning (health and the run list show it)."""

    def __init__(
        self,
        blobs: BlobStore | None,
        registry: Registry | None,
        find: Callable[[Run], str | None] | None = None,
        verifier: ManifestVerifier | None = None,
    ) -> None:
        self.blobs = blobs
        self.registry = registry
        self.find = find  # the manifest of a run that names no blob (blob_finding.py)
        self.verifier = verifier  # every manifest must be signed by its key (TRANSFER_MANIFEST_VERIFY_KEY)

    def applies(self, run: Run) -> bool:
        return run.kind is RunKind.IMPORT

    def __call__(self, run: Run) -> Run:
        name = manifest_name(run.blob) if run.blob else (self.find(run) if self.find else None)
        outcome, read = self._verify(run, name)
        after = run.verified(outcome.verification, outcome.detail, outcome.skipped, name if read else None)
        context = {
            **run_context(run),
            "verification": outcome.verification.value,
            "outcome": outcome.verification.value,
        }
        if outcome.verification is Verification.FAILED:  # the failed-verifications alert reads the event
            log.warning(
                "import verification failed: %s",
                outcome.detail,
                extra={**context, "event": "verification.failed"},
            )
            return after.with_warning(f"verification failed: {outcome.detail}")
        log.info("import verification %s: %s", outcome.verification.value, outcome.detail, extra=context)
        return after

    def _verify(self, run: Run, name: str | None) -> tuple[Outcome, bool]:
        """The outcome, and whether the manifest was read."""
        manifest = self._manifest(name)
        if not isinstance(manifest, Manifest):
            return manifest, False
        imported = run.imported_artifacts
        if self.registry is None:
            return verify(manifest, imported, None, unreadable="this instance reads no registry"), True
        digests: dict[str, str | None] = {}
        try:
            for item in tags_to_check(manifest, imported):
                assert item.tag is not None
                digests[item.artifact] = self.registry.digest(item.repository, item.tag)
            linked = _linked(self.registry, manifest)
        except TransferError as exc:
            return verify(manifest, imported, None, unreadable=exc.message), True
        return verify(manifest, imported, digests, linked=linked), True

    def _untrusted(self, blobs: BlobStore, name: str, data: bytes) -> str | None:
        """Why the manifest cannot be trusted (unsigned, or its signature is wrong), before anything in it
        is read; None when it is signed by the configured key, or no key is configured."""
        if self.verifier is None:
            return None
        signature = blobs.read_blob(signature_name(name), MAX_SIGNATURE_BYTES)
        if signature is None:
            missing = signature_name(name)
            return f"{name} is not signed ({missing} is missing) and TRANSFER_MANIFEST_VERIFY_KEY is set"
        problem = self.verifier.problem(data, signature)
        return f"{name}: {problem}" if problem else None

    def _manifest(self, name: str | None) -> Manifest | Outcome:
        """The blob's manifest, or why the verification is unavailable."""
        unavailable = Verification.UNAVAILABLE
        if name is None:
            return Outcome(
                unavailable,
                "the run names no blob (the source trigger's runs may not) and no manifest in the watched "
                "container matches its catalogDigest or importedArtifacts",
            )
        if self.blobs is None:
            return Outcome(unavailable, "this instance watches no container")
        try:
            data = self.blobs.read_blob(name, MAX_BYTES)
        except TransferError as exc:
            return Outcome(unavailable, f"the manifest {name} could not be read: {exc.message}")
        if data is None:
            return Outcome(unavailable, f"no manifest {name} beside the blob")
        untrusted = self._untrusted(self.blobs, name, data)
        if untrusted is not None:
            return Outcome(Verification.FAILED, untrusted)
        try:
            return parse(data)
        except ValueError as exc:
            return Outcome(unavailable, f"{name} is not a manifest of this app: {exc}")


def _linked(registry: Registry, manifest: Manifest) -> dict[str, bool]:
    """Whether the target registry lists each referrer of the manifest under its subject: one
    ListReferrers call per subject."""
    listed: dict[tuple[str, str], set[str]] = {}
    for referrer in manifest.referrers:
        key = (referrer.repository, referrer.subject)
        if key not in listed:
            listed[key] = {d.digest for d in registry.referrers(*key)}
    return {r.artifact: r.digest in listed[(r.repository, r.subject)] for r in manifest.referrers}


SIGNATURE_CONTENT_TYPE = "application/octet-stream"


class QueueCopy:
    """A succeeded export's copy to the target container is queued in the success's own write: reconcile
    follows it from there (copy_step.py) without reading ARM again."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def applies(self, run: Run) -> bool:
        return (
            bool(self.settings.copy_target_url)
            and run.kind is RunKind.EXPORT
            and run.copy_status is None
            and run.blob is not None
        )

    def __call__(self, run: Run) -> Run:
        return run.copy_queued()
