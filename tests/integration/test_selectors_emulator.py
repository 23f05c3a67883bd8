"""Selectors, incremental exports, manifests and verification with the real adapters: the registry data
plane of the emulator (ContainerRegistryClient through the managed identity), the ledger and the manifests
in Azurite, both app sides as in the demo."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from demo import scenario
from demo import stack as demo_stack
from demo.stack import Stack
from tests.integration.polling import wait_for
from tests.integration.test_service_emulator import blob_client, finished, side
from transfer.domain.errors import TransferError
from transfer.domain.runs import Run, RunStatus, Trigger

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    started = demo_stack.start(run_seconds=0.2)
    try:
        with demo_stack.identity(started):
            scenario.prepare(started, side(started, "source"), side(started, "target"))
            started.emulator.admin.configure(source_trigger_run_shape="response-uri")
            yield started
    finally:
        started.stop()


def team(stack: Stack) -> str:
    """A fresh repository prefix with three tags in two repositories, in the source registry."""
    prefix = "sel" + uuid.uuid4().hex[:6]
    stack.emulator.admin.add_repositories(
        demo_stack.SOURCE_REGISTRY,
        {f"{prefix}/api": {"v1.0": None, "v1.1": None, "v2.0": None}, f"{prefix}/web": {"v1.0": None}},
    )
    return prefix


def manifest(stack: Stack, account: str, container: str, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(blob_client(stack, account, container, name).download_blob().readall())  # type: ignore[no-any-return]


def source_tags(stack: Stack, repository: str) -> dict[str, str]:
    return dict(stack.emulator.admin.registry_content(demo_stack.SOURCE_REGISTRY)[repository]["tags"])


def imported_by_source_trigger(stack: Stack, export: Run) -> Run:
    target = side(stack, "target")
    assert export.blob is not None

    def recorded() -> Run | None:
        target.service.reconcile()
        runs = [r for r in target.service.list_runs(kind="import", top=200) if r.blob == export.blob]
        return runs[0] if runs and runs[0].status.terminal else None

    found = wait_for(recorded, f"the source trigger's import of {export.blob}", timeout=30)
    assert found is not None
    return found


def test_a_selector_export_is_incremental_through_the_registrys_data_plane(stack: Stack) -> None:
    prefix = team(stack)
    source = side(stack, "source")
    selector = [f"{prefix}/*:v1.*"]
    [run] = source.service.start_export(selector, Trigger.HTTP, "inc", incremental=True).runs
    wanted = (f"{prefix}/api:v1.0", f"{prefix}/api:v1.1", f"{prefix}/web:v1.0")
    assert run.artifacts == wanted
    api, web = source_tags(stack, f"{prefix}/api"), source_tags(stack, f"{prefix}/web")
    assert dict(run.digests) == {wanted[0]: api["v1.0"], wanted[1]: api["v1.1"], wanted[2]: web["v1.0"]}
    assert source.service.start_export(selector, Trigger.HTTP, incremental=True).runs  # not succeeded yet

    run = finished(source, run, copied=True)
    assert run.status is RunStatus.SUCCEEDED
    assert run.manifest == f"{run.blob}.manifest.json"
    written = manifest(stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, run.manifest)
    assert [(a["artifact"], a["digest"]) for a in written["artifacts"]] == list(run.digests)
    assert written["sourceRegistry"] == "sourceregistry.azurecr.io"
    props = blob_client(stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, run.manifest)
    assert "category" not in (props.get_blob_properties().metadata or {})

    nothing = side(stack, "source").service.start_export(selector, Trigger.HTTP, incremental=True)
    assert (nothing.runs, nothing.skipped) == ([], wanted)
    moved = stack.emulator.admin.retag(demo_stack.SOURCE_REGISTRY, f"{prefix}/api", "v1.1")
    [changed] = source.service.start_export(selector, Trigger.HTTP, incremental=True).runs
    assert changed.artifacts == (wanted[1],)
    assert changed.digests == ((wanted[1], moved["digest"]),)


def test_the_copied_manifest_verifies_the_source_triggers_import(stack: Stack) -> None:
    prefix = team(stack)
    source = side(stack, "source")
    [run] = source.service.start_export([f"{prefix}/api:v1.*"], Trigger.HTTP, "verify").runs
    run = finished(source, run, copied=True)
    assert run.manifest is not None
    copied = manifest(stack, demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER, run.manifest)
    assert copied["runId"] == run.id
    imported = imported_by_source_trigger(stack, run)
    assert (imported.trigger, imported.status, imported.verification) == (
        Trigger.SOURCE,
        RunStatus.SUCCEEDED,
        "passed",
    )
    assert imported.manifest == run.manifest
    assert "2 tags at the manifest's digest" in (imported.verification_detail or "")


def test_an_import_that_skips_an_artifact_fails_its_verification(stack: Stack) -> None:
    prefix = team(stack)
    admin = stack.emulator.admin
    admin.fail_imports_of(demo_stack.TARGET_REGISTRY, [f"{prefix}/web:v1.0"], "refused for the test")
    try:
        source = side(stack, "source")
        [run] = source.service.start_export([f"{prefix}/*:v1.0"], Trigger.HTTP, "skip").runs
        imported = imported_by_source_trigger(stack, finished(source, run, copied=True))
    finally:
        admin.clear_import_failures(demo_stack.TARGET_REGISTRY)
    assert (imported.status, imported.verification) == (RunStatus.SUCCEEDED, "failed")
    assert imported.skipped_artifacts == (f"{prefix}/web:v1.0",)
    assert "verification failed" in (imported.warning or "")


@pytest.mark.parametrize("status", [401, 403])
def test_without_acrpull_selectors_are_refused_and_verification_is_unavailable(
    stack: Stack, status: int
) -> None:
    prefix = team(stack)
    admin = stack.emulator.admin
    [run] = side(stack, "source").service.start_export([f"{prefix}/api:v1.0"], Trigger.HTTP, "noacr").runs
    run = finished(side(stack, "source"), run, copied=True)
    admin.set_pull_access(demo_stack.SOURCE_REGISTRY, False, status=status)
    admin.set_pull_access(demo_stack.TARGET_REGISTRY, False, status=status)
    try:
        with pytest.raises(TransferError) as caught:
            side(stack, "source").service.start_export([f"{prefix}/*:*"], Trigger.HTTP)
        assert caught.value.code == "AccessDenied"
        assert "AcrPull" in caught.value.message
        # exact references still export without the data plane, incremental or not
        assert side(stack, "source").service.start_export(
            [f"{prefix}/api:v1.1"], Trigger.HTTP, incremental=True
        )
        imported = imported_by_source_trigger(stack, run)
    finally:
        admin.set_pull_access(demo_stack.SOURCE_REGISTRY, True)
        admin.set_pull_access(demo_stack.TARGET_REGISTRY, True)
    assert imported.verification == "unavailable"
    assert "AcrPull" in (imported.verification_detail or "")
