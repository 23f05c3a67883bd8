"""Every HTTP function, called as the host would call it, against the service on fakes."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import function_app
from tests.conftest import ENV, World, make_world
from tests.faults import instead
from transfer import bootstrap
from transfer.domain.errors import NotConfigured, Throttled, Unavailable
from transfer.domain.runs import RunStatus
from transfer.entrypoints import http_api, routes
from transfer.entrypoints.http_api import ApiResponse

HOST = "https://transfer-app.azurewebsites.net"
KEY = "fUnCtIoNkEy123=="
RUN_KEYS = {
    "id", "kind", "trigger", "status", "artifacts", "blob", "pipelineRunId", "deploymentName", "progress",
    "importedArtifacts", "error", "createdAt", "updatedAt", "finishedAt", "cleanedUp", "url",
}  # fmt: skip


def call(
    function: Any,
    method: str,
    route: str,
    body: bytes | dict[str, Any] | list[Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> tuple[int, Any, func.HttpResponse]:
    if isinstance(body, dict | list):
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    else:
        raw = body or b""
    request = func.HttpRequest(
        method,
        f"{HOST}/api/{route}?code={KEY}",
        headers=headers or {},
        params={"code": KEY, **(params or {})},
        route_params=route_params or {},
        body=raw,
    )
    response = function(request)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body()), response


def export(body: Any, **kwargs: Any) -> tuple[int, Any, func.HttpResponse]:
    return call(function_app.start_export, "POST", "exports", body, **kwargs)


def assert_error(status: int, body: Any, expected_status: int, code: str, target: str | None) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["target"] == target
    assert body["error"]["message"]


def assert_untouched(world: World) -> None:
    assert world.stored_runs() == []
    assert world.state.requests == {}
    assert world.arm_writes() == []


# ---- POST /api/exports --------------------------------------------------------------------------


def test_export_answers_202_with_the_runs_and_their_urls(world: World) -> None:
    status, body, response = export(
        {"artifacts": ["samples/hello:v1", "samples/web"], "targetName": "nightly"}
    )
    assert status == 202
    (run,) = body["runs"]
    assert set(run) >= RUN_KEYS
    assert run["url"] == f"{HOST}/api/runs/{run['id']}"  # absolute, and without the function key
    assert response.headers["Location"] == run["url"]
    assert run["kind"] == "export"
    assert run["trigger"] == "http"
    assert run["status"] == "Deploying"
    assert run["artifacts"] == ["samples/hello:v1", "samples/web:latest"]
    assert run["blob"] == f"nightly-{run['id']}"
    assert run["createdAt"] == "2026-11-26T12:00:00.000Z"
    assert run["finishedAt"] is None
    assert run["cleanedUp"] is False
    assert body["requestId"] == run["requestId"]
    assert world.deployments_started() == [run["deploymentName"]]
    assert [r.id for r in world.stored_runs()] == [run["id"]]


def test_more_than_50_artifacts_become_several_runs(world: World) -> None:
    artifacts = [f"repo{i}:v1" for i in range(120)]
    status, body, _ = export({"artifacts": artifacts})
    assert status == 202
    assert [len(r["artifacts"]) for r in body["runs"]] == [50, 50, 20]
    assert [a for r in body["runs"] for a in r["artifacts"]] == artifacts
    assert len({r["id"] for r in body["runs"]}) == 3
    assert len(world.deployments_started()) == 3


def test_a_repeat_with_the_same_idempotency_key_returns_the_same_runs_and_deploys_once(world: World) -> None:
    headers = {"Idempotency-Key": "build-4711"}
    first = export({"artifacts": ["samples/hello:v1"]}, headers=headers)
    again = export({"artifacts": ["samples/hello:v1"]}, headers=headers)
    assert first[0] == again[0] == 202
    assert again[1] == first[1]
    assert len(world.deployments_started()) == 1
    assert len(world.stored_runs()) == 1


def test_an_idempotency_key_reused_for_another_request_is_422(world: World) -> None:
    export({"artifacts": ["samples/hello:v1"]}, headers={"Idempotency-Key": "k1"})
    status, body, _ = export({"artifacts": ["samples/other:v1"]}, headers={"Idempotency-Key": "k1"})
    assert_error(status, body, 422, "IdempotencyKeyReused", "Idempotency-Key")
    assert len(world.deployments_started()) == 1


JSON = {"Content-Type": "application/json"}
BAD_EXPORTS = [
    pytest.param({"artifacts": ["samples/ok:v1", "Samples/Bad"]}, "artifacts[1]", id="bad-artifact"),
    pytest.param({"artifacts": ["ok:v1", 7]}, "artifacts[1]", id="not-a-string"),
    pytest.param({"artifacts": "samples/ok:v1"}, "artifacts", id="not-a-list"),
    pytest.param({"artifacts": []}, "artifacts", id="empty"),
    pytest.param({}, "artifacts", id="missing"),
    pytest.param({"artifacts": ["ok:v1"], "target": "x"}, "target", id="unknown-field"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "-x"}, "targetName", id="bad-target-name"),
    pytest.param({"artifacts": [f"r{i}" for i in range(1001)]}, "artifacts", id="too-many"),
    pytest.param(["ok:v1"], "body", id="not-an-object"),
    pytest.param(b'{"artifacts": ["ok:v1"]', "body", id="invalid-json"),
    pytest.param(b'{"artifacts": ["ok:v1"], "artifacts": ["x:v2"]}', "artifacts", id="duplicate-field"),
    pytest.param(b'{"artifacts": ["ok:\xff"]}', "body", id="invalid-utf8"),
    pytest.param(b'{"artifacts": NaN}', "body", id="nan"),
    pytest.param(b"", "body", id="empty-body"),
    pytest.param(
        {"artifacts": ["ok:v1"], "incremental": "yes"}, "incremental", id="incremental-not-a-boolean"
    ),
    pytest.param({"artifacts": ["ok:v1", "team/*"]}, "artifacts[1]", id="selector-without-a-tag-pattern"),
    pytest.param({"artifacts": ["ok:v1", "team/*:v9.*"]}, "artifacts[1]", id="selector-matching-nothing"),
]


@pytest.mark.parametrize(("body", "target"), BAD_EXPORTS)
def test_bad_export_requests_are_400_naming_the_target_and_change_nothing(
    world: World, body: Any, target: str
) -> None:
    status, answer, _ = export(body, headers=JSON)
    assert_error(status, answer, 400, "InvalidInput", target)
    assert_untouched(world)


def test_a_malformed_idempotency_key_is_400_and_changes_nothing(world: World) -> None:
    status, body, _ = export({"artifacts": ["ok:v1"]}, headers={"Idempotency-Key": "has space"})
    assert_error(status, body, 400, "InvalidInput", "Idempotency-Key")
    assert_untouched(world)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_bodies_that_are_not_json_are_415(world: World, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    status, body, _ = export(b'{"artifacts": ["ok:v1"]}', headers=headers)
    assert_error(status, body, 415, "UnsupportedMediaType", None)
    assert_untouched(world)


def test_json_with_utf8_charset_is_accepted(world: World) -> None:
    headers = {"Content-Type": "Application/JSON; charset=UTF-8"}
    assert export(b'{"artifacts": ["ok:v1"]}', headers=headers)[0] == 202


def test_bodies_over_the_limit_are_413(world: World) -> None:
    huge = json.dumps({"artifacts": ["ok:v1"], "targetName": "x" * http_api.MAX_BODY_BYTES}).encode()
    status, body, _ = export(huge, headers=JSON)
    assert_error(status, body, 413, "PayloadTooLarge", None)
    assert_untouched(world)


def test_an_instance_without_an_export_pipeline_answers_422() -> None:
    env = {k: v for k, v in ENV.items() if k not in ("TRANSFER_EXPORT_PIPELINE", "TRANSFER_EXPORT_ARTIFACTS")}
    import_only = make_world(env)
    with bootstrap.use_service(import_only.service):
        status, body, _ = export({"artifacts": ["ok:v1"]})
    assert_error(status, body, 422, "NotConfigured", None)
    assert_untouched(import_only)


def test_throttling_is_429_with_retry_after(world: World, monkeypatch: Any) -> None:
    def throttled(record: Any) -> Any:
        raise Throttled("too many requests to Table Storage", retry_after=7.2)

    world.state.around("claim_request", instead(throttled))
    status, body, response = export({"artifacts": ["ok:v1"]}, headers={"Idempotency-Key": "k"})
    assert_error(status, body, 429, "Throttled", None)
    assert response.headers["Retry-After"] == "8"
    assert world.arm_writes() == []


def test_a_dependency_down_is_503(world: World, monkeypatch: Any) -> None:
    def down(run: Any) -> Any:
        raise Unavailable("Table Storage did not answer")

    world.state.around("add_run", instead(down))
    status, body, _ = export({"artifacts": ["ok:v1"]})
    assert_error(status, body, 503, "Unavailable", None)
    assert world.arm_writes() == []


def test_an_unexpected_error_is_500_without_details_and_is_logged(
    world: World, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(run: Any) -> Any:
        raise RuntimeError("internal detail that stays in the logs")

    world.state.around("add_run", instead(broken))
    with caplog.at_level(logging.INFO):
        status, body, response = export({"artifacts": ["ok:v1"]})
    assert_error(status, body, 500, "InternalError", None)
    assert "internal detail" not in response.get_body().decode()
    assert "Traceback" not in response.get_body().decode()
    assert any(r.exc_info and "internal detail" in str(r.exc_info[1]) for r in caplog.records)


def test_invalid_settings_are_500_naming_each_setting(monkeypatch: Any) -> None:
    for name in ("TRANSFER_REGISTRY", "TRANSFER_EXPORT_PIPELINE", "TRANSFER_IMPORT_PIPELINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "not-a-guid")
    monkeypatch.setenv("TransferState", "UseDevelopmentStorage=true")
    bootstrap.reset()
    try:
        status, body, _ = export({"artifacts": ["ok:v1"]})
    finally:
        bootstrap.reset()
    assert_error(status, body, 500, "InvalidSettings", None)
    targets = {d["target"] for d in body["error"]["details"]}
    assert {"AZURE_SUBSCRIPTION_ID", "TRANSFER_REGISTRY"} <= targets


# ---- POST /api/imports --------------------------------------------------------------------------


def start_import(body: Any, **kwargs: Any) -> tuple[int, Any, func.HttpResponse]:
    return call(function_app.start_import, "POST", "imports", body, **kwargs)


def test_import_answers_202_with_one_run(world: World) -> None:
    world.add_blob("export-20261101")
    status, body, response = start_import({"blob": "export-20261101"})
    assert status == 202
    (run,) = body["runs"]
    assert (run["kind"], run["trigger"], run["blob"], run["status"]) == (
        "import", "http", "export-20261101", "Deploying",
    )  # fmt: skip
    assert response.headers["Location"] == run["url"]
    assert world.deployments_started() == [run["deploymentName"]]


def test_import_of_a_blob_that_is_not_there_is_404(world: World) -> None:
    status, body, _ = start_import({"blob": "missing"})
    assert_error(status, body, 404, "NotFound", "blob")
    assert_untouched(world)


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"blob": ""}, "blob"),
        ({"blob": 3}, "blob"),
        ({"blob": "bad\nname"}, "blob"),
        ({}, "blob"),
        ({"blob": "x", "force": True}, "force"),
        (["x"], "body"),
    ],
)
def test_bad_import_requests_are_400_and_change_nothing(world: World, body: Any, target: str) -> None:
    world.add_blob("x")
    status, answer, _ = start_import(body)
    assert_error(status, answer, 400, "InvalidInput", target)
    assert_untouched(world)


def test_import_repeat_with_the_same_key_is_the_same_run(world: World) -> None:
    world.add_blob("b1")
    first = start_import({"blob": "b1"}, headers={"Idempotency-Key": "imp-1"})
    again = start_import({"blob": "b1"}, headers={"Idempotency-Key": "imp-1"})
    assert first[1] == again[1]
    assert again[0] == 202
    assert len(world.deployments_started()) == 1


# ---- GET /api/runs/{id} and /api/runs -------------------------------------------------------------


def get_run(run_id: str) -> tuple[int, Any, func.HttpResponse]:
    return call(function_app.get_run, "GET", f"runs/{run_id}", route_params={"run_id": run_id})


def test_get_run_returns_the_run(world: World) -> None:
    _, body, _ = export({"artifacts": ["ok:v1"]})
    created = body["runs"][0]
    status, run, _ = get_run(created["id"])
    assert status == 200
    assert run == created


def test_get_run_shows_the_error_of_a_failed_run(world: World) -> None:
    _, _body, _ = export({"artifacts": ["ok:v1"]})
    (stored,) = world.stored_runs()
    world.finish(stored, "Failed", error="artifact ok:v1 not found in the registry")
    world.service.reconcile()
    status, run, _ = get_run(stored.id)
    assert (status, run["status"]) == (200, "Failed")
    assert run["error"] == "artifact ok:v1 not found in the registry"
    assert run["finishedAt"] == "2026-11-26T12:00:00.000Z"


def test_get_run_unknown_is_404_and_malformed_is_400(world: World) -> None:
    status, body, _ = get_run("20261126120000000e999999")
    assert_error(status, body, 404, "NotFound", "run_id")
    status, body, _ = get_run("not a run!")  # hyphens are fine: the source trigger's runs may hold them
    assert_error(status, body, 400, "InvalidInput", "run_id")


def list_runs(**params: str) -> tuple[int, Any, func.HttpResponse]:
    return call(function_app.list_runs, "GET", "runs", params=params)


def test_list_runs_filters_by_kind_status_and_top(world: World) -> None:
    export({"artifacts": [f"r{i}:v1" for i in range(60)]})
    world.add_blob("b1")
    start_import({"blob": "b1"})
    status, body, _ = list_runs()
    assert status == 200
    assert len(body["runs"]) == 3
    assert all(set(r) >= RUN_KEYS for r in body["runs"])
    assert [r["kind"] for r in list_runs(kind="export")[1]["runs"]] == ["export", "export"]
    assert len(list_runs(kind="import", status="Deploying")[1]["runs"]) == 1
    assert list_runs(status="Succeeded")[1]["runs"] == []
    assert len(list_runs(top="1")[1]["runs"]) == 1


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"kind": "both"}, "kind"),
        ({"status": "succeeded"}, "status"),
        ({"top": "0"}, "top"),
        ({"top": "1001"}, "top"),
        ({"top": "ten"}, "top"),
        ({"top": "-1"}, "top"),
        ({"sort": "asc"}, "sort"),
    ],
)
def test_list_runs_rejects_bad_query_parameters(world: World, params: dict[str, str], target: str) -> None:
    status, body, _ = list_runs(**params)
    assert_error(status, body, 400, "InvalidInput", target)


# ---- DELETE /api/runs/{id} ----------------------------------------------------------------------


def delete(run_id: str) -> tuple[int, Any, func.HttpResponse]:
    return call(function_app.delete_run, "DELETE", f"runs/{run_id}", route_params={"run_id": run_id})


def test_delete_is_409_while_the_run_is_not_terminal(world: World) -> None:
    export({"artifacts": ["ok:v1"]})
    (run,) = world.stored_runs()
    status, body, _ = delete(run.id)
    assert_error(status, body, 409, "Conflict", "run_id")
    assert [c for c in world.arm_writes() if c[0] != "begin_deployment"] == []


def test_delete_of_a_finished_run_starts_deleting_its_arm_resources(world: World) -> None:
    export({"artifacts": ["ok:v1"]})
    (run,) = world.stored_runs()
    world.finish(run)
    world.service.reconcile()
    status, body, _ = delete(run.id)
    assert status == 202
    assert (body["status"], body["cleanedUp"]) == ("Succeeded", True)
    assert ("delete_deployment", run.deployment_name) in world.arm.history
    assert ("delete_resource", run.pipeline_run_id) in world.arm.history
    deletes = len(world.arm_writes())
    status, again, _ = delete(run.id)  # already cleaned up: nothing more to start
    assert (status, again["id"]) == (200, run.id)
    assert len(world.arm_writes()) == deletes


def test_delete_unknown_is_404(world: World) -> None:
    status, body, _ = delete("20261126120000000e999999")
    assert_error(status, body, 404, "NotFound", "run_id")


# ---- GET /api/health ----------------------------------------------------------------------------


def health() -> tuple[int, Any, func.HttpResponse]:
    return call(function_app.health, "GET", "health")


def test_health_is_200_with_one_entry_per_check(world: World) -> None:
    status, body, _ = health()
    assert status == 200
    assert body["status"] == "healthy"
    names = [c["name"] for c in body["checks"]]
    assert names[:2] == ["settings", "state"]
    assert {"exportPipeline", "importPipeline", "deployments"} <= set(names)
    assert all(set(c) == {"name", "ok", "detail"} for c in body["checks"])


def test_health_is_503_when_a_check_fails(world: World, monkeypatch: Any) -> None:
    def down() -> None:
        raise Unavailable("Table Storage did not answer")

    world.state.around("ping", instead(down))
    status, body, _ = health()
    assert status == 503
    assert body["status"] == "unhealthy"
    assert {"name": "state", "ok": False, "detail": "Table Storage did not answer"} in body["checks"]


def test_health_reports_invalid_settings_as_unhealthy(monkeypatch: Any) -> None:
    monkeypatch.delenv("TRANSFER_REGISTRY", raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000001")
    bootstrap.reset()
    try:
        status, body, _ = health()
    finally:
        bootstrap.reset()
    assert status == 503
    assert body["status"] == "unhealthy"
    assert any(c["name"] == "settings" and "TRANSFER_REGISTRY" in c["detail"] for c in body["checks"])


# ---- the translation layer on its own ---------------------------------------------------------


def test_status_mapping_of_every_error() -> None:
    from transfer.domain import errors

    cases = [
        (errors.InvalidInput("x"), 400),
        (errors.NotFound("x"), 404),
        (errors.Conflict("x"), 409),
        (errors.PreconditionFailed("x"), 409),
        (errors.AlreadyExists("x"), 409),
        (errors.IdempotencyKeyReused("x"), 422),
        (errors.PayloadTooLarge("x"), 413),
        (errors.UnsupportedMediaType("x"), 415),
        (NotConfigured("x"), 422),
        (errors.AccessDenied("x"), 422),
        (Throttled("x"), 429),
        (Unavailable("x"), 503),
        (errors.TransferError("x"), 500),
    ]
    assert [exc.http_status for exc, _ in cases] == [status for _, status in cases]


def test_the_route_table_is_the_readmes_http_api() -> None:
    """Each row of http_api.ROUTES is a line of the README's HTTP API table, and each line a row."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    documented = {
        (method, re.sub(r"\{[^}]*\}", "{}", path))
        for method, path in re.findall(r"^\| `(GET|POST|DELETE|PUT) /([^` ?]+)", readme, re.MULTILINE)
    }
    table = {(r.method, re.sub(r"\{[^}]*\}", "{}", r.template)) for r in http_api.ROUTES}
    assert table == documented


