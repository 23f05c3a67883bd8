"""`python -m transfer`: the service for people (tables, progress) and scripts (--output json, exit codes).

The CLI shares the settings (from the environment) and the service with the function app; it holds no
logic of its own beyond waiting for runs and deployments to finish.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from transfer import bootstrap
from transfer.domain.arm_views import EXPORT_OPTIONS, IMPORT_OPTIONS, STORAGE_ACCESS_MODES, Pipeline
from transfer.domain.errors import (
    TRANSIENT_ERRORS,
    ExitCode,
    InvalidInput,
    NotFound,
    SettingsError,
    TransferError,
)
from transfer.domain.runs import Run, RunStatus, Trigger
from transfer.entrypoints.presentation import blob_json, health_json, run_json, timestamp
from transfer.service import ListedRun, PipelineSpec, Report, TransferService

# The exit codes the errors carry (transfer/domain/errors.py), under the names the commands use.
OK, FAILED, BAD_INPUT = ExitCode.OK, ExitCode.FAILED, ExitCode.BAD_INPUT
NOT_FOUND, CONFLICT, EXIT_TRANSIENT, INTERNAL = (
    ExitCode.NOT_FOUND,
    ExitCode.CONFLICT,
    ExitCode.TRANSIENT,
    ExitCode.INTERNAL,
)

EPILOG = """\
exit codes:
  0  done (and with --wait: every run succeeded)
  1  a run failed or was canceled, a pipeline deployment failed, or health is unhealthy
  2  bad input, invalid or missing settings (each problem is printed), or a role this instance lacks
  3  not found (run, blob, pipeline, deployment)
  4  conflict (the run is still going, Idempotency-Key reused for another request, a race lost)
  5  transient: throttled, a dependency unavailable, some items deferred, or --wait timed out
 70  unexpected error (a bug; the traceback is printed)

