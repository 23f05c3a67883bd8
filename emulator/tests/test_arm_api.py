"""The ARM side through the real SDK clients: deployments (LRO, errors, names, concurrency, paging, history
limit), generic resources, pipeline body validation, authentication and injected faults."""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator.admin import AdminError
from emulator.testing import RunningEmulator
from emulator.tests.helpers import (
    PIPELINE_API,
    deploy,
    deployments_client,
    grant_blob_data,
    new_container,
    parameters,
    registry_id,
    resources_client,
    state,
    template,
    unique,
    wait_deployment,
)
from emulator.validation import SUPPORTED_API_VERSIONS

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

SLOW_TEMPLATE = {
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {"name": {"type": "string"}},
    "resources": [
        {
            "type": "Microsoft.Insights/components",
            "apiVersion": "2020-02-02",
            "name": "[parameters('name')]",
            "properties": {},
        }
    ],
    "outputs": {
        "id": {"type": "string", "value": "[resourceId('Microsoft.Insights/components', parameters('name'))]"}
    },
}


def raw(
    emulator: RunningEmulator, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310
        emulator.arm_endpoint + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    context = ssl.create_default_context(cafile=emulator.ca_file)
    try:
        with urllib.request.urlopen(request, context=context) as response:  # noqa: S310
            payload = response.read()
            return response.status, dict(response.headers), json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        return exc.code, dict(exc.headers), json.loads(payload) if payload else None


def test_request_without_bearer_token_is_401_in_arm_shape(emulator_reset: RunningEmulator) -> None:
    status, headers, body = raw(
        emulator_reset,
        "GET",
        f"/subscriptions/{emulator_reset.subscription_id}/resourcegroups/rg?api-version=2026-06-01",
    )
    assert status == 401
    assert body["error"]["code"] == "AuthenticationFailed"
    assert headers.get("x-ms-request-id")


def test_missing_api_version_and_unknown_resource(emulator_reset: RunningEmulator) -> None:
    auth = {"Authorization": "Bearer anything"}
    status, _, body = raw(
        emulator_reset,
        "GET",
        f"/subscriptions/{emulator_reset.subscription_id}/resourcegroups/rg",
        headers=auth,
    )
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    with pytest.raises(ResourceNotFoundError) as caught:
        resources_client(emulator_reset).resources.get_by_id(
            registry_id(emulator_reset, "nosuchregistry"), api_version=PIPELINE_API
        )
    assert caught.value.error.code == "ResourceNotFound"


def test_deployment_with_the_real_poller_and_case_insensitive_ids(emulator_reset: RunningEmulator) -> None:
    client = deployments_client(emulator_reset)
    body = {
        "properties": {
            "template": SLOW_TEMPLATE,
            "parameters": parameters(name="widget1"),
            "mode": "Incremental",
        }
    }
    result = client.deployments.begin_create_or_update(
        emulator_reset.resource_group.upper(), "real-poller", body
    ).result()
    assert state(result) == "Succeeded"
    assert result.id.lower().endswith("/providers/microsoft.resources/deployments/real-poller")
    assert "/resourceGroups/" in result.id
    assert result.properties.parameters == {"name": {"type": "String", "value": "widget1"}}
    widget = result.properties.outputs["id"]["value"]
    found = resources_client(emulator_reset).resources.get_by_id(
        widget.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/"), api_version="2020-02-02"
    )
    assert found.id == widget  # stored under its canonical id, found by any casing
    assert [r.id for r in result.properties.output_resources] == [widget]
    assert client.deployments.check_existence(emulator_reset.resource_group, "real-poller")
    client.deployments.begin_delete(emulator_reset.resource_group, "real-poller").result()
    assert not client.deployments.check_existence(emulator_reset.resource_group, "real-poller")


def test_template_with_a_typo_fails_with_a_clear_error(emulator_reset: RunningEmulator) -> None:
    broken = template("export-pipeline")
    broken["resources"][0]["name"] = (
        "[format('{0}/{1}', parameters('registryNam'), parameters('exportPipelineName'))]"
    )
    body = {
        "properties": {
            "template": broken,
            "parameters": parameters(
                registryName="sourceregistry",
                exportPipelineName="exportpipeline",
                targetUri="https://a.blob.core.windows.net/c",
                storageAccessMode="ManagedIdentity",
            ),
            "mode": "Incremental",
        }
    }
    with pytest.raises(HttpResponseError) as caught:
        deployments_client(emulator_reset).deployments.begin_create_or_update(
            emulator_reset.resource_group, "typo", body, polling=False
        )
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidTemplate"
    assert "registryNam" in caught.value.error.message


def test_missing_key_vault_fails_the_deployment_with_resource_not_found(
    emulator_reset: RunningEmulator,
) -> None:
    emulator_reset.admin.create_registry("sourceregistry")
    deployment = deploy(
        deployments_client(emulator_reset),
        emulator_reset.resource_group,
        "novault",
        template("export-pipeline"),
        parameters(
            registryName="sourceregistry",
            exportPipelineName="exportpipeline",
            targetUri="https://a.blob.core.windows.net/c",
            storageAccessMode="SasToken",
        ),
    )
    assert state(deployment) == "Failed"
    error = deployment.properties.error
    assert error.code == "DeploymentFailed"
    assert error.details[0].code == "ResourceNotFound"
    assert "SasTokenModeRequiresKeyVaultNameAndSasTokenSecretName" in error.details[0].message


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"),
    [
        (lambda p: p.update(exportPipelineName="bad-name"), "InvalidParameter", "bad-name"),
        (lambda p: p.update(options=["OverwriteTags"]), "BadRequest", "OverwriteTags"),
    ],
)
def test_pipeline_rules_fail_the_deployment(
    emulator_reset: RunningEmulator, mutate: Any, code: str, fragment: str
) -> None:
    emulator_reset.admin.create_registry("sourceregistry")
    values = {
        "registryName": "sourceregistry",
        "exportPipelineName": "exportpipeline",
        "targetUri": "https://a.blob.core.windows.net/c",
        "storageAccessMode": "ManagedIdentity",
    }
    mutate(values)
    broken = template("export-pipeline")
    broken["parameters"]["options"].pop("allowedValues")  # let the service, not ARM, judge the option
    client = deployments_client(emulator_reset)
    name = unique("rules")
    body = {"properties": {"template": broken, "parameters": parameters(**values), "mode": "Incremental"}}
    with pytest.raises(HttpResponseError) as caught:  # ARM's pre-flight asks the provider before it starts
        client.deployments.begin_create_or_update(emulator_reset.resource_group, name, body, polling=False)
    assert caught.value.status_code == 400
    error = caught.value.error
    assert error.code == "InvalidTemplateDeployment"
    assert re.fullmatch(
        f"The template deployment '{name}' is not valid according to the validation procedure. "
        r"The tracking id is '[0-9a-f-]{36}'. See inner errors for details.",
        error.message,
    )
    (detail,) = error.details
    assert detail.code == code
    assert fragment in detail.message
    assert detail.target
    assert not client.deployments.check_existence(emulator_reset.resource_group, name)  # nothing recorded


