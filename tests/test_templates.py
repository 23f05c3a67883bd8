"""The ARM templates in templates/ (deployed by the app) and infra/ (deploys the app).

Checked here, without network: the files parse; every pipeline resource has the shape of the official
management SDK's models (emulator/resource_models.py: unknown members, wrong types and values outside an
enum rejected, expressions accepted where a value stands), and every rendered body passes the emulator's
whole validation, as the service would accept it; every parameter the app passes is declared and nothing
else is required; every parameters() / variables() reference is declared; only the template functions the
emulator implements are used; and the storage-mode, identity, trigger and run variants, deployed by the
emulator's ARM engine with a recording put_resource and a fake reference(), produce the requests described
in templates/README.md.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator import resource_models, validation
from emulator.arm_errors import ApiError
from emulator.arm_expressions import Call, Literal, parse
from emulator.arm_template import DeploymentContext, PlannedResource, TemplateError, deploy, validate
from tests import template_schema as ts
from tests.design_contract import DESIGN_SETTINGS

TEMPLATES = ts.REPO_ROOT / "templates"
INFRA = ts.REPO_ROOT / "infra"
PIPELINE_API_VERSION = "2025-06-01-preview"
DEPLOYMENT_TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
PARAMETERS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"

EXPORT_PIPELINE = "export-pipeline"
IMPORT_PIPELINE = "import-pipeline"
EXPORT_RUN = "pipelinerun-export"
IMPORT_RUN = "pipelinerun-import"

# The contract with the app: the parameters it passes to each template, and the output it reads.
APP_PARAMETERS = {
    EXPORT_PIPELINE: {
        "registryName",
        "exportPipelineName",
        "targetUri",
        "storageAccessMode",
        "keyVaultName",
        "sasTokenSecretName",
        "options",
        "userAssignedIdentity",
    },
    IMPORT_PIPELINE: {
        "registryName",
        "importPipelineName",
        "sourceUri",
        "storageAccessMode",
        "keyVaultName",
        "sasTokenSecretName",
        "options",
        "sourceTriggerStatus",
        "userAssignedIdentity",
    },
    EXPORT_RUN: {
        "registryName",
        "pipelineRunName",
        "pipelineResourceId",
        "artifacts",
        "targetName",
        "catalogDigest",
        "forceUpdateTag",
    },
    IMPORT_RUN: {
        "registryName",
        "pipelineRunName",
        "pipelineResourceId",
        "sourceName",
        "catalogDigest",
        "forceUpdateTag",
    },
}
APP_OUTPUT = {
    EXPORT_PIPELINE: "pipelineResourceId",
    IMPORT_PIPELINE: "pipelineResourceId",
    EXPORT_RUN: "pipelineRunResourceId",
    IMPORT_RUN: "pipelineRunResourceId",
}
PIPELINE_TYPE = {
    EXPORT_PIPELINE: "Microsoft.ContainerRegistry/registries/exportPipelines",
    IMPORT_PIPELINE: "Microsoft.ContainerRegistry/registries/importPipelines",
    EXPORT_RUN: "Microsoft.ContainerRegistry/registries/pipelineRuns",
    IMPORT_RUN: "Microsoft.ContainerRegistry/registries/pipelineRuns",
}
PIPELINE_NAME_PARAMETER = {
    EXPORT_PIPELINE: "exportPipelineName",
    IMPORT_PIPELINE: "importPipelineName",
    EXPORT_RUN: "pipelineRunName",
    IMPORT_RUN: "pipelineRunName",
}
EXPORT_OPTIONS = ["OverwriteBlobs", "ContinueOnErrors"]
IMPORT_OPTIONS = ["OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors"]

SUB = "00000000-0000-0000-0000-000000000000"
TENANT = "11111111-1111-1111-1111-111111111111"
GROUP = "transfer-rg"
LOCATION = "westeurope"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
EMULATOR_FUNCTIONS = ts.emulator_functions()
VAULT = "transferkv"
VAULT_URI = "https://transferkv.vault.usgovcloudapi.net/"  # a sovereign cloud: the suffix must come from ARM
IDENTITY_GROUP = f"/subscriptions/{SUB}/resourceGroups/{GROUP}"
UAI = f"{IDENTITY_GROUP}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/transferidentity"


SYSTEM_PRINCIPAL = "aaaaaaaa-0000-0000-0000-000000000001"
UAI_PRINCIPAL = "bbbbbbbb-0000-0000-0000-000000000002"
UAI_CLIENT = "cccccccc-0000-0000-0000-000000000003"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def template(kind: str) -> dict[str, Any]:
    return _load(TEMPLATES / kind / "azuredeploy.json")


def example_parameters(kind: str) -> dict[str, Any]:
    return {
        k: v["value"]
        for k, v in _load(TEMPLATES / kind / "azuredeploy.parameters.json")["parameters"].items()
    }


def all_templates() -> list[Path]:
    return sorted(TEMPLATES.glob("*/azuredeploy.json"))


def infra_templates() -> list[Path]:
    return sorted(p for p in INFRA.glob("*.json") if not p.name.endswith(".parameters.json"))


class FakeAzure:
    """reference() answers of a resource group holding one Key Vault and one user-assigned identity."""

    def __init__(self) -> None:
        # The vault of the tests, and the one named in templates/export-pipeline/azuredeploy.parameters.json.
        self.vaults = {VAULT: VAULT_URI, "mysourcekeyvault": "https://mysourcekeyvault.vault.azure.net/"}

    def __call__(self, resource: str, api_version: str | None, full: bool) -> Any:
        parts = resource.split("/")
        lowered = resource.lower()
        if "/providers/microsoft.keyvault/vaults/" in lowered:
            name = parts[-1]
            if name not in self.vaults:
                raise TemplateError("ResourceNotFound", f"Microsoft.KeyVault/vaults/{name}", resource)
            state = {"vaultUri": self.vaults[name], "tenantId": "t"}
            return {"properties": state} if full else state
        if "/providers/microsoft.managedidentity/userassignedidentities/" in lowered:
            return {"principalId": UAI_PRINCIPAL, "clientId": UAI_CLIENT, "tenantId": "t"}
        if "/providers/microsoft.containerregistry/registries/" in lowered and full:
            identity = {"type": "SystemAssigned", "principalId": SYSTEM_PRINCIPAL, "tenantId": "t"}
            return {"id": resource, "identity": identity, "properties": {"provisioningState": "Succeeded"}}
        raise TemplateError(
            "ResourceNotFound", f"the fake does not know reference({resource!r}, {api_version!r}, {full})"
        )


Reference = Callable[[str, "str | None", bool], Any]


@dataclass
class Deployment:
    """What the emulator's engine did with one template: the PUTs in order, the outputs, the reads."""

    planned: list[PlannedResource]
    outputs: dict[str, Any]
    references: list[tuple[str, str | None, bool]] = field(default_factory=list)

    @property
    def resources(self) -> list[dict[str, Any]]:
        """Each PUT as a template resource reads: type, apiVersion and name, then the evaluated body."""
        return [{"type": p.type, "apiVersion": p.api_version, "name": p.name, **p.body} for p in self.planned]

    def planned_resource(self, resource_type: str) -> PlannedResource:
        matches = [p for p in self.planned if p.type == resource_type]
        assert len(matches) == 1, f"expected one deployed {resource_type}, found {len(matches)}"
        return matches[0]

    def resource(self, resource_type: str) -> dict[str, Any]:
        matches = [r for r in self.resources if r["type"] == resource_type]
        assert len(matches) == 1, f"expected one deployed {resource_type}, found {len(matches)}"
        return matches[0]

    def deployed_types(self) -> list[str]:
        return [p.type for p in self.planned]


