"""GET /api/blobs/{name} and `python -m transfer blob NAME`: what the app knows and will do about one blob
of the watched container, decided exactly as its next event or sweep would decide (blob_rule.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from transfer.domain import naming
from transfer.domain.errors import NotFound
from transfer.domain.ports import BlobRecords, BlobStore, RunStore
from transfer.domain.records import BlobInfo, BlobRecord
from transfer.domain.runs import Run
from transfer.domain.settings import Settings
from transfer.domain.staleness import Decision, Outcome, has_category
from transfer.service.blob_rule import BlobRule
from transfer.service.imports import watched_container


@dataclass(frozen=True)
class BlobDiagnosis:
    blob: BlobInfo
    age: timedelta
    content_md5: bool
    category: bool
    trigger_enabled: bool
    decision: Decision
    records: list[BlobRecord]
    runs: list[Run]
    next_step: str


class DiagnoseBlob:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore | None,
        rule: BlobRule,
        records: BlobRecords,
        runs: RunStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.rule = rule
        self.records = records
        self.runs = runs
        self.clock = clock

    def __call__(self, name: str) -> BlobDiagnosis:
        blobs = watched_container(self.settings, self.blobs)
        name = naming.check_blob_name(name)
        blob = blobs.get_properties(name)
        if blob is None:
            raise NotFound(
                f"blob {name!r} is not in container {self.settings.target_container}", target="name"
            )
        now = self.clock()
        decision, _, _ = self.rule.decide(blob, now, on_arrival=self.settings.import_on_arrival)
        records = self.records.blob_records(name)
        run_ids = dict.fromkeys(r.run_id for r in records if r.run_id)
        runs = [run for run in (self.runs.get_run(run_id) for run_id in run_ids if run_id) if run is not None]
        return BlobDiagnosis(
            blob=blob,
            age=now - blob.last_modified,
            content_md5=blob.content_md5 is not None,
            category=has_category(blob),
            trigger_enabled=self.rule.trigger_enabled(),
            decision=decision,
            records=records,
            runs=runs,
            next_step=_next_step(decision),
        )


_NEXT = {
    Outcome.LEAVE: "none: the import pipeline's source trigger imports it while it is eligible",
    Outcome.REFRESH: (
        "its next event or the sweep merges a metadata key, so the source trigger imports it again"
    ),
    Outcome.IMPORT: "its next event or the sweep starts a manual import run",
    Outcome.WAITING: "a person: the app will not try again for this version of the blob",
}


def _next_step(decision: Decision) -> str:
    return _NEXT.get(decision.outcome) or f"none ({decision.reason})"
