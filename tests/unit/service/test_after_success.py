"""Manifests and verification in the service, on the fakes: the manifest written when an export succeeds
(and copied with its blob), never taken for a transfer blob on the target side, and every import that
succeeds compared with it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from tests.conftest import COPY_SAS as SAS
from tests.conftest import COPY_VAULT as VAULT
from tests.conftest import ENV, World, make_world, sas_copy_world
from transfer.domain import manifests
from transfer.domain.errors import AccessDenied, InvalidInput, Unavailable
from transfer.domain.runs import Run, RunStatus, Trigger
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE, Outcome

CATEGORY = {CATEGORY_KEY: CATEGORY_VALUE}
SOURCE_URI = "https://exportacct.blob.core.windows.net/transfer"


def seeded(world: World) -> World:
    for tag in ("v1.0", "v1.1"):
        world.registry.retag("team/api", tag)
    world.registry.retag("samples/hello", "v1")
    return world


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return lambda: seeded(make_world())


def export_and_succeed(world: World, artifacts: list[str]) -> Run:
    [run] = world.service.start_export(artifacts, Trigger.HTTP, "nightly").runs
    world.finish(run)
    world.service.reconcile()
    return world.stored_run(run.id)


def manifest_in(store: object, name: str) -> dict:  # type: ignore[type-arg]
    data = store.read_blob(name, manifests.MAX_BYTES)  # type: ignore[attr-defined]
    assert data is not None, f"no {name}"
    return json.loads(data)  # type: ignore[no-any-return]


# ---- the export side -----------------------------------------------------------------------------------


def test_a_succeeded_export_writes_its_manifest_beside_the_blob(world: World) -> None:
    run = export_and_succeed(world, ["team/api:v1.*", "samples/hello:v1", f"base@sha256:{'c' * 64}"])
    assert run.status is RunStatus.SUCCEEDED
    assert run.blob is not None
    assert run.manifest == f"{run.blob}.manifest.json"
    body = manifest_in(world.source, run.manifest)
    assert body["format"] == manifests.FORMAT
    assert (body["runId"], body["blob"], body["sourceRegistry"]) == (
        run.id,
        run.blob,
        "myregistry.azurecr.io",
    )
    assert body["pipelineRunId"] == run.pipeline_run_id
    assert body["exportedAt"].startswith("2026-11-26T12:00")
    content = world.registry.content
    assert body["artifacts"] == [
        {
            "artifact": "team/api:v1.0",
            "repository": "team/api",
            "tag": "v1.0",
            "digest": content["team/api"]["v1.0"],
        },
        {
            "artifact": "team/api:v1.1",
            "repository": "team/api",
            "tag": "v1.1",
            "digest": content["team/api"]["v1.1"],
        },
        {  # an exact reference: its digest read from the data plane
            "artifact": "samples/hello:v1",
            "repository": "samples/hello",
            "tag": "v1",
            "digest": content["samples/hello"]["v1"],
        },
        {
            "artifact": f"base@sha256:{'c' * 64}",
            "repository": "base",
            "tag": None,
            "digest": f"sha256:{'c' * 64}",
        },
    ]
    assert world.writer.auth[run.manifest] == "identity"  # a ManagedIdentity export pipeline
    assert world.source.blobs[run.manifest].metadata == {}  # no category: the source trigger ignores it
    # only the digests read at the start go into the ledger (exact references' too: referrers are looked for)
    assert sorted(world.state.ledger) == [
        ("base", f"@sha256:{'c' * 64}"),
        ("samples/hello", "v1"),
        ("team/api", "v1.0"),
        ("team/api", "v1.1"),
    ]


def test_the_manifest_is_written_once_the_run_succeeded_and_never_for_a_failed_one(world: World) -> None:
    [run] = world.service.start_export(["team/api:*"], Trigger.HTTP).runs
    world.service.reconcile()
    assert world.writer.calls["write_blob"] == 0
    world.finish(run, "Failed", error="no")
    world.service.reconcile()
    assert world.writer.calls["write_blob"] == 0
    assert world.stored_run(run.id).manifest is None


def test_with_a_sastoken_pipeline_the_manifest_and_the_blob_are_copied_manifest_first() -> None:
    world = seeded(sas_copy_world())
    [run] = world.service.start_export(["team/api:v1.0"], Trigger.HTTP).runs
    assert run.blob is not None
    world.source.put(run.blob, metadata=CATEGORY, content=b"exported")
    world.finish(run)
    world.service.reconcile()
    stored = world.stored_run(run.id)
    assert stored.manifest == f"{run.blob}.manifest.json"
    assert world.writer.auth[stored.manifest] == "sas"  # the SAS of the pipeline's Key Vault secret
    starts = [name for method, name in world.copier.history if method == "start_copy"]
    assert starts == [stored.manifest, run.blob]
    assert world.copier.source_urls[stored.manifest].endswith(f"/exports/{stored.manifest}?{SAS}")
    assert world.secrets.calls["read_sas"] >= 1
    assert f"{VAULT}/secrets/exportsas" in [s for _, s in world.secrets.history]
    world.copier.finish(stored.manifest)
    assert world.copier.target is not None
    assert manifest_in(world.copier.target, stored.manifest)["runId"] == run.id


def test_a_transient_failure_defers_the_success_and_the_next_pass_writes_the_manifest(world: World) -> None:
    [run] = world.service.start_export(["team/api:v1.*"], Trigger.HTTP).runs
    world.finish(run)
    world.writer.fail("write_blob", Unavailable("storage is down"))
    report = world.service.reconcile()
    assert report.counts["deferred"] == 1
    assert world.stored_run(run.id).status is not RunStatus.SUCCEEDED
    assert world.state.ledger == {}
    world.service.reconcile()
    stored = world.stored_run(run.id)
    assert stored.status is RunStatus.SUCCEEDED
    assert stored.manifest is not None
    assert world.state.ledger


def test_a_manifest_that_cannot_be_written_is_the_succeeded_runs_warning(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    [run] = world.service.start_export(["team/api:v1.*"], Trigger.HTTP).runs
    world.finish(run)
    world.writer.fail("write_blob", AccessDenied("blob storage: writing x: not authorized (403)"))
    with caplog.at_level(logging.WARNING):
        world.service.reconcile()
    stored = world.stored_run(run.id)
    assert stored.status is RunStatus.SUCCEEDED
    assert stored.manifest is None
    assert stored.warning is not None
    assert "manifest not written" in stored.warning
    assert world.state.ledger  # the export did succeed


# ---- the target side: manifests are never transfer blobs ----------------------------------------------


def test_the_blob_trigger_and_the_sweep_leave_manifests_alone(world: World) -> None:
    world.put_blob("nightly-1")
    world.blobs.put("nightly-1.manifest.json", content=b"{}")  # no category, like the app writes it
    world.state.calls.clear()
    result = world.service.handle_blob("nightly-1.manifest.json")
    assert (result.outcome, result.run) == (Outcome.NOTHING, None)
    assert "manifest" in result.reason
    assert sum(world.state.calls.values()) == 0  # not even a claim
    report = world.service.sweep()
    assert report.counts["manifest"] == 1
    assert [r.blob for r in world.stored_runs()] == []  # the fresh blob is left to the source trigger
    assert world.service.diagnose_blob("nightly-1.manifest.json").decision.outcome is Outcome.NOTHING
    with pytest.raises(InvalidInput) as caught:
        world.service.start_import("nightly-1.manifest.json", Trigger.HTTP)
    assert caught.value.target == "blob"


# ---- verification ------------------------------------------------------------------------------------


D1, D2 = ("sha256:" + c * 64 for c in "12")


def with_manifest(world: World, blob: str, artifacts: dict[str, str | None]) -> None:
    manifest = manifests.build(
        run_id="20261126110000000e000001",
        pipeline_run_id=None,
        source_registry="source.azurecr.io",
        exported_at=world.clock(),
        blob=blob,
        artifacts=list(artifacts),
        digests={a: d for a, d in artifacts.items() if d},
    )
    world.put_blob(blob, metadata=CATEGORY)
    world.blobs.put(manifests.manifest_name(blob), content=manifest.encode())


def imported(world: World, blob: str, artifacts: tuple[str, ...]) -> Run:
    [run] = world.service.start_import(blob, Trigger.HTTP).runs
    world.arm.finish_run(run.id, "Succeeded", imported_artifacts=artifacts, deployment=run.deployment_name)
    world.service.reconcile()
    return world.stored_run(run.id)


def test_an_import_of_everything_at_the_manifests_digests_passes(world: World) -> None:
    with_manifest(world, "b1", {"team/api:v1.0": D1, "team/web:v1.0": D2})
    world.registry.retag("team/api", "v1.0", D1)  # the target registry, as the import left it
    world.registry.retag("team/web", "v1.0", D2)
    run = imported(world, "b1", ("team/api:v1.0", "team/web:v1.0"))
    assert (run.status, run.verification) == (RunStatus.SUCCEEDED, "passed")
    assert run.manifest == "b1.manifest.json"
    assert run.skipped_artifacts == ()
    assert run.warning is None
    assert "2 tags at the manifest's digest" in (run.verification_detail or "")


def test_an_import_that_skipped_an_artifact_fails_verification_naming_it(world: World) -> None:
    with_manifest(world, "b2", {"team/api:v1.0": D1, "team/web:v1.0": D2})
    world.registry.retag("team/api", "v1.0", D1)
    run = imported(world, "b2", ("team/api:v1.0",))
    assert (run.status, run.verification) == (RunStatus.SUCCEEDED, "failed")
    assert run.skipped_artifacts == ("team/web:v1.0",)
    assert "not imported: team/web:v1.0" in (run.verification_detail or "")
    assert run.warning is not None
    assert "verification failed" in run.warning
    checks = {c.name: c for c in world.service.health()}
    assert checks["verification"].ok  # a warning, not a failure
    assert checks["verification"].detail.startswith("warning: 1 of the last 1")
    assert run.id in checks["verification"].detail


def test_a_tag_at_another_digest_fails_verification(world: World) -> None:
    with_manifest(world, "b3", {"team/api:v1.0": D1})
    world.registry.retag("team/api", "v1.0", D2)
    run = imported(world, "b3", ("team/api:v1.0",))
    assert run.verification == "failed"
    assert f"team/api:v1.0 is {D2}" in (run.verification_detail or "")


def test_without_a_manifest_or_target_registry_access_verification_is_unavailable(world: World) -> None:
    world.put_blob("carried-by-hand", metadata=CATEGORY)
    run = imported(world, "carried-by-hand", ("team/api:v1.0",))
    assert (run.status, run.verification, run.manifest) == (RunStatus.SUCCEEDED, "unavailable", None)
    assert "no manifest carried-by-hand.manifest.json" in (run.verification_detail or "")
    with_manifest(world, "b4", {"team/api:v1.0": D1})
    world.registry.deny(401)
    run = imported(world, "b4", ("team/api:v1.0",))
    assert run.verification == "unavailable"
    assert run.manifest == "b4.manifest.json"
    assert "AcrPull" in (run.verification_detail or "")
    world.blobs.put("b5", metadata=CATEGORY, content=b"x")
    world.blobs.put("b5.manifest.json", content=b"not json")
    assert imported(world, "b5", ()).verification == "unavailable"


def test_a_source_trigger_run_is_verified_against_the_manifest_of_its_blob(world: World) -> None:
    with_manifest(world, "landed", {"team/api:v1.0": D1, "team/web:v1.0": D2})
    world.registry.retag("team/api", "v1.0", D1)
    pipeline = world.settings.pipeline_id("import")
    for name, blob in (("srcrun00001", "landed"), ("srcrun00002", None), ("srcrun00009", None)):
        request = {"pipelineResourceId": pipeline}
        if blob:
            request["source"] = {"type": "AzureStorageBlob", "name": blob}  # type: ignore[assignment]
        world.arm.put_pipeline_run(
            name,
            source_trigger=True,
            request=request,
            status="Succeeded",
            provisioning_state="Succeeded",
            imported_artifacts=("team/api:v1.0",) if name != "srcrun00009" else ("other/x:v1",),
        )
    world.service.reconcile()
    named = world.stored_run("srcrun00001")
    assert (named.trigger, named.verification, named.skipped_artifacts) == (
        Trigger.SOURCE,
        "failed",
        ("team/web:v1.0",),
    )
    # a run that names no blob is tied to the manifest that holds what it imported
    unnamed = world.stored_run("srcrun00002")
    assert unnamed.blob is None
    assert (unnamed.verification, unnamed.manifest) == ("failed", "landed.manifest.json")
    assert unnamed.skipped_artifacts == ("team/web:v1.0",)
    unknown = world.stored_run("srcrun00009")  # no manifest holds what it imported
    assert unknown.verification == "unavailable"
    assert "names no blob" in (unknown.verification_detail or "")


def test_a_running_source_trigger_run_is_verified_when_it_succeeds(world: World) -> None:
    with_manifest(world, "landed", {"team/api:v1.0": D1})
    world.registry.retag("team/api", "v1.0", D1)
    pipeline = world.settings.pipeline_id("import")
    world.arm.put_pipeline_run(
        "srcrun00003",
        source_trigger=True,
        request={"pipelineResourceId": pipeline, "source": {"type": "AzureStorageBlob", "name": "landed"}},
    )
    world.service.reconcile()
    assert world.stored_run("srcrun00003").verification == "pending"  # the contract's value until it succeeds
    world.arm.finish_run("srcrun00003", "Succeeded", imported_artifacts=("team/api:v1.0",))
    world.service.reconcile()
    assert world.stored_run("srcrun00003").verification == "passed"


def test_health_has_no_verification_check_on_the_source_side() -> None:
    world = make_world(
        {k: v for k, v in ENV.items() if k not in ("TRANSFER_IMPORT_PIPELINE", "TransferStorage")}
    )
    assert "verification" not in {c.name for c in world.service.health()}
