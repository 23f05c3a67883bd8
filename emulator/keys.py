"""Key Vault keys with real cryptography, as `azure-keyvault-keys` calls them (KeyClient, CryptographyClient):

- `POST /keys/{name}/create` (`kty` EC / EC-HSM with `crv` P-256, P-384, P-521; RSA / RSA-HSM with
  `key_size` 2048, 3072, 4096), `GET /keys/{name}[/{version}]` (the public JWK only), `GET /keys`,
  `GET /keys/{name}/versions`, `DELETE /keys/{name}` (purged at once);
- `POST /keys/{name}[/{version}]/sign` (ES256/384/512 as JWS wants them, r || s; RS256/384/512 PKCS#1 v1.5;
  PS256/384/512 PSS) over a digest the caller computed, and `.../verify`.

The private key never leaves this module. Who may call what is the vault's business (vaults.py).
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from emulator.arm_errors import ApiError, bad_request

CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
RSA_SIZES = (2048, 3072, 4096)
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
EC_ALGORITHMS = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
RSA_OPERATIONS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
EC_OPERATIONS = ["sign", "verify"]
KEY_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length or max(1, (value.bit_length() + 7) // 8), "big")


@dataclass
class KeyVersion:
    version: str
    kty: str  # as created: EC, EC-HSM, RSA, RSA-HSM
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = field(repr=False)
    key_ops: list[str]
    created: datetime
    curve: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def jwk(self, kid: str) -> dict[str, Any]:
        """The public key as Key Vault answers it (no private member, ever)."""
        key: dict[str, Any] = {"kid": kid, "kty": self.kty, "key_ops": list(self.key_ops)}
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            assert self.curve is not None
            size = CURVES[self.curve][1]
            numbers = public.public_numbers()
            key.update(
                crv=self.curve, x=b64url(_int_bytes(numbers.x, size)), y=b64url(_int_bytes(numbers.y, size))
            )
        else:
            rsa_numbers = public.public_numbers()
            key.update(n=b64url(_int_bytes(rsa_numbers.n)), e=b64url(_int_bytes(rsa_numbers.e)))
        return key


class KeyStore:
    """Keys per vault (name lower -> key name lower -> versions, oldest first)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.keys: dict[str, dict[str, list[KeyVersion]]] = {}

    def clear(self) -> None:
        with self.lock:
            self.keys.clear()

    def forget(self, vault: str) -> None:
        with self.lock:
            self.keys.pop(vault.lower(), None)

    def create(self, vault: str, name: str, body: dict[str, Any], now: datetime) -> tuple[str, KeyVersion]:
        if not name or len(name) > 127 or not set(name) <= KEY_NAME_CHARS:
            raise bad_request(
                f"The key name '{name}' is invalid: 1-127 letters, digits and dashes.", code="BadParameter"
            )
        kty = str(body.get("kty") or "")
        ops = body.get("key_ops")
        if kty in ("EC", "EC-HSM"):
            curve = str(body.get("crv") or "P-256")
            if curve not in CURVES:
                raise bad_request(
                    f"The curve '{curve}' is not supported: {', '.join(CURVES)}.", code="BadParameter"
                )
            private: Any = ec.generate_private_key(CURVES[curve][0])
            default_ops = EC_OPERATIONS
        elif kty in ("RSA", "RSA-HSM"):
            curve = None
            size = body.get("key_size") or 2048
            if size not in RSA_SIZES:
                raise bad_request(
                    f"The RSA key size {size} is not supported: {RSA_SIZES}.", code="BadParameter"
                )
            private = rsa.generate_private_key(
                public_exponent=int(body.get("public_exponent") or 65537), key_size=size
            )
            default_ops = RSA_OPERATIONS
        else:
            raise bad_request(
                f"The key type '{kty}' is not supported by the emulator (EC, EC-HSM, RSA, RSA-HSM).",
                code="BadParameter",
            )
        if ops is not None and not (isinstance(ops, list) and all(isinstance(o, str) for o in ops)):
            raise bad_request("'key_ops' must be a list of operations.", code="BadParameter")
        version = KeyVersion(
            uuid.uuid4().hex, kty, private, list(ops or default_ops), now, curve, dict(body.get("tags") or {})
        )
        with self.lock:
            self.keys.setdefault(vault.lower(), {}).setdefault(name.lower(), []).append(version)
        return name, version

    def get(self, vault: str, name: str, version: str | None = None) -> KeyVersion:
        with self.lock:
            versions = (self.keys.get(vault.lower()) or {}).get(name.lower()) or []
            found = [v for v in versions if version in (None, "", v.version)]
        if not found:
            detail = f"{name}/{version}" if version else name
            raise ApiError(
                404,
                "KeyNotFound",
                f"A key with (name/id) {detail} was not found in this key vault. If you recently deleted "
                "this key you may be able to recover it using the correct recovery command. For help "
                "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
            )
        return found[-1]

    def names(self, vault: str) -> dict[str, list[KeyVersion]]:
        with self.lock:
            return {
                name: list(versions)
                for name, versions in sorted((self.keys.get(vault.lower()) or {}).items())
            }

    def delete(self, vault: str, name: str) -> KeyVersion:
        latest = self.get(vault, name)
        with self.lock:
            (self.keys.get(vault.lower()) or {}).pop(name.lower(), None)
        return latest


