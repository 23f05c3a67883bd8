"""--wait: reconcile and re-read runs (or a deployment) until they finish.

Polls soon after the start and backs off (0.5 s, doubling up to --interval), so a short deployment is seen
finishing within a second or so and a long one costs few reads. Each change of state or progress is one
line; on a terminal a live status line below them shows the state, progress and elapsed time between
changes (rewritten in place, cleared at the end), elsewhere only the change lines are printed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from transfer.domain.errors import TRANSIENT_ERRORS, NotFound
from transfer.domain.runs import Run, RunStatus
from transfer.entrypoints.cli.console import EXIT_TRANSIENT, FAILED, OK, Invocation

DEPLOYMENT_TERMINAL = {"succeeded", "failed", "canceled"}
FIRST_PAUSE = 0.5


def runs_outcome(runs: Sequence[Run]) -> int:
    if any(r.status in (RunStatus.FAILED, RunStatus.CANCELED) for r in runs):
        return FAILED
    return OK


def pauses(longest: float) -> Iterator[float]:
    """0.5 s, then doubling, never above `longest` (--interval)."""
    pause = min(FIRST_PAUSE, longest)
    while True:
        yield pause
        pause = min(pause * 2, longest)


class Clock:
    """Elapsed time, the deadline, and the next pause clipped to it."""

    def __init__(self, invocation: Invocation) -> None:
        self.invocation = invocation
        self.started = invocation.monotonic()
        self.deadline = self.started + float(invocation.args.timeout)
        self._pauses = pauses(float(invocation.args.interval))

    def elapsed(self) -> str:
        return f"[{int(self.invocation.monotonic() - self.started):>5}s]"

    def over(self) -> bool:
        return self.invocation.monotonic() >= self.deadline

    def pause(self) -> None:
        left = self.deadline - self.invocation.monotonic()
        self.invocation.sleep(max(0.0, min(next(self._pauses), left)))


def _run_line(run: Run) -> str:
    return run.status.value + (f" {run.progress}%" if run.progress else "")


def wait_for_runs(invocation: Invocation, runs: list[Run]) -> tuple[list[Run], int]:
    """Reconcile and re-read until every run is terminal; one line whenever one changes."""
    console, clock = invocation.console, Clock(invocation)
    shown: dict[str, str] = {}
    try:
        while True:
            for run in runs:
                if shown.get(run.id) != _run_line(run):
                    shown[run.id] = _run_line(run)
                    error = f": {run.error}" if run.error else ""
                    console.progress(f"{clock.elapsed()} {run.id} {shown[run.id]}{error}")
            if all(r.status.terminal for r in runs):
                return runs, runs_outcome(runs)
            if clock.over():
                console.progress(
                    f"timed out after {invocation.args.timeout:g}s; the runs go on: follow them with `show`"
                )
                return runs, EXIT_TRANSIENT
            active = [r for r in runs if not r.status.terminal]
            console.status(f"{clock.elapsed()} " + ", ".join(f"{r.id} {_run_line(r)}" for r in active))
            clock.pause()
            runs = [_reconciled(invocation, run) for run in runs]
    finally:
        console.status("")


def _reconciled(invocation: Invocation, run: Run) -> Run:
    """The run moved forward from ARM now (only this run, not every active one)."""
    try:
        return invocation.service.reconcile_run(run.id)
    except TRANSIENT_ERRORS as exc:
        invocation.console.progress(f"reconcile deferred: {exc.message}")
        return run


def wait_for_deployment(invocation: Invocation, name: str) -> tuple[str, str | None]:
    console, clock = invocation.console, Clock(invocation)
    last = ""
    try:
        while True:
            try:
                deployment = invocation.service.deployment(name)
                state, error = deployment.provisioning_state, deployment.error
            except NotFound:
                state, error = "Accepted", None  # ARM may not list a deployment right after its PUT
            if state != last:
                console.progress(f"{clock.elapsed()} deployment {name}: {state}")
                last = state
            if state.lower() in DEPLOYMENT_TERMINAL:
                return state, error
            if clock.over():
                console.progress(f"timed out after {invocation.args.timeout:g}s; the deployment goes on")
                return state, error
            console.status(f"{clock.elapsed()} deployment {name}: {state}")
            clock.pause()
    finally:
        console.status("")