def context(reference: Reference) -> DeploymentContext:
    return DeploymentContext(SUB, GROUP, LOCATION, "template-test", TENANT, NOW, reference)


def wrap(parameters: dict[str, Any]) -> dict[str, Any]:
    return {name: {"value": value} for name, value in parameters.items()}


def deploy_template(document: dict[str, Any], parameters: dict[str, Any], reference: Reference) -> Deployment:
    """Deploys with the emulator's engine; put_resource records each PUT, reference() is the given fake."""
    references: list[tuple[str, str | None, bool]] = []
    planned: list[PlannedResource] = []

    def recording_reference(resource: str, api_version: str | None, full: bool) -> Any:
        references.append((resource, api_version, full))
        return reference(resource, api_version, full)

    def put_resource(resource: PlannedResource) -> dict[str, Any]:
        planned.append(resource)
        return {"id": resource.resource_id, **resource.body}

    outcome = deploy(document, wrap(parameters), context(recording_reference), put_resource)
    assert outcome.output_resources == [p.resource_id for p in planned]
    outputs = {name: output["value"] for name, output in outcome.outputs.items() if "value" in output}
    return Deployment(planned, outputs, references)


def run(kind: str, **overrides: Any) -> Deployment:
    return deploy_template(template(kind), {**example_parameters(kind), **overrides}, FakeAzure())


def role_assignment_scope(resource_id: str) -> str:
    """'resourceGroup', or 'Namespace/type/name' of a resource in the group, as a template writes a scope."""
    scope, separator, _ = resource_id.rpartition("/providers/Microsoft.Authorization/roleAssignments/")
    assert separator, resource_id
    if scope == IDENTITY_GROUP:
        return "resourceGroup"
    assert scope.startswith(f"{IDENTITY_GROUP}/providers/"), scope
    return scope.removeprefix(f"{IDENTITY_GROUP}/providers/")


def pipeline_parameters(kind: str, mode: str, identity: str = "") -> dict[str, Any]:
    sas = mode == "SasToken"
    return {
        "storageAccessMode": mode,
        "keyVaultName": VAULT if sas else "",
        "sasTokenSecretName": "transfersas" if sas else "",
        "userAssignedIdentity": identity,
    }


def shape_problems(resource: dict[str, Any]) -> list[str]:
    """What the provider's deserializer refuses in an unevaluated template resource (expressions allowed)."""
    body = {k: v for k, v in resource.items() if k not in ts.ENVELOPE_KEYS}
    found = resource_models.problems(resource["type"], body, expressions=True)
    return [f"{p.path}: {p.message}" for p in found]