settings come from the environment, as for the function app (see docs/settings.md).
--output json prints the same keys as the HTTP API (a run is GET /api/runs/{id} without "url")."""

DEPLOYMENT_TERMINAL = {"succeeded", "failed", "canceled"}


@dataclass
class Console:
    out: TextIO
    err: TextIO
    json: bool

    def emit(self, data: Any, table: Callable[[], Iterable[str]]) -> None:
        if self.json:
            print(json.dumps(data, indent=2, ensure_ascii=False), file=self.out)
        else:
            for line in table():
                print(line, file=self.out)

    def progress(self, line: str) -> None:
        print(line, file=self.err, flush=True)


@dataclass
class Context:
    args: argparse.Namespace
    console: Console
    service: TransferService
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]


# ---- parser -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--output",
        "-o",
        choices=("table", "json"),
        default=argparse.SUPPRESS,
        help="table for people (default), json for scripts",
    )
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--wait", action="store_true", help="reconcile and show progress until finished")
    waiting.add_argument(
        "--timeout", type=float, default=1800, metavar="SECONDS", help="give up waiting after (default 1800)"
    )
    waiting.add_argument(
        "--interval", type=float, default=10, metavar="SECONDS", help="between polls (default 10)"
    )

    parser = argparse.ArgumentParser(
        prog="python -m transfer",
        description="ACR Transfer automation: start exports and imports, follow runs, maintain pipelines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[output, *parents],
        )

    export = command(
        "export",
        "Start an export of artifacts or selectors (more than 50 artifacts become several runs).",
        waiting,
    )
    export.add_argument(
        "artifacts",
        nargs="+",
        metavar="ARTIFACT",
        help="repo, repo:tag, repo@sha256:..., or a selector such as 'team/*:v1.*' (quote it)",
    )
    export.add_argument(
        "--incremental",
        action="store_true",
        help="leave out tags whose digest a succeeded export already sent; nothing new starts nothing",
    )
    export.add_argument("--target-name", help="blob name prefix (default: export)")
    export.add_argument("--idempotency-key", help="repeat-safe key: the same key returns the same runs")

    imp = command("import", "Start a manual import of a blob in the watched container.", waiting)
    imp.add_argument("blob", metavar="BLOB")
    imp.add_argument("--idempotency-key", help="repeat-safe key: the same key returns the same run")

    runs = command("runs", "List runs, newest first.")
    runs.add_argument("--kind", choices=("export", "import"))
    runs.add_argument("--status", choices=[s.value for s in RunStatus])
    runs.add_argument("--top", type=int, default=50, help="at most this many (1-1000, default 50)")
    runs.add_argument(
        "--all",
        action="store_true",
        help="every pipelineRun of the registry in ARM, whoever started it, beside the app's record of it "
        "(--kind, --status and --top do not apply)",
    )

    show = command("show", "Show one run.")
    show.add_argument("run_id", metavar="RUN_ID")

    blob = command(
        "blob", "The 60-day diagnosis of one blob of the watched container, and what happens next."
    )
    blob.add_argument("name", metavar="NAME")

    delete = command(
        "delete",
        "Start deleting a finished run's pipelineRun and deployment (as DELETE /api/runs/{id}); the next "
        "cleanup confirms the deletes and marks the run cleaned up.",
    )
    delete.add_argument("run_id", metavar="RUN")

    command("reconcile", "Read the state of every active run from ARM and record it (as the timer does).")
    command("sweep", "Apply the 60-day rule to every blob in the watched container (as the timer does).")
    cleanup = command("cleanup", "Delete the ARM resources of runs finished longer ago than the retention.")
    cleanup.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    command("health", "Check settings, state tables, ARM, the pipelines and SAS expiry.")

    pipelines = command(
        "pipelines", "Deploy, show, list or delete the export and import pipelines (templates/)."
    )
    actions = pipelines.add_subparsers(dest="action", required=True, metavar="ACTION")
    deploy = actions.add_parser(
        "deploy",
        help="deploy the pipeline named by TRANSFER_EXPORT_PIPELINE / TRANSFER_IMPORT_PIPELINE",
        description="Deploy the export or import pipeline template with these parameters.",
        parents=[output, waiting],
    )
    deploy.add_argument("kind", choices=("export", "import"))
    deploy.add_argument("--storage-uri", required=True, help="the storage container URL of the pipeline")
    deploy.add_argument(
        "--mode", choices=STORAGE_ACCESS_MODES, default="SasToken", help="storage access mode"
    )
    deploy.add_argument(
        "--key-vault", default="", metavar="NAME", help="Key Vault holding the SAS (SasToken)"
    )
    deploy.add_argument("--sas-secret", default="", metavar="NAME", help="secret name of the SAS (SasToken)")
    deploy.add_argument(
        "--option",
        action="append",
        default=[],
        choices=sorted({*EXPORT_OPTIONS, *IMPORT_OPTIONS}),
        help="pipeline option, repeatable",
    )
    deploy.add_argument(
        "--no-source-trigger", action="store_true", help="import only: disable the source trigger"
    )
    deploy.add_argument("--user-assigned-identity", default="", metavar="ID", help="identity resource ID")
    deploy.add_argument(
        "--grant-storage-role",
        action="store_true",
        help="ManagedIdentity mode: grant Storage Blob Data Contributor on its account (same group)",
    )
    show_pipeline = actions.add_parser(
        "show", help="show the pipeline as ARM has it", description="Show the pipeline.", parents=[output]
    )
    show_pipeline.add_argument("kind", choices=("export", "import"))
    actions.add_parser(
        "list",
        help="every export and import pipeline of the registry, configured or not",
        description="List every export and import pipeline of the registry, whoever deployed it.",
        parents=[output],
    )
    delete_pipeline = actions.add_parser(
        "delete",
        help="delete a pipeline (refuses the one this instance is configured with unless --force)",
        description="Delete an export or import pipeline of the registry through ARM.",
        parents=[output],
    )
    delete_pipeline.add_argument("kind", choices=("export", "import"))
    delete_pipeline.add_argument("name", metavar="NAME")
    delete_pipeline.add_argument(
        "--force", action="store_true", help="delete it even if this instance is configured with it"
    )
    return parser


# ---- entry point ------------------------------------------------------------------------------------


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
        service = bootstrap.service_from_environment()
        context = Context(args, console, service, sleep, monotonic)
        return COMMANDS[args.command](context)
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


# ---- commands ---------------------------------------------------------------------------------------


def _start(context: Context, start: Callable[[], Any]) -> int:
    accepted = start()
    runs: list[Run] = accepted.runs
    if context.args.wait and runs:
        runs, code = _wait_for_runs(context, runs)
    else:
        code = _runs_outcome(runs)
    body: dict[str, Any] = {"requestId": accepted.request_id, "runs": [run_json(r) for r in runs]}
    if accepted.incremental:
        body["skipped"] = list(accepted.skipped)

    def table() -> list[str]:
        if runs:
            return _run_table(runs)
        return [f"nothing new to export: {len(accepted.skipped)} unchanged since their last export"]

    context.console.emit(body, table)
    return code


def cmd_export(context: Context) -> int:
    a = context.args
    return _start(
        context,
        lambda: context.service.start_export(
            list(a.artifacts),
            Trigger.CLI,
            target_name=a.target_name,
            idempotency_key=a.idempotency_key,
            incremental=a.incremental,
        ),
    )


def cmd_import(context: Context) -> int:
    a = context.args
    return _start(
        context, lambda: context.service.start_import(a.blob, Trigger.CLI, idempotency_key=a.idempotency_key)
    )


def cmd_runs(context: Context) -> int:
    a = context.args
    if a.all:
        if a.kind or a.status:
            raise InvalidInput(
                "--all lists every pipelineRun; --kind and --status filter records", target="--all"
            )
        return _all_runs(context)
    runs = context.service.list_runs(kind=a.kind, status=a.status, top=a.top)
    context.console.emit({"runs": [run_json(r) for r in runs]}, lambda: _run_table(runs))
    return OK


def _all_runs(context: Context) -> int:
    listed = context.service.list_pipeline_runs()
    body = {"pipelineRuns": [_listed_run_json(r) for r in listed]}

    def table() -> list[str]:
        if not listed:
            return ["the registry has no pipelineRuns"]
        rows = [
            (
                r.pipeline_run.name,
                r.pipeline_run.pipeline_name or "",
                r.pipeline_run.status or r.pipeline_run.provisioning_state or "",
                timestamp(r.started_at) or "",
                "yes"
                if r.owned
                else ("source trigger" if r.pipeline_run.started_by_source_trigger else "no"),
                r.record.status.value if r.record else "-",
                _shorten(r.record.blob if r.record else None, 40),
                (r.record.error_cause or "") if r.record else "",
            )
            for r in listed
        ]
        header = ("NAME", "PIPELINE", "STATUS", "STARTED", "OWNED", "APP STATUS", "BLOB", "ERROR CAUSE")
        return _table(header, rows)

    context.console.emit(body, table)
    return OK


def _listed_run_json(listed: ListedRun) -> dict[str, Any]:
    seen, record = listed.pipeline_run, listed.record
    return {
        "name": seen.name,
        "id": seen.id,
        "pipeline": seen.pipeline_name,
        "kind": seen.pipeline_kind,
        "status": seen.status,
        "provisioningState": seen.provisioning_state,
        "startedAt": timestamp(listed.started_at),
        "finishedAt": timestamp(seen.finish_time),
        "sourceTrigger": seen.started_by_source_trigger,
        "owned": listed.owned,
        "recorded": record is not None,
        "appStatus": record.status.value if record else None,
        "blob": record.blob if record else None,
        "errorCause": record.error_cause if record else None,
    }


def cmd_delete(context: Context) -> int:
    """DELETE /api/runs/{id} from the CLI: the same checks (finished, started by the app), the same run."""
    run_id = context.args.run_id
    already_clean = context.service.get_run(run_id).cleaned_up
    run = context.service.delete_run(run_id)
    if already_clean:
        line = f"run {run.id}: already cleaned up"
    elif run.cleaned_up:
        line = f"run {run.id}: its pipelineRun and deployment are deleted"
    else:
        line = f"run {run.id}: ARM deletes started; the next cleanup confirms them and marks it cleaned up"
    context.console.emit(run_json(run), lambda: [line])
    return OK


def cmd_show(context: Context) -> int:
    run = context.service.get_run(context.args.run_id)
    context.console.emit(run_json(run), lambda: _run_details(run))
    return OK


def cmd_blob(context: Context) -> int:
    diagnosis = context.service.diagnose_blob(context.args.name)
    body = blob_json(diagnosis)

    def lines() -> list[str]:
        rows = [
            (field, body[field])
            for field in ("name", "lastModified", "ageDays", "contentMd5", "category", "sourceTrigger")
        ]
        rows += [("decision", f"{body['decision']}: {body['reason']}"), ("next", body["next"])]
        rows += [
            ("record", f"{r['action']} at {r['decidedAt']} run {r['runId'] or '-'}") for r in body["records"]
        ]
        rows += [("run", f"{r['id']} {r['kind']} {r['trigger']} {r['status']}") for r in body["runs"]]
        return _table(("FIELD", "VALUE"), rows)[1:]

    context.console.emit(body, lines)
    return OK


def _report(context: Context, report: Report) -> int:
    context.console.emit(report.as_dict(), lambda: _report_lines(report))
    return EXIT_TRANSIENT if report.errors else OK


def cmd_reconcile(context: Context) -> int:
    return _report(context, context.service.reconcile())


def cmd_sweep(context: Context) -> int:
    return _report(context, context.service.sweep())


def cmd_cleanup(context: Context) -> int:
    return _report(context, context.service.cleanup(dry_run=context.args.dry_run))


def cmd_health(context: Context) -> int:
    checks = context.service.health()
    body = health_json(checks)
    healthy = body["status"] == "healthy"

    def table() -> list[str]:
        rows = [("ok" if c.ok else "FAIL", c.name, c.detail) for c in checks]
        return [*_table(("", "CHECK", "DETAIL"), rows), "", "healthy" if healthy else "unhealthy"]

    context.console.emit(body, table)
    return OK if healthy else FAILED


def cmd_pipelines(context: Context) -> int:
    a = context.args
    if a.action == "show":
        pipeline = context.service.pipeline(a.kind)
        context.console.emit(dict(pipeline.resource), lambda: _pipeline_lines(pipeline))
        return OK
    if a.action == "list":
        return _list_pipelines(context)
    if a.action == "delete":
        return _delete_pipeline(context)
    if a.kind == "export" and a.no_source_trigger:
        raise InvalidInput("only an import pipeline has a source trigger", target="--no-source-trigger")
    spec = PipelineSpec(
        storage_uri=a.storage_uri,
        storage_access_mode=a.mode,
        key_vault_name=a.key_vault,
        sas_secret_name=a.sas_secret,
        options=tuple(a.option),
        source_trigger=not a.no_source_trigger,
        user_assigned_identity=a.user_assigned_identity,
        grant_storage_role=a.grant_storage_role,
    )
    name = context.service.deploy_pipeline(a.kind, spec)
    state, error = "Accepted", None
    if a.wait:
        state, error = _wait_for_deployment(context, name)
    body: dict[str, Any] = {"deployment": name, "provisioningState": state, "error": error}
    lines = [f"deployment {name}: {state}" + (f": {error}" if error else "")]
    if state.lower() == "succeeded":
        identity, more = _identity(context, a.kind)
        body["identity"] = identity
        lines += more
    elif not a.wait:
        lines.append("with --wait: the pipeline identity's principal id and the roles it still needs")
    context.console.emit(body, lambda: lines)
    if state.lower() in ("failed", "canceled"):
        return FAILED
    return EXIT_TRANSIENT if a.wait and state.lower() not in DEPLOYMENT_TERMINAL else OK


def _identity(context: Context, kind: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The deployed pipeline's identity and the roles still to grant, as JSON and as lines. A read that
    fails says so and changes nothing else: the deployment itself succeeded."""
    try:
        needs = context.service.pipeline_identity(kind)
    except TransferError as exc:
        return None, [f"the pipeline's identity could not be read: {exc.message}"]
    pipeline = needs.pipeline
    body = {
        "type": pipeline.identity_type,
        "principalId": pipeline.principal_id,
        "storageAccessMode": pipeline.storage_access_mode,
        "rolesToGrant": [
            {"role": g.role, "scope": g.scope, "command": g.command, "note": g.note or None}
            for g in needs.grants
        ],
        "notes": list(needs.notes),
    }
    lines = [f"pipeline identity: {pipeline.principal_id or 'unknown'} ({pipeline.identity_type or 'none'})"]
    if needs.grants:
        lines.append("still to grant:")
        for grant in needs.grants:
            lines.append(f"  {grant.role} on {grant.scope}:")
            lines.append(f"    {grant.command}")
            if grant.note:
                lines.append(f"    ({grant.note})")
    else:
        lines.append("nothing left to grant")
    lines += [f"  {note}" for note in needs.notes]
    return body, lines


