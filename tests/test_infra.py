"""infra/: the templates that deploy the app, evaluated by the emulator's ARM engine.

Every infra template is deployed for each example parameter file, nested inner-scope deployments included
(each in its own resource group); the role assignments are checked against the built-in role table below;
the app settings against the settings table (transfer/domain/settings_table.py, docs/settings.md); and no
output, app setting or resource other than the Event Grid webhook ever holds a key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.arm_template import DeploymentContext, PlannedResource, TemplateError, deploy
from tests.design_contract import DESIGN_SETTINGS

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
MAIN = INFRA / "main.json"
EVENTGRID = INFRA / "eventgrid.json"
PARAMETER_FILES = sorted(INFRA.glob("main*.parameters.json"))

SUB = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
GROUP = "transfer-rg"
LOCATION = "usgovvirginia"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
APP_PRINCIPAL = "dddddddd-0000-0000-0000-000000000004"
TOPIC_PRINCIPAL = "eeeeeeee-0000-0000-0000-000000000005"
UAI_PRINCIPAL = "bbbbbbbb-0000-0000-0000-000000000002"
UAI_CLIENT = "cccccccc-0000-0000-0000-000000000003"
UAI = (
    f"/subscriptions/{SUB}/resourceGroups/{GROUP}"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id"
)
BLOBS_EXTENSION_KEY = "SENTINEL-blobs-extension-key"

# Azure built-in role definitions (checked against the Azure built-in roles reference).
BUILT_IN_ROLES = {
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "b93aa761-3e63-49ed-ac28-beffa264f7ac": "Container Registry Repository Reader",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
}
CUSTOM_ROLE = "ACR Transfer Operator"
CUSTOM_ROLE_ACTIONS = [
    "Microsoft.Resources/deployments/*",
    "Microsoft.ContainerRegistry/registries/read",
    "Microsoft.ContainerRegistry/registries/exportPipelines/read",
    "Microsoft.ContainerRegistry/registries/importPipelines/read",
    "Microsoft.ContainerRegistry/registries/pipelineRuns/*",
]

DESIGN_CONNECTIONS = {
    "TransferStorage": {"TransferStorage__blobServiceUri", "TransferStorage__queueServiceUri"},
    "TransferState": {"TransferState__tableServiceUri"},
}
# Settings that belong to the Functions host or the platform, not to transfer/domain/settings.py.
HOST_SETTINGS = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    # Elastic Premium and Dedicated: the runtime, and the package the app runs from (Flex sets neither)
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID",
}
PLANS = ("FlexConsumption", "ElasticPremium", "Dedicated")
SECRET_MARKERS = ("AccountKey=", "SharedAccessSignature=", "SharedAccessKey=", "sig=", BLOBS_EXTENSION_KEY)


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def parameter_values(path: Path) -> dict[str, Any]:
    return {name: entry["value"] for name, entry in load(path)["parameters"].items()}


class FakeAzure:
    """What reference() and listKeys() answer: a sovereign cloud, so endpoints must come from ARM."""

    def __init__(self) -> None:
        self.listed: list[tuple[str, str]] = []

    def reference(self, resource: str, api_version: str | None, full: bool) -> Any:
        lowered = resource.lower()
        name = resource.rsplit("/", 1)[1]
        if "/providers/microsoft.storage/storageaccounts/" in lowered:
            endpoints = {k: f"https://{name}.{k}.core.usgovcloudapi.net/" for k in ("blob", "queue", "table")}
            return (
                {"location": LOCATION, "properties": {"primaryEndpoints": endpoints}}
                if full
                else {"primaryEndpoints": endpoints}
            )
        if "/providers/microsoft.web/sites/" in lowered:
            identity = {"type": "SystemAssigned", "principalId": APP_PRINCIPAL}
            return {"identity": identity} if full else {"defaultHostName": f"{name}.azurewebsites.us"}
        if "/providers/microsoft.insights/components/" in lowered:
            return {"ConnectionString": "InstrumentationKey=00000000;IngestionEndpoint=https://ingest/"}
        if "/providers/microsoft.managedidentity/userassignedidentities/" in lowered:
            return {"principalId": UAI_PRINCIPAL, "clientId": UAI_CLIENT}
        if "/providers/microsoft.eventgrid/systemtopics/" in lowered and full:
            return {"identity": {"type": "SystemAssigned", "principalId": TOPIC_PRINCIPAL}}
        raise TemplateError("ResourceNotFound", f"the fake does not know reference({resource!r}, {full})")

    def list_keys(self, resource: str, api_version: str) -> dict[str, Any]:
        self.listed.append((resource, api_version))
        assert resource.endswith("/providers/Microsoft.Web/sites/acrtransfer-target/host/default"), resource
        return {"masterKey": "SENTINEL-master", "systemKeys": {"blobs_extension": BLOBS_EXTENSION_KEY}}


@dataclass
class Put:
    group: str
    planned: PlannedResource


@dataclass
class Deployment:
    puts: list[Put] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    nested_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[PlannedResource]:
        return [p.planned for p in self.puts if p.planned.type == resource_type]

    def one(self, resource_type: str) -> dict[str, Any]:
        (planned,) = self.of_type(resource_type)
        return planned.body

    @property
    def settings(self) -> dict[str, str]:
        return self.one("Microsoft.Web/sites/config")["properties"]  # type: ignore[no-any-return]


def deploy_all(
    template: dict[str, Any], parameters: dict[str, Any], azure: FakeAzure, group: str = GROUP
) -> Deployment:
    """Deploys with the emulator's engine, then each inner-scope nested deployment in its own group."""
    result = Deployment()
    result.outputs = _deploy(template, parameters, azure, group, result)
    return result


