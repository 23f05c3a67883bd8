"""The sweep: the 60-day rule applied to every blob of the watched container, since blobs age without
events. Each blob on its own (blob_events.py); a pass cut short by its budget or by throttling starts
after the last blob it reached next time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from transfer.domain.manifests import is_manifest
from transfer.domain.ports import BlobStore
from transfer.domain.records import BlobInfo
from transfer.domain.runs import Trigger
from transfer.domain.settings import Settings
from transfer.domain.staleness import Outcome
from transfer.service.blob_events import BlobResult, HandleBlob
from transfer.service.imports import watched_container
from transfer.service.memory import WorkerMemory
from transfer.service.passes import Pass, Report, rotated

REPORTED = (Outcome.REFRESH, Outcome.IMPORT, Outcome.WAITING)


class Sweep:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore | None,
        handle_blob: HandleBlob,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.handle_blob = handle_blob
        self.memory = memory
        self.clock = clock

    def __call__(self) -> Report:
        blobs = watched_container(self.settings, self.blobs)
        work = Pass(self.memory, self.clock)
        listed = rotated(list(blobs.list_blobs()), lambda b: b.name, self.memory.sweep_cursor)
        manifests = [blob for blob in listed if is_manifest(blob.name)]
        if manifests:
            work.report.counts["manifest"] += len(manifests)
        transfer_blobs = [blob for blob in listed if not is_manifest(blob.name)]
        steps = work.each(
            transfer_blobs,
            lambda b: f"blob {b.name!r}",
            self._reached,
            arm=False,
            left="blobs left for the next sweep",
        )
        for blob, result in steps:
            if result is not None:
                _count(work.report, blob, result)
        return work.report

    def _reached(self, blob: BlobInfo) -> BlobResult:
        self.memory.sweep_cursor = blob.name
        return self.handle_blob(blob.name, Trigger.SWEEP, blob)


def _count(report: Report, blob: BlobInfo, result: BlobResult) -> None:
    report.counts[result.outcome.value] += 1
    if result.outcome in REPORTED:
        report.items.append(
            {"blob": blob.name, "outcome": result.outcome.value, "run": result.run.id if result.run else None}
        )
