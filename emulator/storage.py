"""How a pipeline reaches its storage container in Azurite: with the SAS token from Key Vault (SasToken mode)
or with the emulator's own Azurite connection (ManagedIdentity mode)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlparse

from azure.storage.blob import BlobServiceClient, ContainerClient

_LOOPBACK = ("127.0.0.1", "localhost")


class StorageAccessError(Exception):
    """The run cannot use the container; the message goes into pipelineRunErrorMessage (never the SAS)."""


@dataclass(frozen=True)
class ContainerAddress:
    """Where a pipeline's container URI points in Azurite."""

    uri: str  # as the pipeline was given it
    base: str  # account URL in Azurite, e.g. http://127.0.0.1:10000/devstoreaccount1
    container: str


def address(uri: str, azurite_blob_endpoint: str) -> ContainerAddress:
    """Loopback URIs are used as they are; any other host (e.g. *.blob.core.windows.net from an example
    parameter file) maps onto the Azurite account, keeping the container name (the last path segment)."""
    parsed = urlparse(uri)
    segments = [s for s in parsed.path.split("/") if s]
    if not segments:
        raise StorageAccessError(f"The storage URI '{uri}' names no container.")
    container = segments[-1]
    if parsed.hostname in _LOOPBACK and len(segments) >= 2:
        base = f"{parsed.scheme}://{parsed.netloc}/" + "/".join(segments[:-1])
    else:
        base = azurite_blob_endpoint.rstrip("/")
    return ContainerAddress(uri, base, container)


def check_sas(sas: str, needed: str, now: datetime, secret_uri: str) -> str:
    """Validate a SAS token against the emulator's clock and the permissions the run needs; returns it
    without a leading '?'. Messages never contain the signature."""
    token = sas.strip().lstrip("?")
    query = parse_qs(token)
    if "sig" not in query:
        raise StorageAccessError(f"The secret '{secret_uri}' does not hold a SAS token (no 'sig' parameter).")
    expiry = (query.get("se") or [""])[0]
    if expiry:
        try:
            expires = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        except ValueError:
            raise StorageAccessError(
                f"The SAS token in '{secret_uri}' has an unreadable expiry 'se={expiry}'."
            ) from None
        if expires <= now:
            raise StorageAccessError(
                f"The SAS token in Key Vault secret '{secret_uri}' expired at {expiry} (now "
                f"{now:%Y-%m-%dT%H:%M:%SZ}): "
                "AuthenticationFailed. Store a new SAS token in the secret."
            )
    permissions = (query.get("sp") or [""])[0]
    missing = "".join(p for p in needed if p not in permissions)
    if missing:
        raise StorageAccessError(
            f"The SAS token in Key Vault secret '{secret_uri}' lacks the permission(s) '{missing}' "
            f"(has 'sp={permissions}'; the run needs '{needed}'): AuthorizationPermissionMismatch."
        )
    return token


def container_client(where: ContainerAddress, *, sas: str | None, connection_string: str) -> ContainerClient:
    if sas is not None:
        return ContainerClient.from_container_url(f"{where.base}/{where.container}?{sas}")
    service = BlobServiceClient.from_connection_string(connection_string)
    return service.get_container_client(where.container)
