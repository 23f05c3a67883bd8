"""The dashboard's view of the watched container: one page of the listing, each blob's age against the
source trigger's window and its decision (as its next event or sweep would decide, blob_rule.py), and the
blobs that wait for a person first. Bounded: one listing page, at most WAITING_SHOWN point reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from transfer.domain.errors import InvalidInput
from transfer.domain.manifests import is_manifest
from transfer.domain.ports import BlobPages, BlobStore
from transfer.domain.records import BlobInfo
from transfer.domain.runs import Run, RunKind, RunStatus
from transfer.domain.settings import Settings
from transfer.domain.staleness import Decision, Outcome
from transfer.service.blob_rule import BlobRule

BLOBS_PAGE = 50
WAITING_SHOWN = 20
MAX_MARKER = 1024


@dataclass(frozen=True)
class BlobRow:
    blob: BlobInfo
    age: timedelta
    decision: Decision
    runs: tuple[str, ...]  # ids of the runs linked to it, newest first

    @property
    def waiting(self) -> bool:
        return self.decision.outcome is Outcome.WAITING


@dataclass(frozen=True)
class BlobsView:
    container: str
    window: timedelta
    margin: timedelta
    trigger_enabled: bool
    waiting: list[BlobRow]  # blobs whose manual imports failed as often as allowed: a person decides
    page: list[BlobRow]  # this page of the listing, blobs that wait first
    manifests: int  # manifests on this page (beside their blobs, never imported themselves)
    marker: str | None  # this page's listing marker
    next_marker: str | None


def check_marker(marker: str | None) -> str | None:
    """A listing marker as a caller sends it back: Storage's own opaque text, printable ASCII."""
    if marker is None or marker == "":
        return None
    if len(marker) > MAX_MARKER or not marker.isascii() or not marker.isprintable():
        raise InvalidInput("is not a blob listing marker from this page", target="blobs")
    return marker


def waiting_blobs(recent: Sequence[Run], max_attempts: int) -> list[str]:
    """Blobs whose newest manual import failed on its last allowed attempt, as health counts them."""
    newest: dict[str, Run] = {}
    for run in recent:  # newest first
        if run.kind is RunKind.IMPORT and run.owned and run.blob:
            newest.setdefault(run.blob, run)
    return sorted(
        blob for blob, run in newest.items() if run.status is RunStatus.FAILED and run.attempt >= max_attempts
    )


class WatchedBlobs:
    """Ports: BlobStore (point reads of waiting blobs), BlobPages (the listing page); the rule reads blob
    records and runs only for blobs that may need action."""

    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore,
        pages: BlobPages,
        rule: BlobRule,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.pages = pages
        self.rule = rule
        self.clock = clock

    def __call__(self, marker: str | None, recent: Sequence[Run]) -> BlobsView:
        now = self.clock()
        linked: dict[str, list[str]] = {}
        for run in recent:
            if run.blob:
                linked.setdefault(run.blob, []).append(run.id)
        listed, next_marker = self.pages.blob_page(check_marker(marker), BLOBS_PAGE)
        rows = [self._row(blob, now, linked) for blob in listed if not is_manifest(blob.name)]
        rows.sort(key=lambda row: not row.waiting)  # stable: by name within each group
        waiting = []
        for name in waiting_blobs(recent, self.settings.import_max_attempts)[:WAITING_SHOWN]:
            blob = self.blobs.get_properties(name)
            if blob is not None:
                waiting.append(self._row(blob, now, linked))
        return BlobsView(
            container=self.settings.target_container,
            window=self.rule.policy.window,
            margin=self.rule.policy.margin,
            trigger_enabled=self.rule.trigger_enabled(),
            waiting=waiting,
            page=rows,
            manifests=len(listed) - len(rows),
            marker=marker or None,
            next_marker=next_marker,
        )

    def _row(self, blob: BlobInfo, now: datetime, linked: dict[str, list[str]]) -> BlobRow:
        decision, records, _ = self.rule.decide(blob, now)
        ids = [record.run_id for record in records if record.run_id] + linked.get(blob.name, [])
        return BlobRow(blob, now - blob.last_modified, decision, tuple(dict.fromkeys(ids)))
