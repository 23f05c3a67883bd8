"""The HTTP API as plain data in, plain data out: validation, service calls, error mapping, run JSON.

No Azure imports: function_app.py adapts `azure.functions` requests to `ApiRequest`, and a local development
server can do the same with `route()`. Every check of the request happens before the service is called, so
a rejected request writes nothing and calls nothing.

Status codes are the errors' own (`http_status` in transfer/domain/errors.py): 400 bad input, 404, 409,
413 body over MAX_BODY_BYTES, 415 not application/json (UTF-8), 422 IdempotencyKeyReused or a role this
instance lacks (NotConfigured, AccessDenied, PipelineNotReady), 429 with Retry-After, 503 Unavailable and
GET /health when a check fails; 500 SettingsError (the problems, which name settings) and anything
unexpected (a generic message, logged).
DELETE answers 202 when it started deleting the run's ARM resources (ARM deletes are started, not awaited)
and 200 when they were already cleaned up. POST /exports with `"incremental": true` answers 200 with no
runs when every tag is unchanged since its last successful export (`skipped` names them).
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from transfer.domain import naming
from transfer.domain.errors import (
    InvalidInput,
    PayloadTooLarge,
    SettingsError,
    Throttled,
    TransferError,
    Unavailable,
    UnsupportedMediaType,
)
from transfer.domain.runs import Trigger
from transfer.entrypoints.presentation import blob_json, health_json, run_json
from transfer.entrypoints.routes import HTML, JSON, ROUTE_PREFIX, Route, find

if TYPE_CHECKING:  # the service loads on the first request, not at cold start
    from transfer.service import Accepted, Check, TransferService

log = logging.getLogger("transfer.http")

MAX_BODY_BYTES = 256 * 1024
UNAVAILABLE_RETRY_AFTER = 30  # seconds: a 503 says when to ask again (state, ARM or storage unreachable)
EXPORT_FIELDS = frozenset({"artifacts", "targetName", "incremental"})
IMPORT_FIELDS = frozenset({"blob"})
LIST_PARAMS = frozenset({"kind", "status", "top"})
DASHBOARD_PARAMS = frozenset({"runs", "blobs"})
HOST_PARAMS = frozenset({"code"})  # the function key; the host checks it, we never echo it
DEFAULT_TOP = 50


@dataclass(frozen=True)
class ApiRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    route_params: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any  # JSON's data, or the text of a page
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = JSON

    def encoded(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


Operation = Callable[["TransferService", "ApiRequest"], "ApiResponse"]
ServiceFactory = Callable[[], "TransferService"]


# ---- the operations -------------------------------------------------------------------------------


def start_export(service: TransferService, request: ApiRequest) -> ApiResponse:
    body = _json_body(request, EXPORT_FIELDS, required=("artifacts",))
    accepted = service.start_export(
        body["artifacts"],
        Trigger.HTTP,
        target_name=body.get("targetName"),
        idempotency_key=_idempotency_key(request),
        incremental=body.get("incremental", False),  # the service validates it
    )
    return _accepted(request, accepted)


def start_import(service: TransferService, request: ApiRequest) -> ApiResponse:
    body = _json_body(request, IMPORT_FIELDS, required=("blob",))
    accepted = service.start_import(body["blob"], Trigger.HTTP, idempotency_key=_idempotency_key(request))
    return _accepted(request, accepted)


def get_run(service: TransferService, request: ApiRequest) -> ApiResponse:
    _no_body(request)
    run = service.get_run(_run_id(request))
    return ApiResponse(200, run_json(run, base_url(request)))


def list_runs(service: TransferService, request: ApiRequest) -> ApiResponse:
    _no_body(request)
    _known_params(request, LIST_PARAMS)
    top_raw = request.params.get("top")
    top = DEFAULT_TOP
    if top_raw is not None:
        if not re.fullmatch(r"[0-9]{1,4}", top_raw):
            raise InvalidInput("must be a whole number between 1 and 1000", target="top")
        top = int(top_raw)
    runs = service.list_runs(
        kind=request.params.get("kind") or None, status=request.params.get("status") or None, top=top
    )
    base = base_url(request)
    return ApiResponse(200, {"runs": [run_json(run, base) for run in runs]})


def delete_run(service: TransferService, request: ApiRequest) -> ApiResponse:
    _no_body(request)
    run_id = _run_id(request)
    already_clean = service.get_run(run_id).cleaned_up
    run = service.delete_run(run_id)
    log.info("run delete requested", extra={"run_id": run.id, "blob": run.blob, "trigger": "http"})
    return ApiResponse(200 if already_clean else 202, run_json(run, base_url(request)))


def get_blob(service: TransferService, request: ApiRequest) -> ApiResponse:
    _no_body(request)
    name = request.route_params.get("name")
    if not name:
        raise InvalidInput("the route needs a blob name", target="name")
    naming.check_blob_name(name, target="name")  # the route's own name, before the service reads anything
    return ApiResponse(200, blob_json(service.diagnose_blob(name), base_url(request)))


def health(service: TransferService, request: ApiRequest) -> ApiResponse:
    return health_response(service.health())


def dashboard(service: TransferService, request: ApiRequest) -> ApiResponse:
    """The operator's page: `runs` pages the runs (a run id), `blobs` the watched container (a marker)."""
    from transfer.entrypoints import dashboard_page, dashboard_svg

    _no_body(request)
    _known_params(request, DASHBOARD_PARAMS)
    view = service.dashboard(before=request.params.get("runs") or None, marker=request.params.get("blobs"))
    headers = {"Content-Security-Policy": dashboard_svg.CSP, "Cache-Control": "no-store"}
    return ApiResponse(200, dashboard_page.render(view, base_url(request)), headers, HTML)