def test_preflight_nests_several_providers_errors_and_tracks_the_correlation_id(
    emulator_reset: RunningEmulator,
) -> None:
    emulator_reset.admin.create_registry("sourceregistry")
    registry = registry_id(emulator_reset, "sourceregistry")
    target = {"type": "AzureStorageBlobContainer", "uri": "https://a.blob.core.windows.net/c"}
    two_bad = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.ContainerRegistry/registries/exportPipelines",
                "apiVersion": PIPELINE_API,
                "name": f"sourceregistry/{name}",
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "target": {**target, "storageAccessMode": "ManagedIdentity"},
                    "options": options,
                },
            }
            for name, options in (("bad-name", []), ("exportpipeline", ["OverwriteTags"]))
        ]
        + [
            {  # needs reference(): judged when the deployment runs, not before
                "type": "Microsoft.ContainerRegistry/registries/exportPipelines",
                "apiVersion": PIPELINE_API,
                "name": "sourceregistry/laterpipeline",
                "identity": {"type": "SystemAssigned"},
                "properties": {"target": "[reference(resourceId('Microsoft.KeyVault/vaults', 'nope'))]"},
            }
        ],
    }
    body = {"properties": {"template": two_bad, "parameters": {}, "mode": "Incremental"}}
    path = (
        f"/subscriptions/{emulator_reset.subscription_id}/resourcegroups/{emulator_reset.resource_group}"
        f"/providers/Microsoft.Resources/deployments/twobad?api-version=2025-04-01"
    )
    sent = "5d1c6a7e-0000-4000-8000-00000000c0de"
    status, headers, error = raw(
        emulator_reset, "PUT", path, body, {"Authorization": "Bearer x", "x-ms-correlation-request-id": sent}
    )
    assert status == 400
    assert headers["x-ms-correlation-request-id"] == sent
    outer = error["error"]
    assert outer["code"] == "InvalidTemplateDeployment"
    assert f"The tracking id is '{sent}'." in outer["message"]
    (preflight,) = outer["details"]
    assert preflight["code"] == "PreflightValidationCheckFailed"
    assert (
        preflight["message"]
        == "Preflight validation failed. Please refer to the details for the specific errors."
    )
    codes = [(d["code"], d["target"]) for d in preflight["details"]]
    assert codes == [("InvalidParameter", "name"), ("BadRequest", "properties.options")]
    assert registry + "/exportPipelines/laterpipeline" not in json.dumps(preflight)

    validate = path.replace("/twobad?", "/twobad/validate?")
    status, _, error = raw(emulator_reset, "POST", validate, body, {"Authorization": "Bearer x"})
    assert (status, error["error"]["code"]) == (400, "InvalidTemplateDeployment")


