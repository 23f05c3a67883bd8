"""Key Vault: read a SAS token secret and report its expiry (`se=`) and permissions (`sp=`).

The token never reaches a log, a repr or an exception message. azure-keyvault-secrets loads lazily.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from transfer.adapters.retry import client_retries, client_timeouts
from transfer.adapters.sdk_errors import translated
from transfer.domain.errors import InvalidInput, InvalidSecret, NotFound
from transfer.domain.records import SasSecret

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.keyvault.secrets import SecretClient

_SECRET_PATH = re.compile(r"^/secrets/([0-9A-Za-z-]{1,127})(?:/([0-9A-Za-z]{1,64}))?/?$")
_FRACTION = re.compile(r"\.(\d+)")


def split_secret_uri(secret_uri: str) -> tuple[str, str, str | None]:
    """`https://VAULT.vault.azure.net/secrets/NAME[/VERSION]` -> (vault URL, name, version or None)."""
    parts = urlsplit(secret_uri.strip())
    match = _SECRET_PATH.match(parts.path)
    if parts.scheme != "https" or not parts.netloc or not match or parts.query:
        raise InvalidInput(
            "is not a Key Vault secret URI (https://VAULT/secrets/NAME[/VERSION])", target="secretUri"
        )
    return f"https://{parts.netloc}", match.group(1), match.group(2)


def parse_sas_time(value: str) -> datetime:
    """A SAS time (`se=`/`st=`): ISO 8601 in UTC, date only or date and time, `Z` or an offset,
    fractional seconds of any length (.NET writes 7 digits)."""
    text = value.strip().replace(" ", "+")  # an unencoded '+' of an offset arrives as a space
    if not text:
        raise ValueError("empty time")
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # SAS times are UTC
    return parsed.astimezone(UTC)


def parse_sas(token: str) -> tuple[datetime | None, str]:
    """(expiry from `se=`, permissions from `sp=`) of a SAS token, with or without a leading '?'.

    Raises ValueError (whose message never contains the token) when the token is not a SAS."""
    query = token.strip().lstrip("?")
    if re.search(r"(?i)\b(AccountKey|DefaultEndpointsProtocol|SharedAccessKey)=", query):
        raise ValueError("the value is a connection string, not a SAS token")
    if not query or "=" not in query:
        raise ValueError("the value is not a SAS token (no query parameters)")
    fields: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        fields.setdefault(key.lower(), value)
    if "sig" not in fields:
        raise ValueError("the value is not a SAS token (no sig=)")
    expires_at = None
    if fields.get("se"):
        try:
            expires_at = parse_sas_time(fields["se"])
        except ValueError:
            raise ValueError("the SAS token's se= is not an ISO 8601 time") from None
    return expires_at, fields.get("sp", "")


class KeyVaultSecretReader:
    """SecretReader on Azure Key Vault: one SecretClient per vault, created on first use."""

    def __init__(
        self,
        credential: TokenCredential,
        *,
        connection_verify: bool | str | None = None,
        verify_challenge_resource: bool = True,
    ) -> None:
        self._credential = credential
        self._options: dict[str, Any] = {"verify_challenge_resource": verify_challenge_resource}
        if connection_verify is not None:
            self._options["connection_verify"] = connection_verify
        self._clients: dict[str, SecretClient] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyVaultSecretReader(vaults={sorted(self._clients)!r})"

    def _client(self, vault_url: str) -> SecretClient:
        with self._lock:
            client = self._clients.get(vault_url)
            if client is None:
                from azure.keyvault.secrets import SecretClient

                client = SecretClient(
                    vault_url, self._credential, **client_retries(), **client_timeouts(), **self._options
                )
                self._clients[vault_url] = client
            return client

    def read_sas(self, secret_uri: str) -> SasSecret:
        vault_url, name, version = split_secret_uri(secret_uri)
        what = f"key vault: reading secret {name}"
        with translated(what, absent=NotFound(f"{what}: no such secret in {vault_url}", target="secretUri")):
            secret = self._client(vault_url).get_secret(name, version)
        value = secret.value or ""
        try:
            expires_at, permissions = parse_sas(value)
        except ValueError as exc:
            raise InvalidSecret(f"{what}: {exc}", target="secretUri") from None
        return SasSecret(token=value.strip().lstrip("?"), expires_at=expires_at, permissions=permissions)
