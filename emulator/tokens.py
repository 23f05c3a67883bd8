"""Entra-like access tokens: JWTs signed RS256 with a key the emulator makes at start, and the caller a
token names.

Clients read tokens: the Azure CLI decodes the token of `az login --identity` to find its tenant (`tid`),
azure-identity and MSAL read `exp`, the registry's token exchange reads `oid`. So the managed identity
endpoint hands out real JWTs with the claims Entra puts in a managed identity's app token. They are signed,
not `alg: none`, because a client that checks the algorithm (PyJWT with `algorithms=['RS256']`) refuses an
unsigned one; the key is the emulator's own (the public half at `/discovery/keys`, a JWKS) since no
real issuer can sign for a local service. The emulator itself accepts any bearer token, as before: it
verifies nothing, it only reads who the caller says they are (systemData).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

LIFETIME = 24 * 3600  # App Service managed identity tokens live about a day


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """RS256 over a 2048-bit key made once per emulator."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self.jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64(numbers.e.to_bytes(3, "big")),
        }
        self.jwk["kid"] = _b64(hashlib.sha256(self.jwk["n"].encode()).digest()[:20])

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.jwk["kid"]}
        signing_input = f"{_compact(header)}.{_compact(claims)}"
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}


def managed_identity_claims(
    *, tenant_id: str, audience: str, principal_id: str, client_id: str, resource_id: str | None
) -> dict[str, Any]:
    """The claims of a managed identity's app token (v1 token, as the App Service endpoint issues them)."""
    now = int(time.time())
    issuer = f"https://sts.windows.net/{tenant_id}/"
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME,
        "appid": client_id,
        "appidacr": "2",
        "idp": issuer,
        "idtyp": "app",
        "oid": principal_id,
        "sub": principal_id,
        "tid": tenant_id,
        "uti": _b64(uuid.uuid4().bytes),
        "ver": "1.0",
    }
    if resource_id:
        claims["xms_mirid"] = resource_id
    return claims


def claims_of(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (unverified), or None when the token is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as ARM's systemData names them (createdBy / createdByType)."""

    name: str
    kind: str  # User, Application, ManagedIdentity

    @classmethod
    def of_token(cls, token: str) -> Caller:
        claims = claims_of(token)
        if claims is None:
            return UNKNOWN_CALLER
        user = claims.get("upn") or claims.get("unique_name") or claims.get("email")
        if user and claims.get("idtyp") != "app":
            return cls(str(user), "User")
        application = str(claims.get("appid") or claims.get("azp") or claims.get("oid") or "")
        if not application:
            return UNKNOWN_CALLER
        return cls(application, "ManagedIdentity" if claims.get("xms_mirid") else "Application")


# A bearer token that is not a JWT names nobody (the emulator accepts any token): systemData says this.
UNKNOWN_CALLER = Caller("emulator-user@example.com", "User")
