# azure.functions is untyped for mypy here (pyproject skips azure.*), so every decorator would be reported.
# mypy: disable-error-code="untyped-decorator"
"""Azure Functions entry points. Handlers translate requests to service calls; see transfer/ for the logic.

Importing this module does no I/O: the service (and with it the Azure SDK clients) is built on the first
invocation, by `_service()`. Only with APPLICATIONINSIGHTS_CONNECTION_STRING set
does it load the Azure Monitor exporter for the app's logs (transfer/adapters/telemetry.py).
"""

import logging
from typing import TYPE_CHECKING

import azure.functions as func

# The SDK-type binding: the worker recognises `blob.BlobClient` in the annotation and hands the function a
# client for the blob (SupportsDeferredBinding), so the blob's bytes never enter the function.
import azurefunctions.extensions.bindings.blob as blob

from transfer.adapters import telemetry
from transfer.domain.errors import (
    TRANSIENT_ERRORS,
    InvalidInput,
    NotConfigured,
    PipelineNotReady,
    Throttled,
    TransferError,
)

if TYPE_CHECKING:  # the service, its settings and the HTTP layer load on the first invocation
    from transfer.service import Report, TransferService

# The app's own logs with their transfer.* custom dimensions (docs/operations.md); a no-op, importing
# nothing, without APPLICATIONINSIGHTS_CONNECTION_STRING.
telemetry.setup()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("transfer.functions")


# ---- timers ---------------------------------------------------------------------------------------


def _service() -> "TransferService":
    from transfer import bootstrap

    return bootstrap.service_from_environment()


def _timer_started(name: str, timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("%s is past due: running the missed occurrence now", name, extra={"trigger": "schedule"})


def _log_report(name: str, report: "Report", trigger: str = "schedule") -> None:
    level = logging.WARNING if report.errors else logging.INFO
    log.log(
        level,
        "%s: %s",
        name,
        ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items())) or "nothing to do",
        extra={"trigger": trigger, "counts": dict(report.counts), "errors": report.errors[:20]},
    )


def _outage(name: str, exc: TransferError, trigger: str = "schedule") -> None:
    """A dependency outage during a timer: a report in the log, no exception (the host's retry of a timer
    adds nothing: the next occurrence does the work, and nothing was lost)."""
    log.warning(
        "%s: stopped, %s (nothing lost: the next occurrence goes on)",
        name,
        exc.message,
        extra={"trigger": trigger, "event": "timer.outage", "errors": [exc.message]},
    )


@app.function_name("scheduled_export")
@app.timer_trigger(arg_name="timer", schedule="%TRANSFER_EXPORT_SCHEDULE%", use_monitor=True)
def scheduled_export(timer: func.TimerRequest) -> None:
    _timer_started("scheduled_export", timer)
    try:
        accepted = _service().start_scheduled_export(timer.schedule_status)
    # The settings' selectors (too many matches), or a pipeline that would fail the run (a locked-down
    # tenant's cause, named): retrying cannot help; the next occurrence checks again.
    except (InvalidInput, PipelineNotReady) as exc:
        log.error("scheduled export refused: %s", exc.message, extra={"trigger": "schedule"})
        return
    except Throttled as exc:  # the registry's Retry-After is longer than an invocation waits
        log.warning(
            "scheduled export deferred to the next occurrence: %s (Retry-After %s s)",
            exc.message,
            exc.retry_after,
            extra={"trigger": "schedule"},
        )
        return
    except TRANSIENT_ERRORS as exc:  # the request record keeps the occurrence: the next tick is a repeat
        _outage("scheduled_export", exc)
        return
    if accepted is None:
        log.info("scheduled export: TRANSFER_EXPORT_ARTIFACTS is not set", extra={"trigger": "schedule"})
        return
    for selector in accepted.unmatched:
        log.warning("scheduled export: %s matches no tag", selector, extra={"trigger": "schedule"})
    if not accepted.runs:
        log.info(
            "scheduled export: nothing new (%d tags unchanged since their last export)",
            len(accepted.skipped),
            extra={
                "trigger": "schedule",
                "request_id": accepted.request_id,
                "skipped": len(accepted.skipped),
            },
        )
        return
    for run in accepted.runs:
        log.info(
            "scheduled export run %s: %s",
            run.id,
            run.status.value,
            extra={
                "run_id": run.id,
                "blob": run.blob,
                "trigger": "schedule",
                "request_id": accepted.request_id,
            },
        )


@app.function_name("reconcile")
@app.timer_trigger(arg_name="timer", schedule="%TRANSFER_RECONCILE_SCHEDULE%", use_monitor=True)
def reconcile(timer: func.TimerRequest) -> None:
    _timer_started("reconcile", timer)
    service = _service()
    try:
        service.start_push_exports()  # what a dead worker recorded, should no follow tick have started it
    except TRANSIENT_ERRORS as exc:
        _outage("push exports", exc)
    for name, work in (("reconcile", service.reconcile), ("cleanup", service.cleanup)):
        try:
            _log_report(name, work())
        except TRANSIENT_ERRORS as exc:
            _outage(name, exc)


