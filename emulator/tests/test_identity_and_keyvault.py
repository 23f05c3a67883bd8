"""DefaultAzureCredential through the emulator's managed identity endpoint, and the real SecretClient
against the emulator's Key Vault data plane."""

from __future__ import annotations

import json
import ssl
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import KeyVaultSecretIdentifier, SecretClient
from azure.mgmt.resource.deployments import DeploymentsMgmtClient

from emulator.testing import RunningEmulator

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

_CLEARED = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_USERNAME",
    "AZURE_FEDERATED_TOKEN_FILE",
)


@pytest.fixture
def msi(emulator_reset: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    with emulator_reset.managed_identity_env():
        yield emulator_reset


def published_key(emulator: RunningEmulator) -> Any:
    context = ssl.create_default_context(cafile=emulator.ca_file)
    with urllib.request.urlopen(emulator.arm_endpoint + "/discovery/keys", context=context) as answer:  # noqa: S310
        (key,) = json.loads(answer.read())["keys"]
    return jwt.PyJWK(key)


def test_default_azure_credential_gets_a_signed_jwt_from_the_msi_endpoint(msi: RunningEmulator) -> None:
    """The Azure CLI decodes the token of `az login --identity` for its `tid`; the registry reads `oid`."""
    credential = DefaultAzureCredential()
    token = credential.get_token(msi.arm_endpoint + "/.default")
    claims = jwt.decode(token.token, published_key(msi).key, algorithms=["RS256"], audience=msi.arm_endpoint)
    assert claims["tid"] == msi.tenant_id
    assert claims["iss"] == f"https://sts.windows.net/{msi.tenant_id}/"
    assert claims["exp"] == token.expires_on
    assert claims["idtyp"] == "app"
    assert claims["oid"] == claims["sub"]
    assert claims["appid"]
    client = DeploymentsMgmtClient(credential, msi.subscription_id, **msi.client_kwargs())
    assert list(client.deployments.list_by_resource_group(msi.resource_group)) == []


def test_a_user_assigned_identity_gets_its_own_token(
    msi: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = msi.admin.create_identity("transferidentity")
    client_id = identity["properties"]["clientId"]
    token = ManagedIdentityCredential(client_id=client_id).get_token("https://containerregistry.azure.net")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["oid"] == identity["properties"]["principalId"]
    assert claims["appid"] == client_id
    assert claims["xms_mirid"].lower() == identity["id"].lower()
    assert claims["aud"] == "https://containerregistry.azure.net"
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id=str(uuid.uuid4())).get_token("https://management.azure.com")


def test_msi_endpoint_requires_the_identity_header(
    msi: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(msi.arm_endpoint + "/.default")


def test_secret_client_against_the_vault(msi: RunningEmulator) -> None:
    vault = msi.admin.create_vault("transfervault", {"acrexportsas": "sv=2024&sig=abc"})
    vault_url = vault["properties"]["vaultUri"]
    client = SecretClient(vault_url, DefaultAzureCredential(), connection_verify=msi.ca_file)
    secret = client.get_secret("acrexportsas")
    assert secret.value == "sv=2024&sig=abc"
    assert secret.properties.vault_url.rstrip("/") == vault_url.rstrip("/")

    client.set_secret("acrimportsas", "sv=2025&sig=def")
    identifier = KeyVaultSecretIdentifier(f"{vault_url}secrets/acrimportsas")
    assert (
        SecretClient(identifier.vault_url, DefaultAzureCredential(), connection_verify=msi.ca_file)
        .get_secret(identifier.name)
        .value
        == "sv=2025&sig=def"
    )
    assert {p.name for p in client.list_properties_of_secrets()} == {"acrexportsas", "acrimportsas"}
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("missing")
