"""The manifest's signature: signed on the export side with an Azure Key Vault key (the key never leaves the
vault: `CryptographyClient.sign` of the manifest's SHA-256 / 384 / 512 digest), checked on the target side
with the public key the app is configured with (PEM or JWK), where the source's vault cannot be reached.

The signature file holds what `openssl dgst -verify` takes: for an EC key the DER-encoded ECDSA signature
(Key Vault answers r || s; it is converted), for an RSA key the RSASSA-PKCS1-v1_5 signature. The hash
follows the key: SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521 (docs/supply-chain.md).
azure-keyvault-keys and cryptography load lazily.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from transfer.adapters.sdk_errors import translated
from transfer.domain.errors import SettingsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_CURVES = {"P-256": ("ES256", "sha256"), "P-384": ("ES384", "sha384"), "P-521": ("ES512", "sha512")}


class KeyVaultSigner:
    """Signs with `key_id` (`https://VAULT/keys/NAME[/VERSION]`): one key read, then one sign call each."""

    def __init__(self, key_id: str, credential: TokenCredential, *, connection_verify: Any = None) -> None:
        parts = urlsplit(key_id)
        path = [p for p in parts.path.split("/") if p]
        self._vault = f"https://{parts.netloc}"
        self._name = path[1]
        self._version = path[2] if len(path) > 2 else None
        self._credential = credential
        self._options = {"connection_verify": connection_verify} if connection_verify is not None else {}
        self._client: Any = None
        self._scheme: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyVaultSigner({self._vault!r}, {self._name!r})"

    def _crypto(self) -> tuple[Any, str, str]:
        with self._lock:
            if self._client is None:
                from azure.keyvault.keys import KeyClient
                from azure.keyvault.keys.crypto import CryptographyClient

                with translated(f"key vault {self._vault}: reading key {self._name}"):
                    keys = KeyClient(self._vault, self._credential, **self._options)
                    key = keys.get_key(self._name, self._version)
                kty = str(getattr(key.key_type, "value", key.key_type))
                crv = str(getattr(key.key.crv, "value", key.key.crv) or "P-256")
                if kty.startswith("EC"):
                    self._scheme = _CURVES[crv]
                else:
                    self._scheme = ("RS256", "sha256")
                self._client = CryptographyClient(key, self._credential, **self._options)
            assert self._scheme is not None
            return self._client, *self._scheme

    def sign(self, data: bytes) -> bytes:
        client, algorithm, hash_name = self._crypto()
        digest = hashlib.new(hash_name, data).digest()
        with translated(f"key vault {self._vault}: signing with key {self._name}"):
            result = client.sign(algorithm, digest)
        signature = bytes(result.signature)
        return _der(signature) if algorithm.startswith("ES") else signature


def _der(raw: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    half = len(raw) // 2
    return bytes(encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")))


class PublicKeyVerifier:
    """Checks a manifest's signature with a public key given as PEM or JWK (TRANSFER_MANIFEST_VERIFY_KEY)."""

    def __init__(self, text: str, setting: str = "TRANSFER_MANIFEST_VERIFY_KEY") -> None:
        try:
            self._key = _public_key(text.strip())
        except (ValueError, TypeError, KeyError) as exc:
            raise SettingsError([f"{setting} is not a PEM public key or a public JWK: {exc}"]) from None

    def problem(self, data: bytes, signature: bytes) -> str | None:
        """None when `signature` is a signature of `data` by this key; otherwise why not."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

        key = self._key
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                algorithm = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[
                    key.curve.key_size
                ]
                key.verify(signature, data, ec.ECDSA(algorithm))
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                return "the configured public key is neither EC nor RSA"
        except InvalidSignature:
            return (
                "the manifest's signature does not verify with the configured public key (tampered, or "
                "signed with another key)"
            )
        except ValueError:
            return "the signature file is not a signature"
        return None


def _public_key(text: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if text.startswith("-----BEGIN"):
        return load_pem_public_key(text.encode())
    jwk = json.loads(text)
    if not isinstance(jwk, dict):
        raise ValueError("a JWK is a JSON object")
    if any(member in jwk for member in ("d", "p", "q")):
        raise ValueError("give the public key only (the JWK holds a private member)")
    kty = str(jwk.get("kty", "")).replace("-HSM", "")
    if kty == "EC":
        curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
        curve = curves[str(jwk["crv"])]
        x, y = _integer(jwk["x"]), _integer(jwk["y"])
        return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    if kty == "RSA":
        return rsa.RSAPublicNumbers(_integer(jwk["e"]), _integer(jwk["n"])).public_key()
    raise ValueError(f"kty {kty!r} is not EC or RSA")


def _integer(value: Any) -> int:
    text = str(value)
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def public_pem(jwk: dict[str, Any]) -> str:
    """The PEM of a public JWK (what `openssl` takes), e.g. the key Key Vault shows."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = _public_key(json.dumps(jwk))
    return str(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode())
