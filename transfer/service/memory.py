"""What a warm worker remembers between invocations, in one object built once per worker. A new worker
starts empty and loses nothing by it: every entry is a cache, a pause or a cursor, never the only copy of
a fact (the state tables hold those)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from transfer.domain.arm_views import Pipeline
from transfer.domain.readiness import Finding
from transfer.domain.records import SasSecret
from transfer.domain.staleness import SourceTriggerRun


@dataclass
class WorkerMemory:
    pipelines: dict[str, tuple[datetime, Pipeline]] = field(default_factory=dict)  # by kind, read at
    sas: dict[str, tuple[datetime, SasSecret]] = field(default_factory=dict)  # by secret URI, read at
    readiness: dict[str, tuple[datetime, list[Finding]]] = field(default_factory=dict)  # by kind, read at
    arm_not_before: datetime | None = None  # set by a 429: passes leave ARM alone until then
    known_source_runs: set[str] = field(default_factory=set)  # source-trigger runs already recorded
    known_source_runs_read_at: datetime | None = None  # when they were last read from the state's index
    reconcile_cursor: str | None = None  # the last run the previous reconcile pass reached
    sweep_cursor: str | None = None  # the last blob the previous sweep reached
    evidence: tuple[datetime, list[SourceTriggerRun]] | None = None  # source-trigger runs, read at
    pushes_due_at: datetime | None = None  # the waiting pushes' window closes then: no listing before
