"""What ARM answers besides resources: the cloud's metadata, subscriptions and tenants (what the Azure CLI
reads to register the cloud and log in), and the refusal of a type or an API version it does not have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator import resource_types
from emulator.testing import RunningEmulator
from tests.conformance.arm import send
from tests.conformance.conftest import Cli

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

ROOT = Path(__file__).resolve().parents[2]


def group_path(emulator: RunningEmulator) -> str:
    return f"/subscriptions/{emulator.subscription_id}/resourceGroups/{emulator.resource_group}"


def test_metadata_endpoints_answer_without_a_token(emulator_reset: RunningEmulator) -> None:
    import ssl
    import urllib.request

    context = ssl.create_default_context(cafile=emulator_reset.ca_file)
    url = f"{emulator_reset.arm_endpoint}/metadata/endpoints?api-version=2022-09-01"
    with urllib.request.urlopen(url, context=context) as answer:  # noqa: S310
        metadata = json.loads(answer.read())
    assert metadata["resourceManager"] == emulator_reset.arm_endpoint + "/"
    assert metadata["authentication"]["audiences"] == [emulator_reset.arm_endpoint + "/"]
    assert metadata["suffixes"]["acrLoginServer"] == "azurecr.io"
    assert metadata["suffixes"]["keyVaultDns"] == "vault.azure.net"


def test_subscriptions_and_tenants(emulator_reset: RunningEmulator) -> None:
    status, _, listed = send(emulator_reset, "GET", "/subscriptions", "2022-12-01")
    assert status == 200
    (subscription,) = listed["value"]
    assert subscription["subscriptionId"] == emulator_reset.subscription_id
    assert subscription["tenantId"] == emulator_reset.tenant_id
    assert subscription["state"] == "Enabled"
    status, _, one = send(
        emulator_reset, "GET", f"/subscriptions/{emulator_reset.subscription_id}", "2022-12-01"
    )
    assert (status, one) == (200, subscription)
    status, _, other = send(
        emulator_reset, "GET", "/subscriptions/11111111-1111-1111-1111-111111111111", "2022-12-01"
    )
    assert (status, other["error"]["code"]) == (404, "SubscriptionNotFound")
    status, _, tenants = send(emulator_reset, "GET", "/tenants", "2022-12-01")
    assert [t["tenantId"] for t in tenants["value"]] == [emulator_reset.tenant_id]


@pytest.mark.parametrize(
    ("path", "version", "status", "code", "fragment"),
    [
        (
            "/providers/Microsoft.Example/widgets/w1",
            "2024-01-01",
            400,
            "InvalidResourceNamespace",
            "The resource namespace 'Microsoft.Example' is invalid.",
        ),
        (
            "/providers/Microsoft.Storage/widgets/w1",
            "2023-05-01",
            404,
            "InvalidResourceType",
            "The resource type 'widgets' could not be found in the namespace 'Microsoft.Storage' for api "
            "version '2023-05-01'.",
        ),
        (
            "/providers/Microsoft.KeyVault/vaults/kv1/accessPolicies/add",
            "2025-06-01-preview",
            400,
            "NoRegisteredProviderFound",
            "and API version '2025-06-01-preview' for type 'vaults/accessPolicies'. The supported "
            "api-versions are '2015-06-01,",
        ),
        (
            "/providers/Microsoft.Storage/storageAccounts/sa1",
            "latest",
            400,
            "InvalidApiVersionParameter",
            "The api-version 'latest' is invalid.",
        ),
    ],
    ids=["unknown namespace", "unknown type", "a version the type lacks", "malformed version"],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_what_arm_does_not_have_is_refused_never_a_silent_200(
    emulator_reset: RunningEmulator,
    method: str,
    path: str,
    version: str,
    status: int,
    code: str,
    fragment: str,
) -> None:
    body = {"properties": {}} if method == "PUT" else None
    answered, _, error = send(emulator_reset, method, group_path(emulator_reset) + path, version, body)
    assert answered == status
    assert error["error"]["code"] == code
    assert fragment in error["error"]["message"]


def test_the_access_policy_survives_a_delete_at_the_pipelines_api_version(
    emulator_reset: RunningEmulator,
) -> None:
    vault = emulator_reset.admin.create_vault("kv1", {})
    policy = f"{vault['id']}/accessPolicies/add"
    grant = {
        "tenantId": emulator_reset.tenant_id,
        "objectId": "00000000-0000-0000-0000-0000000000aa",
        "permissions": {"secrets": ["get"]},
    }
    created = send(emulator_reset, "PUT", policy, "2023-07-01", {"properties": {"accessPolicies": [grant]}})
    assert created[0] in (200, 201)
    assert send(emulator_reset, "DELETE", policy, "2025-06-01-preview")[0] == 400
    _, _, kept = send(emulator_reset, "GET", vault["id"], "2023-07-01")
    assert [p["objectId"] for p in kept["properties"]["accessPolicies"]] == [grant["objectId"]]


def test_a_template_with_a_type_arm_lacks_is_refused_before_anything_is_deployed(
    emulator_reset: RunningEmulator,
) -> None:
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                "apiVersion": "2023-01-31",
                "name": "ok01",
            },
            {"type": "Microsoft.Example/widgets", "apiVersion": "2024-01-01", "name": "w1", "properties": {}},
        ],
    }
    path = f"{group_path(emulator_reset)}/providers/Microsoft.Resources/deployments/unknowntype"
    status, _, error = send(
        emulator_reset,
        "PUT",
        path,
        "2025-04-01",
        {"properties": {"template": template, "mode": "Incremental"}},
    )
    assert status == 400
    assert error["error"]["code"] == "InvalidTemplateDeployment"
    assert error["error"]["details"][0]["code"] == "InvalidResourceNamespace"
    identity = f"{group_path(emulator_reset)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ok01"
    assert send(emulator_reset, "GET", identity, "2023-01-31")[0] == 404


def types_and_versions(template: dict[str, Any], parent: str = "") -> list[tuple[str, str]]:
    """(type, apiVersion) of every resource of a template, nested ones and inner templates included, with
    apiVersion variables resolved."""
    variables = template.get("variables") or {}
    found: list[tuple[str, str]] = []
    for resource in template.get("resources") or []:
        kind = resource["type"]
        if parent and "." not in kind.split("/")[0]:
            kind = f"{parent}/{kind}"
        version = resource["apiVersion"]
        if version.startswith("[variables('"):
            version = variables[version[len("[variables('") : -len("')]")]]
        found.append((kind, version))
        found += types_and_versions({"variables": variables, "resources": resource.get("resources")}, kind)
        properties = resource.get("properties")
        inner = properties.get("template") if isinstance(properties, dict) else None
        if isinstance(inner, dict):
            found += types_and_versions(inner)
    return found


@pytest.mark.parametrize(
    "template",
    [
        "infra/main.json",
        "infra/eventgrid.json",
        *[
            f"templates/{k}/azuredeploy.json"
            for k in ("export-pipeline", "import-pipeline", "pipelinerun-export", "pipelinerun-import")
        ],
    ],
)
def test_every_type_the_repository_deploys_is_modelled_at_its_version(template: str) -> None:
    document = json.loads((ROOT / template).read_text(encoding="utf-8"))
    for kind, version in types_and_versions(document):
        resource_types.check(kind, version, ["2025-06-01-preview"], "westus")  # raises when it is not


def test_the_cli_sees_the_cloud_it_registered(az: Cli) -> None:
    cloud = az.az_json("cloud", "show")
    assert cloud["endpoints"]["resourceManager"].rstrip("/") == az.env["EMULATOR_ARM_ENDPOINT"]
    assert cloud["endpoints"]["activeDirectoryResourceId"] == az.env["EMULATOR_ARM_ENDPOINT"] + "/"
    assert cloud["suffixes"]["acrLoginServerEndpoint"] == ".azurecr.io"
    account = az.az_json("account", "show")
    assert account["user"] == {
        "assignedIdentityInfo": "MSI",
        "name": "systemAssignedIdentity",
        "type": "servicePrincipal",
    }
    tenants = az.az_json("rest", "--method", "get", "--url", "/tenants?api-version=2022-12-01")
    assert [t["tenantId"] for t in tenants["value"]] == [account["tenantId"]]
