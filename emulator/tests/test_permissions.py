"""Who may do what on ARM: the permissions API answers a caller's roles at a scope, and a principal made to
hold only its role assignments meets ARM's refusals (403 AuthorizationFailed; a deployment of a resource it
may not write fails pre-flight), through the real management SDK clients."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from emulator.testing import RunningEmulator
from emulator.tests.helpers import (
    deploy,
    deployments_client,
    new_container,
    parameters,
    registry_id,
    resources_client,
    state,
    template,
    unique,
)
from emulator.tests.registry_helpers import JwtCredential

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

PIPELINE_API = "2025-06-01-preview"
TRANSFER_CONTRIBUTOR = "bf94e731-3a51-4a7c-8c54-a1ab9971dfc1"


def permissions(emulator: RunningEmulator, scope: str, credential: object = None) -> list[dict[str, object]]:
    client = resources_client(emulator) if credential is None else _client(emulator, credential)
    answer = client.send_request(
        HttpRequest("GET", f"{scope}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01")
    )
    answer.raise_for_status()
    return list(answer.json()["value"])


def _client(emulator: RunningEmulator, credential: object) -> object:
    from azure.mgmt.resource.resources import ResourceManagementClient

    return ResourceManagementClient(credential, emulator.subscription_id, **emulator.client_kwargs())


def _pipeline(emulator: RunningEmulator, url: str) -> dict[str, object]:
    return {
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "target": {
                "type": "AzureStorageBlobContainer",
                "uri": url,
                "storageAccessMode": "ManagedIdentity",
            },
        },
    }


@pytest.fixture
def registry(emulator_reset: RunningEmulator) -> str:
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["v1"]})
    return registry_id(emulator_reset, "sourceregistry")


def test_an_unrestricted_caller_acts_as_owner(emulator_reset: RunningEmulator, registry: str) -> None:
    assert permissions(emulator_reset, registry) == [
        {
            "actions": ["*"],
            "notActions": [],
            "dataActions": [],
            "notDataActions": [],
            "condition": None,
            "conditionVersion": None,
        }
    ]


def test_a_restricted_app_holds_only_its_role_assignments(
    emulator_reset: RunningEmulator, registry: str
) -> None:
    emulator = emulator_reset
    app = emulator.admin.arm_access()["appPrincipalId"]
    emulator.admin.restrict_arm_access()
    assert emulator.admin.arm_access()["restricted"] == [app]
    assert permissions(emulator, registry) == []
    with pytest.raises(HttpResponseError) as raised:
        resources_client(emulator).resources.get_by_id(registry, api_version=PIPELINE_API)
    assert raised.value.status_code == 403
    assert raised.value.error.code == "AuthorizationFailed"
    assert raised.value.error.message.endswith(
        f"with object id '{app}' does not have authorization to perform action "
        f"'Microsoft.ContainerRegistry/registries/read' over scope '{registry}' or the scope is invalid. If "
        "access was recently granted, please refresh your credentials."
    )

    emulator.admin.assign_role(app, "Container Registry Transfer Pipeline Contributor", scope=registry)
    (granted,) = permissions(emulator, registry)
    assert "Microsoft.ContainerRegistry/registries/exportPipelines/write" in granted["actions"]
    assert "Microsoft.ContainerRegistry/registries/pipelineRuns/write" in granted["actions"]
    assert permissions(emulator, f"/subscriptions/{emulator.subscription_id}") == []  # only at the registry

    _, url = new_container(emulator)
    pipeline = f"{registry}/exportPipelines/exportpipeline"
    resources = resources_client(emulator).resources
    resources.begin_create_or_update_by_id(
        pipeline, api_version=PIPELINE_API, parameters=_pipeline(emulator, url)
    ).result()
    assert resources.get_by_id(pipeline, api_version=PIPELINE_API).name == "exportpipeline"
    with pytest.raises(HttpResponseError) as raised:  # the role covers pipelines, not the registry itself
        resources.get_by_id(registry, api_version=PIPELINE_API)
    assert raised.value.status_code == 403

    # another principal (a JWT names it) is not restricted
    other = _client(emulator, JwtCredential("11111111-2222-4333-8444-555555555555"))
    assert other.resources.get_by_id(registry, api_version=PIPELINE_API).name == "sourceregistry"

    emulator.admin.restrict_arm_access(restricted=False)
    assert resources.get_by_id(registry, api_version=PIPELINE_API).name == "sourceregistry"


def test_deployments_need_their_own_permission_and_each_resource_s(
    emulator_reset: RunningEmulator, registry: str
) -> None:
    emulator = emulator_reset
    app = emulator.admin.arm_access()["appPrincipalId"]
    emulator.admin.restrict_arm_access()
    _, url = new_container(emulator)
    arguments = parameters(
        registryName="sourceregistry",
        exportPipelineName="exportpipeline",
        targetUri=url,
        storageAccessMode="ManagedIdentity",
    )
    client = deployments_client(emulator)
    with pytest.raises(HttpResponseError) as raised:  # no role at all: the deployment itself is refused
        deploy(client, emulator.resource_group, unique("denied-"), template("export-pipeline"), arguments)
    assert raised.value.status_code == 403
    assert "'Microsoft.Resources/deployments/write'" in raised.value.error.message

    group = f"/subscriptions/{emulator.subscription_id}/resourceGroups/{emulator.resource_group}"
    emulator.admin.assign_role(app, "Key Vault Secrets Officer", scope=group)  # may deploy, not pipelines
    with pytest.raises(HttpResponseError) as raised:
        deploy(client, emulator.resource_group, unique("denied-"), template("export-pipeline"), arguments)
    assert raised.value.status_code == 400
    assert raised.value.error.code == "InvalidTemplateDeployment"
    message = raised.value.error.message
    assert message.startswith(
        "The template deployment failed with error: 'Authorization failed for template "
    )
    assert "of type 'Microsoft.ContainerRegistry/registries/exportPipelines'" in message
    assert f"with object id '{app}' does not have permission to perform action " in message
    assert "'Microsoft.ContainerRegistry/registries/exportPipelines/write' at scope" in message

    emulator.admin.assign_role(app, TRANSFER_CONTRIBUTOR, scope=registry)
    deployment = deploy(
        client, emulator.resource_group, unique("allowed-"), template("export-pipeline"), arguments
    )
    assert state(deployment) == "Succeeded", deployment.properties.error


def test_a_seed_restricts_the_app_and_gives_it_roles(emulator_reset: RunningEmulator, registry: str) -> None:
    from emulator.seed import load_seed

    app = emulator_reset.admin.arm_access()["appPrincipalId"]
    load_seed(
        emulator_reset.emulator.admin_routes.dispatch,
        {
            "armAccess": [{"restricted": True}],
            "roleAssignments": [{"principalId": app, "role": TRANSFER_CONTRIBUTOR, "scope": registry}],
            "storageAccounts": [{"name": "lockedstore", "networkDefaultAction": "Deny"}],
        },
    )
    assert emulator_reset.admin.arm_access()["restricted"] == [app]
    (granted,) = permissions(emulator_reset, registry)
    assert "Microsoft.ContainerRegistry/registries/pipelineRuns/write" in granted["actions"]
