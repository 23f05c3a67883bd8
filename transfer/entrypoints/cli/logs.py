"""What the CLI does with the service's log records: a record about a run (it names one) is already a
status line of the CLI, so it is not printed again; any other warning is printed once, as `warning: ...`.
Python would otherwise print every warning to stderr a second time (its last-resort handler)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class _Warnings(logging.Handler):
    def __init__(self, err: TextIO) -> None:
        super().__init__(logging.WARNING)
        self.err = err

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "run_id", None):
            return  # the run's own status line says it
        try:
            print(f"warning: {record.getMessage()}", file=self.err, flush=True)
        except Exception:  # a log line must never fail the command
            self.handleError(record)


@contextmanager
def cli_logging(err: TextIO) -> Iterator[None]:
    """For one command: the CLI is the process's top, nothing else configures its logging."""
    root = logging.getLogger()
    handler = _Warnings(err)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
