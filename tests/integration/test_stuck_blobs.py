"""Every blob ends: a refresh Storage refuses for good falls back to a manual import, through the real blob
adapter on Azurite; the refusals Azurite does not give (immutability, MetadataTooLarge) come from a fault
proxy in front of it answering as Azure does (tests/fault_proxy.py), a lease is Azurite's own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from emulator.azurite import Azurite
from tests.conftest import CATEGORY, World, sas_copy_world
from tests.fault_proxy import FaultProxy, Request, storage_error
from tests.integration.conftest import unique
from transfer.adapters.blobs import AzureBlobStore
from transfer.domain.records import BlobAction
from transfer.domain.settings import StorageConnection
from transfer.domain.staleness import REFRESH_REFUSED, Outcome

pytestmark = pytest.mark.azurite


@pytest.fixture
def proxied(azurite: Azurite) -> Iterator[tuple[World, FaultProxy, object]]:
    """A world whose watched container is a real Azurite container reached through a fault proxy, its
    clock 61 days after the blobs' real Last-Modified."""
    from azure.storage.blob import BlobServiceClient

    with FaultProxy(azurite.blob_port) as proxy:
        world = sas_copy_world()
        name = unique("c")
        container = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
        through = dataclasses.replace(azurite, blob_port=proxy.port)
        store = AzureBlobStore(StorageConnection("TransferStorage", through.connection_string), name)
        world.ports = dataclasses.replace(world.ports, blobs=store)
        world.service = world.new_worker()
        ahead = datetime.now(UTC) + timedelta(days=61) - world.clock()
        world.clock.advance(seconds=ahead.total_seconds())
        yield world, proxy, container


def metadata_writes(request: Request) -> bool:
    return request.method == "PUT" and "comp=metadata" in request.query


def upload(container: object, name: str, metadata: dict[str, str] | None = None) -> None:
    container.upload_blob(name, b"transfer blob", metadata=metadata or dict(CATEGORY))  # type: ignore[attr-defined]


def assert_imported_once_because(world: World, name: str, refusal: str) -> None:
    result = world.service.handle_blob(name)
    assert result.outcome is Outcome.IMPORT, result.reason
    assert result.run is not None
    assert refusal in result.reason
    [refresh] = [r for r in world.state.blob_records(name) if r.action is BlobAction.REFRESH]
    assert refresh.reason.startswith(REFRESH_REFUSED)
    assert refusal in refresh.reason
    diagnosis = world.service.diagnose_blob(name)
    assert any(refusal in record.reason for record in diagnosis.records)
    assert [run.id for run in diagnosis.runs] == [result.run.id]
    assert world.service.handle_blob(name).outcome is Outcome.NOTHING  # the next event: nothing more
    assert len(world.arm.deployment_calls) == 1


def test_a_leased_blob_412_lease_id_missing_is_imported_manually_not_skipped_as_a_race(
    proxied: tuple[World, FaultProxy, object],
) -> None:
    world, _, container = proxied
    upload(container, "leased")
    container.get_blob_client("leased").acquire_lease(lease_duration=-1)  # type: ignore[attr-defined]
    assert_imported_once_because(world, "leased", "LeaseIdMissing")


def test_an_immutable_blob_409_is_imported_manually(proxied: tuple[World, FaultProxy, object]) -> None:
    world, proxy, container = proxied
    upload(container, "immutable")
    proxy.rule = lambda r: storage_error(409, "BlobImmutableDueToPolicy") if metadata_writes(r) else None
    assert_imported_once_because(world, "immutable", "BlobImmutableDueToPolicy")


def test_azures_400_metadata_too_large_is_imported_manually(
    proxied: tuple[World, FaultProxy, object],
) -> None:
    world, proxy, container = proxied
    upload(container, "toolarge")
    proxy.rule = lambda r: storage_error(400, "MetadataTooLarge") if metadata_writes(r) else None
    assert_imported_once_because(world, "toolarge", "MetadataTooLarge")


def test_metadata_over_8_kib_is_never_sent_the_blob_is_imported(
    proxied: tuple[World, FaultProxy, object],
) -> None:
    world, proxy, container = proxied
    upload(container, "heavy", {**CATEGORY, "notes": "x" * 8150})  # Azurite takes it, Azure would not
    sent: list[Request] = []
    proxy.rule = lambda r: sent.append(r) if metadata_writes(r) else None  # type: ignore[func-returns-value]
    result = world.service.handle_blob("heavy")
    assert result.outcome is Outcome.IMPORT
    assert "MetadataTooLarge" in result.reason
    assert sent == []