def test_deployment_correlation_id_is_the_put_s(emulator_reset: RunningEmulator) -> None:
    group = emulator_reset.resource_group
    path = (
        f"/subscriptions/{emulator_reset.subscription_id}/resourcegroups/{group}"
        f"/providers/Microsoft.Resources/deployments/correlated?api-version=2025-04-01"
    )
    body = {
        "properties": {"template": SLOW_TEMPLATE, "parameters": parameters(name="c1"), "mode": "Incremental"}
    }
    auth = {"Authorization": "Bearer x"}
    sent = "0f6ee0c4-1111-4222-8333-444455556666"
    status, headers, created = raw(
        emulator_reset, "PUT", path, body, {**auth, "x-ms-correlation-request-id": sent}
    )
    assert status == 201
    assert headers["x-ms-correlation-request-id"] == sent
    assert created["properties"]["correlationId"] == sent
    wait_deployment(deployments_client(emulator_reset), group, "correlated")
    assert (
        deployments_client(emulator_reset).deployments.get(group, "correlated").properties.correlation_id
        == sent
    )

    status, headers, created = raw(emulator_reset, "PUT", path.replace("correlated", "generated"), body, auth)
    assert status == 201
    generated = headers["x-ms-correlation-request-id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", generated)
    assert created["properties"]["correlationId"] == generated
    status, headers, _ = raw(
        emulator_reset, "GET", path, headers={**auth, "x-ms-correlation-request-id": "abc"}
    )
    assert headers["x-ms-correlation-request-id"] == "abc"  # every answer echoes the client's


def test_pipeline_body_schema_violations_are_rejected(emulator_reset: RunningEmulator) -> None:
    emulator_reset.admin.create_registry("sourceregistry")
    client = resources_client(emulator_reset)
    pipeline_id = registry_id(emulator_reset, "sourceregistry") + "/exportPipelines/exportpipeline"
    cases = [
        (
            {
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "target": {
                        "type": "AzureStorageBlobContainer",
                        "uri": "https://a.blob.core.windows.net/c",
                        "storageAccessMode": "Sometimes",
                    }
                },
            },
            "InvalidRequestContent",
        ),
        ({"identity": {"type": "SystemAssigned"}, "properties": {"options": []}}, "InvalidRequestContent"),
        (
            {
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "target": {
                        "type": "AzureStorageBlobContainer",
                        "uri": "https://a.blob.core.windows.net/c",
                    }
                },
            },
            "BadRequest",
        ),
    ]
    for body, code in cases:
        with pytest.raises(HttpResponseError) as caught:
            client.resources.begin_create_or_update_by_id(
                pipeline_id, api_version=PIPELINE_API, parameters=body, polling=False
            )
        assert caught.value.status_code == 400
        assert caught.value.error.code == code
    old = {
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "target": {
                "type": "AzureStorageBlobContainer",
                "uri": "https://a.blob.core.windows.net/c",
                "keyVaultUri": "https://v.vault.azure.net/secrets/s",
                "storageAccessMode": "SasToken",
            }
        },
    }
    with pytest.raises(HttpResponseError) as caught:
        client.resources.begin_create_or_update_by_id(
            pipeline_id, api_version="2023-01-01-preview", parameters=old, polling=False
        )
    assert caught.value.error.code == "NoRegisteredProviderFound"  # the live service refuses old previews
    emulator_reset.admin.configure(pipeline_api_versions=["2023-01-01-preview", PIPELINE_API])
    with pytest.raises(HttpResponseError) as caught:
        client.resources.begin_create_or_update_by_id(
            pipeline_id, api_version="2023-01-01-preview", parameters=old, polling=False
        )
    assert "storageAccessMode" in caught.value.error.message


