"""Export on push (TRANSFER_EXPORT_ON_PUSH): the registry's `ImagePushed` events recorded, then gathered
into export runs.

- `RecordPushes` (the Event Grid function): every push the export selectors keep is written to the push
  ledger before the function returns, so an event is acknowledged only once its push is recorded; a
  redelivered event, or the same tag pushed again at the same digest, finds its record and adds nothing.
- `StartPushExports` (after each event, and on every reconcile and follow tick): once
  TRANSFER_PUSH_WINDOW_SECONDS have passed since the first push waiting, the waiting pushes become runs of
  at most 50 artifacts. Each run's pushes are taken in one conditional write before its run is recorded:
  of two workers one takes them and the other starts nothing. Pushes taken by a worker that died before
  recording its run are started under the same run id by the next tick, after a grace. Tags the export
  ledger holds at the pushed digest are left out (incremental, as for any export). Each pushed image
  takes its referrers along and passes the pre-flight as for any export (`Selecting.travelling`); when
  referrers make a batch's artifacts more than 50, the batch's pushes (taken once, under its first run's
  id) start several runs: the first run's id, then that id with `2`, `3`, ... appended.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from transfer.domain import artifacts, naming
from transfer.domain.errors import NotConfigured
from transfer.domain.ports import ExportLedger, PushLedger
from transfer.domain.pushes import Push, due, held_until, orphans, read_event, ready, run_digests, selected
from transfer.domain.runs import Run, RunKind, Trigger
from transfer.domain.settings import Settings
from transfer.service.lifecycle import RunLifecycle
from transfer.service.memory import WorkerMemory
from transfer.service.pipelines import Pipelines
from transfer.service.selecting import Selecting

log = logging.getLogger("transfer")

PUSH_BLOB_PREFIX = "push"


@dataclass
class PushReport:
    counts: Counter[str] = field(default_factory=Counter)  # recorded, repeated, ignored, unselected
    reasons: list[str] = field(default_factory=list)  # why events were ignored (the first few)


class RecordPushes:
    def __init__(self, settings: Settings, pushes: PushLedger, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.pushes = pushes
        self.clock = clock

    def __call__(self, events: Sequence[Mapping[str, Any]]) -> PushReport:
        """Record the pushes `events` carry. A Table failure raises: the event is then not acknowledged,
        and Event Grid delivers it again."""
        if not self.settings.export_pipeline:
            raise NotConfigured("this instance has no export pipeline (TRANSFER_EXPORT_PIPELINE)")
        report = PushReport()
        if not self.settings.export_on_push:
            report.counts["ignored"] += len(events)
            report.reasons.append("export on push is off (TRANSFER_EXPORT_ON_PUSH)")
            return report
        now = self.clock()
        for event in events:
            reading = read_event(event, now)
            if reading.push is None:
                report.counts["ignored"] += 1
                report.reasons.append(reading.reason)
            elif not selected(reading.push, self.settings.export_artifacts):
                report.counts["unselected"] += 1
            elif self.pushes.record_push(reading.push):
                report.counts["recorded"] += 1
            else:
                report.counts["repeated"] += 1
        del report.reasons[10:]
        return report


class StartPushExports:
    def __init__(
        self,
        settings: Settings,
        pushes: PushLedger,
        ledger: ExportLedger,
        pipelines: Pipelines,
        lifecycle: RunLifecycle,
        selecting: Selecting,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.pushes = pushes
        self.ledger = ledger
        self.pipelines = pipelines
        self.lifecycle = lifecycle
        self.selecting = selecting
        self.memory = memory
        self.clock = clock

    def __call__(self) -> list[Run]:
        """The runs started now (none while the window is open or nothing waits). One Table query when
        nothing waits, and none while a window this worker saw open is still open (a burst of events
        lists the waiting pushes once, not once per event)."""
        if not (self.settings.export_on_push and self.settings.export_pipeline):
            return []
        now = self.clock()
        if self.memory.pushes_due_at is not None and now < self.memory.pushes_due_at:
            return []
        self.memory.pushes_due_at = None
        pending = self.pushes.pending_pushes()
        if not pending:
            return []
        started = [
            run for run_id, taken in orphans(pending, now).items() for run in self._resume(run_id, taken, now)
        ]
        waiting = [push for push in pending if push.run_id is None]
        return started + self._start_ready(waiting, now)

    def _start_ready(self, waiting: list[Push], now: datetime) -> list[Run]:
        window = timedelta(seconds=self.settings.push_window_seconds)
        if not due(waiting, now, window):
            if waiting:
                self.memory.pushes_due_at = min(push.received_at for push in waiting) + window
            return []
        self.pipelines.ensure_ready("export")
        fresh = self._left_after_ledger(waiting)
        chosen = ready(fresh, now, window)
        started = [run for batch in chosen for run in self._start(batch, now)]
        if sum(len(batch) for batch in chosen) < len(fresh):  # a partial run held while pushes come
            self.memory.pushes_due_at = held_until(fresh, window)
        return started

    def _left_after_ledger(self, waiting: list[Push]) -> list[Push]:
        """The pushes still to export: a tag the ledger holds at the pushed digest is released unexported;
        of a tag pushed at several digests, only the newest push is exported (the rest are released)."""
        newest: dict[str, Push] = {}
        for push in waiting:  # oldest first
            newest[push.artifact] = push
        exported = {repo: self.ledger.exported(repo) for repo in {p.repository for p in newest.values()}}
        fresh = [
            push
            for push in newest.values()
            if (entry := exported[push.repository].get(push.tag)) is None or entry.digest != push.digest
        ]
        done = [push for push in waiting if push not in fresh]
        if done:
            log.info(
                "export on push: %d pushes need no export (exported already, or superseded)",
                len(done),
                extra={"trigger": Trigger.PUSH.value, "skipped": len(done)},
            )
            self.pushes.release_pushes(done)
        return fresh

    def _start(self, batch: Sequence[Push], now: datetime) -> list[Run]:
        run_id = self.lifecycle.new_id(RunKind.EXPORT, now)
        if not self.pushes.take_pushes(batch, run_id, now):
            log.info("export on push: another worker took these pushes", extra={"run_id": run_id})
            return []
        return self._record(run_id, batch, now)

    def _resume(self, run_id: str, taken: Sequence[Push], now: datetime) -> list[Run]:
        log.warning(
            "export on push: starting a run whose starter stopped before recording it",
            extra={"run_id": run_id, "trigger": Trigger.PUSH.value},
        )
        return self._record(run_id, taken, now)

    def _record(self, run_id: str, batch: Sequence[Push], now: datetime) -> list[Run]:
        """Record and deploy the runs of `batch`, each image with its referrers (a run recorded already is
        returned as stored), then release its pushes. An image the pre-flight refuses starts nothing."""
        selection = self.selecting.travelling(run_digests(batch))
        runs = []
        for index, chunk in enumerate(selection.runs(artifacts.MAX_PER_RUN)):
            chunk_id = run_id if index == 0 else f"{run_id}{index + 1}"
            run = self.lifecycle.new(
                chunk_id,
                RunKind.EXPORT,
                Trigger.PUSH,
                artifacts=chunk,
                blob=naming.export_blob_name(PUSH_BLOB_PREFIX, chunk_id),
                digests=tuple((a, selection.digests[a]) for a in chunk if a in selection.digests),
                now=now,
            )
            run = replace(run, referrers=selection.referrers_of(chunk))
            runs.append(self.lifecycle.record_and_deploy(run))
            log.info(
                "export on push: %d artifacts in run %s",
                len(run.artifacts),
                run.id,
                extra={"run_id": run.id, "blob": run.blob, "trigger": Trigger.PUSH.value},
            )
        self.pushes.release_pushes(batch)
        return runs
