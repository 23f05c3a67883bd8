"""The app's Azure credential: azure-identity's DefaultAzureCredential, loaded lazily.

In Azure it is the function app's managed identity (`AZURE_CLIENT_ID` selects a user-assigned one). Against
the local emulator the same code works: the emulator serves the managed-identity endpoint
(`IDENTITY_ENDPOINT` / `IDENTITY_HEADER`) and clients trust its CA through `REQUESTS_CA_BUNDLE`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transfer.domain.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def make_credential(settings: Settings) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    from transfer.adapters.retry import client_timeouts

    credential: TokenCredential = DefaultAzureCredential(
        managed_identity_client_id=settings.client_id,
        authority=settings.cloud.authority_host,
        exclude_interactive_browser_credential=True,
        **client_timeouts(),
    )
    return credential