def assert_valid(resource: dict[str, Any], *, evaluated: bool) -> None:
    """Unevaluated: the resource has the models' shape. Evaluated: the service accepts the body whole."""
    if not evaluated:
        problems = shape_problems(resource)
        assert not problems, f"{resource['type']} does not match the SDK's models:\n" + "\n".join(problems)
        return
    # A top-level child resource is named "registry/child"; the service judges the child's own name.
    registry, child = resource["name"].split("/")
    validation.check_name("registry", registry)
    body = {k: v for k, v in resource.items() if k not in ts.ENVELOPE_KEYS}
    accept = {
        PIPELINE_TYPE[EXPORT_PIPELINE]: validation.export_pipeline,
        PIPELINE_TYPE[IMPORT_PIPELINE]: validation.import_pipeline,
        PIPELINE_TYPE[EXPORT_RUN]: validation.pipeline_run,
    }[resource["type"]]
    try:
        accept(child, resource["apiVersion"], body)
    except ApiError as exc:
        pytest.fail(f"the service would refuse {resource['type']}: {exc.code}: {exc.message}", pytrace=False)


# ---------------------------------------------------------------------------------------------------------
# Files


def test_the_four_templates_and_their_parameter_files_exist() -> None:
    for kind in APP_PARAMETERS:
        assert (TEMPLATES / kind / "azuredeploy.json").is_file()
        assert (TEMPLATES / kind / "azuredeploy.parameters.json").is_file()
    assert (TEMPLATES / "README.md").is_file()


@pytest.mark.parametrize(
    "path",
    sorted([*TEMPLATES.rglob("*.json"), *INFRA.rglob("*.json")]),
    ids=lambda p: str(p.relative_to(ts.REPO_ROOT)),
)
def test_json_file_parses_and_names_its_schema(path: Path) -> None:
    document = _load(path)
    assert document["contentVersion"] == "1.0.0.0"
    if path.name.endswith(".parameters.json"):
        assert document["$schema"] == PARAMETERS_SCHEMA
        assert isinstance(document["parameters"], dict)
        assert all(set(p) == {"value"} for p in document["parameters"].values())
    else:
        assert document["$schema"] == DEPLOYMENT_TEMPLATE_SCHEMA
        assert isinstance(document["resources"], list)
        assert document["resources"]
        assert document["outputs"]


@pytest.mark.parametrize(
    "path", [*all_templates(), *infra_templates()], ids=lambda p: p.parent.name + "/" + p.name
)
def test_expressions_parse_and_use_only_emulator_functions(path: Path) -> None:
    document = _load(path)
    used = {call.name.lower() for _, call in ts.calls_in(document)}
    assert used <= EMULATOR_FUNCTIONS, f"not implemented by the emulator: {sorted(used - EMULATOR_FUNCTIONS)}"
    for where, call in ts.calls_in(document):
        if call.name.lower() == "utcnow":
            assert where.startswith("/parameters/"), where
            assert where.endswith("/defaultValue"), where


@pytest.mark.parametrize(
    "path", [*all_templates(), *infra_templates()], ids=lambda p: p.parent.name + "/" + p.name
)
def test_every_parameter_and_variable_reference_is_declared(path: Path) -> None:
    for where, document in ts.template_scopes(_load(path)):
        _check_references(f"{path.name}:{where or 'template'}", document)


def _check_references(name: str, document: dict[str, Any]) -> None:
    declared = {
        "parameters": set(document.get("parameters", {})),
        "variables": set(document.get("variables", {})),
    }
    used: dict[str, set[str]] = {"parameters": set(), "variables": set()}
    for where, call in ts.calls_in(document):
        if call.name.lower() in used:
            (argument,) = call.args
            assert isinstance(argument, Literal), f"{where}: {call.name}() with a computed name"
            used[call.name.lower()].add(str(argument.value))
    for kind in used:
        assert used[kind] <= declared[kind], (
            f"{name}: undeclared {kind}: {sorted(used[kind] - declared[kind])}"
        )
    unused = declared["parameters"] - used["parameters"]
    assert not unused, f"{name}: parameters declared but never used: {sorted(unused)}"


# ---------------------------------------------------------------------------------------------------------
# The app's contract


@pytest.mark.parametrize("kind", list(APP_PARAMETERS))
def test_every_parameter_the_app_passes_is_declared_and_nothing_else_is_required(kind: str) -> None:
    declared = template(kind)["parameters"]
    assert APP_PARAMETERS[kind] <= set(declared), sorted(APP_PARAMETERS[kind] - set(declared))
    required = {name for name, spec in declared.items() if "defaultValue" not in spec}
    assert required <= APP_PARAMETERS[kind], (
        f"required but never passed by the app: {required - APP_PARAMETERS[kind]}"
    )


