"""GET /api/dashboard: what an operator sees at a glance, from the same use cases and ports the API reads.

Every read is bounded: the counts over 24 h / 7 d / 30 d come from the newest TALLY_RUNS runs (the page says
how far back they reach when that is less than 30 days), the run list is one page from a cursor, the watched
container one listing page (dashboard_blobs.py), the ledger at most LEDGER_SHOWN entries. A section whose
dependency fails shows its error; the rest of the page still renders.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Generic, TypeVar

from transfer.domain import naming
from transfer.domain.errors import TransferError
from transfer.domain.manifests import Verification
from transfer.domain.ncrontab import ScheduleError, next_occurrence
from transfer.domain.ports import ExportLedger, RunPages
from transfer.domain.records import LedgerEntry
from transfer.domain.references import split_reference
from transfer.domain.runs import Run, RunKind, RunStatus
from transfer.domain.selectors import Selector, is_selector
from transfer.domain.settings import Settings
from transfer.service.dashboard_blobs import BlobsView, WatchedBlobs, check_marker
from transfer.service.health import Check, Health
from transfer.service.pipelines import Pipelines

TALLY_RUNS = 1000  # newest runs read for the counts, failures and verifications
RUNS_PAGE = 50
SHOWN = 20  # failures and verification problems listed
LEDGER_SHOWN = 100
WINDOWS = (  # name, span, chart bucket
    ("24h", timedelta(hours=24), timedelta(hours=1)),
    ("7d", timedelta(days=7), timedelta(hours=6)),
    ("30d", timedelta(days=30), timedelta(days=1)),
)

T = TypeVar("T")


@dataclass(frozen=True)
class Section(Generic[T]):
    """A part of the page: its value, or why it could not be read."""

    value: T | None = None
    error: str | None = None


def section(read: Callable[[], T | None]) -> Section[T]:
    try:
        return Section(read())
    except TransferError as exc:
        return Section(error=exc.message)


@dataclass(frozen=True)
class Window:
    name: str  # 24h, 7d, 30d
    since: datetime
    counts: Counter[tuple[str, str]]  # (kind, status) -> runs
    buckets: list[tuple[datetime, Counter[str]]]  # bucket start -> runs by status, oldest first


@dataclass(frozen=True)
class History:
    runs: list[Run]  # the newest runs (at most TALLY_RUNS), newest first, however old
    windows: list[Window]
    complete: bool  # every run of the last 30 days was read
    reaches: datetime | None  # the oldest run read, when the read did not cover 30 days

    def failures(self) -> list[Run]:
        return [run for run in self.runs if run.status is RunStatus.FAILED][:SHOWN]

    def imports(self) -> list[Run]:
        return [run for run in self.runs if run.kind is RunKind.IMPORT]

    def verifications(self) -> Counter[str]:
        return Counter(run.verification.value for run in self.imports() if run.verification is not None)

    def verification_problems(self) -> list[Run]:
        found = [
            run
            for run in self.imports()
            if run.verification in (Verification.FAILED, Verification.UNAVAILABLE) or run.skipped_artifacts
        ]
        return found[:SHOWN]


@dataclass(frozen=True)
class RunsPage:
    runs: list[Run]
    before: str | None  # this page's cursor
    next_before: str | None  # the cursor of the next (older) page


@dataclass(frozen=True)
class SasExpiry:
    kind: str
    expires_at: datetime | None  # None: a SAS without expiry


@dataclass(frozen=True)
class Plan:
    """What the schedule and the ledger will do next (the source side)."""

    schedule: str
    next_export: datetime | None
    artifacts: tuple[str, ...]
    incremental: bool
    exported: list[LedgerEntry]  # already exported, so left out by an incremental export
    exported_total: int
    problem: str | None = None  # the schedule cannot be read


@dataclass(frozen=True)
class DashboardView:
    now: datetime
    settings: Settings
    history: Section[History]
    runs: Section[RunsPage]
    blobs: Section[BlobsView] | None  # None: no watched container on this side
    checks: list[Check]
    sas: list[Section[SasExpiry]]
    plan: Section[Plan] | None  # None: this side does not export
    next_reconcile: datetime | None = None
    next_sweep: datetime | None = None
    roles: list[str] = field(default_factory=list)


def _next(expression: str, now: datetime) -> datetime | None:
    try:
        return next_occurrence(expression, now)
    except ScheduleError:
        return None


def tally(runs: list[Run], now: datetime, complete: bool) -> History:
    """The counts and chart buckets of each window over the runs read (newest first); the failures and
    verifications come from every run read, however old. Pure."""
    windows = []
    for name, span, step in WINDOWS:
        since = now - span
        counts: Counter[tuple[str, str]] = Counter()
        slots = int(span / step)
        buckets: list[tuple[datetime, Counter[str]]] = [(since + step * i, Counter()) for i in range(slots)]
        for run in runs:
            if run.created_at < since:
                continue  # newest first, but a source-trigger run keeps the trigger's own time
            if run.created_at > now:
                continue
            counts[run.kind.value, run.status.value] += 1
            index = min(int((run.created_at - since) / step), slots - 1)
            buckets[index][1][run.status.value] += 1
        windows.append(Window(name, since, counts, buckets))
    reaches = None if complete or not runs else runs[-1].created_at
    return History(runs, windows, complete, reaches)


class Dashboard:
    """Ports: RunPages (the counts and the run list, a page each), ExportLedger (tags already exported);
    with the Health use case, the pipelines' SAS (Pipelines) and WatchedBlobs on the target side."""

    def __init__(
        self,
        settings: Settings,
        runs: RunPages,
        ledger: ExportLedger,
        health: Health,
        pipelines: Pipelines,
        blobs: WatchedBlobs | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.runs = runs
        self.ledger = ledger
        self.health = health
        self.pipelines = pipelines
        self.blobs = blobs
        self.clock = clock

    def __call__(self, before: str | None = None, marker: str | None = None) -> DashboardView:
        if before is not None:  # bad input is refused before anything is read
            naming.check_run_id(before, target="runs")
        marker = check_marker(marker)
        now = self.clock()
        history = section(lambda: self._history(now))
        recent = history.value.runs if history.value else []
        settings = self.settings
        return DashboardView(
            now=now,
            settings=settings,
            history=history,
            runs=section(lambda: self._page(before)),
            blobs=self._blobs(marker, recent),
            checks=self.health(),
            sas=[section(partial(self._sas, kind)) for kind in self.health.roles()],
            plan=section(lambda: self._plan(now)) if settings.export_pipeline else None,
            next_reconcile=_next(settings.reconcile_schedule, now),
            next_sweep=_next(settings.sweep_schedule, now) if settings.import_pipeline else None,
            roles=self.health.roles(),
        )

    def _blobs(self, marker: str | None, recent: list[Run]) -> Section[BlobsView] | None:
        watched = self.blobs
        if watched is None or not self.settings.import_pipeline:
            return None
        return section(lambda: watched(marker, recent))

    def _history(self, now: datetime) -> History:
        runs = self.runs.runs_before(None, TALLY_RUNS)
        since = now - WINDOWS[-1][1]
        return tally(runs, now, complete=len(runs) < TALLY_RUNS or runs[-1].created_at < since)

    def _page(self, before: str | None) -> RunsPage:
        runs = self.runs.runs_before(before, RUNS_PAGE + 1)
        shown = runs[:RUNS_PAGE]
        return RunsPage(shown, before, shown[-1].id if len(runs) > RUNS_PAGE else None)

    def _sas(self, kind: str) -> SasExpiry | None:
        pipeline = self.pipelines.get(kind)
        if not pipeline.uses_sas:
            return None
        return SasExpiry(kind, self.pipelines.sas(pipeline).expires_at)

    def _plan(self, now: datetime) -> Plan:
        settings = self.settings
        problem = None
        try:
            upcoming = next_occurrence(settings.export_schedule, now)
        except ScheduleError as exc:
            upcoming, problem = None, f"TRANSFER_EXPORT_SCHEDULE: {exc}"
        exported = self._exported(settings.export_artifacts)
        return Plan(
            schedule=settings.export_schedule,
            next_export=upcoming,
            artifacts=settings.export_artifacts,
            incremental=settings.export_incremental,
            exported=exported[:LEDGER_SHOWN],
            exported_total=len(exported),
            problem=problem,
        )

    def _exported(self, artifacts: tuple[str, ...]) -> list[LedgerEntry]:
        """The ledger's entries the configured artifacts and selectors cover, by repository and tag."""
        found: dict[tuple[str, str], LedgerEntry] = {}
        for item in artifacts:
            if is_selector(item):
                selector = Selector.parse(item)
                for repository, entries in self.ledger.exported_under(selector.repository_prefix).items():
                    if selector.matches_repository(repository):
                        for ref, entry in entries.items():
                            if selector.matches_tag(ref):
                                found[repository, ref] = entry
                continue
            repository, tag, digest = split_reference(item)
            reference = tag if tag is not None else f"@{digest}"
            stored = self.ledger.exported(repository).get(reference)
            if stored is not None:
                found[repository, reference] = stored
        return [found[key] for key in sorted(found)]
