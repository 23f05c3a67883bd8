"""KeyVaultSecretReader against the emulator's Key Vault data plane, with the app's credential."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator.testing import RunningEmulator
from transfer.adapters.keyvault import KeyVaultSecretReader
from transfer.domain.errors import NotFound
from transfer.domain.records import SasSecret

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

SIGNATURE = "c2VjcmV0LXNpZ25hdHVyZS1uZXZlci1sb2dnZWQ%3D"
SAS = f"?sv=2025-05-05&ss=b&srt=co&sp=rl&se=2027-03-01T08%3A30%3A00Z&spr=https&sig={SIGNATURE}"


@pytest.fixture
def reader(app_credential: Any) -> KeyVaultSecretReader:
    return KeyVaultSecretReader(app_credential)


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