def _list_pipelines(context: Context) -> int:
    listed = context.service.list_pipelines()
    body = {"pipelines": [{**_pipeline_json(p.pipeline), "configured": p.configured} for p in listed]}

    def table() -> list[str]:
        if not listed:
            return ["the registry has no export or import pipelines"]
        rows = [
            (
                p.pipeline.kind,
                p.pipeline.name,
                "yes" if p.configured else "",
                p.pipeline.storage_access_mode,
                p.pipeline.storage_uri,
                p.pipeline.source_trigger_status or "",
                p.pipeline.provisioning_state,
                p.pipeline.principal_id,
            )
            for p in listed
        ]
        header = ("KIND", "NAME", "CONFIGURED", "STORAGE ACCESS", "STORAGE URI", "SOURCE TRIGGER", "STATE")
        return _table((*header, "PRINCIPAL ID"), rows)

    context.console.emit(body, table)
    return OK


def _pipeline_json(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "kind": pipeline.kind,
        "name": pipeline.name,
        "id": pipeline.id,
        "provisioningState": pipeline.provisioning_state,
        "storageAccessMode": pipeline.storage_access_mode,
        "storageUri": pipeline.storage_uri,
        "keyVaultUri": pipeline.key_vault_uri,
        "options": list(pipeline.options),
        "sourceTrigger": pipeline.source_trigger_status,
        "identityType": pipeline.identity_type,
        "principalId": pipeline.principal_id,
    }


