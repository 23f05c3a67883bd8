"""The timers and the blob trigger, called directly as the host would, against the service on fakes.

The same bodies can take a real-adapter service later: they only use the `World` helpers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest

import function_app
from tests.conftest import ENV, World, make_world
from tests.faults import instead
from transfer import bootstrap
from transfer.domain.errors import Refused, TransferError, Unavailable
from transfer.domain.runs import RunStatus

SECRETS = ("sig=", "AccountKey=", "Bearer ", "fUnCtIoNkEy")


@dataclass
class FakeBlobClient:
    """What the SDK-type binding hands the function: a client; its URL may carry a SAS."""

    blob_name: str
    container_name: str = "transfer"

    @property
    def url(self) -> str:
        return f"https://acct.blob.core.windows.net/{self.container_name}/{self.blob_name}?sv=2025&sig=SECRET"


def timer(past_due: bool = False) -> func.TimerRequest:
    return func.timer.TimerRequest(past_due=past_due)


def logged(caplog: pytest.LogCaptureFixture, **fields: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if all(getattr(r, k, None) == v for k, v in fields.items())]


# ---- scheduled_export ---------------------------------------------------------------------------


def test_scheduled_export_starts_the_configured_artifacts_once_per_tick(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        function_app.scheduled_export(timer(past_due=True))
        function_app.scheduled_export(timer())  # a repeated tick in the same minute: same runs
    (run,) = world.stored_runs()
    assert (run.trigger.value, run.artifacts) == (
        "schedule",
        ("samples/hello-world:v1", "samples/nginx:1.27"),
    )
    assert len(world.deployments_started()) == 1
    assert logged(caplog, trigger="schedule", run_id=run.id)
    assert any("past due" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_scheduled_export_without_artifacts_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    env = {k: v for k, v in ENV.items() if k != "TRANSFER_EXPORT_ARTIFACTS"}
    quiet = make_world(env)
    with bootstrap.use_service(quiet.service), caplog.at_level(logging.INFO):
        function_app.scheduled_export(timer())
    assert quiet.stored_runs() == []
    assert quiet.arm.history == []
    assert any("TRANSFER_EXPORT_ARTIFACTS" in r.getMessage() for r in caplog.records)


# ---- reconcile ----------------------------------------------------------------------------------


def test_reconcile_records_arm_state_then_cleans_up_after_the_retention(world: World) -> None:
    function_app.scheduled_export(timer())
    (run,) = world.stored_runs()
    world.finish(run)
    function_app.reconcile(timer())
    (done,) = world.stored_runs()
    assert (done.status, done.progress, done.cleaned_up) == (RunStatus.SUCCEEDED, "100", False)

    world.clock.advance(hours=world.settings.retention_hours + 1)
    function_app.reconcile(timer(past_due=True))
    (cleaned,) = world.stored_runs()
    assert cleaned.cleaned_up
    assert ("delete_deployment", run.deployment_name) in world.arm.history
    assert ("delete_resource", run.pipeline_run_id) in world.arm.history


# ---- sweep_stale_blobs --------------------------------------------------------------------------


def test_sweep_refreshes_aged_blobs_and_leaves_fresh_ones(world: World) -> None:
    world.add_blob("fresh", age_days=3)
    aged = world.add_blob("aged", age_days=59.5)
    function_app.sweep_stale_blobs(timer())
    refreshed = world.blobs.get_properties("aged")
    assert refreshed is not None
    assert refreshed.etag != aged.etag
    assert refreshed.metadata["category"] == "acr-transfer-blob"  # existing metadata kept
    assert world.blobs.get_properties("fresh") == world.blobs.blobs["fresh"]
    assert world.stored_runs() == []


def test_sweep_on_an_export_only_instance_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    env = {k: v for k, v in ENV.items() if k not in ("TRANSFER_IMPORT_PIPELINE", "TransferStorage")}
    source = make_world(env)
    with bootstrap.use_service(source.service), caplog.at_level(logging.INFO):
        function_app.sweep_stale_blobs(timer())
    assert any("sweep skipped" in r.getMessage() for r in caplog.records)


# ---- on_target_blob -----------------------------------------------------------------------------


def test_an_eligible_blob_is_left_to_the_source_trigger(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.add_blob("export-1", age_days=1)
    with caplog.at_level(logging.INFO):
        function_app.on_target_blob(FakeBlobClient("export-1"))
    assert world.stored_runs() == []
    assert world.arm_writes() == []
    assert logged(caplog, blob="export-1", trigger="blob", outcome="leave")


def test_a_blob_without_content_md5_gets_a_manual_import_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.add_blob("copied-without-md5", md5=False)
    with caplog.at_level(logging.INFO):
        function_app.on_target_blob(FakeBlobClient("copied-without-md5"))
        function_app.on_target_blob(FakeBlobClient("copied-without-md5"))  # Event Grid delivers again
    (run,) = world.stored_runs()
    assert (run.kind.value, run.trigger.value, run.blob) == ("import", "blob", "copied-without-md5")
    assert world.deployments_started() == [run.deployment_name]
    assert logged(caplog, blob="copied-without-md5", trigger="blob", run_id=run.id)


def test_a_blob_gone_before_the_event_is_handled_does_nothing(world: World) -> None:
    function_app.on_target_blob(FakeBlobClient("vanished"))
    assert world.stored_runs() == []
    assert world.arm_writes() == []


def test_a_blob_name_the_service_refuses_is_logged_not_retried(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        function_app.on_target_blob(FakeBlobClient("bad\x01name"))
    assert logged(caplog, blob="bad\x01name", trigger="blob")
    assert world.stored_runs() == []


# ---- secrets never reach the logs ---------------------------------------------------------------


def test_no_secret_in_the_logs_of_a_blob_flow_and_an_error_flow(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.add_blob("no-md5", md5=False)
    headers = {"Authorization": "Bearer eyJ0eXAi.secret", "x-functions-key": "fUnCtIoNkEy"}
    with caplog.at_level(logging.DEBUG):
        function_app.on_target_blob(FakeBlobClient("no-md5"))
        function_app.reconcile(timer())
        ok = func.HttpRequest(
            "GET",
            "https://app/api/runs?code=fUnCtIoNkEy",
            headers=headers,
            params={"code": "fUnCtIoNkEy"},
            body=b"",
        )
        assert function_app.list_runs(ok).status_code == 200

        def broken(**kwargs: Any) -> Any:
            raise RuntimeError("state store exploded")

        world.state.around("list_runs", instead(broken))
        failed = function_app.list_runs(ok)
        assert failed.status_code == 500
        assert not any(s in failed.get_body().decode() for s in SECRETS)
    assert caplog.records
    text = (
        "\n".join(f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records)
        + caplog.text
    )
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    "error",
    [
        Refused("blob storage: reading properties of b: failed (409) (BlobImmutableDueToPolicy)"),
        TransferError("ARM: starting deployment d: failed (400) (InvalidTemplate)"),
    ],
)
def test_the_blob_trigger_never_raises_for_what_a_retry_cannot_change(
    world: World, caplog: pytest.LogCaptureFixture, error: TransferError
) -> None:
    world.blobs.fail("get_properties", error)
    with caplog.at_level(logging.ERROR):
        function_app.on_target_blob(FakeBlobClient("b"))  # raised: the host retried it into poison
    assert logged(caplog, blob="b", event="blob.needs_attention")


def test_the_blob_trigger_raises_a_transient_error_for_the_host_to_retry(world: World) -> None:
    world.blobs.fail("get_properties", Unavailable("blob storage: the service could not be reached"))
    with pytest.raises(Unavailable):
        function_app.on_target_blob(FakeBlobClient("b"))
