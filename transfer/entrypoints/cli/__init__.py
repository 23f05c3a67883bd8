"""`python -m transfer`: the service for people (tables, progress) and scripts (--output json, exit codes).

The CLI shares the settings (a local.settings.json, then the environment: settings_file.py) and the
service with the function app; it holds no logic of its own beyond waiting for runs and deployments to
finish. The parser is parser.py, the commands commands.py and pipelines.py, the waiting waiting.py, and how
it prints console.py.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from transfer import bootstrap
from transfer.domain.errors import SettingsError, TransferError
from transfer.entrypoints.cli import commands, settings_file
from transfer.entrypoints.cli.console import (
    BAD_INPUT,
    CONFLICT,
    EXIT_TRANSIENT,
    FAILED,
    INTERNAL,
    NOT_FOUND,
    OK,
    Console,
    Invocation,
)
from transfer.entrypoints.cli.logs import cli_logging
from transfer.entrypoints.cli.parser import EPILOG, build_parser
from transfer.entrypoints.cli.pipelines import cmd_pipelines

__all__ = [
    "BAD_INPUT",
    "CONFLICT",
    "EPILOG",
    "EXIT_TRANSIENT",
    "FAILED",
    "INTERNAL",
    "NOT_FOUND",
    "OK",
    "main",
]


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    args = build_parser().parse_args(argv)
    console = Console(out or sys.stdout, err or sys.stderr, getattr(args, "output", "table") == "json")
    try:
        with settings_file.applied(getattr(args, "settings", None)), cli_logging(console.err):
            service = bootstrap.service_from_environment()
            invocation = Invocation(args, console, service, sleep, monotonic)
            return COMMANDS[args.command](invocation)
    except SettingsError as exc:
        return _fail(console, exc.exit_code, exc, details=exc.problems)
    except TransferError as exc:
        return _fail(console, exc.exit_code, exc)
    except KeyboardInterrupt:
        console.progress("interrupted: runs already started go on; follow them with `runs` or `show`")
        return 130
    except Exception:
        traceback.print_exc(file=console.err)
        return INTERNAL


def _fail(console: Console, code: int, exc: TransferError, details: list[str] | None = None) -> int:
    if console.json:
        body: dict[str, Any] = {"code": exc.code, "message": exc.message, "target": exc.target}
        if details:
            body["details"] = details
        print(json.dumps({"error": body}, indent=2), file=console.out)
    elif details:
        console.progress("error: invalid settings:")
        for problem in details:
            console.progress(f"  - {problem}")
    else:
        where = f" ({exc.target})" if exc.target else ""
        console.progress(f"error: {exc.message}{where}")
    return code


COMMANDS: dict[str, Callable[[Invocation], int]] = {
    "export": commands.cmd_export,
    "import": commands.cmd_import,
    "runs": commands.cmd_runs,
    "show": commands.cmd_show,
    "reconcile": commands.cmd_reconcile,
    "sweep": commands.cmd_sweep,
    "cleanup": commands.cmd_cleanup,
    "health": commands.cmd_health,
    "blob": commands.cmd_blob,
    "delete": commands.cmd_delete,
    "pipelines": cmd_pipelines,
}
