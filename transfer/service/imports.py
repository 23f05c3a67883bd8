"""Starting a manual import of one blob of the watched container (HTTP, CLI)."""

from __future__ import annotations

from typing import Any

from transfer.domain import naming
from transfer.domain.errors import InvalidInput, NotConfigured, NotFound
from transfer.domain.manifests import is_manifest
from transfer.domain.ports import BlobStore
from transfer.domain.runs import RunKind, Trigger
from transfer.domain.settings import Settings
from transfer.service.lifecycle import RunLifecycle
from transfer.service.pipelines import Pipelines
from transfer.service.requests import Accepted, IdempotentRequests


def watched_container(settings: Settings, blobs: BlobStore | None) -> BlobStore:
    """The watched container, for the use cases of the target side; refused on an instance without it."""
    if not settings.import_pipeline:
        raise NotConfigured("this instance has no import pipeline (TRANSFER_IMPORT_PIPELINE)")
    if blobs is None:
        raise NotConfigured("TransferStorage is not configured")
    return blobs


class StartImport:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore | None,
        pipelines: Pipelines,
        requests: IdempotentRequests,
        lifecycle: RunLifecycle,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.pipelines = pipelines
        self.requests = requests
        self.lifecycle = lifecycle

    def __call__(self, blob: Any, trigger: Trigger, idempotency_key: str | None = None) -> Accepted:
        blobs = watched_container(self.settings, self.blobs)
        name = naming.check_blob_name(blob)
        if is_manifest(name):
            raise InvalidInput("is a manifest beside a transfer blob: import the blob itself", target="blob")
        request = {"kind": "import", "blob": name}
        if idempotency_key is not None:
            repeat = self.requests.stored(naming.check_idempotency_key(idempotency_key), request)
            if repeat is not None:
                return repeat
        if blobs.get_properties(name) is None:
            raise NotFound(
                f"blob {name!r} is not in container {self.settings.target_container}", target="blob"
            )
        self.pipelines.ensure_ready("import")
        claim = self.requests.claim(idempotency_key, request, 1)
        run = self.lifecycle.new(
            claim.run_ids[0], RunKind.IMPORT, trigger, request_id=claim.request_id, blob=name
        )
        return Accepted(claim.request_id, [self.lifecycle.record_and_deploy(run)], claim.repeated)