@app.function_name("follow_runs")
@app.timer_trigger(arg_name="timer", schedule="%TRANSFER_FOLLOW_SCHEDULE%", use_monitor=False)
def follow_runs(timer: func.TimerRequest) -> None:
    # Every few seconds: one index read and nothing more while no run is active and no push waits, so
    # the step after a run's success starts within seconds instead of at the next reconcile tick.
    service = _service()
    for run in service.start_push_exports():
        log.info("export on push: run %s %s", run.id, run.status.value, extra={"run_id": run.id})
    report = service.follow()
    if report.counts or report.errors:
        _log_report("follow_runs", report)


@app.function_name("sweep_stale_blobs")
@app.timer_trigger(arg_name="timer", schedule="%TRANSFER_SWEEP_SCHEDULE%", use_monitor=True)
def sweep_stale_blobs(timer: func.TimerRequest) -> None:
    _timer_started("sweep_stale_blobs", timer)
    service = _service()
    if not service.settings.import_pipeline:
        log.info("sweep skipped: this instance does not import", extra={"trigger": "sweep"})
        return
    try:
        _log_report("sweep", service.sweep(), trigger="sweep")
    except TRANSIENT_ERRORS as exc:
        _outage("sweep_stale_blobs", exc, trigger="sweep")


# ---- the watched container ------------------------------------------------------------------------


@app.function_name("on_target_blob")
@app.blob_trigger(
    arg_name="client",
    path="%TRANSFER_TARGET_CONTAINER%/{name}",
    connection="TransferStorage",
    source=func.BlobSource.EVENT_GRID,
)
def on_target_blob(client: blob.BlobClient) -> None:
    # Only the name is used: the service reads the blob's properties through its own store, and the
    # client's URL (which can carry a SAS) is never logged.
    name: str = client.blob_name
    try:
        from transfer.domain.runs import Trigger

        result = _service().handle_blob(name, Trigger.BLOB)
    except TransferError as exc:
        if isinstance(exc, TRANSIENT_ERRORS):
            raise  # the host retries the event: a dependency may answer next time
        # Retrying cannot help; raising would only send the blob to the poison queue after 5 tries.
        log.error(
            "blob ignored: %s",
            exc.message,
            extra={"blob": name, "trigger": "blob", "event": "blob.needs_attention"},
        )
        return
    run_id = result.run.id if result.run else None
    log.info(
        "blob %s: %s (%s)",
        name,
        result.outcome.value,
        result.reason,
        extra={"blob": name, "trigger": "blob", "run_id": run_id, "outcome": result.outcome.value},
    )


# ---- the source registry's pushes ------------------------------------------------------------------


@app.function_name("on_image_pushed")
@app.event_grid_trigger(arg_name="event")
def on_image_pushed(event: func.EventGridEvent) -> None:
    """Records the push before returning (a Table failure raises, so Event Grid delivers the event again);
    the export starts once TRANSFER_PUSH_WINDOW_SECONDS have passed since the first push waiting."""
    try:
        data = event.get_json()
    except ValueError:
        data = None
    body = {"id": event.id, "eventType": event.event_type, "subject": event.subject, "data": data}
    service = _service()
    try:
        report = service.record_pushes([body])
    except NotConfigured as exc:  # retrying cannot help
        log.error("push ignored: %s", exc.message, extra={"trigger": "push"})
        return
    log.info(
        "push event %s: %s",
        event.id,
        ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items())),
        extra={"trigger": "push", "counts": dict(report.counts), "reasons": report.reasons},
    )
    try:
        for run in service.start_push_exports():
            log.info("export on push: run %s %s", run.id, run.status.value, extra={"run_id": run.id})
    except TransferError as exc:  # the push is recorded: the next tick starts it
        log.warning("export on push: starting deferred to the next tick: %s", exc.message)


# ---- HTTP -----------------------------------------------------------------------------------------


def _serve(function: str, req: func.HttpRequest) -> func.HttpResponse:
    """Answer a request with the operation of its function in http_api.ROUTES, as plain data."""
    from transfer import bootstrap
    from transfer.entrypoints import http_api

    request = http_api.ApiRequest(
        method=req.method,
        url=req.url,
        headers=dict(req.headers),
        params=dict(req.params),
        route_params=dict(req.route_params),
        body=req.get_body() or b"",
    )
    answer = http_api.serve(function, request, bootstrap.service_from_environment)
    return func.HttpResponse(
        answer.encoded(),
        status_code=answer.status,
        headers=dict(answer.headers),
        mimetype=answer.media_type,
        charset="utf-8",
    )


@app.function_name("start_export")
@app.route(route="exports", methods=[func.HttpMethod.POST])
def start_export(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("start_export", req)


@app.function_name("start_import")
@app.route(route="imports", methods=[func.HttpMethod.POST])
def start_import(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("start_import", req)


@app.function_name("get_run")
@app.route(route="runs/{run_id}", methods=[func.HttpMethod.GET])
def get_run(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("get_run", req)


@app.function_name("list_runs")
@app.route(route="runs", methods=[func.HttpMethod.GET])
def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("list_runs", req)


@app.function_name("delete_run")
@app.route(route="runs/{run_id}", methods=[func.HttpMethod.DELETE])
def delete_run(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("delete_run", req)


@app.function_name("health")
@app.route(route="health", methods=[func.HttpMethod.GET])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("health", req)


@app.function_name("get_blob")
@app.route(route="blobs/{*name}", methods=[func.HttpMethod.GET])
def get_blob(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("get_blob", req)


@app.function_name("dashboard")
@app.route(route="dashboard", methods=[func.HttpMethod.GET])
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    return _serve("dashboard", req)
