"""Reading runs: one by id, or the newest by kind and status."""

from __future__ import annotations

from transfer.domain import naming
from transfer.domain.errors import InvalidInput, NotFound
from transfer.domain.ports import RunStore
from transfer.domain.runs import Run, RunKind, RunStatus


class ReadRuns:
    def __init__(self, runs: RunStore) -> None:
        self.runs = runs

    def get(self, run_id: str) -> Run:
        run = self.runs.get_run(naming.check_run_id(run_id))
        if run is None:
            raise NotFound(f"no run {run_id}", target="run_id")
        return run

    def list(self, kind: str | None = None, status: str | None = None, top: int = 50) -> list[Run]:
        try:
            kind_value = RunKind(kind) if kind else None
        except ValueError:
            raise InvalidInput("must be export or import", target="kind") from None
        try:
            status_value = RunStatus(status) if status else None
        except ValueError:
            allowed = ", ".join(s.value for s in RunStatus)
            raise InvalidInput(f"must be one of {allowed}", target="status") from None
        if not 1 <= top <= 1000:
            raise InvalidInput("must be between 1 and 1000", target="top")
        return self.runs.list_runs(kind=kind_value, status=status_value, top=top)
