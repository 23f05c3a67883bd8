"""infra/eventgrid-registry.json: the source registry's system topic and the subscription of
on_image_pushed (export on push), evaluated by the emulator's template engine, and checkov over it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.test_infra import (
    GROUP,
    INFRA,
    LOCATION,
    TOPIC_PRINCIPAL,
    Deployment,
    FakeAzure,
    assert_checkov_passes,
    deploy_all,
    deploy_main,
    load,
    resource,
    role_assignments,
)

REGISTRY_EVENTS = INFRA / "eventgrid-registry.json"
EVENTGRID_KEY = "SENTINEL-eventgrid-extension-key"


class RegistryAzure(FakeAzure):
    """FakeAzure that also knows the source registry and the app's eventgrid_extension key."""

    def reference(self, resource: str, api_version: str | None, full: bool) -> Any:
        if "/providers/microsoft.containerregistry/registries/" in resource.lower():
            return {"location": LOCATION, "properties": {"loginServer": "src.azurecr.us"}}
        return super().reference(resource, api_version, full)

    def list_keys(self, resource: str, api_version: str) -> dict[str, Any]:
        self.listed.append((resource, api_version))
        assert resource.endswith("/providers/Microsoft.Web/sites/acrtransfer-source/host/default"), resource
        return {"masterKey": "SENTINEL-master", "systemKeys": {"eventgrid_extension": EVENTGRID_KEY}}


def main_source() -> Deployment:
    return deploy_main(INFRA / "main.source.parameters.json", exportOnPush=True)


def registry_parameters(main: Deployment) -> dict[str, Any]:
    """What deploy-eventgrid.sh passes: the app deployment's outputs."""
    return {
        "functionAppName": main.outputs["functionAppName"],
        "functionAppResourceGroup": main.outputs["resourceGroup"],
        "registryName": main.outputs["registryName"],
        "deadLetterStorageAccountName": main.outputs["storageAccountName"],
        "deadLetterStorageResourceGroup": main.outputs["resourceGroup"],
    }


def deploy_registry_events() -> tuple[Deployment, Deployment]:
    main = main_source()
    events = deploy_all(load(REGISTRY_EVENTS), registry_parameters(main), RegistryAzure(), "registry-rg")
    return main, events


def test_the_app_deployment_says_when_it_exports_on_push() -> None:
    main = main_source()
    assert main.outputs["exportOnPush"] is True
    assert main.settings["TRANSFER_EXPORT_ON_PUSH"] == "true"
    assert (main.outputs["registryName"], main.outputs["registryResourceGroup"]) == (
        "mysourceregistry",
        "registry-rg",
    )
    assert deploy_main(INFRA / "main.source.parameters.json").outputs["exportOnPush"] is False
    assert deploy_main(exportOnPush=True).outputs["exportOnPush"] is False  # a target side never does


def test_a_system_topic_on_the_registry_and_a_subscription_of_image_pushed_to_the_function() -> None:
    _, events = deploy_registry_events()
    registry_id = resource("registry-rg", "Microsoft.ContainerRegistry/registries", "mysourceregistry")
    topic = events.one("Microsoft.EventGrid/systemTopics")
    assert topic["properties"] == {
        "source": registry_id,
        "topicType": "Microsoft.ContainerRegistry.Registries",
    }
    assert topic["location"] == LOCATION
    subscription = events.one("Microsoft.EventGrid/systemTopics/eventSubscriptions")["properties"]
    assert subscription["destination"]["endpointType"] == "WebHook"
    assert subscription["destination"]["properties"]["endpointUrl"] == (
        "https://acrtransfer-source.azurewebsites.us/runtime/webhooks/EventGrid"
        f"?functionName=on_image_pushed&code={EVENTGRID_KEY}"
    )
    assert subscription["filter"] == {"includedEventTypes": ["Microsoft.ContainerRegistry.ImagePushed"]}
    assert subscription["eventDeliverySchema"] == "EventGridSchema"
    assert subscription["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}


def test_undeliverable_pushes_are_dead_lettered_into_the_apps_account_with_the_topics_identity() -> None:
    main, events = deploy_registry_events()
    account_id = resource(GROUP, "Microsoft.Storage/storageAccounts", main.outputs["storageAccountName"])
    dead_letter = events.one("Microsoft.EventGrid/systemTopics/eventSubscriptions")["properties"][
        "deadLetterWithResourceIdentity"
    ]
    assert dead_letter == {
        "identity": {"type": "SystemAssigned"},
        "deadLetterDestination": {
            "endpointType": "StorageBlob",
            "properties": {"resourceId": account_id, "blobContainerName": "eventgrid-deadletter-pushes"},
        },
    }
    container = f"{account_id}/blobServices/default/containers/eventgrid-deadletter-pushes"
    assert role_assignments(events) == {("Storage Blob Data Contributor", container)}
    (assignment,) = events.of_type("Microsoft.Authorization/roleAssignments")
    assert assignment.body["properties"]["principalId"] == TOPIC_PRINCIPAL


def test_the_webhook_key_appears_only_in_the_subscription_endpoint() -> None:
    _, events = deploy_registry_events()
    for name, value in events.outputs.items():
        assert EVENTGRID_KEY not in json.dumps(value), name
    for put in events.puts:
        text = json.dumps(put.planned.body)
        expected = 1 if put.planned.type == "Microsoft.EventGrid/systemTopics/eventSubscriptions" else 0
        assert text.count(EVENTGRID_KEY) == expected, put.planned.type
    document = load(REGISTRY_EVENTS)
    assert not any(p.get("type") == "securestring" for p in document["parameters"].values())


def test_the_deploy_script_deploys_it_when_the_app_exports_on_push() -> None:
    script = (INFRA / "deploy-eventgrid.sh").read_text(encoding="utf-8")
    assert "eventgrid-registry.json" in script
    assert "wait_for_key eventgrid_extension on_image_pushed" in script
    required = {n for n, spec in load(REGISTRY_EVENTS)["parameters"].items() if "defaultValue" not in spec}
    for name in required | {"functionAppResourceGroup", "deadLetterStorageResourceGroup"}:
        assert f"{name}=" in script, name
    for output in ("exportOnPush", "registryName", "registryResourceGroup", "storageAccountName"):
        assert f"output {output}" in script, output
        assert output in load(INFRA / "main.json")["outputs"], output
    done = subprocess.run(
        ["/bin/bash", "-n", str(INFRA / "deploy-eventgrid.sh")], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_checkov_passes_the_registry_events_as_deployed(tmp_path: Path) -> None:
    (tmp_path / "eventgrid-registry.json").write_text(REGISTRY_EVENTS.read_text(encoding="utf-8"))
    assert_checkov_passes(tmp_path)