def test_pipeline_api_versions_are_those_of_the_live_service(emulator_reset: RunningEmulator) -> None:
    emulator_reset.admin.create_registry("sourceregistry")
    _, url = new_container(emulator_reset)
    auth = {"Authorization": "Bearer x"}
    pipeline = registry_id(emulator_reset, "sourceregistry") + "/exportPipelines/exportpipeline"
    body = {
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "target": {
                "type": "AzureStorageBlobContainer",
                "uri": url,
                "storageAccessMode": "ManagedIdentity",
            }
        },
    }
    live = "2025-06-01-preview, 2025-12-01-preview, 2026-01-01-preview, 2026-03-01-preview"
    assert emulator_reset.admin.config()["pipeline_api_versions"] == list(SUPPORTED_API_VERSIONS)
    for version in SUPPORTED_API_VERSIONS:
        status, headers, _ = raw(emulator_reset, "PUT", f"{pipeline}?api-version={version}", body, auth)
        assert (status, headers["api-supported-versions"]) == (200, live)
        status, headers, _ = raw(emulator_reset, "GET", f"{pipeline}?api-version={version}", headers=auth)
        assert (status, headers["api-supported-versions"]) == (200, live)
    runs = registry_id(emulator_reset, "sourceregistry") + "/pipelineRuns"
    status, headers, _ = raw(emulator_reset, "GET", f"{runs}?api-version={PIPELINE_API}", headers=auth)
    assert (status, headers["api-supported-versions"]) == (200, live)
    status, headers, _ = raw(
        emulator_reset, "GET", f"{runs}/nosuchrun?api-version={PIPELINE_API}", headers=auth
    )
    assert (status, headers["api-supported-versions"]) == (404, live)

    for version in ("2019-12-01-preview", "2025-04-01-preview", "2026-09-01-preview", "2025-06-01"):
        status, _, error = raw(emulator_reset, "GET", f"{pipeline}?api-version={version}", headers=auth)
        assert (status, error["error"]["code"]) == (400, "NoRegisteredProviderFound"), version
        assert f"The supported api-versions are '{live}'" in error["error"]["message"]
    status, _, error = raw(emulator_reset, "GET", f"{runs}?api-version=latest", headers=auth)
    assert (status, error["error"]["code"]) == (400, "InvalidApiVersionParameter")

    emulator_reset.admin.configure(pipeline_api_versions=["2026-03-01-preview"])  # a test can narrow it
    status, _, error = raw(emulator_reset, "GET", f"{pipeline}?api-version={PIPELINE_API}", headers=auth)
    assert (status, error["error"]["code"]) == (400, "NoRegisteredProviderFound")
    status, headers, _ = raw(
        emulator_reset, "GET", f"{pipeline}?api-version=2026-03-01-preview", headers=auth
    )
    assert (status, headers["api-supported-versions"]) == (200, "2026-03-01-preview")
    with pytest.raises(AdminError):
        emulator_reset.admin.configure(pipeline_api_versions=[])
    status, headers, _ = raw(  # other resource types are not concerned
        emulator_reset,
        "GET",
        f"{registry_id(emulator_reset, 'sourceregistry')}?api-version=2019-05-01",
        headers=auth,
    )
    assert status == 200
    assert "api-supported-versions" not in headers


