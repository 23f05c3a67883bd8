"""Faults, injected through the emulator (its fault rules, failing runs, its deployment quota) and real
Azurite, against the app's functions: ARM throttling with a short and a long Retry-After, 5xx while
reading, a deployment still active, the 800-deployment quota, a run failing with a long message, a worker
dying on either side of its deployment, a concurrent Table update (412), a dependency that cannot be
reached, and a blob deleted before its handler runs. Measured from the emulator's ARM request log and the
wall clock. docs/reliability.md lists each with what it shows.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
import pytest

import function_app
from demo import scenario
from demo import stack as demo_stack
from demo.stack import Stack
from tests.faults import instead
from tests.integration.polling import wait_for
from tests.integration.reliability_stack import (
    arm_requests,
    later,
    next_index,
    reconciled,
    side,
    started_stack,
    timed,
)
from transfer.adapters.entities import MAX_TEXT
from transfer.domain.errors import PreconditionFailed, Unavailable
from transfer.domain.runs import Run, RunStatus
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE, Outcome
from transfer.entrypoints import cli
from transfer.service.lifecycle import RunLifecycle, random_token
from transfer.service.memory import WorkerMemory

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

REPOSITORIES = {f"faults/app{i}": {"v1": None} for i in range(16)}
SOURCE_DEPLOYMENTS = f"{demo_stack.SOURCE_GROUP}/providers/Microsoft.Resources/deployments/acrtransfer-"
SOON = later(hours=0.05)  # 3 minutes on: past REDEPLOY_AFTER, an Accepted run is deployed again


class Died(BaseException):
    """A worker killed mid-invocation: nothing in the app catches a BaseException."""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with started_stack(repositories=REPOSITORIES) as started:
        yield started


@pytest.fixture(autouse=True)
def no_faults_after(stack: Stack) -> Iterator[None]:
    yield
    stack.emulator.admin.clear_faults()
    stack.emulator.admin.configure(run_seconds=0.2, deployment_grooming=True)


def export(s: scenario.Side, artifacts: list[str], key: str | None = None) -> tuple[int, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return s.http(function_app.start_export, "POST", "exports", {"artifacts": artifacts}, headers)


def puts_of(stack: Stack, since: int, name: str) -> list[int]:
    """The statuses of the PUTs of deployment `name` since index `since`."""
    return [
        r["status"]
        for r in arm_requests(stack, since)
        if r["method"] == "PUT" and r["path"].lower().endswith(f"/deployments/{name}".lower())
    ]


def pipeline_runs_named(s: scenario.Side, name: str) -> list[dict[str, Any]]:
    return [r for r in s.ports.arm.list_pipeline_runs() if r.get("name") == name]


def call_function(function: Any, method: str, route: str, body: Any = None) -> tuple[int, Any]:
    """An HTTP function called as the host calls it, on whichever service is active (thread-safe)."""
    request = func.HttpRequest(
        method,
        f"http://localhost:7071/api/{route}",
        headers={"Content-Type": "application/json"},
        body=json.dumps(body).encode() if body is not None else b"",
    )
    response = function(request)
    return response.status_code, json.loads(response.get_body())


def cli_output(s: scenario.Side, *argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with s.active():
        cli.main(list(argv), out=out, err=err, sleep=lambda _: None)
    return out.getvalue() + err.getvalue()


# ---- throttling -------------------------------------------------------------------------------------


def test_a_429_with_retry_after_5_is_retried_a_bounded_number_of_times_then_reconcile_deploys(
    stack: Stack,
) -> None:
    source = side(stack, "source")
    stack.emulator.admin.inject_fault(
        status=429, retry_after=5, method="PUT", path=SOURCE_DEPLOYMENTS, count=1000
    )
    since = next_index(stack)
    elapsed, (status, body) = timed(lambda: export(source, ["faults/app0:v1"]))
    assert status == 202, body
    [run] = body["runs"]
    assert run["status"] == "Accepted"
    assert "not deployed yet" in (run.get("warning") or "")
    assert puts_of(stack, since, run["deploymentName"]) == [429, 429, 429]  # 2 retries: the 12 s budget
    assert 9 <= elapsed < 14, elapsed  # two waits of 5 s, then the request answers
    stack.emulator.admin.clear_faults()
    assert source.service.get_run(run["id"]).status is RunStatus.ACCEPTED  # recorded, not lost
    [done] = reconciled(side(stack, "source", SOON), [run["id"]])
    assert done.status is RunStatus.SUCCEEDED
    assert puts_of(stack, since, run["deploymentName"]) == [429, 429, 429, 201]


def test_a_429_with_retry_after_600_is_slept_on_by_no_invocation(stack: Stack) -> None:
    source = side(stack, "source")
    stack.emulator.admin.inject_fault(
        status=429, retry_after=600, method="PUT", path=SOURCE_DEPLOYMENTS, count=1000
    )
    since = next_index(stack)
    runs = []
    for artifact in ("faults/app1:v1", "faults/app2:v1"):
        elapsed, (status, body) = timed(lambda a=artifact: export(source, [a]))  # type: ignore[misc]
        assert status == 202, body
        assert elapsed < 3, elapsed
        runs.extend(body["runs"])
    assert [r["status"] for r in runs] == ["Accepted", "Accepted"]
    names = [r["deploymentName"] for r in runs]
    assert [puts_of(stack, since, n) for n in names] == [[429], [429]]  # no retry: the caller defers

    worker = side(stack, "source", SOON)  # a reconcile tick 3 minutes on: one try, then it stops
    elapsed, report = timed(worker.service.reconcile)
    assert elapsed < 3, elapsed
    assert sorted(len(puts_of(stack, since, n)) for n in names) == [1, 2], report.as_dict()
    assert report.counts["not-reached"] == 1, report.as_dict()
    assert {worker.service.get_run(r["id"]).status for r in runs} == {RunStatus.ACCEPTED}
    elapsed, _ = timed(lambda: worker.timer(function_app.reconcile))  # the next tick waits it out
    assert elapsed < 3, elapsed
    assert sorted(len(puts_of(stack, since, n)) for n in names) == [1, 2]

    stack.emulator.admin.clear_faults()
    done = reconciled(side(stack, "source", later(hours=0.2)), [r["id"] for r in runs])  # 12 min on
    assert {r.status for r in done} == {RunStatus.SUCCEEDED}
    assert [puts_of(stack, since, n)[-1] for n in names] == [201, 201]


def test_500_and_503_while_reading_leave_the_run_as_it_was(stack: Stack) -> None:
    source = side(stack, "source")
    _, body = export(source, ["faults/app3:v1"])
    [run] = body["runs"]
    assert run["status"] == "Deploying"
    wait_for(
        lambda: source.service.deployment(run["deploymentName"]).provisioning_state == "Succeeded",
        "the run to finish in ARM",
    )
    admin = stack.emulator.admin
    # Retry-After 0: the client's retries (3) happen at once, then the read fails
    admin.inject_fault(status=500, retry_after=0, method="GET", path=run["deploymentName"], count=4)
    report = source.service.reconcile()
    assert report.counts["deferred"] == 1, report.as_dict()
    assert source.service.get_run(run["id"]).status is RunStatus.DEPLOYING
    admin.inject_fault(status=503, retry_after=0, method="GET", path=f"pipelineRuns/{run['id']}", count=4)
    report = source.service.reconcile()
    assert report.counts["deferred"] == 1, report.as_dict()
    kept = source.service.get_run(run["id"])
    assert (kept.status, kept.error) == (RunStatus.DEPLOYING, None)
    [done] = reconciled(source, [run["id"]])
    assert done.status is RunStatus.SUCCEEDED


# ---- deployments ------------------------------------------------------------------------------------


def test_a_redeploy_of_a_deployment_still_active_is_adopted_not_run_twice(stack: Stack) -> None:
    """A worker died between its deployment and the record's update; ARM's reads, eventually consistent,
    do not show the deployment yet; reconcile deploys the Accepted run again: ARM answers 409
    DeploymentActive and the run is adopted, not started twice."""
    stack.emulator.admin.configure(run_seconds=3)  # the run (and its deployment) stay active a while
    source = side(stack, "source", faults=True)
    calls = {"n": 0}

    def dies_on_the_first_update(update: Any, run: Run) -> Run:
        calls["n"] += 1
        if calls["n"] == 1:
            raise Died  # between the deployment and the record's update
        return update(run)

    source.ports.state.around("update_run", dies_on_the_first_update)
    since = next_index(stack)
    with pytest.raises(Died):
        export(source, ["faults/app4:v1"], key="active-1")
    status, body = export(source, ["faults/app4:v1"], key="active-1")  # the client retries
    assert status == 202
    [accepted] = [source.service.get_run(r["id"]) for r in body["runs"]]
    assert accepted.status is RunStatus.ACCEPTED  # the same run, left for reconcile to deploy
    admin = stack.emulator.admin
    admin.inject_fault(status=404, method="GET", path=f"/deployments/{accepted.deployment_name}", count=1)
    admin.inject_fault(status=404, method="GET", path=f"/pipelineRuns/{accepted.id}", count=1)
    worker = side(stack, "source", SOON)
    worker.service.reconcile()
    assert puts_of(stack, since, accepted.deployment_name) == [201, 409]  # DeploymentActive: adopted
    assert worker.service.get_run(accepted.id).status is RunStatus.DEPLOYING
    [done] = reconciled(worker, [accepted.id])
    assert done.status is RunStatus.SUCCEEDED
    assert puts_of(stack, since, accepted.deployment_name) == [201, 409]
    assert len(pipeline_runs_named(source, accepted.id)) == 1


# ---- a failed run -----------------------------------------------------------------------------------


def test_a_run_failed_with_a_long_message_is_stored_cut_safely_and_shown_in_the_api_and_the_cli(
    stack: Stack,
) -> None:
    message = "Artifact faults/app8:v1 could not be exported: ünïcode ✓ \"quoted\" 'single' <tag>\n" + (
        "🚢 line of detail\t" * 1500
    )
    stack.emulator.admin.fail_next_run(message, pipeline=demo_stack.EXPORT_PIPELINE)
    source = side(stack, "source")
    status, body = export(source, ["faults/app8:v1"])
    [failed] = reconciled(source, [body["runs"][0]["id"]])
    assert failed.status is RunStatus.FAILED
    error = failed.error or ""
    assert "could not be exported: ünïcode ✓" in error
    assert len(error) <= MAX_TEXT
    assert error.endswith("…")
    status, shown = source.http(
        function_app.get_run, "GET", f"runs/{failed.id}", route_params={"run_id": failed.id}
    )
    assert (status, shown["status"], shown["error"]) == (200, "Failed", error)
    json.dumps(shown, ensure_ascii=False).encode("utf-8")  # valid text all through: cut between characters
    table = cli_output(source, "show", failed.id)
    assert "could not be exported: ünïcode ✓" in table
    [listed] = [
        r for r in json.loads(cli_output(source, "--output", "json", "runs"))["runs"] if r["id"] == failed.id
    ]
    assert listed["error"] == error


# ---- a worker that dies -----------------------------------------------------------------------------


def test_a_worker_dying_between_the_record_and_the_deployment_leaves_reconcile_to_deploy_once(
    stack: Stack,
) -> None:
    source = side(stack, "source", faults=True)

    def dies(*_: Any) -> None:
        raise Died

    source.ports.arm.around("begin_deployment", instead(dies))
    since = next_index(stack)
    with pytest.raises(Died):
        export(source, ["faults/app9:v1"])
    [recorded] = [
        r for r in side(stack, "source").service.list_runs(top=20) if r.artifacts == ("faults/app9:v1",)
    ]
    assert recorded.status is RunStatus.ACCEPTED
    assert puts_of(stack, since, recorded.deployment_name) == []
    fresh = side(stack, "source")
    fresh.service.reconcile()  # within REDEPLOY_AFTER: its own start may still be on its way
    assert puts_of(stack, since, recorded.deployment_name) == []
    [done] = reconciled(side(stack, "source", SOON), [recorded.id])
    assert done.status is RunStatus.SUCCEEDED
    assert puts_of(stack, since, recorded.deployment_name) == [201]  # one deployment
    assert len(pipeline_runs_named(fresh, recorded.id)) == 1  # one pipelineRun


def test_a_worker_dying_between_the_deployment_and_the_record_update_leaves_reconcile_to_follow_it(
    stack: Stack,
) -> None:
    source = side(stack, "source", faults=True)

    def dies(_: Run) -> Run:
        raise Died

    source.ports.state.around("update_run", instead(dies))
    since = next_index(stack)
    with pytest.raises(Died):
        export(source, ["faults/app10:v1"])
    [recorded] = [
        r for r in side(stack, "source").service.list_runs(top=20) if r.artifacts == ("faults/app10:v1",)
    ]
    assert recorded.status is RunStatus.ACCEPTED
    assert puts_of(stack, since, recorded.deployment_name) == [201]
    [done] = reconciled(side(stack, "source", SOON), [recorded.id])  # even after REDEPLOY_AFTER
    assert done.status is RunStatus.SUCCEEDED
    assert puts_of(stack, since, recorded.deployment_name) == [201]  # no second deployment
    assert len(pipeline_runs_named(side(stack, "source"), recorded.id)) == 1


# ---- Table Storage: a concurrent update ---------------------------------------------------------------


def test_a_concurrent_update_gets_412_and_loses_nothing(stack: Stack) -> None:
    first, second = side(stack, "source"), side(stack, "source", faults=True)  # two workers, one table
    _, body = export(first, ["faults/app11:v1"])
    run_id = body["runs"][0]["id"]
    stale = second.service.get_run(run_id)  # the second worker read it before the first wrote
    [done] = reconciled(first, [run_id], copied=True)
    assert done.status is RunStatus.SUCCEEDED
    with pytest.raises(PreconditionFailed):
        second.ports.state.update_run(replace(stale, progress="50"))
    lifecycle = RunLifecycle(
        second.settings,
        second.ports.state,
        second.ports.arm,
        second.ports.templates,
        WorkerMemory(),
        SOON,
        random_token,
    )
    assert lifecycle.save(replace(stale, progress="50")) == done  # the newer record wins
    second.ports.state.around("active_runs", instead(lambda: [stale]))
    second.service.reconcile()  # its whole pass on the stale record: every write loses the race
    after = first.service.get_run(run_id)
    assert after == done  # same ETag: nothing overwritten, nothing copied again


# ---- a dependency that cannot be reached ------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("down", "said"),
    [("arm", "could not be reached"), ("identity", "could not get a token for the managed identity")],
    ids=["arm-endpoint", "identity-endpoint"],
)
def test_arm_unreachable_is_a_clear_503_and_health_names_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, down: str, said: str
) -> None:
    """The emulator serves both ARM and the managed identity's token endpoint: either may be down."""
    closed = f"https://127.0.0.1:{_closed_port()}"
    if down == "identity":
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{closed}/msi/token")
        source = side(stack, "source")
    else:
        source = side(stack, "source", TRANSFER_ARM_ENDPOINT=closed)
    before = len(source.service.list_runs(top=1000))
    with source.active(), ThreadPoolExecutor(2) as pool:  # each waits out the client's retries (~5 s)
        checked = pool.submit(lambda: call_function(function_app.health, "GET", "health"))
        exported = pool.submit(
            lambda: call_function(
                function_app.start_export, "POST", "exports", {"artifacts": ["faults/app12:v1"]}
            )
        )
        (status, health), (export_status, body) = checked.result(), exported.result()
    assert status == 503
    failing = {c["name"]: c["detail"] for c in health["checks"] if not c["ok"]}
    assert {"exportPipeline", "deployments"} <= set(failing), failing
    copy_sas = failing.pop("copySas", None)  # the copy target's secret, read with the same identity
    assert copy_sas is None if down == "arm" else "could not get a token" in copy_sas, copy_sas
    assert all(detail.startswith("ARM: ") and said in detail for detail in failing.values()), failing
    assert (export_status, body["error"]["code"]) == (503, "Unavailable")
    assert body["error"]["message"].startswith("ARM: ")
    assert said in body["error"]["message"]
    assert len(source.service.list_runs(top=1000)) == before  # nothing recorded that cannot start


