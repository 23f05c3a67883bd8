"""BlobCopier contract: FakeBlobCopier and AzureBlobCopier (server-side copy between Azurite containers).

The source URL carries a SAS whose signature must never show up in logs, reprs or errors."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.fakes import Clock, FakeBlobCopier, FakeBlobStore
from tests.integration.conftest import unique
from tests.integration.polling import wait_for
from transfer.domain.errors import Throttled, TransferError, Unavailable
from transfer.domain.ports import BlobCopier, BlobStore
from transfer.domain.records import BlobInfo
from transfer.domain.settings import StorageConnection

CATEGORY = {"category": "acr-transfer-blob"}


@dataclass
class CopyWorld:
    copier: BlobCopier
    target: BlobStore
    put_source: Any  # (name, content, metadata) -> None
    source_url: Any  # (name) -> URL with a SAS
    signatures: list[str]

    def target_blob(self, name: str) -> BlobInfo:
        info = self.target.get_properties(name)
        assert info is not None
        return info


@pytest.fixture(params=["fake", pytest.param("azurite", marks=pytest.mark.azurite)])
def copy_world(request: pytest.FixtureRequest) -> Iterator[CopyWorld]:
    if request.param == "fake":
        source, target = FakeBlobStore(Clock()), FakeBlobStore(Clock())
        secret = "fakeSignature0123456789abcdef%3D"

        def fake_put(name: str, content: bytes, metadata: dict[str, str]) -> None:
            source.put(name, content=content, metadata=metadata)

        def fake_url(name: str) -> str:
            return f"https://src.blob.core.windows.net/exports/{quote(name)}?sv=2025-05-05&sp=r&sig={secret}"

        yield CopyWorld(FakeBlobCopier(source, target), target, fake_put, fake_url, [secret])
        return

    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    from emulator.azurite import ACCOUNT, ACCOUNT_KEY
    from transfer.adapters.blobs import AzureBlobCopier, AzureBlobStore

    azurite = request.getfixturevalue("azurite")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    source = service.create_container(unique("src"))
    target = service.create_container(unique("dst"))
    expiry = datetime.now(UTC) + timedelta(hours=1)
    read_sas = generate_container_sas(
        ACCOUNT,
        source.container_name,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True),
        expiry=expiry,
    )
    write_sas = generate_container_sas(
        ACCOUNT,
        target.container_name,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, write=True, create=True),
        expiry=expiry,
    )
    signatures = [dict(p.split("=", 1) for p in sas.split("&"))["sig"] for sas in (read_sas, write_sas)]

    def azure_put(name: str, content: bytes, metadata: dict[str, str]) -> None:
        source.upload_blob(name, content, metadata=metadata, overwrite=True)

    def azure_url(name: str) -> str:
        return f"{source.url}/{quote(name)}?{read_sas}"

    copier = AzureBlobCopier(target.url, sas_token="?" + write_sas)
    store = AzureBlobStore(
        StorageConnection("TransferStorage", connection_string=azurite.connection_string),
        target.container_name,
    )
    try:
        yield CopyWorld(copier, store, azure_put, azure_url, signatures)
    finally:
        source.delete_container()
        target.delete_container()


def wait_copied(world: CopyWorld, name: str) -> str:
    state = wait_for(
        lambda: (s := world.copier.copy_state(name)) is not None and s.status != "pending" and s,
        f"the copy of {name} to finish",
    )
    return state.status


@pytest.mark.parametrize("name", ["export-20261126.tar", "dir/ünï #1.tar"])
def test_copy_keeps_content_md5_and_metadata(
    copy_world: CopyWorld, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    content = b"transfer blob " * 1000
    copy_world.put_source(name, content, {**CATEGORY, "origin": "export"})
    assert copy_world.copier.copy_state(name) is None
    state = copy_world.copier.start_copy(copy_world.source_url(name), name)
    assert state.status in ("pending", "success")
    assert wait_copied(copy_world, name) == "success"
    copied = copy_world.target_blob(name)
    assert copied.content_md5 == hashlib.md5(content).digest()  # noqa: S324 - Content-MD5
    assert copied.metadata == {**CATEGORY, "origin": "export"}
    assert copied.size == len(content)
    for signature in copy_world.signatures:
        assert signature not in caplog.text
        assert signature not in repr(copy_world.copier)


def test_a_larger_blob_is_copied_server_side(copy_world: CopyWorld) -> None:
    content = bytes(range(256)) * (8 * 4096)  # 8 MiB
    copy_world.put_source("big.tar", content, CATEGORY)
    copy_world.copier.start_copy(copy_world.source_url("big.tar"), "big.tar")
    assert wait_copied(copy_world, "big.tar") == "success"
    assert copy_world.target_blob("big.tar").content_md5 == hashlib.md5(content).digest()  # noqa: S324


def test_a_failed_copy_never_shows_the_sas(copy_world: CopyWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransferError) as caught:
        copy_world.copier.start_copy(copy_world.source_url("absent.tar"), "absent.tar")
    assert not isinstance(caught.value, (Throttled, Unavailable))
    error = caught.value
    for text in (str(error), repr(error), error.message, caplog.text):
        for signature in copy_world.signatures:
            assert signature not in text
    assert error.__cause__ is None
