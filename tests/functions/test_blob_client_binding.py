"""The blob trigger's `BlobClient` built the way the Functions host builds it, then handed to on_target_blob.

The host does not send the blob: for an SDK-type binding (SupportsDeferredBinding) it sends model binding
data, `{version, source: "AzureStorageBlobs", content_type: "application/json", content: {"Connection",
"ContainerName", "BlobName"}}`, and the worker asks the converter registered for `blobTrigger` by
azurefunctions-extensions-bindings-blob to make the client from the app settings named by `Connection`:
a connection string, or identity-based settings (`TransferStorage__blobServiceUri`, with
`__credential=managedidentity` and `__clientId` for a user-assigned identity). Here that converter builds
the client against Azurite: over HTTP with the account key, or over HTTPS with OAuth, where the managed
identity token comes from the emulator's identity endpoint (Azurite checks its issuer, audience and times).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azurefunctions.extensions.base import Datum
from azurefunctions.extensions.base.meta import _ConverterMeta
from azurefunctions.extensions.bindings.blob import BlobClient

import function_app
from emulator import azurite as azurite_process
from emulator.testing import RunningEmulator
from tests.conftest import World

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

CONTAINER = "transfer"
CONNECTION = "TransferStorage"
_SETTINGS = (
    CONNECTION,
    f"{CONNECTION}__blobServiceUri",
    f"{CONNECTION}__credential",
    f"{CONNECTION}__clientId",
)


@dataclass(frozen=True)
class ModelBindingData:
    """The fields of the host's ModelBindingData message (the worker hands the protobuf on as it is)."""

    content: str
    version: str = "1.0"
    source: str = "AzureStorageBlobs"
    content_type: str = "application/json"


def from_the_host(blob_name: str) -> Any:
    """What the worker does with a blobTrigger invocation of an SDK-type parameter: the converter registered
    for the binding decodes the model binding data into the annotated type."""
    converter = _ConverterMeta.get("blobTrigger")
    assert converter is not None, (
        "azurefunctions-extensions-bindings-blob registers the blobTrigger converter"
    )
    content = json.dumps({"Connection": CONNECTION, "ContainerName": CONTAINER, "BlobName": blob_name})
    datum = Datum(ModelBindingData(content), "model_binding_data")
    metadata = {"BlobTrigger": Datum(f"{CONTAINER}/{blob_name}", "string")}
    return converter.decode(datum, trigger_metadata=metadata, pytype=BlobClient)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*_SETTINGS, "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def oauth_azurite(emulator: RunningEmulator) -> Iterator[azurite_process.Azurite]:
    """Azurite over HTTPS (the emulator's certificate) taking bearer tokens (`--oauth basic`)."""
    certificates = emulator.emulator.certificates
    args = ["--cert", str(certificates.cert_file), "--key", str(certificates.key_file), "--oauth", "basic"]
    server = azurite_process.start(extra_args=args)
    try:
        yield server
    finally:
        azurite_process.stop(server)


def upload(service: BlobServiceClient, name: str) -> None:
    container = service.get_container_client(CONTAINER)
    if not container.exists():
        container.create_container()
    container.upload_blob(name, b"transfer blob", overwrite=True)


def handle(world: World, client: Any, caplog: pytest.LogCaptureFixture) -> None:
    """on_target_blob with the client; the service (on fakes) sees a blob without Content-MD5, which gets
    a manual import run."""
    world.add_blob(client.blob_name, md5=False)
    with caplog.at_level(logging.INFO):
        function_app.on_target_blob(client)
    (run,) = world.stored_runs()
    assert (run.kind.value, run.trigger.value, run.blob) == ("import", "blob", client.blob_name)
    assert any(getattr(r, "blob", None) == client.blob_name for r in caplog.records)


def test_a_connection_string_setting(
    world: World,
    settings: pytest.MonkeyPatch,
    azurite: azurite_process.Azurite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.setenv(CONNECTION, azurite.connection_string)
    upload(BlobServiceClient.from_connection_string(azurite.connection_string), "keyed.tar")
    client = from_the_host("keyed.tar")
    assert type(client).__module__.startswith("azure.storage.blob")
    assert (client.container_name, client.blob_name) == (CONTAINER, "keyed.tar")
    assert client.get_blob_properties().size == len(b"transfer blob")  # a working client of Azurite
    handle(world, client, caplog)


def test_identity_based_settings_with_the_system_assigned_identity(
    world: World,
    settings: pytest.MonkeyPatch,
    emulator: RunningEmulator,
    oauth_azurite: azurite_process.Azurite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    account_url = f"https://127.0.0.1:{oauth_azurite.blob_port}/{azurite_process.ACCOUNT}"
    settings.setenv(f"{CONNECTION}__blobServiceUri", account_url)
    with emulator.managed_identity_env():
        upload(
            BlobServiceClient(
                account_url, credential=ManagedIdentityCredential(), connection_verify=emulator.ca_file
            ),
            "identity.tar",
        )
        client = from_the_host("identity.tar")
        assert client.url == f"{account_url}/{CONTAINER}/identity.tar"
        assert client.get_blob_properties().size == len(b"transfer blob")  # a bearer token Azurite accepts
        handle(world, client, caplog)


def test_identity_based_settings_with_a_user_assigned_identity(
    world: World,
    settings: pytest.MonkeyPatch,
    emulator: RunningEmulator,
    oauth_azurite: azurite_process.Azurite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    identity = emulator.admin.create_identity("functionidentity")
    account_url = f"https://127.0.0.1:{oauth_azurite.blob_port}/{azurite_process.ACCOUNT}"
    settings.setenv(f"{CONNECTION}__blobServiceUri", account_url)
    settings.setenv(f"{CONNECTION}__credential", "managedidentity")
    settings.setenv(f"{CONNECTION}__clientId", identity["properties"]["clientId"])
    with emulator.managed_identity_env():
        credential = ManagedIdentityCredential(client_id=identity["properties"]["clientId"])
        upload(
            BlobServiceClient(account_url, credential=credential, connection_verify=emulator.ca_file),
            "uai.tar",
        )
        client = from_the_host("uai.tar")
        assert isinstance(client.credential, ManagedIdentityCredential)
        token = client.credential.get_token("https://storage.azure.com/.default").token
        assert (
            jwt.decode(token, options={"verify_signature": False})["oid"]
            == identity["properties"]["principalId"]
        )
        assert client.get_blob_properties().size == len(b"transfer blob")
        handle(world, client, caplog)