@pytest.mark.parametrize("kind", list(APP_PARAMETERS))
def test_outputs_carry_the_resource_id_under_the_name_the_app_reads(kind: str) -> None:
    outputs = template(kind)["outputs"]
    assert outputs[APP_OUTPUT[kind]]["type"] == "string"
    evaluation = run(kind)
    name = example_parameters(kind)["registryName"], example_parameters(kind)[PIPELINE_NAME_PARAMETER[kind]]
    child = PIPELINE_TYPE[kind].rsplit("/", 1)[1]
    expected = (
        f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.ContainerRegistry/registries/"
        f"{name[0]}/{child}/{name[1]}"
    )
    assert evaluation.outputs[APP_OUTPUT[kind]] == expected


@pytest.mark.parametrize("kind", list(APP_PARAMETERS))
def test_names_are_constrained_like_the_service(kind: str) -> None:
    declared = template(kind)["parameters"]
    for name in ("registryName", PIPELINE_NAME_PARAMETER[kind]):
        assert declared[name]["type"] == "string"
        assert (declared[name]["minLength"], declared[name]["maxLength"]) == (5, 50), name


@pytest.mark.parametrize("kind", list(APP_PARAMETERS))
def test_every_parameter_is_documented(kind: str) -> None:
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    document = template(kind)
    for name, spec in document["parameters"].items():
        assert spec.get("metadata", {}).get("description"), f"{kind}: {name} has no description"
        assert f"`{name}`" in readme, f"templates/README.md does not document {name}"
    for name in document["outputs"]:
        assert f"`{name}`" in readme, f"templates/README.md does not document output {name}"


@pytest.mark.parametrize("kind", list(APP_PARAMETERS))
def test_example_parameter_file_fits_its_template(kind: str) -> None:
    declared = template(kind)["parameters"]
    values = example_parameters(kind)
    assert set(values) <= set(declared)
    validate(template(kind), wrap(values), context(FakeAzure()))  # ARM's checks of every parameter value
    evaluation = run(kind)  # every value accepted, every expression evaluates
    assert_valid(evaluation.resource(PIPELINE_TYPE[kind]), evaluated=True)


# ---------------------------------------------------------------------------------------------------------
# Official schema


@pytest.mark.parametrize("kind", list(APP_PARAMETERS))
def test_pipeline_resources_match_the_official_schema(kind: str) -> None:
    resources = [
        r for r in template(kind)["resources"] if r["type"].startswith("Microsoft.ContainerRegistry/")
    ]
    assert [r["type"] for r in resources] == [PIPELINE_TYPE[kind]]
    for resource in resources:
        assert resource["apiVersion"] == PIPELINE_API_VERSION
        assert "condition" not in resource
        assert_valid(resource, evaluated=False)


def test_shape_check_rejects_what_it_should() -> None:
    resource = template(EXPORT_PIPELINE)["resources"][0]
    misspelt = {**resource, "properties": {"target": {"type": "AzureStorageBlobContainer", "url": "x"}}}
    (problem,) = shape_problems(misspelt)
    assert problem.startswith("properties.target.url: Could not find member 'url'")
    assert shape_problems({**resource, "tags": {}})  # pipelines take no tags
    assert shape_problems({**resource, "identity": "[[not an expression]"})
    run_resource = template(EXPORT_RUN)["resources"][0]
    assert shape_problems({**run_resource, "location": "x"})
    with pytest.raises(ApiError, match="supported api-versions"):
        validation.check_api_version(resource["type"], "2019-05-01")


# ---------------------------------------------------------------------------------------------------------
# Pipelines: storage access mode, identity, Key Vault access


PIPELINES = [(EXPORT_PIPELINE, "target"), (IMPORT_PIPELINE, "source")]


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_key_vault_uri_only_appears_in_the_sas_token_branch(kind: str, side: str) -> None:
    document = template(kind)
    expression = document["resources"][0]["properties"][side]
    node = parse(expression)
    assert isinstance(node, Call)
    assert node.name == "if"
    condition, when_sas, otherwise = node.args
    assert condition == Call("variables", (Literal("useSasToken"),))
    assert document["variables"]["useSasToken"] == "[equals(parameters('storageAccessMode'), 'SasToken')]"
    assert "keyVaultUri" in repr(when_sas)
    assert "keyVaultUri" not in repr(otherwise)
    assert "keyVaultUri" not in json.dumps(document["variables"])
    assert json.dumps(document).count("'keyVaultUri'") == 1


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_storage_access_mode_parameter(kind: str, side: str) -> None:
    spec = template(kind)["parameters"]["storageAccessMode"]
    assert spec["defaultValue"] == "SasToken"
    assert spec["allowedValues"] == ["SasToken", "ManagedIdentity"]
    for name in ("keyVaultName", "sasTokenSecretName", "userAssignedIdentity"):
        assert template(kind)["parameters"][name]["defaultValue"] == ""


