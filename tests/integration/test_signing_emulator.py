"""Manifest signing against the emulator's Key Vault keys, with the app's credential: KeyVaultSigner signs
with an EC or RSA key that never leaves the vault; PublicKeyVerifier checks the signature with the public
JWK Key Vault shows or its PEM; and the openssl command docs/supply-chain.md gives verifies it too."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from emulator.testing import RunningEmulator
from transfer.adapters.signing import KeyVaultSigner, PublicKeyVerifier, public_pem

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

MANIFEST = b'{\n  "format": "acr-transfer-manifest/v1",\n  "blob": "nightly"\n}\n'
DOC = Path(__file__).resolve().parents[2] / "docs" / "supply-chain.md"


@pytest.fixture
def credential(app_credential: Any) -> Any:
    return app_credential


def new_key(emulator: RunningEmulator, credential: Any, kind: str) -> Any:
    from azure.keyvault.keys import KeyClient

    vault = "kv" + uuid.uuid4().hex[:8]
    uri = emulator.admin.create_vault(vault)["properties"]["vaultUri"]
    keys = KeyClient(uri, credential)
    if kind == "RSA":
        return keys.create_rsa_key("manifests", size=2048)
    return keys.create_ec_key("manifests", curve=kind)


def jwk_of(key: Any) -> dict[str, Any]:
    import base64

    def b64(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    material = key.key
    kty = str(getattr(material.kty, "value", material.kty))
    if kty.startswith("EC"):
        crv = str(getattr(material.crv, "value", material.crv))
        return {"kty": "EC", "crv": crv, "x": b64(material.x), "y": b64(material.y)}
    return {"kty": "RSA", "n": b64(material.n), "e": b64(material.e)}


@pytest.mark.parametrize("kind", ["P-256", "P-384", "RSA"])
def test_a_key_vault_signature_verifies_with_the_public_jwk_and_its_pem(
    emulator_reset: RunningEmulator, credential: Any, kind: str
) -> None:
    import json

    key = new_key(emulator_reset, credential, kind)
    signature = KeyVaultSigner(key.id, credential).sign(MANIFEST)
    jwk = jwk_of(key)
    for public in (json.dumps(jwk), public_pem(jwk)):
        verifier = PublicKeyVerifier(public)
        assert verifier.problem(MANIFEST, signature) is None
        assert verifier.problem(MANIFEST.replace(b"nightly", b"nightlx"), signature) is not None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not on this machine")
def test_the_documented_openssl_command_verifies_a_signed_manifest(
    emulator_reset: RunningEmulator, credential: Any, tmp_path: Path
) -> None:
    key = new_key(emulator_reset, credential, "P-256")
    (tmp_path / "BLOB.manifest.json").write_bytes(MANIFEST)
    (tmp_path / "BLOB.manifest.json.sig").write_bytes(KeyVaultSigner(key.id, credential).sign(MANIFEST))
    (tmp_path / "public.pem").write_text(public_pem(jwk_of(key)))
    [command] = re.findall(r"```sh\n(openssl dgst[^\n]+)\n```", DOC.read_text())
    done = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "Verified OK", done.stderr
    (tmp_path / "BLOB.manifest.json").write_bytes(MANIFEST.replace(b"nightly", b"nightlx"))
    done = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode != 0