def health_response(checks: list[Check]) -> ApiResponse:
    body = health_json(checks)
    return ApiResponse(200 if body["status"] == "healthy" else 503, body)


# The HTTP API, one row per function: function_app.py declares the same (tests check it).
ROUTES: tuple[Route, ...] = (
    Route("start_export", "POST", "exports", start_export),
    Route("start_import", "POST", "imports", start_import),
    Route("list_runs", "GET", "runs", list_runs),
    Route("get_run", "GET", "runs/{run_id}", get_run),
    Route("delete_run", "DELETE", "runs/{run_id}", delete_run),
    Route("health", "GET", "health", health),
    Route("get_blob", "GET", "blobs/{*name}", get_blob),
    Route("dashboard", "GET", "dashboard", dashboard, media_type=HTML),
)
BY_FUNCTION = {route.function: route for route in ROUTES}


def route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The function name and route parameters for `path` under /api/, as the host routes them."""
    found = find(ROUTES, method, path)
    return (found[0].function, found[1]) if found else None


def serve(function: str, request: ApiRequest, service: ServiceFactory) -> ApiResponse:
    """The answer of the function named `function` (a row of ROUTES) to `request`."""
    return handle(BY_FUNCTION[function].operation, request, service)


# ---- the one entry point ------------------------------------------------------------------------


def handle(operation: Operation, request: ApiRequest, service: ServiceFactory) -> ApiResponse:
    """Run one operation and turn every outcome into a response; nothing raises out of here."""
    try:
        return operation(service(), request)
    except SettingsError as exc:
        if operation is health:
            from transfer.service import Check

            return health_response([Check("settings", False, problem) for problem in exc.problems])
        log.error("invalid settings: %s", "; ".join(exc.problems))
        response = error_response(500, exc.code, "the app's settings are invalid", None)
        response.body["error"]["details"] = [
            {"code": exc.code, "message": problem, "target": _setting_named(problem)}
            for problem in exc.problems
        ]
        return response
    except TransferError as exc:
        status = exc.http_status
        level = logging.WARNING if status >= 500 or status == 429 else logging.INFO
        log.log(
            level, "request failed: %s %s: %s", status, exc.code, exc.message, extra={"target": exc.target}
        )
        headers = {}
        if isinstance(exc, Throttled):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after or 10)))
        elif isinstance(exc, Unavailable):  # a dependency down or hung: ask again after a while
            headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return error_response(status, exc.code, exc.message, exc.target, headers)
    except Exception:
        incident = uuid.uuid4().hex
        log.exception("unexpected error while handling a request (incident %s)", incident)
        return error_response(
            500, "InternalError", f"an unexpected error occurred; the logs have incident {incident}", None
        )


def error_response(
    status: int, code: str, message: str, target: str | None, headers: Mapping[str, str] | None = None
) -> ApiResponse:
    return ApiResponse(status, {"error": {"code": code, "message": message, "target": target}}, headers or {})


_SETTING = re.compile(
    r"\b(?:AZURE|TRANSFER)_[A-Z0-9_]*[A-Z0-9]|\b(?:TransferStorage|TransferState|AzureWebJobsStorage)(?:__\w+)?"
)


def _setting_named(problem: str) -> str | None:
    """The first setting a problem names ("set TRANSFER_EXPORT_PIPELINE ...", "TransferState__... must")."""
    found = _SETTING.search(problem)
    return found.group(0) if found else None


# ---- requests -----------------------------------------------------------------------------------


def _json_body(request: ApiRequest, allowed: frozenset[str], required: tuple[str, ...]) -> dict[str, Any]:
    _check_size_and_type(request)
    body = _parsed(request.body)
    for name in body:
        if name not in allowed:
            raise InvalidInput(f"unknown field; allowed: {', '.join(sorted(allowed))}", target=name)
    for name in required:
        if name not in body:
            raise InvalidInput("is required", target=name)
    return body


def _check_size_and_type(request: ApiRequest) -> None:
    declared = request.header("Content-Length")
    if len(request.body) > MAX_BODY_BYTES or (
        declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES
    ):
        raise PayloadTooLarge(f"the body is limited to {MAX_BODY_BYTES // 1024} KiB")
    media_type, _, parameters = (request.header("Content-Type") or "").partition(";")
    charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
    if media_type.strip().lower() != "application/json" or (
        charset and charset.group(1).lower() not in ("utf-8", "utf8")
    ):
        raise UnsupportedMediaType("send Content-Type: application/json (UTF-8)")


def _parsed(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not valid UTF-8", target="body") from None
    try:
        body = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidInput(f"the body is not valid JSON: {message}", target="body") from None
    except RecursionError:  # `[[[[...` within the size limit: deeper than any request of this API
        raise InvalidInput("the body is nested too deeply", target="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", target="body")
    return body


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInput("appears more than once in the body", target=key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_body(request: ApiRequest) -> None:
    if request.body:
        raise InvalidInput("this request takes no body", target="body")


def _known_params(request: ApiRequest, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.params) - allowed - HOST_PARAMS)
    if unknown:
        raise InvalidInput(f"unknown query parameter; use {', '.join(sorted(allowed))}", target=unknown[0])


def _idempotency_key(request: ApiRequest) -> str | None:
    key = request.header("Idempotency-Key")
    return key.strip() if key is not None else None


def _run_id(request: ApiRequest) -> str:
    return request.route_params.get("run_id") or ""


# ---- responses ----------------------------------------------------------------------------------


def _accepted(request: ApiRequest, accepted: Accepted) -> ApiResponse:
    base = base_url(request)
    runs = [run_json(run, base) for run in accepted.runs]
    message = "run accepted (repeated request)" if accepted.repeated else "run accepted"
    for run in accepted.runs:
        context = {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}
        log.info(message, extra={**context, "request_id": accepted.request_id})
    body: dict[str, Any] = {"requestId": accepted.request_id, "runs": runs}
    if accepted.incremental:
        body["skipped"] = list(accepted.skipped)
    if not runs:  # an incremental export with nothing new: nothing started
        log.info("export: nothing new", extra={"request_id": accepted.request_id})
        return ApiResponse(200, body)
    return ApiResponse(202, body, {"Location": runs[0]["url"]})


def base_url(request: ApiRequest) -> str:
    """`https://host/api/`, from the request's own URL; the query (which may hold the key) is dropped."""
    parts = urlsplit(request.url)
    path = parts.path
    index = path.find(ROUTE_PREFIX)
    prefix = path[: index + len(ROUTE_PREFIX)] if index >= 0 else ROUTE_PREFIX
    return urlunsplit((parts.scheme or "http", parts.netloc, prefix, "", ""))