def sign(key: KeyVersion, algorithm: str, digest: bytes) -> bytes:
    """A signature over `digest` (already hashed by the caller, as Key Vault's sign expects)."""
    _allowed(key, "sign")
    hash_type = _hash(key, algorithm, digest)
    prehashed = utils.Prehashed(hash_type())
    if isinstance(key.private, ec.EllipticCurvePrivateKey):
        der = key.private.sign(digest, ec.ECDSA(prehashed))
        r, s = utils.decode_dss_signature(der)
        size = CURVES[key.curve or "P-256"][1]
        return _int_bytes(r, size) + _int_bytes(s, size)
    return key.private.sign(digest, _rsa_padding(algorithm, hash_type), prehashed)


def verify(key: KeyVersion, algorithm: str, digest: bytes, signature: bytes) -> bool:
    _allowed(key, "verify")
    hash_type = _hash(key, algorithm, digest)
    prehashed = utils.Prehashed(hash_type())
    public = key.private.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            size = len(signature) // 2
            der = utils.encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            public.verify(der, digest, ec.ECDSA(prehashed))
        else:
            public.verify(signature, digest, _rsa_padding(algorithm, hash_type), prehashed)
    except InvalidSignature:
        return False
    return True


def _allowed(key: KeyVersion, operation: str) -> None:
    if operation not in key.key_ops:
        raise bad_request(f"Operation {operation} is not permitted on this key.", code="BadParameter")


def _hash(key: KeyVersion, algorithm: str, digest: bytes) -> type[hashes.HashAlgorithm]:
    family, bits = algorithm[:2], algorithm[2:]
    ec_key = isinstance(key.private, ec.EllipticCurvePrivateKey)
    valid = (family == "ES" and ec_key and EC_ALGORITHMS.get(algorithm) == key.curve) or (
        family in ("RS", "PS") and not ec_key and bits in HASHES
    )
    if not valid:
        raise bad_request(
            f"The algorithm '{algorithm}' cannot be used with this {key.kty} key"
            + (f" ({key.curve})." if key.curve else "."),
            code="BadParameter",
        )
    hash_type = HASHES[bits]
    if len(digest) != hash_type.digest_size:
        raise bad_request(
            f"The digest is {len(digest)} bytes; {algorithm} signs a {hash_type.digest_size}-byte digest.",
            code="BadParameter",
        )
    return hash_type


def _rsa_padding(algorithm: str, hash_type: type[hashes.HashAlgorithm]) -> padding.AsymmetricPadding:
    if algorithm.startswith("PS"):
        return padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=hash_type.digest_size)
    return padding.PKCS1v15()


def decode_value(body: Any, name: str = "value") -> bytes:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise bad_request(f"The request body must hold '{name}' (base64url).", code="BadParameter")
    try:
        return unb64url(value)
    except (ValueError, binascii.Error):
        raise bad_request(f"'{name}' is not base64url.", code="BadParameter") from None
