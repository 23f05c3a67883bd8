"""The service's use cases end to end with the real adapters: Azurite (a source and a target account) and
the ARM/ACR emulator, both app sides as in the demo. The functions are called where a timer or the blob
trigger is the entry point.

Two clocks are at work, as in production: the emulator's (its source trigger's 60-day window) and the
app's (passed to the service). Tests that need a blob the source trigger finds too old either shrink the
emulator's window to seconds or give the app a clock 61 days ahead; neither needs a storage server that
writes old Last-Modified times.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from demo import scenario
from demo import stack as demo_stack
from demo.stack import DemoClock, Stack
from tests.integration.polling import wait_for
from transfer.domain.runs import Run, RunStatus, Trigger
from transfer.domain.settings import load_settings
from transfer.domain.staleness import CATEGORY_KEY, REFRESH_KEY, Outcome

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

SHAPES = ("spec", "response-uri", "request-name")  # how a source-trigger run may name its blob
REPOS = {
    f"it/{name}": {"v1": None}
    for name in ("refresh", "odd", "sched", "swept", *(f"fresh-{shape}" for shape in SHAPES))
}
SECONDS = 1 / 86400  # the emulator's window is in days


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    started = demo_stack.start(run_seconds=0.2)
    try:
        with demo_stack.identity(started):
            source, target = side(started, "source"), side(started, "target")
            scenario.prepare(started, source, target)
            started.emulator.admin.add_repositories(demo_stack.SOURCE_REGISTRY, REPOS)
            yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def default_window(stack: Stack) -> Iterator[None]:
    yield
    stack.emulator.admin.configure(source_trigger_window_days=60)


def side(stack: Stack, name: str, days_ahead: float = 0, **env: str) -> scenario.Side:
    base = stack.source_env if name == "source" else stack.target_env
    settings = load_settings({k: v for k, v in {**base, **env}.items() if v})
    return scenario.Side(name, settings, DemoClock(timedelta(days=days_ahead)))


def finished(s: scenario.Side, run: Run, copied: bool = False) -> Run:
    latest: list[Run] = []

    def done() -> bool:
        s.service.reconcile()
        latest[:] = [s.service.get_run(run.id)]
        copy = latest[0].copy_status
        return latest[0].status.terminal and (not copied or (copy is not None and copy.value != "pending"))

    wait_for(done, f"run {run.id} to finish", timeout=30)
    return latest[0]


def in_target_registry(stack: Stack, repository: str) -> bool:
    return repository in stack.emulator.admin.registry_content(demo_stack.TARGET_REGISTRY)


def blob_client(stack: Stack, account: str, container: str, name: str):  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobClient

    return BlobClient.from_connection_string(stack.connection_string(account), container, name)


@pytest.mark.parametrize("shape", SHAPES)
def test_export_copy_then_the_source_trigger_imports_and_reconcile_records_it(
    stack: Stack, shape: str
) -> None:
    """Whatever a source-trigger run says of its blob (the spec promises only its time), reconcile records
    it, and 59.5 days later the sweep neither refreshes nor manually imports the blob it may have taken."""
    stack.emulator.admin.configure(source_trigger_run_shape=shape)
    source, target = side(stack, "source"), side(stack, "target")
    [run] = source.service.start_export([f"it/fresh-{shape}:v1"], Trigger.HTTP, f"fresh-{shape}").runs
    run = finished(source, run, copied=True)
    assert run.status is RunStatus.SUCCEEDED
    assert run.blob is not None
    assert run.copy_status is not None
    assert run.copy_status.value == "success", run.copy_error
    assert target.service.handle_blob(run.blob).outcome is Outcome.LEAVE
    wait_for(lambda: in_target_registry(stack, f"it/fresh-{shape}"), "the source trigger imported it")
    known = {r.id for r in target.service.list_runs(kind="import", top=1000)}

    def adopted() -> list[Run]:  # this test's source-trigger run, once reconcile recorded it finished
        return [
            r
            for r in _reconciled(target)
            if r.trigger is Trigger.SOURCE and r.status.terminal and (r.id not in known or r.blob == run.blob)
        ]

    [recorded] = wait_for(adopted, "the source trigger's run recorded")[-1:]
    assert (recorded.status, recorded.owned) == (RunStatus.SUCCEEDED, False)
    assert recorded.blob == (None if shape == "spec" else run.blob)  # tied only where ARM names the blob

    later = side(stack, "target", days_ahead=59.5)
    client = blob_client(stack, demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER, run.blob)
    before = client.get_blob_properties()
    later.timer(__import__("function_app").sweep_stale_blobs)
    assert client.get_blob_properties().etag == before.etag  # not refreshed: that would import it again
    assert later.service.diagnose_blob(run.blob).decision.outcome is Outcome.NOTHING
    manual = [r for r in later.service.list_runs(kind="import", top=1000) if r.blob == run.blob and r.owned]
    assert manual == []  # and no manual import


def _reconciled(s: scenario.Side) -> list[Run]:
    s.service.reconcile()
    return s.service.list_runs(kind="import")


def test_a_stale_blob_is_refreshed_and_the_source_trigger_then_imports_it(stack: Stack) -> None:
    admin = stack.emulator.admin
    admin.configure(source_trigger_window_days=0)  # the source trigger takes nothing for now
    source = side(stack, "source")
    [run] = source.service.start_export(["it/refresh:v1"], Trigger.HTTP, "refresh").runs
    run = finished(source, run, copied=True)
    assert run.blob is not None
    # Last-Modified has whole seconds: a 4 s window leaves the refreshed blob 3 s or more to be scanned in
    time.sleep(5)
    admin.configure(source_trigger_window_days=4 * SECONDS)  # the blob (5 s old) is now too old for it
    admin.scan_source_trigger()
    assert not in_target_registry(stack, "it/refresh")

    target = side(stack, "target", days_ahead=61, TRANSFER_STALE_BLOB_ACTION="refresh")
    client = blob_client(stack, demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER, run.blob)
    before = client.get_blob_properties()
    target.blob_event(__import__("function_app"), stack, run.blob)
    after = client.get_blob_properties()
    assert after.last_modified > before.last_modified
    assert after.content_settings.content_md5 == before.content_settings.content_md5
    assert after.metadata[CATEGORY_KEY] == before.metadata[CATEGORY_KEY]
    assert REFRESH_KEY in after.metadata
    admin.scan_source_trigger()
    wait_for(
        lambda: in_target_registry(stack, "it/refresh"), "the source trigger imported the refreshed blob"
    )
    # the event of the metadata write, seen on the real clock: fresh now, so nothing more than a record
    assert side(stack, "target").service.handle_blob(run.blob).outcome is Outcome.LEAVE
    refreshed_at = after.last_modified
    wait_for(
        lambda: any(
            r.trigger is Trigger.SOURCE and r.created_at >= refreshed_at
            for r in _reconciled(side(stack, "target"))
        ),
        "reconcile (on the real clock) to record the source trigger's run",
    )
    # once its import is recorded, even a clock 61 days on (a later pass: a worker reads the source-trigger
    # runs at most once a minute) neither refreshes nor imports it again
    target = side(stack, "target", days_ahead=61, TRANSFER_STALE_BLOB_ACTION="refresh")
    assert target.service.handle_blob(run.blob).outcome is Outcome.NOTHING
    assert [
        r for r in target.service.list_runs(kind="import", top=1000) if r.blob == run.blob and r.owned
    ] == []


def test_a_blob_whose_copy_lost_its_metadata_gets_a_manual_import(stack: Stack) -> None:
    source = side(stack, "source", TRANSFER_COPY_TARGET_URL="", TRANSFER_COPY_TARGET_SAS_SECRET_URI="")
    [run] = source.service.start_export(["it/odd:v1"], Trigger.HTTP, "odd").runs
    run = finished(source, run)
    assert run.blob is not None
    content = blob_client(
        stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, run.blob
    ).download_blob()
    stripped = blob_client(
        stack, demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER, f"stripped-{run.blob}"
    )
    stripped.upload_blob(content.readall())  # a copy that lost the metadata (Put Blob sets an MD5)
    stack.emulator.admin.scan_source_trigger()
    assert not in_target_registry(stack, "it/odd")

    target = side(stack, "target")
    result = target.service.handle_blob(stripped.blob_name)
    assert result.outcome is Outcome.IMPORT
    assert "lacks metadata category" in result.reason
    assert result.run is not None
    imported = finished(target, result.run)
    assert imported.status is RunStatus.SUCCEEDED
    assert in_target_registry(stack, "it/odd")
    assert target.service.handle_blob(stripped.blob_name).outcome is Outcome.NOTHING


def test_the_timers_export_on_schedule_and_sweep_aged_blobs(stack: Stack) -> None:
    import function_app

    source = side(
        stack,
        "source",
        TRANSFER_EXPORT_ARTIFACTS="it/sched:v1",
        TRANSFER_COPY_TARGET_URL="",
        TRANSFER_COPY_TARGET_SAS_SECRET_URI="",
    )
    tick = {"Last": "2026-11-26T02:00:00+00:00", "Next": "2026-11-27T02:00:00+00:00"}
    source.timer(function_app.scheduled_export, tick)
    source.timer(function_app.scheduled_export, tick)  # the same occurrence delivered twice
    [run] = [r for r in source.service.list_runs(top=1000) if r.trigger is Trigger.SCHEDULE]
    run = finished(source, run)
    assert run.status is RunStatus.SUCCEEDED
    assert run.blob is not None

    content = blob_client(
        stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, run.blob
    ).download_blob()
    landed = blob_client(stack, demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER, f"swept-{run.blob}")
    landed.upload_blob(content.readall(), metadata={CATEGORY_KEY: "acr-transfer-blob"})
    stack.emulator.admin.configure(source_trigger_window_days=0)  # as if it had arrived long ago
    target = side(stack, "target", days_ahead=61)
    target.timer(function_app.sweep_stale_blobs)
    imports = target.service.list_runs(kind="import", top=1000)
    [swept] = [r for r in imports if r.trigger is Trigger.SWEEP and r.blob == landed.blob_name]
    assert finished(target, swept).status is RunStatus.SUCCEEDED
    assert in_target_registry(stack, "it/sched")
