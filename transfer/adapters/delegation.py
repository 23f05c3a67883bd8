"""SasSigner: a read-only user delegation SAS for a container, signed with a key the app's own identity asks
Storage for (`get_user_delegation_key`). It lets the copy step hand the copy target a source URL that
carries its own authorisation when the export pipeline is in ManagedIdentity mode (no Key Vault SAS).
The identity needs Storage Blob Delegator (or a blob data role, which includes it) and a data role that
may read the blobs: Storage Blob Data Reader or Contributor on the export account."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from transfer.adapters.retry import storage_retry_policy
from transfer.adapters.sdk_errors import translated
from transfer.domain.arm_views import storage_account_of
from transfer.domain.errors import TransferError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

KEY_LEAD = timedelta(minutes=5)  # the key starts a little early: clocks differ


class AzureDelegationSigner:
    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential

    def __repr__(self) -> str:
        return "AzureDelegationSigner()"

    def read_sas(self, container_url: str, starts_at: datetime, expires_at: datetime) -> str:
        from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

        parts = urlsplit(container_url.rstrip("/"))
        path = parts.path.strip("/").split("/")
        account = storage_account_of(container_url)
        if parts.scheme != "https" or not account or not path[-1]:
            raise TransferError(f"not an HTTPS container URL: {container_url}")
        account_url = f"https://{parts.netloc}" + ("" if ".blob." in parts.netloc else f"/{path[0]}")
        where = f"blob storage: a user delegation key for {account_url}"
        with translated(where):
            service = BlobServiceClient(
                account_url, credential=self._credential, retry_policy=storage_retry_policy()
            )
            key = service.get_user_delegation_key(starts_at - KEY_LEAD, expires_at)
        return str(
            generate_container_sas(
                account,
                path[-1],
                user_delegation_key=key,
                permission=ContainerSasPermissions(read=True),
                expiry=expires_at,
                start=starts_at - KEY_LEAD,
                protocol="https",
            )
        )
