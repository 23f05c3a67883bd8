"""A timer pass over many items (runs, copies, blobs), the one loop they all share: each item on its own,
within a time budget, and no ARM work after the first 429 (nor, on this worker, before its Retry-After has
passed: the next pass waits it out). Beside it, the small policies every use case applies the same way."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from transfer.domain.errors import TRANSIENT_ERRORS, Throttled, TransferError, Unavailable
from transfer.service.memory import WorkerMemory

log = logging.getLogger("transfer")

# A timer pass stops starting new items after this long: well under host.json's functionTimeout (9:30),
# so the pass ends cleanly and its report is written.
PASS_BUDGET = timedelta(minutes=4)
THROTTLE_PAUSE = timedelta(seconds=60)  # when a 429 names no Retry-After

Clock = Callable[[], datetime]
T = TypeVar("T")
R = TypeVar("R")


def pause_arm(memory: WorkerMemory, clock: Clock, throttled: Throttled) -> timedelta:
    """ARM throttled this worker: every pass leaves ARM alone until its Retry-After has passed."""
    pause = timedelta(seconds=throttled.retry_after) if throttled.retry_after else THROTTLE_PAUSE
    memory.arm_not_before = clock() + pause
    return pause


def unless_transient(work: Callable[[], T], otherwise: Callable[[TransferError], T]) -> T:
    """`work()`; a transient error goes up (the pass defers the item and tries it again next time), any
    other error of the app is answered by `otherwise` (recorded on the run, say)."""
    try:
        return work()
    except TRANSIENT_ERRORS:
        raise
    except TransferError as exc:
        return otherwise(exc)


@dataclass
class Report:
    """What a timer did, for logs and the CLI."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "errors": self.errors, "items": self.items}


class Pass:
    """One timer pass. `each` walks its items: a transient error defers an item, any other error is
    recorded against it in the report, and the pass goes on either way."""

    def __init__(
        self,
        memory: WorkerMemory,
        clock: Clock,
        report: Report | None = None,
        budget: timedelta = PASS_BUDGET,
    ) -> None:
        self.memory = memory
        self.clock = clock
        self.report = report if report is not None else Report()
        self.deadline = clock() + budget
        self.stopped: str | None = None

    def may_continue(self, *, arm: bool = True) -> bool:
        now = self.clock()
        if self.stopped is None and now >= self.deadline:
            self.stopped = "the pass's time budget is spent"
        paused_until = self.memory.arm_not_before
        if self.stopped is None and arm and paused_until and now < paused_until:
            self.stopped = f"throttled: this worker waits until {paused_until:%H:%M:%S}Z"
        return self.stopped is None

    def each(
        self,
        items: Sequence[T],
        label: Callable[[T], str],
        step: Callable[[T], R],
        *,
        arm: bool = True,
        left: str = "items left for the next pass",
    ) -> Iterator[tuple[T, R | None]]:
        """(item, what `step` returned, or None when it failed) for every item the pass reaches; the
        items it cannot reach (budget spent, throttled) are counted and named once in the report."""
        for index, item in enumerate(items):
            if not self.may_continue(arm=arm):
                self.not_reached(len(items) - index, left)
                return
            yield item, self.item(label(item), partial(step, item))

    def item(self, label: str, work: Callable[[], R]) -> R | None:
        try:
            return work()
        except Throttled as exc:
            pause = pause_arm(self.memory, self.clock, exc)
            self.stopped = f"throttled (retry after {pause.total_seconds():.0f} s)"
            self._defer(label, exc.message)
        except Unavailable as exc:
            self._defer(label, exc.message)
        except TransferError as exc:
            self.report.counts["errors"] += 1
            self.report.errors.append(f"{label}: {exc.message}")
            log.warning("%s: %s", label, exc.message, extra={"item": label})
        except Exception:  # one item's surprise must not stop the others
            self.report.counts["errors"] += 1
            self.report.errors.append(f"{label}: an unexpected error (see the logs)")
            log.exception("unexpected error on %s", label, extra={"item": label})
        return None

    def _defer(self, label: str, message: str) -> None:
        self.report.counts["deferred"] += 1
        self.report.errors.append(f"{label}: {message}")

    def not_reached(self, count: int, left: str = "items left for the next pass") -> None:
        """Items left for the next pass, which starts with them."""
        if count:
            self.report.counts["not-reached"] += count
            self.report.errors.append(f"{count} {left}: {self.stopped}")


def rotated(items: Sequence[T], key: Callable[[T], str], cursor: str | None) -> list[T]:
    """`items` (in key order) starting after `cursor`, the last one the previous pass reached: a pass cut
    short by its budget or by throttling leaves the rest first in line, so nothing starves."""
    if cursor is None:
        return list(items)
    return [i for i in items if key(i) > cursor] + [i for i in items if key(i) <= cursor]