def test_pipeline_crud_through_generic_resources(emulator_reset: RunningEmulator) -> None:
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["latest"]})
    _, url = new_container(emulator_reset)
    client = resources_client(emulator_reset)
    pipeline_id = registry_id(emulator_reset, "sourceregistry") + "/exportPipelines/exportpipeline"
    body = {
        "location": "eastus",
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "target": {
                "type": "AzureStorageBlobContainer",
                "uri": url,
                "storageAccessMode": "ManagedIdentity",
            }
        },
    }
    created = client.resources.begin_create_or_update_by_id(
        pipeline_id, api_version=PIPELINE_API, parameters=body
    ).result()
    assert created.properties["provisioningState"] == "Succeeded"
    assert created.identity.type in ("systemAssigned", "SystemAssigned")
    grant_blob_data(emulator_reset, created.identity.principal_id)

    run_id = registry_id(emulator_reset, "sourceregistry") + "/pipelineRuns/run00001"
    run_body = {
        "properties": {
            "request": {
                "pipelineResourceId": pipeline_id,
                "artifacts": ["samples/hello"],
                "target": {"type": "AzureStorageBlob", "name": "crud"},
            },
            "forceUpdateTag": "a",
        }
    }
    first = client.resources.begin_create_or_update_by_id(
        run_id, api_version=PIPELINE_API, parameters=run_body
    ).result()
    assert first.properties["response"]["status"] == "Succeeded"
    started = first.properties["response"]["startTime"]
    again = client.resources.begin_create_or_update_by_id(
        run_id, api_version=PIPELINE_API, parameters=run_body
    ).result()
    assert again.properties["response"]["startTime"] == started  # identical properties: nothing ran
    run_body["properties"]["forceUpdateTag"] = "b"
    run_body["properties"]["request"]["target"]["name"] = "crud2"
    rerun = client.resources.begin_create_or_update_by_id(
        run_id, api_version=PIPELINE_API, parameters=run_body
    ).result()
    assert rerun.properties["response"]["status"] == "Succeeded"

    client.resources.begin_delete_by_id(run_id, api_version=PIPELINE_API).result()
    client.resources.begin_delete_by_id(pipeline_id, api_version=PIPELINE_API).result()
    assert not client.resources.check_existence_by_id(pipeline_id, api_version=PIPELINE_API)


def test_concurrent_deployment_of_the_same_name_is_409_deployment_active(
    emulator_reset: RunningEmulator,
) -> None:
    emulator_reset.admin.configure(run_seconds=1.5)
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["latest"]})
    _, url = new_container(emulator_reset)
    client = deployments_client(emulator_reset)
    pipeline = deploy(
        client,
        emulator_reset.resource_group,
        "pipeline",
        template("export-pipeline"),
        parameters(
            registryName="sourceregistry",
            exportPipelineName="exportpipeline",
            targetUri=url,
            storageAccessMode="ManagedIdentity",
        ),
    )
    grant_blob_data(emulator_reset, pipeline.properties.outputs["principalId"]["value"])
    run_params = parameters(
        registryName="sourceregistry",
        pipelineRunName="slowrun1",
        pipelineResourceId=pipeline.properties.outputs["pipelineResourceId"]["value"],
        artifacts=["samples/hello"],
        targetName="slow",
    )
    body = {
        "properties": {
            "template": template("pipelinerun-export"),
            "parameters": run_params,
            "mode": "Incremental",
        }
    }
    client.deployments.begin_create_or_update(emulator_reset.resource_group, "slow", body, polling=False)
    assert state(client.deployments.get(emulator_reset.resource_group, "slow")) in ("Accepted", "Running")
    with pytest.raises(HttpResponseError) as caught:
        client.deployments.begin_create_or_update(emulator_reset.resource_group, "slow", body, polling=False)
    assert caught.value.status_code == 409
    assert caught.value.error.code == "DeploymentActive"
    with pytest.raises(HttpResponseError) as deleting:
        client.deployments.begin_delete(emulator_reset.resource_group, "slow", polling=False)
    assert deleting.value.status_code == 409
    assert state(wait_deployment(client, emulator_reset.resource_group, "slow")) == "Succeeded"