def test_table_storage_unreachable_is_a_clear_503_and_health_names_it(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    down = stack.connection_string(demo_stack.SOURCE_ACCOUNT).replace(
        f":{stack.azurite.table_port}/", f":{port}/"
    )
    source = side(stack, "source", TransferState=down)
    status, health = source.http(function_app.health, "GET", "health")
    assert status == 503
    [state] = [c for c in health["checks"] if c["name"] == "state"]
    assert not state["ok"]
    assert "table storage" in state["detail"]
    assert "could not be reached" in state["detail"]
    since = next_index(stack)
    status, body = export(source, ["faults/app12:v1"])
    assert (status, body["error"]["code"]) == (503, "Unavailable")
    assert "table storage" in body["error"]["message"]
    assert puts_of(stack, since, "") == []  # nothing deployed without its record
    with caplog.at_level(logging.WARNING, logger="transfer.functions"):
        elapsed, _ = timed(lambda: source.timer(function_app.reconcile))  # it raised, after 52 s
    outages = [r for r in caplog.records if getattr(r, "event", None) == "timer.outage"]
    assert {"reconcile", "cleanup"} <= {r.getMessage().split(":")[0] for r in outages}
    assert all("table storage" in r.getMessage() for r in outages)
    assert elapsed < 30, elapsed


def test_blob_storage_unreachable_is_a_clear_error_and_health_names_it(stack: Stack) -> None:
    port = _closed_port()
    down = stack.connection_string(demo_stack.TARGET_ACCOUNT).replace(
        f":{stack.azurite.blob_port}/", f":{port}/"
    )
    target = side(stack, "target", TransferStorage=down)
    with target.active(), ThreadPoolExecutor(2) as pool:  # each waits out Storage's retries (~7 s)
        checked = pool.submit(lambda: call_function(function_app.health, "GET", "health"))
        event = pool.submit(lambda: target.blob_event(function_app, stack, "some-blob"))
        elapsed, (status, health) = timed(checked.result)
        with pytest.raises(Unavailable, match="blob storage"):  # the host retries the event
            event.result()
    assert elapsed < 15, elapsed  # Storage's retries fit an invocation (the SDK's default waits 84 s)
    assert status == 503
    failing = {c["name"]: c["detail"] for c in health["checks"] if not c["ok"]}
    assert list(failing) == ["watchedContainer"], health
    assert "blob storage" in failing["watchedContainer"]
    assert "could not be reached" in failing["watchedContainer"]


# ---- a blob deleted before its handler runs ----------------------------------------------------------


def _upload(stack: Stack, name: str, **metadata: str) -> Any:
    from azure.storage.blob import BlobClient

    client = BlobClient.from_connection_string(
        stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER, name
    )
    client.upload_blob(b"transfer blob " + name.encode(), metadata=metadata or None, overwrite=True)
    return client


def test_a_blob_deleted_between_its_event_and_its_handler_is_left_alone(stack: Stack) -> None:
    target = side(stack, "target", later(days=61))
    client = _upload(stack, "deleted-before-handler", **{CATEGORY_KEY: CATEGORY_VALUE})
    client.delete_blob()
    since = next_index(stack)
    target.blob_event(function_app, stack, "deleted-before-handler")  # no error: nothing to retry
    result = target.service.handle_blob("deleted-before-handler")
    assert (result.outcome, result.reason) == (Outcome.NOTHING, "the blob no longer exists")
    assert target.ports.state.blob_records("deleted-before-handler") == []
    assert [r for r in arm_requests(stack, since) if r["method"] != "GET"] == []


def test_a_blob_deleted_between_the_decision_and_its_refresh_is_left_alone(stack: Stack) -> None:
    target = side(stack, "target", later(days=61), faults=True, TRANSFER_STALE_BLOB_ACTION="refresh")
    client = _upload(stack, "deleted-before-refresh", **{CATEGORY_KEY: CATEGORY_VALUE})

    def deleted_first(merge: Any, name: str, updates: Any, etag: str) -> Any:
        client.delete_blob()
        return merge(name, updates, etag)

    target.ports.blobs.around("merge_metadata", deleted_first)
    since = next_index(stack)
    result = target.service.handle_blob("deleted-before-refresh")
    assert result.outcome is Outcome.NOTHING
    assert "changed meanwhile" in result.reason
    assert [r for r in arm_requests(stack, since) if r["method"] != "GET"] == []
    assert [r for r in target.service.list_runs(top=100) if r.blob == "deleted-before-refresh"] == []


# ---- bad input through the real adapters ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/./b", "/x", "a\\b", "x" * 1025])
def test_a_bad_blob_name_is_a_400_before_storage_or_arm_hears_of_it(stack: Stack, name: str) -> None:
    target = side(stack, "target")
    since = next_index(stack)
    status, body = target.http(function_app.start_import, "POST", "imports", {"blob": name})
    assert (status, body["error"]["target"]) == (400, "blob"), body
    status, body = target.http(function_app.get_blob, "GET", "blobs/x", route_params={"name": name})
    assert (status, body["error"]["target"]) == (400, "name"), body
    assert arm_requests(stack, since) == []


# ---- the 800-deployment quota (last: it fills the source group for a moment) ------------------------


def _foreign_deployments(stack: Stack, method: str, names: list[str]) -> None:
    """PUT (an empty template each) or DELETE deployments the app did not make, in the source group: 8
    threads, each on one kept-alive HTTPS connection."""
    emulator = stack.emulator
    context = ssl.create_default_context(cafile=emulator.ca_file)
    endpoint = urlsplit(emulator.arm_endpoint)
    body = json.dumps(
        {
            "properties": {
                "mode": "Incremental",
                "template": {
                    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                    "contentVersion": "1.0.0.0",
                    "resources": [],
                },
            }
        }
    ).encode()
    base = (
        f"/subscriptions/{emulator.subscription_id}/resourcegroups/{demo_stack.SOURCE_GROUP}"
        "/providers/Microsoft.Resources/deployments"
    )
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}

    def send(share: list[str]) -> set[int]:
        connection = http.client.HTTPSConnection(endpoint.hostname or "", endpoint.port, context=context)
        statuses = set()
        try:
            for name in share:
                payload = body if method == "PUT" else None
                connection.request(method, f"{base}/{name}?api-version=2024-03-01", payload, headers)
                response = connection.getresponse()
                response.read()
                statuses.add(response.status)
        finally:
            connection.close()
        return statuses

    with ThreadPoolExecutor(8) as pool:
        statuses = set().union(*pool.map(send, [names[i::8] for i in range(8)]))
    assert statuses <= {200, 201, 202, 204}, statuses