def _deploy(
    template: dict[str, Any], parameters: dict[str, Any], azure: FakeAzure, group: str, result: Deployment
) -> dict[str, Any]:
    ctx = DeploymentContext(SUB, group, LOCATION, "infra-test", TENANT, NOW, azure.reference, azure.list_keys)
    wrapped = {name: {"value": value} for name, value in parameters.items()}
    nested: list[PlannedResource] = []

    def put(planned: PlannedResource) -> dict[str, Any]:
        result.puts.append(Put(group, planned))
        if planned.type == "Microsoft.Resources/deployments":
            nested.append(planned)
        return {"id": planned.resource_id, **planned.body}

    outcome = deploy(template, wrapped, ctx, put)
    for planned in nested:
        properties = planned.body["properties"]
        assert properties["expressionEvaluationOptions"] == {"scope": "inner"}
        nested_group = planned.resource_id.split("/resourceGroups/")[1].split("/")[0]
        values = {name: entry["value"] for name, entry in properties["parameters"].items()}
        result.nested_outputs[planned.name] = _deploy(
            properties["template"], values, azure, nested_group, result
        )
    return {name: output.get("value") for name, output in outcome.outputs.items()}


def deploy_main(path: Path = INFRA / "main.target.parameters.json", **overrides: Any) -> Deployment:
    return deploy_all(load(MAIN), {**parameter_values(path), **overrides}, FakeAzure())


def eventgrid_parameters(main: Deployment) -> dict[str, Any]:
    """What deploy-eventgrid.sh passes: the app deployment's outputs."""
    return {
        "functionAppName": main.outputs["functionAppName"],
        "functionAppResourceGroup": main.outputs["resourceGroup"],
        "storageAccountName": main.outputs["transferStorageAccountName"],
        "targetContainer": main.outputs["targetContainer"],
    }