def depends_on(kind: str, resource_type: str, parameters: dict[str, Any]) -> list[str]:
    """The dependsOn of a template resource as the engine resolves it, and proof the engine honours it.

    The resource is moved to the front of a copy of the template and its dependsOn is also given as an
    extra output, so the engine evaluates it; the engine must still PUT every dependency first.
    """
    document = copy.deepcopy(template(kind))
    (resource,) = [r for r in document["resources"] if r["type"] == resource_type]
    document["resources"].remove(resource)
    document["resources"].insert(0, resource)
    document["outputs"]["probeDependsOn"] = {"type": "array", "value": resource["dependsOn"]}
    deployment = deploy_template(document, {**example_parameters(kind), **parameters}, FakeAzure())
    order = [p.resource_id for p in deployment.planned]
    dependencies = deployment.outputs["probeDependsOn"]
    position = order.index(deployment.planned_resource(resource_type).resource_id)
    assert all(order.index(dependency) < position for dependency in dependencies), order
    return dependencies


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_sas_token_mode_sends_the_vault_uri_from_arm_and_grants_get_on_secrets(kind: str, side: str) -> None:
    evaluation = run(kind, **pipeline_parameters(kind, "SasToken"))
    pipeline = evaluation.resource(PIPELINE_TYPE[kind])
    assert pipeline["properties"][side] == {
        "type": "AzureStorageBlobContainer",
        "uri": example_parameters(kind)[f"{side}Uri"],
        "storageAccessMode": "SasToken",
        "keyVaultUri": VAULT_URI + "secrets/transfersas",
    }
    assert pipeline["identity"] == {"type": "SystemAssigned"}
    assert_valid(pipeline, evaluated=True)

    policy = evaluation.resource("Microsoft.KeyVault/vaults/accessPolicies")
    assert policy["name"] == f"{VAULT}/add"
    assert policy["apiVersion"] == "2023-07-01"
    assert (
        evaluation.planned_resource(PIPELINE_TYPE[kind]).resource_id
        == evaluation.outputs["pipelineResourceId"]
    )
    assert depends_on(
        kind, "Microsoft.KeyVault/vaults/accessPolicies", pipeline_parameters(kind, "SasToken")
    ) == [evaluation.outputs["pipelineResourceId"]]
    (entry,) = policy["properties"]["accessPolicies"]
    assert entry == {
        "tenantId": TENANT,
        "objectId": SYSTEM_PRINCIPAL,
        "permissions": {"secrets": ["get"]},
    }
    assert evaluation.deployed_types() == [PIPELINE_TYPE[kind], "Microsoft.KeyVault/vaults/accessPolicies"]
    assert evaluation.outputs["principalId"] == SYSTEM_PRINCIPAL
    assert evaluation.outputs["storageAccessMode"] == "SasToken"


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_managed_identity_mode_needs_no_key_vault_at_all(kind: str, side: str) -> None:
    evaluation = run(kind, **pipeline_parameters(kind, "ManagedIdentity"))
    pipeline = evaluation.resource(PIPELINE_TYPE[kind])
    assert pipeline["properties"][side] == {
        "type": "AzureStorageBlobContainer",
        "uri": example_parameters(kind)[f"{side}Uri"],
        "storageAccessMode": "ManagedIdentity",
    }
    assert_valid(pipeline, evaluated=True)
    assert evaluation.deployed_types() == [PIPELINE_TYPE[kind]]
    assert not [r for r, _, _ in evaluation.references if "keyvault" in r.lower()]


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_user_assigned_identity(kind: str, side: str) -> None:
    evaluation = run(kind, **pipeline_parameters(kind, "SasToken", identity=UAI))
    pipeline = evaluation.resource(PIPELINE_TYPE[kind])
    assert pipeline["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}}
    assert_valid(pipeline, evaluated=True)
    (entry,) = evaluation.resource("Microsoft.KeyVault/vaults/accessPolicies")["properties"]["accessPolicies"]
    assert entry["objectId"] == UAI_PRINCIPAL
    assert evaluation.outputs["principalId"] == UAI_PRINCIPAL

    managed = run(kind, **pipeline_parameters(kind, "ManagedIdentity", identity=UAI))
    assert managed.resource(PIPELINE_TYPE[kind])["identity"]["userAssignedIdentities"] == {UAI: {}}
    assert managed.outputs["principalId"] == UAI_PRINCIPAL


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_key_vault_role_assignment_instead_of_an_access_policy(kind: str, side: str) -> None:
    evaluation = run(kind, **pipeline_parameters(kind, "SasToken"), keyVaultSecretAccess="RoleAssignment")
    assert "Microsoft.KeyVault/vaults/accessPolicies" not in evaluation.deployed_types()
    assignment = evaluation.resource("Microsoft.Authorization/roleAssignments")
    scope = role_assignment_scope(
        evaluation.planned_resource("Microsoft.Authorization/roleAssignments").resource_id
    )
    assert scope == f"Microsoft.KeyVault/vaults/{VAULT}"
    assert assignment["properties"] == {
        "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
        + KEY_VAULT_SECRETS_USER,
        "principalId": SYSTEM_PRINCIPAL,
        "principalType": "ServicePrincipal",
    }
    none = run(kind, **pipeline_parameters(kind, "SasToken"), keyVaultSecretAccess="None")
    assert none.deployed_types() == [PIPELINE_TYPE[kind]]
    assert none.resource(PIPELINE_TYPE[kind])["properties"][side]["keyVaultUri"].startswith(VAULT_URI)


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
@pytest.mark.parametrize("missing", ["keyVaultName", "sasTokenSecretName"])
def test_sas_token_mode_without_vault_or_secret_fails_naming_the_problem(
    kind: str, side: str, missing: str
) -> None:
    parameters = {**pipeline_parameters(kind, "SasToken"), missing: ""}
    with pytest.raises(TemplateError, match="SasTokenModeRequiresKeyVaultNameAndSasTokenSecretName"):
        run(kind, **parameters)


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_key_vault_grants_are_conditional_on_sas_token_mode(kind: str, side: str) -> None:
    conditional = [
        r
        for r in template(kind)["resources"]
        if "condition" in r and "storageAccounts" not in str(r.get("scope", ""))
    ]
    assert {r["type"] for r in conditional} == {
        "Microsoft.KeyVault/vaults/accessPolicies",
        "Microsoft.Authorization/roleAssignments",
    }
    for resource in conditional:
        assert resource["condition"].startswith("[and(variables('useSasToken'), ")
        (dependency,) = resource["dependsOn"]
        assert PIPELINE_TYPE[kind] in dependency


@pytest.mark.parametrize(
    ("kind", "allowed"), [(EXPORT_PIPELINE, EXPORT_OPTIONS), (IMPORT_PIPELINE, IMPORT_OPTIONS)]
)
def test_options_allow_exactly_the_options_of_the_pipeline_kind(kind: str, allowed: list[str]) -> None:
    spec = template(kind)["parameters"]["options"]
    assert spec["type"] == "array"
    assert spec["allowedValues"] == allowed
    assert run(kind, options=allowed).resource(PIPELINE_TYPE[kind])["properties"]["options"] == allowed
    other = next(o for o in EXPORT_OPTIONS + IMPORT_OPTIONS if o not in allowed)
    with pytest.raises(TemplateError, match=r"not part of the allowed value\(s\)") as rejected:
        run(kind, options=[other])
    assert rejected.value.target == "options"


def test_import_source_trigger_status() -> None:
    spec = template(IMPORT_PIPELINE)["parameters"]["sourceTriggerStatus"]
    assert spec["defaultValue"] == "Enabled"
    assert spec["allowedValues"] == ["Enabled", "Disabled"]
    parameters = {k: v for k, v in example_parameters(IMPORT_PIPELINE).items() if k != "sourceTriggerStatus"}
    default = deploy_template(template(IMPORT_PIPELINE), parameters, FakeAzure())
    trigger = default.resource(PIPELINE_TYPE[IMPORT_PIPELINE])["properties"]["trigger"]
    assert trigger == {"sourceTrigger": {"status": "Enabled"}}
    disabled = run(IMPORT_PIPELINE, sourceTriggerStatus="Disabled")
    assert disabled.resource(PIPELINE_TYPE[IMPORT_PIPELINE])["properties"]["trigger"]["sourceTrigger"] == {
        "status": "Disabled"
    }
    assert disabled.outputs["sourceTriggerStatus"] == "Disabled"
    assert "trigger" not in template(EXPORT_PIPELINE)["resources"][0]["properties"]


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_location_defaults_to_the_resource_group(kind: str, side: str) -> None:
    assert template(kind)["parameters"]["location"]["defaultValue"] == "[resourceGroup().location]"
    assert run(kind).resource(PIPELINE_TYPE[kind])["location"] == LOCATION


# ---------------------------------------------------------------------------------------------------------
# Pipeline runs


ARTIFACTS = ["hello-world:v1", "nginx@sha256:" + "a" * 64]
RUNS = [
    (EXPORT_RUN, "target", {"artifacts": ARTIFACTS, "targetName": "blob1"}),
    (IMPORT_RUN, "source", {"sourceName": "blob1"}),
]


@pytest.mark.parametrize(("kind", "side", "extra"), RUNS)
def test_run_request_matches_the_rest_api(kind: str, side: str, extra: dict[str, Any]) -> None:
    pipeline_id = example_parameters(kind)["pipelineResourceId"]
    evaluation = run(kind, forceUpdateTag="tag-1", **extra)
    resource = evaluation.resource(PIPELINE_TYPE[kind])
    assert set(resource) == {"type", "apiVersion", "name", "properties"}  # no location, identity or tags
    assert_valid(resource, evaluated=True)
    request = resource["properties"]["request"]
    expected = {"pipelineResourceId": pipeline_id, side: {"type": "AzureStorageBlob", "name": "blob1"}}
    if kind == EXPORT_RUN:
        expected["artifacts"] = ARTIFACTS
    assert request == expected  # catalogDigest left out when empty
    assert resource["properties"]["forceUpdateTag"] == "tag-1"

    with_digest = run(kind, catalogDigest="sha256:abc", **extra)
    assert with_digest.resource(PIPELINE_TYPE[kind])["properties"]["request"]["catalogDigest"] == "sha256:abc"


def test_export_run_artifact_count_is_limited_like_the_service() -> None:
    spec = template(EXPORT_RUN)["parameters"]["artifacts"]
    assert (spec["type"], spec["minLength"], spec["maxLength"]) == ("array", 1, 50)
    run(EXPORT_RUN, artifacts=[f"repo:{n}" for n in range(50)])
    with pytest.raises(TemplateError, match="less than or equal to '50'") as rejected:
        run(EXPORT_RUN, artifacts=[f"repo:{n}" for n in range(51)])
    assert rejected.value.target == "artifacts"


@pytest.mark.parametrize("kind", [EXPORT_RUN, IMPORT_RUN])
def test_force_update_tag_defaults_to_empty_so_a_redeploy_is_idempotent(kind: str) -> None:
    assert template(kind)["parameters"]["forceUpdateTag"]["defaultValue"] == ""
    assert template(kind)["parameters"]["catalogDigest"]["defaultValue"] == ""


# ---------------------------------------------------------------------------------------------------------
# infra/: the function app itself

INFRA_TEMPLATE = INFRA / "main.json"
# Every app setting of the settings table (docs/settings.md) that the deployment sets (AZURE_CLIENT_ID
# only with a user identity).
DEPLOYED_SETTINGS = DESIGN_SETTINGS - {"AZURE_CLIENT_ID"}
IDENTITY_CONNECTIONS = {
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "TransferStorage__blobServiceUri",
    "TransferStorage__queueServiceUri",
    "TransferState__tableServiceUri",
}
ROLE_IDS = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "keyVaultSecretsUser": KEY_VAULT_SECRETS_USER,
}
APP_PRINCIPAL = "dddddddd-0000-0000-0000-000000000004"


