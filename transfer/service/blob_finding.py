"""The manifest of the blob a source-trigger import run came from when the run names no blob: read from
the watched container's manifests that were there before the run started, matched by the run's
catalogDigest or its importedArtifacts (transfer/domain/matching.py decides)."""

from __future__ import annotations

import logging
from datetime import timedelta

from transfer.domain.errors import TransferError
from transfer.domain.manifests import MAX_BYTES, SUFFIX, Manifest, parse
from transfer.domain.matching import matching_blob
from transfer.domain.ports import BlobStore
from transfer.domain.runs import Run

log = logging.getLogger("transfer")

MAX_CANDIDATES = 100  # the newest manifests read for one run
CLOCK_SLACK = timedelta(minutes=5)  # between the storage account's clock and the trigger's


class FindManifest:
    def __init__(self, blobs: BlobStore | None) -> None:
        self.blobs = blobs

    def __call__(self, run: Run) -> str | None:
        """The name of the manifest `run` verifies against, or None when none fits (or none can be read)."""
        if self.blobs is None or not (run.catalog_digest or run.imported_artifacts):
            return None
        try:
            return matching_blob(
                self._candidates(self.blobs, run), run.catalog_digest, run.imported_artifacts
            )
        except TransferError as exc:
            log.warning("no manifest found for run %s: %s", run.id, exc.message)
            return None

    def _candidates(self, blobs: BlobStore, run: Run) -> list[tuple[str, Manifest]]:
        before = run.created_at + CLOCK_SLACK
        listed = [b for b in blobs.list_blobs() if b.name.endswith(SUFFIX) and b.last_modified <= before]
        listed.sort(key=lambda b: b.last_modified, reverse=True)
        found = []
        for blob in listed[:MAX_CANDIDATES]:
            data = blobs.read_blob(blob.name, MAX_BYTES)
            try:
                found.append((blob.name, parse(data))) if data is not None else None
            except ValueError:
                continue  # not a manifest of this app
        return found