def role_assignments(deployment: Deployment) -> set[tuple[str, str]]:
    """(role name, scope id) of every assignment, nested deployments included."""
    found = set()
    for put in deployment.puts:
        planned = put.planned
        if planned.type != "Microsoft.Authorization/roleAssignments":
            continue
        properties = planned.body["properties"]
        role_id = properties["roleDefinitionId"]
        assert role_id.startswith(f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/")
        guid = role_id.rsplit("/", 1)[1]
        name = BUILT_IN_ROLES.get(guid) or custom_role_name(deployment, guid)
        assert properties["principalType"] == "ServicePrincipal"
        scope, _, _ = planned.resource_id.partition("/providers/Microsoft.Authorization/roleAssignments/")
        found.add((name, scope))
    return found


def custom_role_name(deployment: Deployment, guid: str) -> str:
    (definition,) = [
        p for p in deployment.of_type("Microsoft.Authorization/roleDefinitions") if p.name == guid
    ]
    assert definition.body["properties"]["roleName"].startswith(CUSTOM_ROLE)
    return CUSTOM_ROLE


def group_id(group: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}"


def resource(group: str, kind: str, name: str) -> str:
    return f"{group_id(group)}/providers/{kind}/{name}"


# ---------------------------------------------------------------------------------------------------------
# Every template, every parameter file


def test_the_example_parameter_files_exist() -> None:
    names = {p.name for p in PARAMETER_FILES}
    assert {
        "main.source.parameters.json",
        "main.target.parameters.json",
        "main.both.parameters.json",
    } <= names


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_main_and_eventgrid_deploy_for_each_parameter_file(path: Path) -> None:
    main = deploy_main(path)
    outputs = main.outputs
    app = parameter_values(path).get("functionAppName") or outputs["functionAppName"]
    assert outputs["functionAppName"] == app
    assert outputs["functionAppResourceId"] == resource(GROUP, "Microsoft.Web/sites", app)
    assert outputs["functionAppHostName"] == f"{app}.azurewebsites.us"
    assert outputs["principalId"] == APP_PRINCIPAL
    assert outputs["appInsightsResourceId"] == resource(GROUP, "Microsoft.Insights/components", f"{app}-ai")
    assert outputs["transferStorageAccountResourceId"] == resource(
        outputs["transferStorageResourceGroup"],
        "Microsoft.Storage/storageAccounts",
        outputs["transferStorageAccountName"],
    )
    assert isinstance(outputs["rolesToGrantYourself"], list)
    # every nested template evaluated too, in its own resource group
    assert len(main.nested_outputs) == len(main.of_type("Microsoft.Resources/deployments"))

    if main.settings["TRANSFER_IMPORT_PIPELINE"]:  # the target side gets the blob trigger's subscription
        azure = FakeAzure()
        parameters = eventgrid_parameters(main)
        if path.name != "main.target.parameters.json":
            parameters["functionAppName"] = "acrtransfer-target"  # the fake's app with a host key
        events = deploy_all(load(EVENTGRID), parameters, azure, outputs["transferStorageResourceGroup"])
        assert azure.listed == [
            (f"{resource(GROUP, 'Microsoft.Web/sites', 'acrtransfer-target')}/host/default", "2024-04-01")
        ]
        assert (
            events.outputs["subjectBeginsWith"]
            == f"/blobServices/default/containers/{outputs['targetContainer']}/"
        )


@pytest.mark.parametrize(
    ("path", "exports", "imports"),
    [
        (INFRA / "main.source.parameters.json", True, False),
        (INFRA / "main.target.parameters.json", False, True),
        (INFRA / "main.both.parameters.json", True, True),
    ],
    ids=["source", "target", "both"],
)
def test_the_sides(path: Path, exports: bool, imports: bool) -> None:
    settings = deploy_main(path).settings
    assert bool(settings["TRANSFER_EXPORT_PIPELINE"]) is exports
    assert bool(settings["TRANSFER_IMPORT_PIPELINE"]) is imports


# ---------------------------------------------------------------------------------------------------------
# Hosting plans: Flex Consumption, Elastic Premium, Dedicated


PLAN_SHAPES = {
    "FlexConsumption": ("functionapp", {"name": "FC1", "tier": "FlexConsumption"}),
    "ElasticPremium": ("elastic", {"name": "EP1", "tier": "ElasticPremium"}),
    "Dedicated": ("linux", {"name": "P1v3", "tier": "PremiumV3"}),
}
CONTENT_SHARE = {"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "AzureWebJobsStorage"}


def python_version() -> str:
    version: str = load(MAIN)["variables"]["pythonVersion"]
    return version


@pytest.mark.parametrize("plan", PLANS)
def test_each_hosting_plan_runs_python_from_a_package_the_identity_reads(plan: str) -> None:
    main = deploy_main(hostingPlan=plan)
    kind, sku = PLAN_SHAPES[plan]
    farm = main.one("Microsoft.Web/serverfarms")
    assert (farm["kind"], farm["sku"], farm["properties"]["reserved"]) == (kind, sku, True)
    assert farm["properties"]["maximumElasticWorkerCount"] == (20 if plan == "ElasticPremium" else None)
    site = main.one("Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    properties, settings = site["properties"], main.settings
    app_blob = f"https://{main.outputs['storageAccountName']}.blob.core.usgovcloudapi.net/"
    containers = [p.name for p in main.of_type("Microsoft.Storage/storageAccounts/blobServices/containers")]
    (package_container,) = [c.rsplit("/", 1)[1] for c in containers if "/app-package-" in c]
    assert main.outputs["hostingPlan"] == plan
    if plan == "FlexConsumption":
        config = properties["functionAppConfig"]
        assert config["runtime"] == {"name": "python", "version": python_version()}
        assert config["deployment"]["storage"]["value"] == app_blob + package_container
        assert config["deployment"]["storage"]["authentication"] == {"type": "SystemAssignedIdentity"}
        assert config["scaleAndConcurrency"] == {"maximumInstanceCount": 100, "instanceMemoryMB": 2048}
        assert properties["siteConfig"]["linuxFxVersion"] is None
        assert not HOST_SETTINGS - {"APPLICATIONINSIGHTS_CONNECTION_STRING"} & settings.keys()
        assert main.outputs["packageBlobUrl"] == ""
    else:
        assert properties["functionAppConfig"] is None
        assert properties["siteConfig"]["linuxFxVersion"] == f"Python|{python_version()}"
        assert properties["siteConfig"]["alwaysOn"] is (True if plan == "Dedicated" else None)
        assert settings["FUNCTIONS_EXTENSION_VERSION"] == "~4"
        assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
        package = settings["WEBSITE_RUN_FROM_PACKAGE"]
        assert package == f"{app_blob}{package_container}/functionapp.zip"  # no SAS: the identity reads it
        assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == "SystemAssigned"
        assert main.outputs["packageBlobUrl"] == package


@pytest.mark.parametrize("plan", PLANS)
def test_every_plan_keeps_identity_based_connections_and_no_content_share(plan: str) -> None:
    flex = deploy_main(INFRA / "main.both.parameters.json", userAssignedIdentity=UAI).settings
    settings = deploy_main(
        INFRA / "main.both.parameters.json", userAssignedIdentity=UAI, hostingPlan=plan
    ).settings
    connections = {k: v for k, v in settings.items() if "__" in k}
    assert connections == {k: v for k, v in flex.items() if "__" in k}
    assert {k.split("__")[1] for k in connections} == {
        "blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId"
    }  # fmt: skip
    assert not CONTENT_SHARE & settings.keys()
    assert not any(marker in json.dumps(settings) for marker in SECRET_MARKERS)
    if plan != "FlexConsumption":
        assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == UAI
    account = deploy_main(hostingPlan=plan).one("Microsoft.Storage/storageAccounts")
    assert account["properties"]["allowSharedKeyAccess"] is False


@pytest.mark.parametrize("plan", PLANS)
def test_the_role_assignments_do_not_depend_on_the_plan(plan: str) -> None:
    for path in PARAMETER_FILES:
        assert role_assignments(deploy_main(path, hostingPlan=plan)) == role_assignments(deploy_main(path))


@pytest.mark.parametrize("plan", PLANS)
def test_the_blob_triggers_event_grid_wiring_on_each_plan(plan: str) -> None:
    main = deploy_main(hostingPlan=plan, functionAppName="acrtransfer-target")
    settings = main.settings
    watched = main.outputs["transferStorageAccountName"]
    # the trigger's connection reads the watched account's blobs and its poison queue ...
    assert settings["TransferStorage__blobServiceUri"] == f"https://{watched}.blob.core.usgovcloudapi.net/"
    assert settings["TransferStorage__queueServiceUri"] == f"https://{watched}.queue.core.usgovcloudapi.net/"
    # ... and the subscription on that account delivers to the app's blobs webhook with the system key
    azure = FakeAzure()
    events = deploy_all(load(EVENTGRID), eventgrid_parameters(main), azure)
    app_id = resource(GROUP, "Microsoft.Web/sites", "acrtransfer-target")
    assert azure.listed == [(f"{app_id}/host/default", "2024-04-01")]
    topic = events.one("Microsoft.EventGrid/systemTopics")
    assert topic["properties"]["source"] == resource(GROUP, "Microsoft.Storage/storageAccounts", watched)
    subscription = events.one("Microsoft.EventGrid/systemTopics/eventSubscriptions")["properties"]
    assert subscription["destination"]["properties"]["endpointUrl"] == (
        f"https://{main.outputs['functionAppHostName']}/runtime/webhooks/blobs"
        f"?functionName=Host.Functions.on_target_blob&code={BLOBS_EXTENSION_KEY}"
    )


@pytest.mark.parametrize(
    ("plan", "sku"), [("ElasticPremium", "EP2"), ("Dedicated", "B1"), ("Dedicated", "P0v3")]
)
def test_a_plan_sku_can_be_chosen(plan: str, sku: str) -> None:
    farm = deploy_main(hostingPlan=plan, planSkuName=sku).one("Microsoft.Web/serverfarms")
    assert farm["sku"] == {"name": sku}
    assert farm["kind"] == PLAN_SHAPES[plan][0]


def test_an_unknown_plan_is_refused() -> None:
    with pytest.raises(TemplateError, match="hostingPlan"):
        deploy_main(hostingPlan="Consumption")


def test_the_python_version_deployed_is_the_one_tests_host_indexes_the_app_with() -> None:
    """tests/host indexes function_app.py with the Functions worker in .venv-host, made from Python 3.13 by
    the Makefile: the version infra/main.json deploys on every plan must be that one."""
    major, minor = python_version().split(".")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert f"sys.version_info[:2] != ({major}, {minor})" in makefile
    assert f"python{major}.{minor}" in makefile
    host_python = REPO / ".venv-host" / "bin" / "python"
    if not host_python.exists():
        pytest.fail(f"{host_python} is missing: `make pytest` (or `make deps`) creates it", pytrace=False)
    done = subprocess.run(
        [str(host_python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == python_version()
    worker_test = (REPO / "tests" / "host" / "test_worker_indexing.py").read_text(encoding="utf-8")
    assert f'startswith("{python_version()}.")' in worker_test


def render(deployment: Deployment) -> dict[str, Any]:
    """The resources a deployment PUT, as a template of literal values: what checkov can judge."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": p.planned.type,
                "apiVersion": p.planned.api_version,
                "name": p.planned.name,
                **p.planned.body,
            }
            for p in deployment.puts
        ],
    }


def assert_checkov_passes(folder: Path) -> None:
    """checkov (its own venv, as `make checkov` runs it) finds nothing wrong in the templates of `folder`."""
    checkov = REPO / ".venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        pytest.fail(f"{checkov} is missing: `make pytest` (or `make checkov`) creates it", pytrace=False)
    done = subprocess.run(
        [
            str(checkov),
            "-d",
            str(folder),
            "--framework",
            "arm",
            "--config-file",
            str(REPO / ".checkov.yaml"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Failed checks: 0" in done.stdout
    assert re.search(r"Passed checks: [1-9]", done.stdout)


def test_checkov_passes_every_plan_as_deployed(tmp_path: Path) -> None:
    """`make checkov` scans infra/ as written (expressions); here each plan's evaluated resources are
    scanned too, with the same configuration, so a value only one plan sets is judged."""
    for plan in PLANS:
        for path in PARAMETER_FILES:
            rendered = render(deploy_main(path, hostingPlan=plan))
            (tmp_path / f"{plan}-{path.stem}.json").write_text(json.dumps(rendered, indent=2))
    assert_checkov_passes(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Role assignments


def test_target_side_in_one_group_with_the_custom_role() -> None:
    main = deploy_main()
    app_storage = resource(GROUP, "Microsoft.Storage/storageAccounts", main.outputs["storageAccountName"])
    registry = resource(GROUP, "Microsoft.ContainerRegistry/registries", "mytargetregistry")
    assert role_assignments(main) == {
        ("Storage Blob Data Owner", app_storage),
        ("Storage Queue Data Contributor", app_storage),
        ("Storage Table Data Contributor", app_storage),
        (CUSTOM_ROLE, group_id(GROUP)),
        ("AcrPull", registry),
    }
    (definition,) = main.of_type("Microsoft.Authorization/roleDefinitions")
    properties = definition.body["properties"]
    assert properties["type"] == "CustomRole"
    assert properties["assignableScopes"] == [group_id(GROUP)]
    assert properties["permissions"] == [{"actions": CUSTOM_ROLE_ACTIONS, "notActions": []}]
    assert main.outputs["registryGroupContributorAssigned"] is False
    assert main.outputs["registryRolesAssigned"] is True
    assert main.outputs["rolesToGrantYourself"] == []
    custom_role = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{definition.name}"
    assert main.nested_outputs["acrtransfer-target-registry-access"] == {
        "groupRoleDefinitionId": custom_role,
        "dataRoleAssigned": True,
    }


def test_source_side_grants_in_the_registry_and_vault_groups() -> None:
    main = deploy_main(INFRA / "main.source.parameters.json")
    app_storage = resource(GROUP, "Microsoft.Storage/storageAccounts", main.outputs["storageAccountName"])
    assert role_assignments(main) == {
        ("Storage Blob Data Owner", app_storage),
        ("Storage Queue Data Contributor", app_storage),
        ("Storage Table Data Contributor", app_storage),
        (CUSTOM_ROLE, group_id("registry-rg")),
        ("AcrPull", resource("registry-rg", "Microsoft.ContainerRegistry/registries", "mysourceregistry")),
        ("Key Vault Secrets User", resource("registry-rg", "Microsoft.KeyVault/vaults", "mysourcekeyvault")),
    }
    groups = {
        p.resource_id.split("/resourceGroups/")[1].split("/")[0]
        for p in main.of_type("Microsoft.Resources/deployments")
    }
    assert groups == {"registry-rg"}
    assert main.settings["TRANSFER_RESOURCE_GROUP"] == "registry-rg"


def test_both_sides_with_a_watched_account_elsewhere_and_contributor() -> None:
    main = deploy_main(INFRA / "main.both.parameters.json")
    app_storage = resource(GROUP, "Microsoft.Storage/storageAccounts", main.outputs["storageAccountName"])
    watched = resource("storage-rg", "Microsoft.Storage/storageAccounts", "mytransferstorage")
    assert role_assignments(main) == {
        ("Storage Blob Data Owner", app_storage),
        ("Storage Queue Data Contributor", app_storage),
        ("Storage Table Data Contributor", app_storage),
        ("Contributor", group_id(GROUP)),
        (
            "Container Registry Repository Reader",
            resource(GROUP, "Microsoft.ContainerRegistry/registries", "myregistry"),
        ),
        ("Storage Blob Data Contributor", watched),
        ("Storage Queue Data Contributor", watched),
        ("Key Vault Secrets User", resource(GROUP, "Microsoft.KeyVault/vaults", "mykeyvault")),
    }
    assert main.outputs["registryGroupContributorAssigned"] is True
    assert (
        main.settings["TransferStorage__blobServiceUri"]
        == "https://mytransferstorage.blob.core.usgovcloudapi.net/"
    )
    assert main.outputs["transferStorageResourceGroup"] == "storage-rg"


def test_grants_in_other_groups_are_listed_when_not_made() -> None:
    main = deploy_main(
        INFRA / "main.both.parameters.json",
        grantInOtherResourceGroups=False,
        registryResourceGroup="registry-rg",
        keyVaultResourceGroup="vault-rg",
    )
    assert not main.of_type("Microsoft.Resources/deployments")
    assert {role for role, _ in role_assignments(main)} == {
        "Storage Blob Data Owner",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
    }
    pending = {(entry["role"], entry["scope"]) for entry in main.outputs["rolesToGrantYourself"]}
    assert pending == {
        ("Contributor", group_id("registry-rg")),
        (
            "ContainerRegistryRepositoryReader",
            resource("registry-rg", "Microsoft.ContainerRegistry/registries", "myregistry"),
        ),
        (
            "Storage Blob Data Contributor",
            resource("storage-rg", "Microsoft.Storage/storageAccounts", "mytransferstorage"),
        ),
        (
            "Storage Queue Data Contributor",
            resource("storage-rg", "Microsoft.Storage/storageAccounts", "mytransferstorage"),
        ),
        ("Key Vault Secrets User", resource("vault-rg", "Microsoft.KeyVault/vaults", "mykeyvault")),
    }
    assert main.outputs["registryRolesAssigned"] is False


def test_no_registry_grants_when_turned_off_and_a_user_assigned_identity() -> None:
    main = deploy_main(grantRegistryGroupContributor=False, registryDataRole="None", userAssignedIdentity=UAI)
    assert {role for role, _ in role_assignments(main)} == {
        "Storage Blob Data Owner",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
    }
    for put in main.puts:
        if put.planned.type == "Microsoft.Authorization/roleAssignments":
            assert put.planned.body["properties"]["principalId"] == UAI_PRINCIPAL
    assert main.settings["AZURE_CLIENT_ID"] == UAI_CLIENT
    assert main.outputs["principalId"] == UAI_PRINCIPAL


def test_every_role_definition_id_in_the_templates_is_known() -> None:
    text = MAIN.read_text(encoding="utf-8") + EVENTGRID.read_text(encoding="utf-8")
    guids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))
    assert guids <= set(BUILT_IN_ROLES), sorted(guids - set(BUILT_IN_ROLES))


# ---------------------------------------------------------------------------------------------------------
# App settings


def config_settings() -> set[str]:
    """The setting names the app reads: the settings table's rows, and the connections' prefixes (a
    connection's identity form is `NAME__blobServiceUri` and its siblings; AzureWebJobsStorage is the state
    tables' fallback)."""
    from transfer.domain.settings_table import SETTINGS

    names = {setting.name for setting in SETTINGS if not setting.name[0].islower()}
    connections = {"TransferStorage", "TransferState", "AzureWebJobsStorage"}
    return {n for n in names if n.startswith(("TRANSFER_", "AZURE_"))} | {f"{c}__" for c in connections}


def is_known(setting: str, known: set[str]) -> bool:
    return setting in known or any(setting.startswith(prefix) for prefix in known if prefix.endswith("__"))


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=lambda p: p.name)
def test_every_setting_the_template_sets_is_read_by_the_app(path: Path) -> None:
    known = config_settings() | HOST_SETTINGS
    for overrides in ({}, {"userAssignedIdentity": UAI}):
        settings = deploy_main(path, **overrides).settings
        unknown = sorted(s for s in settings if not is_known(s, known))
        assert not unknown, f"set by infra/main.json but read by nothing in transfer/domain: {unknown}"
        assert all(isinstance(value, str) for value in settings.values())


def test_every_design_setting_is_settable() -> None:
    values = {
        "exportIncremental": False,
        "exportMaxArtifacts": 42,
        "registryEndpoint": "https://myregistry-private.azurecr.us",
        "runTimeoutHours": 12,
        "importMaxAttempts": 5,
        "armEndpoint": "https://management.usgovcloudapi.net",
        "cloud": "AzureUSGovernment",
        "copyTargetUrl": "https://target.blob.core.usgovcloudapi.net/transfer",
        "copyTargetSasSecretUri": "https://kv.vault.usgovcloudapi.net/secrets/sas",
        "userAssignedIdentity": UAI,
    }
    settings = deploy_main(INFRA / "main.both.parameters.json", **values).settings
    assert set(settings) >= DESIGN_SETTINGS, sorted(DESIGN_SETTINGS - set(settings))
    for connection, names in DESIGN_CONNECTIONS.items():
        assert names <= set(settings), connection
    assert settings["TRANSFER_EXPORT_INCREMENTAL"] == "false"
    assert settings["TRANSFER_EXPORT_MAX_ARTIFACTS"] == "42"
    assert settings["TRANSFER_REGISTRY_ENDPOINT"] == "https://myregistry-private.azurecr.us"
    assert settings["TRANSFER_RUN_TIMEOUT_HOURS"] == "12"
    assert settings["TRANSFER_IMPORT_MAX_ATTEMPTS"] == "5"
    defaults = deploy_main().settings
    assert (defaults["TRANSFER_EXPORT_INCREMENTAL"], defaults["TRANSFER_EXPORT_MAX_ARTIFACTS"]) == (
        "true",
        "500",
    )
    assert (defaults["TRANSFER_RUN_TIMEOUT_HOURS"], defaults["TRANSFER_IMPORT_MAX_ATTEMPTS"]) == ("24", "3")


def test_every_parameter_is_documented_in_the_infra_readme() -> None:
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for path in (MAIN, EVENTGRID):
        document = load(path)
        for name, spec in document["parameters"].items():
            assert spec["metadata"]["description"], name
            assert f"`{name}`" in readme, f"infra/README.md does not document {name} of {path.name}"
        for name in document["outputs"]:
            assert f"`{name}`" in readme, f"infra/README.md does not document output {name} of {path.name}"


# ---------------------------------------------------------------------------------------------------------
# No secrets


def list_calls(document: dict[str, Any]) -> list[str]:
    text = json.dumps(document)
    return re.findall(r"\blist[A-Za-z]*\(", text)


def test_no_secret_in_outputs_or_app_settings() -> None:
    assert list_calls(load(MAIN)) == []  # main.json never reads a key
    for path in PARAMETER_FILES:
        main = deploy_main(path)
        for name, value in [*main.outputs.items(), *main.settings.items()]:
            text = json.dumps(value)
            assert not any(marker in text for marker in SECRET_MARKERS), name
        for name, decl in load(MAIN)["outputs"].items():
            assert not re.search(r"\blist[A-Za-z]*\(|keys", decl["value"], re.IGNORECASE), name


def test_the_webhook_key_appears_only_in_the_event_subscription_endpoint() -> None:
    document = load(EVENTGRID)
    assert len(list_calls(document)) == 1
    assert not any(p.get("type") == "securestring" for p in document["parameters"].values())
    main = deploy_main()
    events = deploy_all(document, eventgrid_parameters(main), FakeAzure())
    for name, value in events.outputs.items():
        assert BLOBS_EXTENSION_KEY not in json.dumps(value), name
    for put in events.puts:
        text = json.dumps(put.planned.body)
        if put.planned.type == "Microsoft.EventGrid/systemTopics/eventSubscriptions":
            assert text.count(BLOBS_EXTENSION_KEY) == 1
        else:
            assert BLOBS_EXTENSION_KEY not in text, put.planned.type


# ---------------------------------------------------------------------------------------------------------
# Event Grid


def test_event_subscription_filters_and_delivery() -> None:
    main = deploy_main()
    events = deploy_all(load(EVENTGRID), eventgrid_parameters(main), FakeAzure())
    account = main.outputs["transferStorageAccountName"]
    account_id = resource(GROUP, "Microsoft.Storage/storageAccounts", account)
    topic = events.one("Microsoft.EventGrid/systemTopics")
    assert topic["properties"] == {"source": account_id, "topicType": "Microsoft.Storage.StorageAccounts"}
    assert topic["location"] == LOCATION
    assert topic["identity"] == {"type": "SystemAssigned"}
    subscription = events.one("Microsoft.EventGrid/systemTopics/eventSubscriptions")["properties"]
    assert subscription["destination"]["endpointType"] == "WebHook"
    assert subscription["destination"]["properties"]["endpointUrl"] == (
        "https://acrtransfer-target.azurewebsites.us/runtime/webhooks/blobs"
        f"?functionName=Host.Functions.on_target_blob&code={BLOBS_EXTENSION_KEY}"
    )
    assert subscription["filter"] == {
        "subjectBeginsWith": "/blobServices/default/containers/transfer/",
        "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
        "advancedFilters": [
            {
                "operatorType": "StringIn",
                "key": "data.api",
                "values": ["PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"],
            }
        ],
    }
    assert subscription["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    dead_letter = subscription["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    assert dead_letter["deadLetterDestination"] == {
        "endpointType": "StorageBlob",
        "properties": {"resourceId": account_id, "blobContainerName": "eventgrid-deadletter"},
    }
    container = f"{account_id}/blobServices/default/containers/eventgrid-deadletter"
    assert role_assignments(events) == {("Storage Blob Data Contributor", container)}
    (assignment,) = events.of_type("Microsoft.Authorization/roleAssignments")
    assert assignment.body["properties"]["principalId"] == TOPIC_PRINCIPAL


def test_deploy_script_passes_what_eventgrid_json_needs() -> None:
    script = (INFRA / "deploy-eventgrid.sh").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert "eventgrid.json" in script
    required = {name for name, spec in load(EVENTGRID)["parameters"].items() if "defaultValue" not in spec}
    for name in required | {"functionAppResourceGroup", "targetContainer"}:
        assert f"{name}=" in script, name
    for output in (
        "functionAppName",
        "transferStorageAccountName",
        "transferStorageResourceGroup",
        "targetContainer",
    ):
        assert f"output {output}" in script, output
        assert output in load(MAIN)["outputs"], output
    assert '"systemKeys.$1 != null"' in script  # waits for each key without printing it
    assert "wait_for_key blobs_extension on_target_blob" in script


# ---------------------------------------------------------------------------------------------------------
# Alerts


def kusto_blocks(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.findall(r"```kusto\n(.*?)```", text, re.DOTALL)]


def test_alert_rules_run_the_queries_of_the_readme() -> None:
    readme_queries = kusto_blocks((INFRA / "README.md").read_text(encoding="utf-8"))
    main = deploy_main()
    rules = main.of_type("Microsoft.Insights/scheduledQueryRules")
    events = set()
    for rule in rules:
        (criterion,) = rule.body["properties"]["criteria"]["allOf"]
        query = " ".join(criterion["query"].split())
        assert query in readme_queries, rule.name
        assert query.startswith('traces | where customDimensions["transfer.event"] == ')
        events.add(query.split('== "')[1].split('"')[0])
        assert rule.body["properties"]["scopes"] == [main.outputs["appInsightsResourceId"]]
        assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
        assert rule.body["properties"]["actions"]["actionGroups"] == [
            resource(GROUP, "Microsoft.Insights/actionGroups", f"{main.outputs['functionAppName']}-alerts")
        ]
    assert events == {"run.failed", "verification.failed", "blob.needs_attention"}
    assert len(readme_queries) == len(rules) == 3
    (group,) = main.of_type("Microsoft.Insights/actionGroups")
    assert group.body["properties"]["emailReceivers"][0]["emailAddress"] == "acr-transfer-ops@example.com"

    quiet = deploy_main(alertEmail="")
    assert not quiet.of_type("Microsoft.Insights/actionGroups")
    for rule in quiet.of_type("Microsoft.Insights/scheduledQueryRules"):
        assert rule.body["properties"]["actions"]["actionGroups"] == []
    assert not deploy_main(alertsEnabled=False).of_type("Microsoft.Insights/scheduledQueryRules")


# ---------------------------------------------------------------------------------------------------------
# Hardening the policy scan asks for


@pytest.mark.parametrize("plan", PLANS)
def test_site_and_storage_hardening(plan: str) -> None:
    main = deploy_main(hostingPlan=plan)
    site = main.one("Microsoft.Web/sites")["properties"]
    assert site["httpsOnly"] is True
    assert {
        k: v for k, v in site["siteConfig"].items() if k in ("minTlsVersion", "http20Enabled", "ftpsState")
    } == {
        "minTlsVersion": "1.2",
        "http20Enabled": True,
        "ftpsState": "Disabled",
    }
    policies = main.of_type("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert sorted(p.name.rsplit("/", 1)[1] for p in policies) == ["ftp", "scm"]
    assert all(p.body["properties"] == {"allow": False} for p in policies)
    account = main.one("Microsoft.Storage/storageAccounts")
    assert account["sku"] == {"name": "Standard_GRS"}
    assert account["properties"]["allowSharedKeyAccess"] is False
    assert account["properties"]["networkAcls"] == {"bypass": "AzureServices", "defaultAction": "Allow"}


def test_checkov_is_pinned_and_every_skip_has_a_reason() -> None:
    (pin,) = [
        line
        for line in (REPO / "requirements-checkov.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert re.fullmatch(r"checkov==\d+\.\d+\.\d+", pin)
    lines = (REPO / ".checkov.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("skip-check:")
    for number, line in enumerate(lines[start + 1 :], start + 1):
        if line.strip().startswith("- CKV"):
            assert lines[number - 1].strip().startswith(("#", "- CKV")), f"no reason before {line}"
    assert ".venv-checkov" in (REPO / ".gitignore").read_text(encoding="utf-8")