def test_a_page_is_a_route_like_any_other() -> None:
    page = ApiResponse(200, "<!doctype html><title>t</title>", media_type=routes.HTML)
    assert page.encoded() == b"<!doctype html><title>t</title>"
    assert ApiResponse(200, {"a": 1}).media_type == routes.JSON


def test_routes_match_the_functions() -> None:
    assert http_api.route("POST", "/api/exports") == ("start_export", {})
    assert http_api.route("GET", "/api/runs/abc123") == ("get_run", {"run_id": "abc123"})
    assert http_api.route("DELETE", "/api/runs/abc123") == ("delete_run", {"run_id": "abc123"})
    assert http_api.route("GET", "/api/runs") == ("list_runs", {})
    assert http_api.route("PUT", "/api/runs") is None
    assert http_api.route("GET", "/other") is None


def test_run_statuses_are_the_design_ones() -> None:
    assert [s.value for s in RunStatus] == [
        "Accepted",
        "Deploying",
        "Running",
        "Succeeded",
        "Failed",
        "Canceled",
    ]


def get_blob(name: str) -> tuple[int, Any, func.HttpResponse]:
    return call(function_app.get_blob, "GET", f"blobs/{name}", route_params={"name": name})


def test_get_blob_diagnoses_the_60_day_rule(world: World) -> None:
    world.add_blob("exports/fresh")
    status, body, _ = get_blob("exports/fresh")
    assert status == 200
    assert (body["name"], body["contentMd5"], body["category"], body["decision"]) == (
        "exports/fresh",
        True,
        True,
        "leave",
    )
    assert body["ageDays"] == 0
    assert "source trigger" in body["next"]
    world.add_blob("aged", age_days=59.5)
    status, body, _ = get_blob("aged")
    assert (status, body["decision"]) == (200, "refresh")
    assert "59.5 days" in body["reason"]
    world.add_blob("stripped", md5=False, category=False)
    status, body, _ = get_blob("stripped")
    assert body["decision"] == "import"
    assert "no Content-MD5" in body["reason"]
    assert world.arm_writes() == []  # a diagnosis changes nothing
    assert world.state.blob_records("aged") == []


