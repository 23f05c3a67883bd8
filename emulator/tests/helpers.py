"""Shared helpers of the emulator's tests: SDK clients against the fixture, templates, waiting."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.rest import HttpRequest
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from emulator import azurite
from emulator.testing import RunningEmulator

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PIPELINE_API = "2025-06-01-preview"
TERMINAL = ("Succeeded", "Failed", "Canceled")
BLOB_DATA = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # Storage Blob Data Contributor


class StaticCredential:
    """Any bearer token is accepted by the emulator."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("emulator-test-token", int(time.time()) + 3600)


def deployments_client(emulator: RunningEmulator, **kwargs: Any) -> DeploymentsMgmtClient:
    return DeploymentsMgmtClient(
        StaticCredential(), emulator.subscription_id, **emulator.client_kwargs(), **kwargs
    )


def resources_client(emulator: RunningEmulator, **kwargs: Any) -> ResourceManagementClient:
    return ResourceManagementClient(
        StaticCredential(), emulator.subscription_id, **emulator.client_kwargs(), **kwargs
    )


def template(folder: str) -> dict[str, Any]:
    return json.loads((TEMPLATES / folder / "azuredeploy.json").read_text(encoding="utf-8"))


def parameters(**values: Any) -> dict[str, Any]:
    return {name: {"value": value} for name, value in values.items()}


def unique(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10]


def deploy(
    client: DeploymentsMgmtClient,
    group: str,
    name: str,
    template_body: dict[str, Any],
    params: dict[str, Any],
    *,
    timeout: float = 20.0,
) -> Any:
    """PUT the deployment without a poller (as the app does) and wait until it is terminal."""
    body = {"properties": {"template": template_body, "parameters": params, "mode": "Incremental"}}
    client.deployments.begin_create_or_update(group, name, body, polling=False)
    return wait_deployment(client, group, name, timeout)


def wait_deployment(client: DeploymentsMgmtClient, group: str, name: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        deployment = client.deployments.get(group, name)
        if (
            str(deployment.properties.provisioning_state) in TERMINAL
            or deployment.properties.provisioning_state in TERMINAL
        ):
            return deployment
        if time.monotonic() > deadline:
            raise AssertionError(f"deployment {name} still {deployment.properties.provisioning_state}")
        time.sleep(0.05)


def state(deployment: Any) -> str:
    value = deployment.properties.provisioning_state
    return getattr(value, "value", value)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def new_container(emulator: RunningEmulator) -> tuple[str, str]:
    """A fresh Azurite container; returns (name, container URL)."""
    name = unique("transfer")
    service = BlobServiceClient.from_connection_string(emulator.azurite_connection_string)
    service.create_container(name)
    return name, f"{service.url.rstrip('/')}/{name}"


def container_sas(
    container: str,
    permission: str = "racwdl",
    expires_in: timedelta = timedelta(days=1),
    protocol: str | None = "https",
    account_key: str = azurite.ACCOUNT_KEY,
) -> str:
    """A container SAS as the service needs it: HTTPS only (the emulator reaches Azurite with the key)."""
    return generate_container_sas(
        azurite.ACCOUNT,
        container,
        account_key=account_key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + expires_in,
        protocol=protocol,
    )


def grant_blob_data(emulator: RunningEmulator, principal_id: str, account: str = azurite.ACCOUNT) -> None:
    """What a person does after creating a ManagedIdentity pipeline: Storage Blob Data Contributor for its
    identity on the storage account, through ARM (a roleAssignments PUT at the account's scope)."""
    scope = (
        f"/subscriptions/{emulator.subscription_id}/resourceGroups/{emulator.resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{account}"
    )
    role = f"/subscriptions/{emulator.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
    role += BLOB_DATA
    resources_client(emulator).resources.begin_create_or_update_by_id(
        f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
        api_version="2022-04-01",
        parameters={"properties": {"roleDefinitionId": role, "principalId": principal_id}},
    ).result()


def blob_service(emulator: RunningEmulator) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(emulator.azurite_connection_string)


def get_resource(
    emulator: RunningEmulator, resource_id: str, api_version: str = PIPELINE_API
) -> dict[str, Any]:
    return resources_client(emulator).resources.get_by_id(resource_id, api_version=api_version).as_dict()


def registry_id(emulator: RunningEmulator, registry: str) -> str:
    return (
        f"/subscriptions/{emulator.subscription_id}/resourceGroups/{emulator.resource_group}"
        f"/providers/Microsoft.ContainerRegistry/registries/{registry}"
    )


def list_runs(emulator: RunningEmulator, registry: str) -> list[dict[str, Any]]:
    """GET .../registries/{r}/pipelineRuns through the SDK pipeline (follows nextLink)."""
    client = resources_client(emulator)
    url: str | None = f"{registry_id(emulator, registry)}/pipelineRuns?api-version={PIPELINE_API}"
    found: list[dict[str, Any]] = []
    while url:
        response = client.send_request(HttpRequest("GET", url))
        response.raise_for_status()
        page = response.json()
        found.extend(page["value"])
        url = page.get("nextLink")
    return found


def run_response(emulator: RunningEmulator, resource_id: str) -> dict[str, Any]:
    return get_resource(emulator, resource_id)["properties"]["response"]