def test_800_deployments_defer_new_runs_health_says_why_and_cleanup_makes_room(stack: Stack) -> None:
    admin = stack.emulator.admin
    admin.configure(deployment_grooming=False)  # as when ARM's own cleanup is off or not fast enough
    source = side(stack, "source")
    status, body = export(source, ["faults/app5:v1", "faults/app6:v1"])
    [finished_run] = reconciled(source, [body["runs"][0]["id"]])
    assert finished_run.status is RunStatus.SUCCEEDED
    foreign = [f"other-{i:04d}" for i in range(800 - source.ports.arm.count_deployments())]
    _foreign_deployments(stack, "PUT", foreign)
    try:
        assert source.ports.arm.count_deployments() == 800
        since = next_index(stack)
        status, body = export(source, ["faults/app7:v1"])
        assert status == 202, body
        [run] = body["runs"]
        assert run["status"] == "Accepted"  # retryable: waiting for room, not failed
        assert "DeploymentQuotaExceeded" in (run.get("warning") or ""), run
        assert puts_of(stack, since, run["deploymentName"]) == [409]
        status, health = source.http(function_app.health, "GET", "health")
        assert status == 503
        [check] = [c for c in health["checks"] if c["name"] == "deployments"]
        assert not check["ok"]
        assert "800 deployments" in check["detail"]
        assert "cleanup" in check["detail"]
        assert source.service.get_run(run["id"]).status is RunStatus.ACCEPTED

        cleaner = side(stack, "source", later(hours=73)).service  # past the retention
        report = cleaner.cleanup()  # the deletes go out; ARM deletes a deployment asynchronously (202)
        assert report.counts["deleted"] + report.counts["deleting"] >= 1, report.as_dict()
        report = cleaner.cleanup()  # the next pass sees them gone
        assert report.counts["deleted"] >= 1, report.as_dict()
        assert source.ports.arm.count_deployments() < 800
        [done] = reconciled(side(stack, "source", SOON), [run["id"]])
        assert done.status is RunStatus.SUCCEEDED
        assert puts_of(stack, since, run["deploymentName"])[-1] == 201
    finally:
        _foreign_deployments(stack, "DELETE", foreign)
