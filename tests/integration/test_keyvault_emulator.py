"""KeyVaultSecretReader against the emulator's Key Vault data plane, with the app's credential."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest

from emulator.testing import RunningEmulator
from transfer.adapters.credentials import make_credential
from transfer.adapters.keyvault import KeyVaultSecretReader
from transfer.domain.errors import NotFound
from transfer.domain.records import SasSecret
from transfer.domain.settings import load_settings

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

SIGNATURE = "c2VjcmV0LXNpZ25hdHVyZS1uZXZlci1sb2dnZWQ%3D"
SAS = f"?sv=2025-05-05&ss=b&srt=co&sp=rl&se=2027-03-01T08%3A30%3A00Z&spr=https&sig={SIGNATURE}"


@pytest.fixture
def reader(emulator_reset: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> KeyVaultSecretReader:
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
    return KeyVaultSecretReader(make_credential(settings))


def test_read_a_sas_secret(
    reader: KeyVaultSecretReader, emulator_reset: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = "kv" + uuid.uuid4().hex[:8]
    emulator_reset.admin.create_vault(vault)
    stored = emulator_reset.admin.set_secret(vault, "exportsas", SAS)
    secret = reader.read_sas(stored["secretUri"])
    assert isinstance(secret, SasSecret)
    assert secret.token == SAS.lstrip("?")
    assert secret.expires_at == datetime(2027, 3, 1, 8, 30, tzinfo=UTC)
    assert secret.permissions == "rl"
    assert SIGNATURE not in repr(secret)
    assert SIGNATURE not in caplog.text
    versioned = reader.read_sas(stored["id"])  # a versioned secret id reads that version
    assert versioned.token == secret.token


def test_a_missing_secret_is_not_found(reader: KeyVaultSecretReader, emulator_reset: RunningEmulator) -> None:
    vault = "kv" + uuid.uuid4().hex[:8]
    created = emulator_reset.admin.create_vault(vault)
    vault_url = created["properties"]["vaultUri"].rstrip("/")
    with pytest.raises(NotFound):
        reader.read_sas(f"{vault_url}/secrets/absent")
