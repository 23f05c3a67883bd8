"""What a client learns about the cloud before it asks for a resource: ARM's metadata endpoint (what
`az cloud register --endpoint-resource-manager` reads), the subscriptions and the tenants a token sees
(what `az login` lists), and the public half of the key tokens are signed with."""

from __future__ import annotations

from typing import Any

from emulator.store import Config

CLOUD_NAME = "AzureEmulator"
METADATA_PATH = "/metadata/endpoints"
TOKEN_KEYS_PATH = "/discovery/keys"


def metadata_endpoints(arm_endpoint: str) -> dict[str, Any]:
    """ARM's `/metadata/endpoints` document (the single-cloud shape of api-version 2022-09-01) with this
    emulator as the resource manager and as the audience of its tokens; the suffixes are the public cloud's
    (`azurecr.io`, `vault.azure.net`), so login servers and vault names read as they do on Azure."""
    arm = arm_endpoint.rstrip("/") + "/"
    return {
        "name": CLOUD_NAME,
        "portal": arm,
        "resourceManager": arm,
        "authentication": {
            "loginEndpoint": "https://login.microsoftonline.com",
            "audiences": [arm],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graph": "https://graph.windows.net/",
        "graphAudience": "https://graph.windows.net/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "batch": "https://batch.core.windows.net/",
        "media": "https://rest.media.azure.net",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "appInsightsResourceId": "https://api.applicationinsights.io",
        "appInsightsTelemetryChannelResourceId": "https://dc.applicationinsights.azure.com/v2/track",
        "logAnalyticsResourceId": "https://api.loganalytics.io",
        "synapseAnalyticsResourceId": "https://dev.azuresynapse.net",
        "suffixes": {
            "acrLoginServer": "azurecr.io",
            "keyVaultDns": "vault.azure.net",
            "mhsmDns": "managedhsm.azure.net",
            "storage": "core.windows.net",
            "sqlServerHostname": "database.windows.net",
            "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
            "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
            "attestationEndpoint": "attest.azure.net",
        },
    }


def subscription(config: Config) -> dict[str, Any]:
    """`GET /subscriptions/{id}` (api-version 2022-12-01): the one subscription the emulator serves."""
    return {
        "id": f"/subscriptions/{config.subscription_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": config.subscription_id,
        "tenantId": config.tenant_id,
        "displayName": f"Emulated subscription {config.subscription_id}",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def subscriptions(config: Config) -> dict[str, Any]:
    return {"value": [subscription(config)], "count": {"type": "Total", "value": 1}}


def tenants(config: Config) -> dict[str, Any]:
    """`GET /tenants`: the emulator's tenant."""
    return {
        "value": [
            {
                "id": f"/tenants/{config.tenant_id}",
                "tenantId": config.tenant_id,
                "countryCode": "US",
                "displayName": "Emulated tenant",
                "domains": ["emulator.example.com"],
                "tenantCategory": "Home",
                "defaultDomain": "emulator.example.com",
                "tenantType": "AAD",
            }
        ]
    }
