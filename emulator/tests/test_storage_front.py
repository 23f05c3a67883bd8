"""The storage front: Azure Storage with Entra ID in front of Azurite, through the real BlobServiceClient with
a token credential: data roles checked as Azure checks them, user delegation keys and SASes (signed with
the app's identity, usable on Azurite itself), and a ManagedIdentity export pipeline whose container is
reached by the app without any SAS from Key Vault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, BlobServiceClient, generate_blob_sas

from emulator import azurite
from emulator.testing import RunningEmulator
from emulator.tests.helpers import StaticCredential, blob_service, state, unique
from emulator.tests.test_transfer import export_pipeline, export_run, output

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def service(emulator: RunningEmulator) -> BlobServiceClient:
    """The app's client: its own identity (StaticCredential's opaque token stands for it)."""
    return BlobServiceClient(
        emulator.storage_url(azurite.ACCOUNT), StaticCredential(), connection_verify=emulator.ca_file
    )


@pytest.fixture
def container(emulator_reset: RunningEmulator) -> str:
    name = unique("front")
    blob_service(emulator_reset).create_container(name)
    return name


def _code(raised: pytest.ExceptionInfo[HttpResponseError]) -> str:
    code = raised.value.error_code  # type: ignore[attr-defined]
    return str(getattr(code, "value", code))


def test_a_token_needs_a_blob_data_role_as_on_azure(emulator_reset: RunningEmulator, container: str) -> None:
    app = emulator_reset.admin.arm_access()["appPrincipalId"]
    blob = service(emulator_reset).get_blob_client(container, "manifest.json")
    with pytest.raises(HttpResponseError) as raised:  # Owner of everything, but no data action
        blob.upload_blob(b"{}")
    assert raised.value.status_code == 403
    assert _code(raised) == "AuthorizationPermissionMismatch"

    emulator_reset.admin.assign_role(app, "Storage Blob Data Reader", storage_account=azurite.ACCOUNT)
    with pytest.raises(HttpResponseError):
        blob.upload_blob(b"{}")
    emulator_reset.admin.assign_role(app, "Storage Blob Data Contributor", storage_account=azurite.ACCOUNT)
    blob.upload_blob(b'{"artifacts": []}')
    assert blob.download_blob().readall() == b'{"artifacts": []}'
    listed = [b.name for b in service(emulator_reset).get_container_client(container).list_blobs()]
    assert listed == ["manifest.json"]
    # what went through the front is in Azurite
    assert blob_service(emulator_reset).get_blob_client(container, "manifest.json").exists()


def test_a_user_delegation_sas_from_the_app_s_identity(
    emulator_reset: RunningEmulator, container: str
) -> None:
    admin = emulator_reset.admin
    app = admin.arm_access()["appPrincipalId"]
    blob_service(emulator_reset).get_blob_client(container, "export.blob").upload_blob(b"exported")
    admin.restrict_arm_access()  # the app holds only its role assignments
    now = datetime.now(UTC)
    with pytest.raises(HttpResponseError) as raised:
        service(emulator_reset).get_user_delegation_key(now, now + timedelta(hours=1))
    assert _code(raised) == "AuthorizationPermissionMismatch"

    admin.assign_role(app, "Storage Blob Delegator", storage_account=azurite.ACCOUNT)
    key = service(emulator_reset).get_user_delegation_key(now, now + timedelta(hours=1))
    assert key.signed_oid == app
    assert key.signed_tid == emulator_reset.tenant_id
    sas = generate_blob_sas(
        azurite.ACCOUNT, container, "export.blob", user_delegation_key=key, permission="r",
        expiry=now + timedelta(hours=1),
    )  # fmt: skip
    front_url = f"{emulator_reset.storage_url(azurite.ACCOUNT)}/{container}/export.blob?{sas}"
    front = BlobClient.from_blob_url(front_url, connection_verify=emulator_reset.ca_file)
    with pytest.raises(HttpResponseError) as raised:  # as on Azure: the signer needs a data role now
        front.download_blob()
    assert _code(raised) == "AuthorizationPermissionMismatch"
    admin.assign_role(app, "Storage Blob Data Reader", storage_account=azurite.ACCOUNT)
    assert front.download_blob().readall() == b"exported"
    # Azurite 3.35 itself does not know the string-to-sign of this SDK's user delegation SAS: use the front
    azurite_url = f"{blob_service(emulator_reset).url.rstrip('/')}/{container}/export.blob?{sas}"
    with pytest.raises(HttpResponseError):
        BlobClient.from_blob_url(azurite_url).download_blob()
    # a SAS for another blob, a tampered one, or one without the permission is refused
    other = front_url.replace("export.blob", "other.blob")
    with pytest.raises(HttpResponseError) as raised:
        BlobClient.from_blob_url(other, connection_verify=emulator_reset.ca_file).download_blob()
    assert _code(raised) == "AuthenticationFailed"
    with pytest.raises(HttpResponseError) as raised:
        BlobClient.from_blob_url(front_url, connection_verify=emulator_reset.ca_file).upload_blob(
            b"x", overwrite=True
        )
    assert _code(raised) == "AuthorizationPermissionMismatch"

    with pytest.raises(HttpResponseError) as raised:  # keys live 7 days at most
        service(emulator_reset).get_user_delegation_key(now, now + timedelta(days=8))
    assert raised.value.status_code == 400


def test_a_managed_identity_pipeline_s_container_is_the_app_s_without_a_sas(
    emulator_reset: RunningEmulator, container: str
) -> None:
    admin = emulator_reset.admin
    admin.create_registry("sourceregistry", {"samples/hello": ["latest"]})
    app = admin.arm_access()["appPrincipalId"]
    url = f"{emulator_reset.storage_url(azurite.ACCOUNT)}/{container}"  # the account's one URL, as on Azure
    exported = export_pipeline(emulator_reset, "sourceregistry", url)  # ManagedIdentity, role granted
    assert state(exported) == "Succeeded", exported.properties.error
    run = export_run(
        emulator_reset, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "byfront"
    )
    assert state(run) == "Succeeded"
    admin.assign_role(app, "Storage Blob Data Contributor", storage_account=azurite.ACCOUNT)
    client = service(emulator_reset).get_container_client(container)
    assert b'"samples/hello"' in client.download_blob("byfront").readall()
    client.upload_blob(
        "byfront.manifest.json", b"{}"
    )  # the manifest beside the blob, with the app's identity
    assert sorted(b.name for b in client.list_blobs()) == ["byfront", "byfront.manifest.json"]
