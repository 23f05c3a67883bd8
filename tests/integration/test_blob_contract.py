"""BlobStore contract: the same tests against FakeBlobStore and AzureBlobStore on Azurite."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import BlobWorld, unique
from transfer.domain.errors import PreconditionFailed, TransferError

CATEGORY = {"category": "acr-transfer-blob"}


def test_properties_without_content(blob_world: BlobWorld) -> None:
    blob_world.setup.put("export-1", b"transfer tar bytes", {**CATEGORY, "origin": "source"})
    info = blob_world.store.get_properties("export-1")
    assert info is not None
    assert info.name == "export-1"
    assert info.etag
    assert info.last_modified.tzinfo is not None
    assert info.content_md5 == hashlib.md5(b"transfer tar bytes").digest()  # noqa: S324 - Content-MD5
    assert info.metadata == {**CATEGORY, "origin": "source"}
    assert info.size == len(b"transfer tar bytes")
    assert blob_world.store.get_properties("absent") is None


def test_merge_metadata_keeps_every_key_and_moves_etag_and_last_modified(blob_world: BlobWorld) -> None:
    blob_world.setup.put("dir/export-2.tar", b"x", {**CATEGORY, "origin": "source"})
    before = blob_world.store.get_properties("dir/export-2.tar")
    assert before is not None
    if blob_world.kind == "azurite":
        time.sleep(1.1)  # Last-Modified has one-second resolution
    else:
        blob_world.store.clock.advance(seconds=5)  # type: ignore[attr-defined]
    after = blob_world.store.merge_metadata(
        "dir/export-2.tar", {"acrtransferrefreshedat": "2026-11-26T12:00:00Z"}, before.etag
    )
    expected = {**CATEGORY, "origin": "source", "acrtransferrefreshedat": "2026-11-26T12:00:00Z"}
    assert after.metadata == expected
    assert after.etag != before.etag
    assert after.last_modified > before.last_modified
    assert after.content_md5 == before.content_md5
    again = blob_world.store.get_properties("dir/export-2.tar")
    assert again is not None
    assert again.metadata == expected
    assert again.etag == after.etag
    assert again.last_modified == after.last_modified


def test_merge_metadata_replaces_a_key_case_insensitively(blob_world: BlobWorld) -> None:
    blob_world.setup.put("export-3", b"x", {**CATEGORY, "Stamp": "old"})
    before = blob_world.store.get_properties("export-3")
    assert before is not None
    after = blob_world.store.merge_metadata("export-3", {"stamp": "new"}, before.etag)
    lowered = {k.lower(): v for k, v in after.metadata.items()}
    assert lowered == {"category": "acr-transfer-blob", "stamp": "new"}


def test_merge_metadata_fails_on_a_stale_etag(blob_world: BlobWorld) -> None:
    blob_world.setup.put("export-4", b"x", CATEGORY)
    before = blob_world.store.get_properties("export-4")
    assert before is not None
    blob_world.setup.put("export-4", b"rewritten", CATEGORY)  # someone overwrote it meanwhile
    with pytest.raises(PreconditionFailed):
        blob_world.store.merge_metadata("export-4", {"stamp": "1"}, before.etag)
    current = blob_world.store.get_properties("export-4")
    assert current is not None
    assert "stamp" not in current.metadata
    first = blob_world.store.merge_metadata("export-4", {"stamp": "1"}, current.etag)
    with pytest.raises(PreconditionFailed):
        blob_world.store.merge_metadata("export-4", {"stamp": "2"}, current.etag)  # our own earlier write
    assert first.metadata["stamp"] == "1"


def test_merge_metadata_of_a_deleted_blob_is_a_precondition_failure(blob_world: BlobWorld) -> None:
    with pytest.raises(PreconditionFailed):
        blob_world.store.merge_metadata("never-there", {"stamp": "1"}, '"0x8D000000000000"')


def test_list_blobs_pages_with_metadata(blob_world: BlobWorld) -> None:
    names = [f"export-{n:02d}" for n in range(7)] + ["dir/nested#1", "ünïcödé"]
    for name in names:
        blob_world.setup.put(name, name.encode(), {**CATEGORY, "n": str(len(name))})
    listed = list(blob_world.store.list_blobs())  # page size 2 in these tests: five pages
    assert sorted(b.name for b in listed) == sorted(names)
    for info in listed:
        assert info.metadata == {**CATEGORY, "n": str(len(info.name))}
        assert info.content_md5 == hashlib.md5(info.name.encode()).digest()  # noqa: S324
        assert info.etag
        assert info.last_modified.tzinfo is not None


def test_list_blobs_of_an_empty_container(blob_world: BlobWorld) -> None:
    assert list(blob_world.store.list_blobs()) == []


# ---- manifests: read from the watched container, written into a container by URL ----------------------


def test_read_blob_returns_a_small_blobs_content(blob_world: BlobWorld) -> None:
    blob_world.setup.put("dir/x.manifest.json", b'{"format": "m"}')
    assert blob_world.store.read_blob("dir/x.manifest.json", 1024) == b'{"format": "m"}'
    assert blob_world.store.read_blob("absent.manifest.json", 1024) is None


def test_read_blob_refuses_a_larger_blob(blob_world: BlobWorld) -> None:
    blob_world.setup.put("big.manifest.json", b"x" * 2048)
    with pytest.raises(TransferError, match="larger than 1024 bytes"):
        blob_world.store.read_blob("big.manifest.json", 1024)


@pytest.mark.parametrize("kind", ["fake", pytest.param("azurite", marks=pytest.mark.azurite)])
@pytest.mark.parametrize("auth", ["sas", "identity"])
def test_a_blob_writer_creates_and_overwrites_in_the_container_it_is_given(
    request: pytest.FixtureRequest, kind: str, auth: str
) -> None:
    """The fake and AzureBlobWriter: a SAS when given one, else the credential; the blob is overwritten
    and gets no metadata (so the source trigger never takes a manifest for a transfer blob)."""
    if kind == "fake":
        from tests.fakes import FakeBlobStore, FakeBlobWriter

        store = FakeBlobStore()
        url = "https://acct.blob.core.windows.net/exports"
        writer: Any = FakeBlobWriter({url: store})
        sas = "sv=1&sig=x" if auth == "sas" else None

        def read(name: str) -> tuple[bytes | None, dict[str, str]]:
            info = store.get_properties(name)
            return store.read_blob(name, 10_000), dict(info.metadata) if info else {}
    else:
        from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

        from emulator.azurite import ACCOUNT, ACCOUNT_KEY
        from transfer.adapters.blobs import AzureBlobWriter

        azurite = request.getfixturevalue("azurite")
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        container = service.create_container(unique("w"))
        url = container.url
        sas = generate_container_sas(
            ACCOUNT,
            container.container_name,
            account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(read=True, write=True, create=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        if auth == "identity":  # Azurite takes no Entra token: an account key stands in for the identity
            writer = AzureBlobWriter({"account_name": ACCOUNT, "account_key": ACCOUNT_KEY})  # type: ignore[arg-type]
            sas = None
        else:
            writer = AzureBlobWriter(None)

        def read(name: str) -> tuple[bytes | None, dict[str, str]]:
            blob = container.get_blob_client(name)
            return blob.download_blob().readall(), dict(blob.get_blob_properties().metadata or {})

    writer.write_blob(
        url, "nightly-1.manifest.json", b"first", content_type="application/json", sas_token=sas
    )
    writer.write_blob(
        url, "nightly-1.manifest.json", b"second", content_type="application/json", sas_token=sas
    )
    assert read("nightly-1.manifest.json") == (b"second", {})
