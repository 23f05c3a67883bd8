"""Contract-test fixtures: each port once as its in-memory fake and once as the real adapter on Azurite.

The same test functions run against both (`params=["fake", "azurite"]`), so the fakes the service tests
use behave as the adapters do. The Azurite variants carry the `azurite` mark; every test gets its own
tables / containers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes import Clock, FakeBlobStore, FakeStateStore
from transfer.domain.ports import BlobStore, StateStore
from transfer.domain.settings import StorageConnection


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.azurite)])
def state_store(request: pytest.FixtureRequest) -> StateStore:
    if request.param == "fake":
        return FakeStateStore()
    from transfer.adapters.state import TableStateStore

    azurite = request.getfixturevalue("azurite")
    connection = StorageConnection("TransferState", connection_string=azurite.connection_string)
    return TableStateStore(connection, prefix=unique("t"))


@dataclass
class BlobWorld:
    """A BlobStore plus a way to create blobs in its container the way an uploader would."""

    store: BlobStore
    setup: Any  # put(name, content, metadata) -> None
    kind: str


class _FakeSetup:
    def __init__(self, fake: FakeBlobStore) -> None:
        self.fake = fake

    def put(self, name: str, content: bytes, metadata: Mapping[str, str] | None = None) -> None:
        self.fake.clock.advance(seconds=1)  # type: ignore[attr-defined]
        self.fake.put(name, content=content, metadata=metadata)


class _AzuriteSetup:
    def __init__(self, container: Any) -> None:
        self.container = container

    def put(self, name: str, content: bytes, metadata: Mapping[str, str] | None = None) -> None:
        self.container.upload_blob(name, content, metadata=dict(metadata or {}), overwrite=True)


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.azurite)])
def blob_world(request: pytest.FixtureRequest) -> Iterator[BlobWorld]:
    if request.param == "fake":
        fake = FakeBlobStore(Clock(), page_size=2)
        yield BlobWorld(fake, _FakeSetup(fake), "fake")
        return
    from azure.storage.blob import BlobServiceClient

    from transfer.adapters.blobs import AzureBlobStore

    azurite = request.getfixturevalue("azurite")
    name = unique("c")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(name)
    connection = StorageConnection("TransferStorage", connection_string=azurite.connection_string)
    try:
        yield BlobWorld(AzureBlobStore(connection, name, page_size=2), _AzuriteSetup(container), "azurite")
    finally:
        container.delete_container()


@pytest.fixture
def app_credential(emulator_reset: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's own credential (transfer.adapters.credentials) against the emulator's managed identity
    endpoint, as a function app on Azure has it: no other credential in the environment."""
    from transfer.adapters.credentials import make_credential
    from transfer.domain.settings import load_settings

    emulator = emulator_reset
    for variable in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", emulator.identity_header)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)
    settings = load_settings(
        {
            "AZURE_SUBSCRIPTION_ID": emulator.subscription_id,
            "TRANSFER_RESOURCE_GROUP": emulator.resource_group,
            "TRANSFER_REGISTRY": "registry1",
            "TRANSFER_EXPORT_PIPELINE": "exportpipeline",
            "TRANSFER_ARM_ENDPOINT": emulator.arm_endpoint,
            "TransferState": "UseDevelopmentStorage=true",
        }
    )
    return make_credential(settings)