def _delete_pipeline(context: Context) -> int:
    a = context.args
    deletion = context.service.delete_pipeline(a.kind, a.name, force=a.force)
    status = "deleted" if deletion.deleted else "deleting"
    body = {"kind": deletion.kind, "name": deletion.name, "id": deletion.id, "status": status}
    line = f"{deletion.kind} pipeline {deletion.name}: " + (
        "deleted" if deletion.deleted else "ARM is deleting it (`pipelines list` shows when it is gone)"
    )
    context.console.emit(body, lambda: [line])
    return OK


COMMANDS: dict[str, Callable[[Context], int]] = {
    "export": cmd_export,
    "import": cmd_import,
    "runs": cmd_runs,
    "show": cmd_show,
    "reconcile": cmd_reconcile,
    "sweep": cmd_sweep,
    "cleanup": cmd_cleanup,
    "health": cmd_health,
    "blob": cmd_blob,
    "delete": cmd_delete,
    "pipelines": cmd_pipelines,
}


# ---- waiting ----------------------------------------------------------------------------------------


def _runs_outcome(runs: Sequence[Run]) -> int:
    if any(r.status in (RunStatus.FAILED, RunStatus.CANCELED) for r in runs):
        return FAILED
    return OK


def _wait_for_runs(context: Context, runs: list[Run]) -> tuple[list[Run], int]:
    """Reconcile and re-read until every run is terminal; one status line whenever something changes."""
    a = context.args
    deadline = context.monotonic() + a.timeout
    started = context.monotonic()
    shown: dict[str, str] = {}
    while True:
        for run in runs:
            line = f"{run.status.value}" + (f" {run.progress}%" if run.progress else "")
            if shown.get(run.id) != line:
                shown[run.id] = line
                elapsed = int(context.monotonic() - started)
                context.console.progress(
                    f"[{elapsed:>5}s] {run.id} {line}" + (f": {run.error}" if run.error else "")
                )
        if all(r.status.terminal for r in runs):
            return runs, _runs_outcome(runs)
        if context.monotonic() >= deadline:
            context.console.progress(
                f"timed out after {a.timeout:g}s; the runs go on: follow them with `show`"
            )
            return runs, EXIT_TRANSIENT
        context.sleep(a.interval)
        runs = [_reconciled(context, run) for run in runs]


