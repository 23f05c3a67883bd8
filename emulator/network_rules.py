"""A storage account's network rules as a pipeline meets them. ACR is not a trusted Azure service for
Storage (an open item of ACR's roadmap), so an account that denies public network access answers the
pipeline 403 AuthorizationFailure ("This request is not authorized to perform this operation.") whatever
its identity or SAS: a firewall (`networkAcls.defaultAction: Deny`, even with `bypass: AzureServices`),
`publicNetworkAccess: Disabled`, or private endpoints only."""

from __future__ import annotations

from typing import Any


def network_properties(
    *,
    public_network_access: str | None = None,
    default_action: str = "Allow",
    bypass: str = "AzureServices",
    private_endpoints: list[str] | None = None,
    account_id: str = "",
) -> dict[str, Any]:
    """An account's network properties as ARM answers them (networkAcls always; publicNetworkAccess when
    set; a private endpoint connection per name)."""
    properties: dict[str, Any] = {
        "networkAcls": {
            "bypass": bypass,
            "virtualNetworkRules": [],
            "ipRules": [],
            "defaultAction": default_action,
        }
    }
    if public_network_access is not None:
        properties["publicNetworkAccess"] = public_network_access
    if private_endpoints:
        group = account_id.split("/providers/")[0]
        properties["privateEndpointConnections"] = [
            {
                "id": f"{account_id}/privateEndpointConnections/{name}",
                "name": name,
                "type": "Microsoft.Storage/storageAccounts/privateEndpointConnections",
                "properties": {
                    "privateEndpoint": {"id": f"{group}/providers/Microsoft.Network/privateEndpoints/{name}"},
                    "privateLinkServiceConnectionState": {
                        "status": "Approved",
                        "description": "Auto-Approved",
                        "actionRequired": "None",
                    },
                    "provisioningState": "Succeeded",
                },
            }
            for name in private_endpoints
        ]
    return properties


def restriction(properties: dict[str, Any] | None) -> str | None:
    """Why a pipeline cannot reach the account (its network rules), or None when public access is open."""
    if not properties:
        return None
    public = str(properties.get("publicNetworkAccess") or "Enabled")
    acls = properties.get("networkAcls") or {}
    default_action = str(acls.get("defaultAction") or "Allow")
    endpoints = properties.get("privateEndpointConnections") or []
    if public.lower() == "disabled":
        reason = "publicNetworkAccess is Disabled" + (
            f" (private endpoints only: {len(endpoints)} connection(s))" if endpoints else ""
        )
    elif default_action.lower() == "deny":
        bypass = acls.get("bypass")
        reason = f"its firewall denies public networks (networkAcls.defaultAction: Deny, bypass: {bypass})"
    else:
        return None
    return (
        f"The storage account is network-restricted: {reason}. ACR Transfer is not a trusted Azure service "
        "for Storage, so a pipeline cannot reach a network-restricted account whatever its identity or SAS; "
        "allow public network access from all networks on the account the pipeline uses."
    )