def test_get_blob_unknown_is_404_and_a_bad_name_is_400(world: World) -> None:
    status, body, _ = get_blob("nosuchblob")
    assert_error(status, body, 404, "NotFound", "name")
    status, body, _ = get_blob("bad\nname")
    assert status == 400


# ---- selectors and incremental exports ----------------------------------------------------------------


def test_an_incremental_export_with_nothing_new_is_200_with_no_runs_and_the_skipped_tags(
    world: World,
) -> None:
    for tag in ("v1.0", "v1.1", "v2.0"):
        world.registry.retag("team/api", tag)
    body = {"artifacts": ["team/api:v1.*"], "incremental": True}
    status, first, response = export(body)
    assert status == 202
    assert [r["artifacts"] for r in first["runs"]] == [["team/api:v1.0", "team/api:v1.1"]]
    assert first["skipped"] == []
    assert response.headers["Location"] == first["runs"][0]["url"]
    run = world.stored_run(first["runs"][0]["id"])
    world.finish(run)
    world.service.reconcile()
    status, again, response = export(body)
    assert status == 200
    assert set(again) == {"requestId", "runs", "skipped"}
    assert (again["runs"], again["skipped"]) == ([], ["team/api:v1.0", "team/api:v1.1"])
    assert "Location" not in response.headers
    status, plain, _ = export({"artifacts": ["team/api:v1.*"]})  # not incremental: no "skipped" key
    assert status == 202
    assert "skipped" not in plain


@pytest.mark.parametrize("denied", [401, 403])
def test_a_registry_that_refuses_the_apps_identity_is_422_naming_acrpull(world: World, denied: int) -> None:
    world.registry.deny(denied)
    status, body, _ = export({"artifacts": ["team/api:v1.*"]})
    assert_error(status, body, 422, "AccessDenied", None)
    assert "AcrPull" in body["error"]["message"]
    assert_untouched(world)
