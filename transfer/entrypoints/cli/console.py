"""How the CLI speaks: JSON for scripts, tables for people, progress on stderr; and one invocation's
arguments, console and service."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from transfer.domain.arm_views import Pipeline
from transfer.domain.errors import ExitCode
from transfer.domain.runs import Run
from transfer.entrypoints.presentation import run_json, timestamp
from transfer.service import Report, TransferService

# The exit codes the errors carry (transfer/domain/errors.py), under the names the commands use.
OK, FAILED, BAD_INPUT = ExitCode.OK, ExitCode.FAILED, ExitCode.BAD_INPUT
NOT_FOUND, CONFLICT, EXIT_TRANSIENT, INTERNAL = (
    ExitCode.NOT_FOUND,
    ExitCode.CONFLICT,
    ExitCode.TRANSIENT,
    ExitCode.INTERNAL,
)


@dataclass
class Console:
    out: TextIO
    err: TextIO
    json: bool
    status_shown: bool = field(default=False, init=False)

    def emit(self, data: Any, table: Callable[[], Iterable[str]]) -> None:
        if self.json:
            print(json.dumps(data, indent=2, ensure_ascii=False), file=self.out)
        else:
            for line in table():
                print(line, file=self.out)

    def progress(self, line: str) -> None:
        self._clear_status()
        print(line, file=self.err, flush=True)

    def status(self, line: str) -> None:
        """A live line rewritten in place on a terminal (nothing elsewhere); "" clears it."""
        if not self._live():
            return
        self._clear_status()
        if line:
            self.err.write(line[: self._width()])
            self.err.flush()
            self.status_shown = True

    def _clear_status(self) -> None:
        if self.status_shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self.status_shown = False

    def _live(self) -> bool:
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty())

    def _width(self) -> int:
        return max(20, shutil.get_terminal_size((100, 24)).columns - 1)


@dataclass
class Invocation:
    args: argparse.Namespace
    console: Console
    service: TransferService
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]


def tabulate(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    cells = [[str(h) for h in header], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(value.ljust(w) for value, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def shorten(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _what(run: Run) -> str:
    if run.artifacts:
        first = run.artifacts[0]
        return first if len(run.artifacts) == 1 else f"{first} +{len(run.artifacts) - 1}"
    return run.blob or ""


def run_table(runs: Sequence[Run]) -> list[str]:
    if not runs:
        return ["no runs"]
    rows = [
        (
            r.id,
            r.kind.value,
            r.trigger.value,
            r.status.value,
            f"{r.progress}%" if r.progress else "",
            timestamp(r.created_at),
            shorten(_what(r), 40),
            shorten(r.error or (f"warning: {r.warning}" if r.warning else None), 50),
        )
        for r in runs
    ]
    return tabulate(("RUN", "KIND", "TRIGGER", "STATUS", "PROGRESS", "CREATED", "WHAT", "ERROR"), rows)


def run_details(run: Run) -> list[str]:
    body = run_json(run)
    width = max(len(k) for k in body)
    lines = []
    for key, value in body.items():
        if isinstance(value, list):
            value = ", ".join(value) if value else ""
        lines.append(f"{key.ljust(width)}  {'' if value is None else value}")
    return lines


def report_lines(report: Report) -> list[str]:
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(report.counts.items())) or "nothing to do"
    lines = [counts]
    for item in report.items:
        lines.append("  " + " ".join(f"{k}={v}" for k, v in item.items() if v is not None))
    for error in report.errors:
        lines.append(f"  deferred: {error}")
    return lines


def pipeline_lines(pipeline: Pipeline) -> list[str]:
    rows = [
        ("name", pipeline.name),
        ("id", pipeline.id),
        ("provisioningState", pipeline.provisioning_state),
        ("storageUri", pipeline.storage_uri),
        ("storageAccessMode", pipeline.storage_access_mode),
        ("keyVaultUri", pipeline.key_vault_uri),
        ("options", ", ".join(pipeline.options)),
        ("identity", pipeline.identity_type),
    ]
    if pipeline.kind == "import":
        rows.append(("sourceTrigger", pipeline.source_trigger_status))
    return tabulate(("FIELD", "VALUE"), rows)[1:]
