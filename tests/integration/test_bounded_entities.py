"""Every entity the app writes stays within Table Storage's limits whatever the input, written through the
real Table adapter on Azurite: the largest input each route and trigger accepts (docs/reliability.md)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emulator.azurite import Azurite
from tests.conftest import CATEGORY, World, make_world
from tests.integration.conftest import unique
from transfer.adapters.entities import (
    TABLE_ENTITY_BYTES,
    TABLE_PROPERTIES,
    TABLE_PROPERTY_BYTES,
    entity_size,
    run_entity,
)
from transfer.adapters.state import TableStateStore
from transfer.domain import manifests
from transfer.domain.runs import RunKind, RunStatus, Trigger
from transfer.domain.settings import StorageConnection
from transfer.entrypoints.presentation import run_json

pytestmark = pytest.mark.azurite

MANY = 10_000


def table_world(azurite: Azurite) -> World:
    """The service over the fakes, but its state in Azurite's Table Storage through the real adapter."""
    world = make_world()
    connection = StorageConnection("TransferState", connection_string=azurite.connection_string)
    state = TableStateStore(connection, prefix=unique("b"), clock=world.clock)
    world.ports = replace(world.ports, state=state)
    world.service = world.new_worker()
    world.state = state  # type: ignore[assignment]  # the world's reads go to the real store now
    return world


def within_limits(entity: dict[str, object]) -> None:
    assert len(entity) + 3 <= TABLE_PROPERTIES
    assert entity_size(entity) <= TABLE_ENTITY_BYTES
    for value in entity.values():
        if isinstance(value, str):
            assert 2 * len(value) <= TABLE_PROPERTY_BYTES


def test_an_import_whose_manifest_lists_10000_artifacts_reconciles_to_succeeded_with_its_verification(
    azurite: Azurite,
) -> None:
    world = table_world(azurite)
    artifacts = [f"team/service-{n:05d}/with-a-long-repository-name:v1.{n}" for n in range(MANY)]
    manifest = manifests.build(
        run_id="20261126110000000e000001",
        pipeline_run_id=None,
        source_registry="source.azurecr.io",
        exported_at=world.clock(),
        blob="huge",
        artifacts=artifacts,
        digests={},
    )
    world.put_blob("huge", metadata=CATEGORY)
    world.blobs.put(manifests.manifest_name("huge"), content=manifest.encode())
    [run] = world.service.start_import("huge", Trigger.HTTP).runs
    imported = tuple(artifacts[: MANY // 2])  # ContinueOnErrors: half of them imported
    world.arm.finish_run(run.id, "Succeeded", imported_artifacts=imported, deployment=run.deployment_name)

    report = world.service.reconcile()  # PROPERTY_VALUE_TOO_LARGE on every pass before: Running for ever
    assert report.errors == []
    stored = world.service.get_run(run.id)
    assert (stored.status, stored.verification) == (RunStatus.SUCCEEDED, "failed")
    assert f"not imported: {artifacts[MANY // 2]}" in (stored.verification_detail or "")
    left_out = dict(stored.left_out)
    assert len(stored.imported_artifacts) + left_out["importedArtifacts"] == MANY // 2
    assert len(stored.skipped_artifacts) + left_out["skippedArtifacts"] == MANY // 2
    assert stored.imported_artifacts == imported[: len(stored.imported_artifacts)]  # the first ones, in order
    body = run_json(stored)
    assert body["leftOut"] == left_out
    within_limits(run_entity(stored))
    world.clock.advance(minutes=5)
    assert world.service.reconcile().errors == []  # read back and written again: cut no further
    assert world.service.get_run(run.id).left_out == stored.left_out


def test_the_largest_export_request_is_stored_whole(azurite: Azurite) -> None:
    """500 artifacts of the longest references (255-character repository, 128-character tag) make ten runs
    of 50, each stored with every artifact and digest: an export's artifacts are never cut."""
    world = make_world({**_env(), "TRANSFER_EXPORT_MAX_ARTIFACTS": "500"})
    connection = StorageConnection("TransferState", connection_string=azurite.connection_string)
    world.ports = replace(
        world.ports, state=TableStateStore(connection, prefix=unique("e"), clock=world.clock)
    )
    service = world.new_worker()
    repository = "/".join(["r" * 50] * 5)[:250] + "x" * 5
    artifacts = [f"{repository}:{n:04d}{'t' * 124}" for n in range(500)]
    accepted = service.start_export(artifacts, Trigger.HTTP, target_name="big")
    assert len(accepted.runs) == 10
    for run in accepted.runs:
        stored = service.get_run(run.id)
        assert len(stored.artifacts) == 50
        assert stored.left_out == ()
        within_limits(run_entity(stored))


def test_a_source_trigger_run_of_10000_artifacts_is_recorded_cut_with_its_count(azurite: Azurite) -> None:
    world = table_world(azurite)
    artifacts = tuple(f"team/app-{n:05d}:v1" for n in range(MANY))
    world.arm.put_pipeline_run(
        "sourcetriggerrun1",
        source_trigger=True,
        status="Succeeded",
        provisioning_state="Succeeded",
        request={
            "pipelineResourceId": world.service.settings.pipeline_id("import"),
            "artifacts": list(artifacts),
            "source": {"type": "AzureStorageBlob", "name": "sourced"},
        },
        imported_artifacts=artifacts,
    )
    assert world.service.reconcile().errors == []
    [run] = [r for r in world.service.list_runs(kind=RunKind.IMPORT) if r.trigger is Trigger.SOURCE]
    left_out = dict(run.left_out)
    assert len(run.imported_artifacts) + left_out["importedArtifacts"] == MANY
    within_limits(run_entity(run))


def _env() -> dict[str, str]:
    from tests.conftest import ENV

    return dict(ENV)
