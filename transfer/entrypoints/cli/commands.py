"""The commands on runs, blobs and the timers' passes: each calls the service once and prints its answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transfer.domain.errors import InvalidInput
from transfer.domain.runs import Run, Trigger
from transfer.entrypoints.cli.console import (
    EXIT_TRANSIENT,
    FAILED,
    OK,
    Invocation,
    report_lines,
    run_details,
    run_table,
    shorten,
    tabulate,
)
from transfer.entrypoints.cli.waiting import runs_outcome, wait_for_runs
from transfer.entrypoints.presentation import blob_json, health_json, run_json, timestamp
from transfer.service import ListedRun, Report


def _start(invocation: Invocation, start: Callable[[], Any]) -> int:
    accepted = start()
    runs: list[Run] = accepted.runs
    if invocation.args.wait and runs:
        runs, code = wait_for_runs(invocation, runs)
    else:
        code = runs_outcome(runs)
    body: dict[str, Any] = {"requestId": accepted.request_id, "runs": [run_json(r) for r in runs]}
    if accepted.incremental:
        body["skipped"] = list(accepted.skipped)

    def table() -> list[str]:
        if runs:
            return run_table(runs)
        return [f"nothing new to export: {len(accepted.skipped)} unchanged since their last export"]

    invocation.console.emit(body, table)
    return code


def cmd_export(invocation: Invocation) -> int:
    a = invocation.args
    return _start(
        invocation,
        lambda: invocation.service.start_export(
            list(a.artifacts),
            Trigger.CLI,
            target_name=a.target_name,
            idempotency_key=a.idempotency_key,
            incremental=a.incremental,
        ),
    )


def cmd_import(invocation: Invocation) -> int:
    a = invocation.args
    return _start(
        invocation,
        lambda: invocation.service.start_import(a.blob, Trigger.CLI, idempotency_key=a.idempotency_key),
    )


def cmd_runs(invocation: Invocation) -> int:
    a = invocation.args
    if a.all:
        if a.kind or a.status:
            raise InvalidInput(
                "--all lists every pipelineRun; --kind and --status filter records", target="--all"
            )
        return _all_runs(invocation)
    runs = invocation.service.list_runs(kind=a.kind, status=a.status, top=a.top)
    invocation.console.emit({"runs": [run_json(r) for r in runs]}, lambda: run_table(runs))
    return OK


def _all_runs(invocation: Invocation) -> int:
    listed = invocation.service.list_pipeline_runs()
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
                shorten(r.record.blob if r.record else None, 40),
                (r.record.error_cause or "") if r.record else "",
            )
            for r in listed
        ]
        header = ("NAME", "PIPELINE", "STATUS", "STARTED", "OWNED", "APP STATUS", "BLOB", "ERROR CAUSE")
        return tabulate(header, rows)

    invocation.console.emit(body, table)
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


def cmd_delete(invocation: Invocation) -> int:
    """DELETE /api/runs/{id} from the CLI: the same checks (finished, started by the app), the same run."""
    run_id = invocation.args.run_id
    already_clean = invocation.service.get_run(run_id).cleaned_up
    run = invocation.service.delete_run(run_id)
    if already_clean:
        line = f"run {run.id}: already cleaned up"
    elif run.cleaned_up:
        line = f"run {run.id}: its pipelineRun and deployment are deleted"
    else:
        line = f"run {run.id}: ARM deletes started; the next cleanup confirms them and marks it cleaned up"
    invocation.console.emit(run_json(run), lambda: [line])
    return OK


def cmd_show(invocation: Invocation) -> int:
    run = invocation.service.get_run(invocation.args.run_id)
    invocation.console.emit(run_json(run), lambda: run_details(run))
    return OK


def cmd_blob(invocation: Invocation) -> int:
    diagnosis = invocation.service.diagnose_blob(invocation.args.name)
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
        return tabulate(("FIELD", "VALUE"), rows)[1:]

    invocation.console.emit(body, lines)
    return OK


def _report(invocation: Invocation, report: Report) -> int:
    invocation.console.emit(report.as_dict(), lambda: report_lines(report))
    return EXIT_TRANSIENT if report.errors else OK


def cmd_reconcile(invocation: Invocation) -> int:
    return _report(invocation, invocation.service.reconcile())


def cmd_sweep(invocation: Invocation) -> int:
    return _report(invocation, invocation.service.sweep())


def cmd_cleanup(invocation: Invocation) -> int:
    return _report(invocation, invocation.service.cleanup(dry_run=invocation.args.dry_run))


def cmd_health(invocation: Invocation) -> int:
    checks = invocation.service.health()
    body = health_json(checks)
    healthy = body["status"] == "healthy"

    def table() -> list[str]:
        rows = [("ok" if c.ok else "FAIL", c.name, c.detail) for c in checks]
        return [*tabulate(("", "CHECK", "DETAIL"), rows), "", "healthy" if healthy else "unhealthy"]

    invocation.console.emit(body, table)
    return OK if healthy else FAILED
