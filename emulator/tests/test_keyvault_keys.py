"""Key Vault keys through the real `azure-keyvault-keys` clients (KeyClient, CryptographyClient): EC P-256 and
RSA keys, the public JWK only, ES256 and RS256 signatures checked with `cryptography` from that JWK; and the
vault's permission model for keys and secrets (RBAC roles at the vault or the item, access policies)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from emulator.testing import RunningEmulator
from emulator.tests.helpers import StaticCredential
from emulator.tests.registry_helpers import JwtCredential

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

MANIFEST = b'{"artifacts": ["samples/hello:v1"]}'
SIGNER = "5f0c0000-0000-4000-8000-00000000516e"


def _int(value: bytes) -> int:
    return int.from_bytes(value, "big")


def ec_public_key(jwk: Any) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(_int(jwk.x), _int(jwk.y), ec.SECP256R1()).public_key()


def verify_es256(jwk: Any, data: bytes, signature: bytes) -> None:
    """What a verifier on the isolated side does with the public JWK: r || s, each 32 bytes."""
    assert len(signature) == 64
    der = utils.encode_dss_signature(_int(signature[:32]), _int(signature[32:]))
    ec_public_key(jwk).verify(der, data, ec.ECDSA(hashes.SHA256()))


def keys(emulator: RunningEmulator, vault_url: str, credential: Any = None) -> KeyClient:
    return KeyClient(vault_url, credential or StaticCredential(), connection_verify=emulator.ca_file)


def crypto(emulator: RunningEmulator, key_id: str, credential: Any = None) -> CryptographyClient:
    return CryptographyClient(key_id, credential or StaticCredential(), connection_verify=emulator.ca_file)


@pytest.fixture
def vault(emulator_reset: RunningEmulator) -> str:
    return str(emulator_reset.admin.create_vault("signingvault")["properties"]["vaultUri"])


def test_an_ec_key_signs_es256_and_only_its_public_part_leaves_the_vault(
    emulator_reset: RunningEmulator, vault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    with emulator_reset.managed_identity_env():
        credential = DefaultAzureCredential()
        created = keys(emulator_reset, vault, credential).create_ec_key("manifest-signing", curve="P-256")
        assert created.key_type == "EC"
        key = keys(emulator_reset, vault, credential).get_key("manifest-signing")
        assert key.id == created.id
        assert key.key.crv == "P-256"
        assert (key.key.d, key.properties.exportable) == (None, False)  # no private member, ever
        assert set(key.key.key_ops) == {"sign", "verify"}

        digest = hashlib.sha256(MANIFEST).digest()
        signed = crypto(emulator_reset, key.id, credential).sign(SignatureAlgorithm.es256, digest)
    assert signed.key_id == key.id
    verify_es256(key.key, MANIFEST, signed.signature)
    with pytest.raises(InvalidSignature):
        verify_es256(key.key, MANIFEST + b" ", signed.signature)
    # the client's own verification (local, from the public key) agrees
    assert crypto(emulator_reset, key.id).verify(SignatureAlgorithm.es256, digest, signed.signature).is_valid


def test_an_rsa_key_signs_rs256(emulator_reset: RunningEmulator, vault: str) -> None:
    key = keys(emulator_reset, vault).create_rsa_key("rsa-signing", size=2048)
    assert key.key.d is None
    digest = hashlib.sha256(MANIFEST).digest()
    signed = crypto(emulator_reset, key.id).sign(SignatureAlgorithm.rs256, digest)
    public = rsa.RSAPublicNumbers(_int(key.key.e), _int(key.key.n)).public_key()
    public.verify(signed.signature, MANIFEST, padding.PKCS1v15(), hashes.SHA256())
    # a version of the key, and the latest, are the same key
    assert keys(emulator_reset, vault).get_key("rsa-signing", key.properties.version).key.n == key.key.n


def test_key_versions_listing_errors_and_deletion(emulator_reset: RunningEmulator, vault: str) -> None:
    client = keys(emulator_reset, vault)
    first = client.create_ec_key("rotated")
    second = client.create_ec_key("rotated")
    assert client.get_key("rotated").id == second.id
    assert {k.version for k in client.list_properties_of_key_versions("rotated")} == {
        first.properties.version,
        second.properties.version,
    }
    assert [k.name for k in client.list_properties_of_keys()] == ["rotated"]
    old = crypto(emulator_reset, first.id).sign(SignatureAlgorithm.es256, hashlib.sha256(b"x").digest())
    assert old.key_id == first.id  # an old version still signs with its own key
    with pytest.raises(HttpResponseError) as raised:  # the digest of another hash
        crypto(emulator_reset, second.id).sign(SignatureAlgorithm.es256, hashlib.sha384(b"x").digest())
    assert raised.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        client.get_key("absent")
    client.begin_delete_key("rotated").wait()
    with pytest.raises(ResourceNotFoundError):
        client.get_key("rotated")


@pytest.fixture
def rbac_vault(emulator_reset: RunningEmulator) -> dict[str, Any]:
    return emulator_reset.admin.create_vault("rbacvault", {"copysas": "sv=1&sig=x"}, rbac=True)


def _forbidden(raised: pytest.ExceptionInfo[HttpResponseError], inner: str) -> str:
    assert raised.value.status_code == 403
    assert raised.value.error is not None
    assert raised.value.error.code == "Forbidden"
    assert raised.value.error.innererror == {"code": inner}
    return str(raised.value.error.message)


def test_an_rbac_vault_asks_the_app_for_a_role(
    emulator_reset: RunningEmulator, rbac_vault: dict[str, Any]
) -> None:
    emulator = emulator_reset
    app = emulator.admin.arm_access()["appPrincipalId"]
    url, vault_id = rbac_vault["properties"]["vaultUri"], rbac_vault["id"]
    assert rbac_vault["properties"]["enableRbacAuthorization"] is True
    client = keys(emulator, url)
    with pytest.raises(HttpResponseError) as raised:
        client.create_ec_key("manifest-signing")
    message = _forbidden(raised, "ForbiddenByRbac")
    assert f"oid={app};" in message
    assert "Action: 'Microsoft.KeyVault/vaults/keys/create/action'" in message

    emulator.admin.assign_role(app, "Key Vault Crypto Officer", scope=vault_id)
    key = client.create_ec_key("manifest-signing")
    # a principal with Key Vault Crypto User on the key may sign with it, not create keys
    signer = JwtCredential(SIGNER)
    emulator.admin.assign_role(SIGNER, "Key Vault Crypto User", scope=f"{vault_id}/keys/manifest-signing")
    digest = hashlib.sha256(MANIFEST).digest()
    signed = crypto(emulator, key.id, signer).sign(SignatureAlgorithm.es256, digest)
    verify_es256(key.key, MANIFEST, signed.signature)
    with pytest.raises(HttpResponseError) as raised:
        keys(emulator, url, signer).create_ec_key("another")
    _forbidden(raised, "ForbiddenByRbac")

    # secrets: access policies are ignored; Key Vault Secrets User on the secret opens that secret
    secrets = SecretClient(url, StaticCredential(), connection_verify=emulator.ca_file)
    with pytest.raises(HttpResponseError) as raised:
        secrets.get_secret("copysas")
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'" in _forbidden(
        raised, "ForbiddenByRbac"
    )
    emulator.admin.assign_role(app, "Key Vault Secrets User", scope=f"{vault_id}/secrets/copysas")
    assert secrets.get_secret("copysas").value == "sv=1&sig=x"
    with pytest.raises(HttpResponseError) as raised:
        secrets.set_secret("other", "value")
    _forbidden(raised, "ForbiddenByRbac")


def test_an_access_policy_vault_enforces_its_policies_when_asked(
    emulator_reset: RunningEmulator, vault: str
) -> None:
    emulator = emulator_reset
    app = emulator.admin.arm_access()["appPrincipalId"]
    client = keys(emulator, vault)
    key = client.create_ec_key("lenient")  # by default the app needs no policy of its own
    emulator.admin.configure(enforce_vault_access_policies=True)
    with pytest.raises(HttpResponseError) as raised:
        client.get_key("lenient")
    message = _forbidden(raised, "AccessDenied")
    assert f"oid={app};" in message
    assert "does not have keys get permission on key vault 'signingvault;location=" in message
    emulator.admin.add_access_policy("signingvault", app, keys=["get", "sign"])
    assert client.get_key("lenient").id == key.id
    signed = crypto(emulator, key.id).sign(SignatureAlgorithm.es256, hashlib.sha256(MANIFEST).digest())
    verify_es256(key.key, MANIFEST, signed.signature)
    with pytest.raises(HttpResponseError) as raised:
        client.create_ec_key("refused")
    _forbidden(raised, "AccessDenied")


def test_the_public_key_as_pem_verifies_with_openssl_conventions(
    emulator_reset: RunningEmulator, vault: str
) -> None:
    """The JWK converts to the PEM a person checks a signature with by hand (openssl dgst -verify): a DER
    ECDSA signature over the data."""
    from cryptography.hazmat.primitives import serialization

    key = keys(emulator_reset, vault).create_ec_key("pem")
    pem = ec_public_key(key.key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    signed = crypto(emulator_reset, key.id).sign(SignatureAlgorithm.es256, hashlib.sha256(MANIFEST).digest())
    der = utils.encode_dss_signature(_int(signed.signature[:32]), _int(signed.signature[32:]))
    loaded = serialization.load_pem_public_key(pem)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    loaded.verify(der, MANIFEST, ec.ECDSA(hashes.SHA256()))
