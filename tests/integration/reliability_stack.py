"""The two-sided stack of demo/stack.py (one Azurite with a source and a target account, the ARM/ACR
emulator, SasToken pipelines deployed from templates/, the copy step on) for the reliability tests
(docs/reliability.md), and what they share: app sides with their own settings and clock, waiting for
runs, and reading the emulator's ARM request log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from demo import scenario
from demo import stack as demo_stack
from demo.stack import DemoClock, Stack
from tests.faults import Faulty
from tests.integration.polling import wait_for
from transfer import bootstrap
from transfer.adapters.arm import ArmResourceManager, WriteLimiter
from transfer.adapters.credentials import make_credential
from transfer.domain.runs import Run
from transfer.domain.settings import load_settings

ARM_WRITES = frozenset({"PUT", "DELETE", "POST", "PATCH"})


@contextmanager
def started_stack(run_seconds: float = 0.2, repositories: dict[str, Any] | None = None) -> Iterator[Stack]:
    """The stack with both pipelines deployed (SasToken, vault URI through reference()), the source
    registry seeded (the demo's content and `repositories`), and the app's managed identity."""
    stack = demo_stack.start(run_seconds=run_seconds)
    try:
        with demo_stack.identity(stack):
            scenario.prepare(stack, side(stack, "source"), side(stack, "target"))
            if repositories:
                stack.emulator.admin.add_repositories(demo_stack.SOURCE_REGISTRY, repositories)
            yield stack
    finally:
        stack.stop()


class RecordingLimiter(WriteLimiter):
    """The app's ARM write limiter (its defaults), recording when it lets each write go: the moment the
    client sends, where the limit is claimed (the emulator's log stamps answers, which a stall bunches)."""

    def __init__(self) -> None:
        self._reserved = threading.local()
        self.sent: list[float] = []
        super().__init__(clock=self._now)

    def _now(self) -> float:
        self._reserved.at = now = time.monotonic()  # read once per write, under the bucket's lock
        return now

    def acquire(self, what: str) -> float:
        wait = super().acquire(what)
        self.sent.append(self._reserved.at + wait)  # list.append is atomic
        return wait


def side(
    stack: Stack,
    name: str,
    clock: Callable[[], datetime] | None = None,
    *,
    faults: bool = False,
    write_limiter: WriteLimiter | None = None,
    **env: str,
) -> scenario.Side:
    """A fresh app instance of one side (its own service, so its own caches), settings `env` on top; with
    `faults`, its adapters have the fault hooks of tests/faults.py (`side.ports.state.around(...)`); with
    `write_limiter`, its ARM writes pass that limiter instead of the process's."""
    base = stack.source_env if name == "source" else stack.target_env
    settings = load_settings({k: v for k, v in {**base, **env}.items() if v})
    ports = bootstrap.real_ports(settings)
    if write_limiter is not None:
        ports = replace(
            ports, arm=ArmResourceManager(settings, make_credential(settings), write_limiter=write_limiter)
        )
    if faults:
        ports = replace(
            ports,
            arm=Faulty(ports.arm),
            state=Faulty(ports.state),
            blobs=Faulty(ports.blobs) if ports.blobs else None,
            copier=Faulty(ports.copier) if ports.copier else None,
        )
    return scenario.Side(name, settings, clock or DemoClock(), ports)


def later(days: float = 0, hours: float = 0) -> DemoClock:
    return DemoClock(timedelta(days=days, hours=hours))


def reconciled(s: scenario.Side, run_ids: list[str], copied: bool = False, timeout: float = 30) -> list[Run]:
    """Reconcile until every run is terminal (and, with `copied`, its copy settled)."""
    latest: list[Run] = []

    def done() -> bool:
        s.service.reconcile()
        latest[:] = [s.service.get_run(run_id) for run_id in run_ids]
        return all(
            run.status.terminal
            and (not copied or (run.copy_status is not None and run.copy_status.value != "pending"))
            for run in latest
        )

    wait_for(done, f"runs {run_ids} to finish", timeout=timeout)
    return latest


def arm_requests(stack: Stack, since: int = 0) -> list[dict[str, Any]]:
    return stack.emulator.admin.requests(since=since)


def next_index(stack: Stack) -> int:
    """The index the next ARM request will get in the emulator's log."""
    log = arm_requests(stack)
    return (log[-1]["index"] + 1) if log else 0


def writes(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] in ARM_WRITES]


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    result = work()
    return time.monotonic() - started, result