def fake_infra_azure(resource: str, api_version: str | None, full: bool) -> Any:
    lowered = resource.lower()
    if "/providers/microsoft.storage/storageaccounts/" in lowered:
        name = resource.rsplit("/", 1)[1]
        suffix = "core.usgovcloudapi.net"  # a sovereign cloud: endpoints must come from ARM
        endpoints = {kind: f"https://{name}.{kind}.{suffix}/" for kind in ("blob", "queue", "table")}
        return {"primaryEndpoints": endpoints}
    if "/providers/microsoft.web/sites/" in lowered:
        identity = {"type": "SystemAssigned", "principalId": APP_PRINCIPAL}
        return {"identity": identity} if full else {"defaultHostName": "app.azurewebsites.us"}
    if "/providers/microsoft.insights/components/" in lowered:
        return {"ConnectionString": "InstrumentationKey=k"}
    if "/providers/microsoft.managedidentity/userassignedidentities/" in lowered:
        return {"principalId": UAI_PRINCIPAL, "clientId": UAI_CLIENT}
    raise TemplateError("ResourceNotFound", f"the fake does not know reference({resource!r})")


def run_infra(**overrides: Any) -> Deployment:
    parameters = {k: v["value"] for k, v in _load(INFRA / "main.parameters.json")["parameters"].items()}
    return deploy_template(_load(INFRA_TEMPLATE), {**parameters, **overrides}, fake_infra_azure)