def test_invalid_deployment_names(emulator_reset: RunningEmulator) -> None:
    client = deployments_client(emulator_reset)
    body = {
        "properties": {"template": SLOW_TEMPLATE, "parameters": parameters(name="w"), "mode": "Incremental"}
    }
    for name in ("x" * 65, "bad name!"):
        with pytest.raises(HttpResponseError) as caught:
            client.deployments.begin_create_or_update(
                emulator_reset.resource_group, name, body, polling=False
            )
        assert caught.value.error.code == "InvalidDeployment"


def test_list_paging_and_the_history_limit(emulator_reset: RunningEmulator) -> None:
    admin = emulator_reset.admin
    admin.configure(
        page_size=3,
        deployment_limit=8,
        deployment_cleanup_above=7,
        deployment_cleanup_to=5,
        deployment_grooming=False,
    )
    client = deployments_client(emulator_reset)
    group = emulator_reset.resource_group
    for index in range(8):
        deploy(client, group, f"d{index}", SLOW_TEMPLATE, parameters(name=f"w{index}"))
    admin.clear_requests()
    names = [d.name for d in client.deployments.list_by_resource_group(group)]
    assert names == [f"d{i}" for i in range(8)]
    assert len([r for r in admin.requests() if r["method"] == "GET"]) == 3  # 3 pages of 3
    assert len(list(client.deployments.list_by_resource_group(group, top=4))) == 4
    with pytest.raises(HttpResponseError) as caught:
        client.deployments.begin_create_or_update(
            group,
            "d8",
            {
                "properties": {
                    "template": SLOW_TEMPLATE,
                    "parameters": parameters(name="w8"),
                    "mode": "Incremental",
                }
            },
            polling=False,
        )
    assert (caught.value.status_code, caught.value.error.code) == (409, "DeploymentQuotaExceeded")
    assert caught.value.error.message == (
        "Creating the deployment 'd8' would exceed the quota of '8'. The current deployment count is '8'. "
        "Please delete some deployments before creating a new one, or see https://aka.ms/800LimitFix for "
        "information on managing deployment limits."
    )

    admin.configure(deployment_grooming=True)
    client.deployments.begin_delete(group, "d7", polling=False)
    deploy(client, group, "d8", SLOW_TEMPLATE, parameters(name="w8"))  # 8 > 7: the oldest go, down to 5
    deploy(client, group, "d9", SLOW_TEMPLATE, parameters(name="w9"))
    names = [d.name for d in client.deployments.list_by_resource_group(group)]
    assert names == ["d3", "d4", "d5", "d6", "d8", "d9"]
    failed = list(client.deployments.list_by_resource_group(group, filter="provisioningState eq 'Failed'"))
    assert failed == []


def test_throttling_429_with_retry_after_is_retried_by_the_sdk(emulator_reset: RunningEmulator) -> None:
    emulator_reset.admin.inject_fault(
        status=429, method="GET", path="/deployments/throttled$", retry_after=1, count=1
    )
    client = deployments_client(emulator_reset)
    deploy(client, emulator_reset.resource_group, "throttled", SLOW_TEMPLATE, parameters(name="t"))
    emulator_reset.admin.clear_requests()
    start = time.monotonic()
    emulator_reset.admin.inject_fault(
        status=429, method="GET", path="/deployments/throttled$", retry_after=1, count=1
    )
    assert state(client.deployments.get(emulator_reset.resource_group, "throttled")) == "Succeeded"
    assert time.monotonic() - start >= 0.9  # it slept Retry-After
    assert [r["status"] for r in emulator_reset.admin.requests()] == [429, 200]

    emulator_reset.admin.inject_fault(status=429, method="GET", path="/deployments/throttled$")
    status, headers, error = raw(
        emulator_reset,
        "GET",
        f"/subscriptions/{emulator_reset.subscription_id}/resourcegroups/{emulator_reset.resource_group}"
        "/providers/Microsoft.Resources/deployments/throttled?api-version=2025-04-01",
        headers={"Authorization": "Bearer x"},
    )
    assert (status, headers["Retry-After"], error["error"]["code"]) == (
        429,
        "1",
        "SubscriptionRequestsThrottled",
    )
    assert error["error"]["message"].startswith(
        f"Number of 'read' requests for subscription '{emulator_reset.subscription_id}' actor '"
    )
    assert (
        "Please try again after '1' seconds after additional tokens are available."
        in error["error"]["message"]
    )


