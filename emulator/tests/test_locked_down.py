"""Locked-down tenants as the pipelines and ARM meet them: a network-restricted storage account (ACR is not a
trusted service for Storage), a Key Vault in RBAC mode (access policies ignored; Key Vault Secrets User on
the vault or the secret), a registry whose export policy is disabled, and the shapes a ManagedIdentity
pipeline may come back in."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.rest import HttpRequest

from emulator import azurite
from emulator.admin import AdminError
from emulator.testing import RunningEmulator
from emulator.tests.helpers import (
    container_sas,
    get_resource,
    new_container,
    resources_client,
    run_response,
    state,
)
from emulator.tests.test_failure_causes import message_of
from emulator.tests.test_transfer import (
    SAS_SECRET,
    export_pipeline,
    export_run,
    output,
    run_id,
)

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

STORAGE_API = "2023-05-01"


@pytest.fixture
def source(emulator_reset: RunningEmulator) -> dict[str, Any]:
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["v1", "latest"]})
    container, url = new_container(emulator_reset)
    return {"emulator": emulator_reset, "container": container, "url": url}


def _account_id(emulator: RunningEmulator) -> str:
    return (
        f"/subscriptions/{emulator.subscription_id}/resourceGroups/{emulator.resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{azurite.ACCOUNT}"
    )


def _export(source: dict[str, Any], blob: str, **pipeline: Any) -> Any:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"], **pipeline)
    assert state(exported) == "Succeeded", exported.properties.error
    return export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], blob
    )


@pytest.mark.parametrize(
    ("network", "cause"),
    [
        ({"default_action": "Deny"}, "networkAcls.defaultAction: Deny, bypass: AzureServices"),
        ({"public_network_access": "Disabled"}, "publicNetworkAccess is Disabled"),
        (
            {"public_network_access": "Disabled", "default_action": "Deny", "private_endpoints": ["pe1"]},
            "private endpoints only: 1 connection(s)",
        ),
    ],
)
def test_a_network_restricted_account_refuses_the_pipeline_whatever_its_identity(
    source: dict[str, Any], network: dict[str, Any], cause: str
) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.register_storage_account(azurite.ACCOUNT, **network)
    account = get_resource(emulator, _account_id(emulator), api_version="2023-05-01")
    assert account["properties"]["networkAcls"]["defaultAction"] == network.get("default_action", "Allow")
    assert account["properties"].get("publicNetworkAccess") == network.get("public_network_access")

    message = message_of(emulator, _export(source, "restricted"))  # ManagedIdentity, role granted
    assert (
        f"Access to container '{source['container']}' with the pipeline's managed identity failed: storage "
        f"account '{azurite.ACCOUNT}' answered 403 AuthorizationFailure: This request is not authorized to "
        "perform this operation." in message
    )
    assert cause in message
    assert "not a trusted Azure service for Storage" in message

    emulator.admin.create_vault("sourcevault", {SAS_SECRET: container_sas(source["container"])})
    sas_message = message_of(
        emulator, _export(source, "restricted2", mode="SasToken", vault="sourcevault", secret=SAS_SECRET)
    )
    assert "with the SAS token of Key Vault secret" in sas_message
    assert "answered 403 AuthorizationFailure" in sas_message

    emulator.admin.register_storage_account(azurite.ACCOUNT)  # all networks allowed again
    run = _export(source, "open")
    assert state(run) == "Succeeded", run_response(emulator, run_id(run))


def test_an_rbac_vault_needs_key_vault_secrets_user_on_the_vault_or_the_secret(
    source: dict[str, Any],
) -> None:
    emulator: RunningEmulator = source["emulator"]
    vault = emulator.admin.create_vault(
        "rbacvault", {SAS_SECRET: container_sas(source["container"])}, rbac=True
    )
    assert vault["properties"]["enableRbacAuthorization"] is True
    # an access policy (what the official templates write) is ignored by an RBAC vault
    exported = export_pipeline(
        emulator, "sourceregistry", source["url"], mode="SasToken", vault="rbacvault", secret=SAS_SECRET
    )
    pipeline, principal = output(exported, "pipelineResourceId"), output(exported, "principalId")
    message = message_of(emulator, export_run(emulator, "sourceregistry", pipeline, ["samples/hello"], "kv1"))
    assert "403 Forbidden (ForbiddenByRbac)" in message

    emulator.admin.assign_role(
        principal, "Key Vault Secrets User", scope=f"{vault['id']}/secrets/{SAS_SECRET}"
    )
    run = export_run(emulator, "sourceregistry", pipeline, ["samples/hello"], "kv2")
    assert state(run) == "Succeeded", run_response(emulator, run_id(run))

    # our template's RoleAssignment variant grants the role at the vault itself
    granted = export_pipeline(
        emulator, "sourceregistry", source["url"], mode="SasToken", vault="rbacvault", secret=SAS_SECRET,
        access="RoleAssignment",
    )  # fmt: skip
    assert state(granted) == "Succeeded", granted.properties.error
    run = export_run(
        emulator, "sourceregistry", output(granted, "pipelineResourceId"), ["samples/hello"], "kv3"
    )
    assert state(run) == "Succeeded", run_response(emulator, run_id(run))


def test_a_disabled_export_policy_blocks_export_pipelines(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    with pytest.raises(AdminError) as raised:  # disabling exports needs public network access disabled
        emulator.admin.create_registry("lockedregistry", export_policy="disabled")
    assert raised.value.body["error"]["code"] == "PublicNetworkAccessEnabled"
    created = emulator.admin.create_registry(
        "lockedregistry", export_policy="disabled", public_network_access="Disabled"
    )["resource"]
    assert created["properties"]["policies"]["exportPolicy"] == {"status": "disabled"}
    assert created["properties"]["publicNetworkAccess"] == "Disabled"
    assert emulator.admin.create_registry("openregistry")["resource"]["properties"]["policies"] == {
        "exportPolicy": {"status": "enabled"}
    }

    refused = export_pipeline(emulator, "lockedregistry", source["url"])
    assert state(refused) == "Failed"
    detail = refused.properties.error.details[0]
    assert detail.code == "ExportPolicyDisabled"
    assert "its export policy is disabled" in detail.message

    # a registry with an export pipeline cannot change its policy
    allowed = export_pipeline(emulator, "sourceregistry", source["url"])
    assert state(allowed) == "Succeeded", allowed.properties.error
    with pytest.raises(AdminError) as raised:
        emulator.admin.set_registry_policies(
            "sourceregistry", export_policy="disabled", public_network_access="Disabled"
        )
    assert raised.value.body["error"]["code"] == "ExportPipelinesExist"
    assert "exportpipeline" in raised.value.body["error"]["message"]


@pytest.mark.parametrize(("shape", "vault_uri"), [("null", None), ("empty", "")])
def test_managed_identity_pipelines_can_answer_with_null_identity_fields_and_an_empty_key_vault_uri(
    source: dict[str, Any], shape: str, vault_uri: str | None
) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.configure(managed_identity_answer_shape=shape)
    identity = emulator.admin.create_identity("transferidentity")
    exported = export_pipeline(
        emulator, "sourceregistry", source["url"], identity=identity["id"], grant=False
    )
    assert state(exported) == "Succeeded", exported.properties.error
    emulator.admin.assign_role(identity["properties"]["principalId"], storage_account=azurite.ACCOUNT)
    answer = resources_client(emulator).send_request(  # as sent: the SDK's models drop null members
        HttpRequest("GET", f"{output(exported, 'pipelineResourceId')}?api-version=2025-06-01-preview")
    )
    pipeline = answer.json()
    assert pipeline["identity"]["principalId"] is None
    assert pipeline["identity"]["tenantId"] is None
    assert pipeline["identity"]["type"] == "userAssigned"
    assert pipeline["properties"]["target"]["keyVaultUri"] == vault_uri
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], f"shape{shape}"
    )
    assert state(run) == "Succeeded", run_response(emulator, run_id(run))
    assert run_response(emulator, run_id(run))["target"]["keyVaultUri"] == vault_uri