def _reconciled(context: Context, run: Run) -> Run:
    """The run moved forward from ARM now (only this run, not every active one)."""
    try:
        return context.service.reconcile_run(run.id)
    except TRANSIENT_ERRORS as exc:
        context.console.progress(f"reconcile deferred: {exc.message}")
        return run


def _wait_for_deployment(context: Context, name: str) -> tuple[str, str | None]:
    a = context.args
    deadline = context.monotonic() + a.timeout
    last = ""
    while True:
        try:
            deployment = context.service.deployment(name)
            state, error = deployment.provisioning_state, deployment.error
        except NotFound:
            state, error = "Accepted", None  # ARM may not list a deployment right after its PUT
        if state != last:
            context.console.progress(f"deployment {name}: {state}")
            last = state
        if state.lower() in DEPLOYMENT_TERMINAL:
            return state, error
        if context.monotonic() >= deadline:
            context.console.progress(f"timed out after {a.timeout:g}s; the deployment goes on")
            return state, error
        context.sleep(a.interval)


# ---- tables -----------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    cells = [[str(h) for h in header], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(value.ljust(w) for value, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def _shorten(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _what(run: Run) -> str:
    if run.artifacts:
        first = run.artifacts[0]
        return first if len(run.artifacts) == 1 else f"{first} +{len(run.artifacts) - 1}"
    return run.blob or ""


def _run_table(runs: Sequence[Run]) -> list[str]:
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
            _shorten(_what(r), 40),
            _shorten(r.error or (f"warning: {r.warning}" if r.warning else None), 50),
        )
        for r in runs
    ]
    return _table(("RUN", "KIND", "TRIGGER", "STATUS", "PROGRESS", "CREATED", "WHAT", "ERROR"), rows)


def _run_details(run: Run) -> list[str]:
    body = run_json(run)
    width = max(len(k) for k in body)
    lines = []
    for key, value in body.items():
        if isinstance(value, list):
            value = ", ".join(value) if value else ""
        lines.append(f"{key.ljust(width)}  {'' if value is None else value}")
    return lines


def _report_lines(report: Report) -> list[str]:
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(report.counts.items())) or "nothing to do"
    lines = [counts]
    for item in report.items:
        lines.append("  " + " ".join(f"{k}={v}" for k, v in item.items() if v is not None))
    for error in report.errors:
        lines.append(f"  deferred: {error}")
    return lines


def _pipeline_lines(pipeline: Pipeline) -> list[str]:
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
    return _table(("FIELD", "VALUE"), rows)[1:]
