"""--wait: reconcile and re-read runs (or a deployment) until they finish, one line whenever one changes."""

from __future__ import annotations

from collections.abc import Sequence

from transfer.domain.errors import TRANSIENT_ERRORS, NotFound
from transfer.domain.runs import Run, RunStatus
from transfer.entrypoints.cli.console import EXIT_TRANSIENT, FAILED, OK, Invocation

DEPLOYMENT_TERMINAL = {"succeeded", "failed", "canceled"}


def runs_outcome(runs: Sequence[Run]) -> int:
    if any(r.status in (RunStatus.FAILED, RunStatus.CANCELED) for r in runs):
        return FAILED
    return OK


def wait_for_runs(invocation: Invocation, runs: list[Run]) -> tuple[list[Run], int]:
    """Reconcile and re-read until every run is terminal; one status line whenever something changes."""
    a = invocation.args
    deadline = invocation.monotonic() + a.timeout
    started = invocation.monotonic()
    shown: dict[str, str] = {}
    while True:
        for run in runs:
            line = f"{run.status.value}" + (f" {run.progress}%" if run.progress else "")
            if shown.get(run.id) != line:
                shown[run.id] = line
                elapsed = int(invocation.monotonic() - started)
                invocation.console.progress(
                    f"[{elapsed:>5}s] {run.id} {line}" + (f": {run.error}" if run.error else "")
                )
        if all(r.status.terminal for r in runs):
            return runs, runs_outcome(runs)
        if invocation.monotonic() >= deadline:
            invocation.console.progress(
                f"timed out after {a.timeout:g}s; the runs go on: follow them with `show`"
            )
            return runs, EXIT_TRANSIENT
        invocation.sleep(a.interval)
        runs = [_reconciled(invocation, run) for run in runs]


def _reconciled(invocation: Invocation, run: Run) -> Run:
    """The run moved forward from ARM now (only this run, not every active one)."""
    try:
        return invocation.service.reconcile_run(run.id)
    except TRANSIENT_ERRORS as exc:
        invocation.console.progress(f"reconcile deferred: {exc.message}")
        return run


def wait_for_deployment(invocation: Invocation, name: str) -> tuple[str, str | None]:
    a = invocation.args
    deadline = invocation.monotonic() + a.timeout
    last = ""
    while True:
        try:
            deployment = invocation.service.deployment(name)
            state, error = deployment.provisioning_state, deployment.error
        except NotFound:
            state, error = "Accepted", None  # ARM may not list a deployment right after its PUT
        if state != last:
            invocation.console.progress(f"deployment {name}: {state}")
            last = state
        if state.lower() in DEPLOYMENT_TERMINAL:
            return state, error
        if invocation.monotonic() >= deadline:
            invocation.console.progress(f"timed out after {a.timeout:g}s; the deployment goes on")
            return state, error
        invocation.sleep(a.interval)