def role_assignments(evaluation: Deployment) -> dict[tuple[str, str], dict[str, Any]]:
    """(scope, role name) -> assignment, for the assignments deployed by the template itself."""
    names = {v: k for k, v in ROLE_IDS.items()}
    found = {}
    for planned in evaluation.planned:
        if planned.type == "Microsoft.Authorization/roleAssignments":
            role = planned.body["properties"]["roleDefinitionId"].rsplit("/", 1)[1]
            found[(role_assignment_scope(planned.resource_id), names[role])] = planned.body
    return found


def test_infra_has_a_template_a_parameter_file_and_a_readme() -> None:
    assert INFRA_TEMPLATE.is_file()
    assert (INFRA / "main.parameters.json").is_file()
    assert (INFRA / "README.md").is_file()


def test_infra_role_ids_are_the_built_in_roles() -> None:
    assert _load(INFRA_TEMPLATE)["variables"]["roles"] == ROLE_IDS


def test_infra_every_parameter_is_documented() -> None:
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for name, spec in _load(INFRA_TEMPLATE)["parameters"].items():
        assert spec["metadata"]["description"], name
        assert f"`{name}`" in readme, f"infra/README.md does not document {name}"


def test_infra_flex_consumption_python_app_with_identity_connections() -> None:
    evaluation = run_infra()
    plan = evaluation.resource("Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    site = evaluation.resource("Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"] == {"type": "SystemAssigned"}
    config = site["properties"]["functionAppConfig"]
    # the version tests/host indexes the app with (tests/test_infra.py checks the two agree)
    assert config["runtime"] == {"name": "python", "version": "3.13"}
    storage = config["deployment"]["storage"]
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    assert storage["value"].startswith("https://")
    assert ".core.usgovcloudapi.net/app-package-" in storage["value"]
    account = evaluation.resource("Microsoft.Storage/storageAccounts")
    assert account["properties"]["allowSharedKeyAccess"] is False

    settings = evaluation.resource("Microsoft.Web/sites/config")["properties"]
    assert settings.keys() >= DEPLOYED_SETTINGS | IDENTITY_CONNECTIONS | {
        "APPLICATIONINSIGHTS_CONNECTION_STRING"
    }
    assert not {k for k in settings if k.startswith(("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION"))}
    assert all(isinstance(v, str) for v in settings.values())
    assert settings["TransferStorage__blobServiceUri"] == settings["AzureWebJobsStorage__blobServiceUri"]
    assert settings["TransferState__tableServiceUri"].endswith(".table.core.usgovcloudapi.net/")
    assert settings["TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS"] == "60"
    assert settings["TRANSFER_REGISTRY"] == "mytargetregistry"
    assert settings["AZURE_SUBSCRIPTION_ID"] == SUB
    assert "AZURE_CLIENT_ID" not in settings
    assert "AzureWebJobsStorage__credential" not in settings


def test_infra_role_assignments_on_the_app_storage_registry_group_and_vault() -> None:
    evaluation = run_infra()
    account = evaluation.resource("Microsoft.Storage/storageAccounts")["name"]
    roles = role_assignments(evaluation)
    scope = f"Microsoft.Storage/storageAccounts/{account}"
    assert set(roles) == {
        (scope, "storageBlobDataOwner"),
        (scope, "storageQueueDataContributor"),
        (scope, "storageTableDataContributor"),
        ("resourceGroup", "contributor"),  # the registry is in the deployment's resource group
    }
    for assignment in roles.values():
        assert assignment["properties"]["principalId"] == APP_PRINCIPAL
        assert assignment["properties"]["principalType"] == "ServicePrincipal"
    assert evaluation.outputs["registryGroupContributorAssigned"] is True
    # the watched container is created in the app's own account when no other account is named
    containers = [r["name"] for r in evaluation.resources if r["type"].endswith("/containers")]
    assert f"{account}/default/transfer" in containers

    elsewhere = run_infra(registryResourceGroup="registry-rg")
    assert ("resourceGroup", "contributor") not in role_assignments(elsewhere)
    assert elsewhere.outputs["registryGroupContributorAssigned"] is False
    assert (
        elsewhere.resource("Microsoft.Web/sites/config")["properties"]["TRANSFER_RESOURCE_GROUP"]
        == "registry-rg"
    )

    with_vault = role_assignments(run_infra(keyVaultName="transferkv", grantRegistryGroupContributor=False))
    assert ("Microsoft.KeyVault/vaults/transferkv", "keyVaultSecretsUser") in with_vault
    assert (
        "Microsoft.Resources/deployments"
        not in run_infra(grantRegistryGroupContributor=False).deployed_types()
    )


def test_infra_separate_watched_account_and_user_assigned_identity() -> None:
    evaluation = run_infra(transferStorageAccountName="watchedstorage", userAssignedIdentity=UAI)
    site = evaluation.resource("Microsoft.Web/sites")
    assert site["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}}
    assert site["properties"]["functionAppConfig"]["deployment"]["storage"]["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": UAI,
    }
    settings = evaluation.resource("Microsoft.Web/sites/config")["properties"]
    assert (
        settings["TransferStorage__blobServiceUri"] == "https://watchedstorage.blob.core.usgovcloudapi.net/"
    )
    assert (
        settings["TransferStorage__queueServiceUri"] == "https://watchedstorage.queue.core.usgovcloudapi.net/"
    )
    assert settings["AZURE_CLIENT_ID"] == UAI_CLIENT
    for connection in ("AzureWebJobsStorage", "TransferStorage", "TransferState"):
        assert settings[f"{connection}__credential"] == "managedidentity"
        assert settings[f"{connection}__clientId"] == UAI_CLIENT
    roles = role_assignments(evaluation)
    watched = "Microsoft.Storage/storageAccounts/watchedstorage"
    assert (watched, "storageBlobDataContributor") in roles
    assert (watched, "storageQueueDataContributor") in roles
    assert all(r["properties"]["principalId"] == UAI_PRINCIPAL for r in roles.values())
    containers = [r["name"] for r in evaluation.resources if r["type"].endswith("/containers")]
    assert not [c for c in containers if c.endswith("/transfer")]  # an existing account brings its container


STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


@pytest.mark.parametrize(("kind", "side"), PIPELINES)
def test_managed_identity_mode_can_grant_the_storage_role_on_the_account_of_its_container(
    kind: str, side: str
) -> None:
    plain = run(kind, **pipeline_parameters(kind, "ManagedIdentity"))
    assert plain.deployed_types() == [PIPELINE_TYPE[kind]]  # off by default: nothing granted
    granted = run(kind, **pipeline_parameters(kind, "ManagedIdentity"), grantStorageRole=True)
    assert granted.deployed_types() == [PIPELINE_TYPE[kind], "Microsoft.Authorization/roleAssignments"]
    assignment = granted.planned_resource("Microsoft.Authorization/roleAssignments")
    account = example_parameters(kind)[f"{side}Uri"].split("//")[1].split(".")[0]
    assert assignment.resource_id.startswith(
        f"{IDENTITY_GROUP}/providers/Microsoft.Storage/storageAccounts/{account}/providers/"
        "Microsoft.Authorization/roleAssignments/"
    )
    properties = assignment.body["properties"]
    assert properties["roleDefinitionId"].endswith(f"/roleDefinitions/{STORAGE_BLOB_DATA_CONTRIBUTOR}")
    assert properties["principalId"] == SYSTEM_PRINCIPAL
    sas = run(kind, **pipeline_parameters(kind, "SasToken"), grantStorageRole=True)
    assert "storageAccounts" not in " ".join(p.resource_id for p in sas.planned)  # SasToken: never