def test_500_is_retried_and_409_reaches_the_caller(emulator_reset: RunningEmulator) -> None:
    client = deployments_client(emulator_reset)
    deploy(client, emulator_reset.resource_group, "faulty", SLOW_TEMPLATE, parameters(name="f"))
    emulator_reset.admin.clear_requests()
    emulator_reset.admin.inject_fault(status=500, method="GET", path="/deployments/faulty$", count=1)
    assert state(client.deployments.get(emulator_reset.resource_group, "faulty")) == "Succeeded"
    assert [r["status"] for r in emulator_reset.admin.requests()] == [500, 200]

    emulator_reset.admin.inject_fault(status=500, method="GET", path="/deployments/faulty$", count=10)
    with pytest.raises(HttpResponseError) as caught:
        deployments_client(emulator_reset, retry_total=1, retry_backoff_factor=0.01).deployments.get(
            emulator_reset.resource_group, "faulty"
        )
    assert caught.value.status_code == 500
    assert caught.value.error.code == "InternalServerError"
    emulator_reset.admin.clear_faults()

    emulator_reset.admin.inject_fault(
        status=409, method="PUT", path="/deployments/", code="DeploymentActive", message="busy"
    )
    with pytest.raises(HttpResponseError) as conflict:
        client.deployments.begin_create_or_update(
            emulator_reset.resource_group,
            "other",
            {
                "properties": {
                    "template": SLOW_TEMPLATE,
                    "parameters": parameters(name="o"),
                    "mode": "Incremental",
                }
            },
            polling=False,
        )
    assert (conflict.value.status_code, conflict.value.error.code) == (409, "DeploymentActive")


def test_delay_fault(emulator_reset: RunningEmulator) -> None:
    emulator_reset.admin.inject_fault(delay_seconds=0.5, method="GET", path="/resourcegroups/")
    start = time.monotonic()
    status, _, _ = raw(
        emulator_reset,
        "GET",
        f"/subscriptions/{emulator_reset.subscription_id}/resourcegroups/x?api-version=1",
        headers={"Authorization": "Bearer x"},
    )
    assert status == 200
    assert time.monotonic() - start >= 0.5


def test_list_pipeline_runs_pages(emulator_reset: RunningEmulator) -> None:
    emulator_reset.admin.configure(page_size=2)
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["latest"]})
    _, url = new_container(emulator_reset)
    client = resources_client(emulator_reset)
    pipeline_id = registry_id(emulator_reset, "sourceregistry") + "/exportPipelines/exportpipeline"
    body = {
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "target": {
                "type": "AzureStorageBlobContainer",
                "uri": url,
                "storageAccessMode": "ManagedIdentity",
            },
            "options": ["OverwriteBlobs"],
        },
    }
    client.resources.begin_create_or_update_by_id(
        pipeline_id, api_version=PIPELINE_API, parameters=body
    ).result()
    for index in range(3):
        run = {
            "properties": {
                "request": {
                    "pipelineResourceId": pipeline_id,
                    "artifacts": ["samples/hello"],
                    "target": {"type": "AzureStorageBlob", "name": f"b{index}"},
                }
            }
        }
        client.resources.begin_create_or_update_by_id(
            registry_id(emulator_reset, "sourceregistry") + f"/pipelineRuns/run{index:05d}",
            api_version=PIPELINE_API,
            parameters=run,
            polling=False,
        )
    from emulator.tests.helpers import list_runs

    assert sorted(r["name"] for r in list_runs(emulator_reset, "sourceregistry")) == [
        "run00000",
        "run00001",
        "run00002",
    ]


def test_responses_are_not_held_back_by_nagle(emulator_reset: RunningEmulator) -> None:
    """Headers and body leave as two TLS records: without TCP_NODELAY each GET waits ~40 ms for an ACK."""
    emulator_reset.admin.create_registry("latencyregistry")
    client = resources_client(emulator_reset)
    resource = registry_id(emulator_reset, "latencyregistry")
    client.resources.get_by_id(resource, api_version=PIPELINE_API)  # connection set up
    timings = []
    for _ in range(15):
        start = time.perf_counter()
        client.resources.get_by_id(resource, api_version=PIPELINE_API)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 0.025
