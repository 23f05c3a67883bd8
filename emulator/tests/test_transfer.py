"""ACR Transfer end to end through the real SDK clients: pipelines from our templates in both storage modes
and both identity kinds, export runs writing the blob, the source trigger, manual import runs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.core.rest import HttpRequest

from emulator.admin import AdminError
from emulator.testing import RunningEmulator
from emulator.tests.helpers import (
    blob_service,
    container_sas,
    deploy,
    deployments_client,
    get_resource,
    grant_blob_data,
    list_runs,
    new_container,
    parameters,
    resources_client,
    run_response,
    state,
    template,
    unique,
    wait_for,
)

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

DIGEST = "sha256:" + "ab" * 32
SAS_SECRET = "acrexportsas"  # the name of the Key Vault secret holding the SAS


def export_pipeline(
    emulator: RunningEmulator,
    registry: str,
    container_url: str,
    *,
    mode: str = "ManagedIdentity",
    vault: str = "",
    secret: str = "",
    access: str = "AccessPolicy",
    identity: str = "",
    options: list[str] | None = None,
    grant: bool = True,
) -> Any:
    deployment = deploy(
        deployments_client(emulator),
        emulator.resource_group,
        unique("exportPipeline-"),
        template("export-pipeline"),
        parameters(
            registryName=registry,
            exportPipelineName="exportpipeline",
            targetUri=container_url,
            storageAccessMode=mode,
            keyVaultName=vault,
            sasTokenSecretName=secret,
            keyVaultSecretAccess=access,
            userAssignedIdentity=identity,
            options=options or [],
        ),
    )
    return _granted(emulator, deployment, mode, grant)


def _granted(emulator: RunningEmulator, deployment: Any, mode: str, grant: bool) -> Any:
    """A ManagedIdentity pipeline's identity gets Storage Blob Data Contributor, as its owner would do."""
    if grant and mode == "ManagedIdentity" and state(deployment) == "Succeeded":
        principal = output(deployment, "principalId")
        if not any(
            a["properties"]["principalId"] == principal
            for a in resources_client(emulator)
            .send_request(
                HttpRequest(
                    "GET",
                    f"/subscriptions/{emulator.subscription_id}/providers/Microsoft.Authorization/"
                    f"roleAssignments?api-version=2022-04-01&$filter=principalId eq '{principal}'",
                )
            )
            .json()["value"]
        ):
            grant_blob_data(emulator, principal)
    return deployment


def import_pipeline(
    emulator: RunningEmulator,
    registry: str,
    container_url: str,
    *,
    mode: str = "ManagedIdentity",
    vault: str = "",
    secret: str = "",
    identity: str = "",
    trigger: str = "Enabled",
    options: list[str] | None = None,
    grant: bool = True,
) -> Any:
    deployment = deploy(
        deployments_client(emulator),
        emulator.resource_group,
        unique("importPipeline-"),
        template("import-pipeline"),
        parameters(
            registryName=registry,
            importPipelineName="importpipeline",
            sourceUri=container_url,
            storageAccessMode=mode,
            keyVaultName=vault,
            sasTokenSecretName=secret,
            userAssignedIdentity=identity,
            sourceTriggerStatus=trigger,
            options=options or [],
        ),
    )
    return _granted(emulator, deployment, mode, grant)


def export_run(
    emulator: RunningEmulator, registry: str, pipeline_id: str, artifacts: list[str], blob: str
) -> Any:
    return deploy(
        deployments_client(emulator),
        emulator.resource_group,
        unique("exportRun-"),
        template("pipelinerun-export"),
        parameters(
            registryName=registry,
            pipelineRunName=unique("exportrun"),
            pipelineResourceId=pipeline_id,
            artifacts=artifacts,
            targetName=blob,
        ),
    )


def import_run(emulator: RunningEmulator, registry: str, pipeline_id: str, blob: str) -> Any:
    return deploy(
        deployments_client(emulator),
        emulator.resource_group,
        unique("importRun-"),
        template("pipelinerun-import"),
        parameters(
            registryName=registry,
            pipelineRunName=unique("importrun"),
            pipelineResourceId=pipeline_id,
            sourceName=blob,
        ),
    )


def output(deployment: Any, name: str) -> Any:
    return deployment.properties.outputs[name]["value"]


def run_id(deployment: Any) -> str:
    """The run's id from outputResources: a failed deployment has no outputs."""
    return deployment.properties.output_resources[0].id


@pytest.fixture
def source(emulator_reset: RunningEmulator) -> dict[str, Any]:
    emulator_reset.admin.create_registry(
        "sourceregistry", {"samples/hello": {"v1": None, "latest": None}, "samples/nginx": {"v2": DIGEST}}
    )
    emulator_reset.admin.create_registry("targetregistry", {})
    container, url = new_container(emulator_reset)
    return {"emulator": emulator_reset, "container": container, "url": url}


def test_export_run_writes_the_transfer_blob_and_the_source_trigger_imports_it(
    source: dict[str, Any],
) -> None:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    assert state(exported) == "Succeeded", exported.properties.error
    imported = import_pipeline(emulator, "targetregistry", source["url"], trigger="Enabled")
    assert state(imported) == "Succeeded", imported.properties.error

    run = export_run(
        emulator,
        "sourceregistry",
        output(exported, "pipelineResourceId"),
        ["samples/hello:v1", "samples/nginx@" + DIGEST],
        "blob1",
    )
    assert state(run) == "Succeeded", run.properties.error
    response = run_response(emulator, run_id(run))
    assert response["status"] == "Succeeded"
    assert response["progress"] == {"percentage": "100"}
    assert response["catalogDigest"].startswith("sha256:")
    assert response["target"] == {
        "type": "AzureStorageBlob",
        "uri": f"{source['url']}/blob1",
        "storageAccessMode": "ManagedIdentity",
    }  # as the REST spec's example: the blob's URL, no name
    assert response["startTime"] <= response["finishTime"]

    properties = blob_service(emulator).get_blob_client(source["container"], "blob1").get_blob_properties()
    assert properties.metadata == {"category": "acr-transfer-blob"}
    assert properties.content_settings.content_md5

    content = wait_for(lambda: emulator.admin.registry_content("targetregistry").get("samples/hello"))
    assert "v1" in content["tags"]
    target_runs = wait_for(lambda: _trigger_runs(emulator, "targetregistry", terminal=True))
    properties = target_runs[0]["properties"]
    assert properties["response"]["trigger"]["sourceTrigger"]["timestamp"]
    assert properties["request"] == {"pipelineResourceId": output(imported, "pipelineResourceId")}
    assert properties["response"]["source"] == {
        "type": "AzureStorageBlobContainer",
        "uri": source["url"],
        "storageAccessMode": "ManagedIdentity",
    }  # the spec's shape: the blob is named nowhere
    assert properties["response"]["importedArtifacts"] == ["samples/hello:v1", "samples/nginx@" + DIGEST]
    assert "blob1" not in json.dumps(target_runs[0])
    guid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.fullmatch(guid, target_runs[0]["name"])


@pytest.mark.parametrize(
    ("shape", "names", "name_pattern"),
    [
        ("response-uri", "pipeline-timestamp", r"importpipeline-\d{8}T\d{6}Z-[0-9a-f]{4}"),
        ("request-name", "alphanumeric", r"sourcetrigger[0-9a-f]{24}"),
    ],
)
def test_source_trigger_run_shapes_and_names(
    source: dict[str, Any], shape: str, names: str, name_pattern: str
) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.configure(source_trigger_run_shape=shape, source_trigger_run_names=names)
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    export_run(emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello:v1"], "b2")
    import_pipeline(emulator, "targetregistry", source["url"], trigger="Enabled")
    run = wait_for(lambda: _trigger_runs(emulator, "targetregistry", terminal=True))[0]
    assert re.fullmatch(name_pattern, run["name"])
    assert run["properties"]["provisioningState"] == "Succeeded"
    echoed = run["properties"]["response"]["source"]
    if shape == "response-uri":
        assert echoed["uri"] == f"{source['url']}/b2"
        assert echoed["type"] == "AzureStorageBlob"
        assert "source" not in run["properties"]["request"]
    else:
        assert run["properties"]["request"]["source"] == {"type": "AzureStorageBlob", "name": "b2"}


def test_source_trigger_settings_are_checked(emulator_reset: RunningEmulator) -> None:
    with pytest.raises(AdminError) as caught:
        emulator_reset.admin.configure(source_trigger_run_shape="blob-name")
    assert caught.value.status == 400
    assert emulator_reset.admin.config()["source_trigger_run_shape"] == "spec"


def _trigger_runs(emulator: RunningEmulator, registry: str, terminal: bool = False) -> list[dict[str, Any]]:
    runs = [r for r in list_runs(emulator, registry) if "trigger" in r["properties"]["response"]]
    if terminal:
        runs = [r for r in runs if r["properties"]["provisioningState"] in ("Succeeded", "Failed")]
    return runs


def test_sas_token_mode_with_user_assigned_identity_and_access_policy(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    admin = emulator.admin
    identity = admin.create_identity("transferidentity")
    admin.create_vault("sourcevault", {"acrexportsas": container_sas(source["container"])})
    exported = export_pipeline(
        emulator,
        "sourceregistry",
        source["url"],
        mode="SasToken",
        vault="sourcevault",
        secret=SAS_SECRET,
        identity=identity["id"],
    )
    assert state(exported) == "Succeeded", exported.properties.error
    pipeline = get_resource(emulator, output(exported, "pipelineResourceId"))
    assert pipeline["identity"]["type"] == "userAssigned"
    assert pipeline["properties"]["target"]["keyVaultUri"].endswith("/secrets/acrexportsas")
    assert output(exported, "principalId") == identity["properties"]["principalId"]

    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "viasas"
    )
    assert state(run) == "Succeeded", run.properties.error
    assert blob_service(emulator).get_blob_client(source["container"], "viasas").exists()


def test_sas_token_mode_system_identity_without_grant_fails_the_run_clearly(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.create_vault("sourcevault", {"acrexportsas": container_sas(source["container"])})
    exported = export_pipeline(
        emulator,
        "sourceregistry",
        source["url"],
        mode="SasToken",
        vault="sourcevault",
        secret=SAS_SECRET,
        access="None",
    )
    assert state(exported) == "Succeeded", exported.properties.error
    pipeline = get_resource(emulator, output(exported, "pipelineResourceId"))
    assert pipeline["identity"]["type"] == "systemAssigned"
    assert pipeline["identity"]["principalId"]

    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "nogrant"
    )
    assert state(run) == "Failed"
    error = run.properties.error
    assert error.code == "DeploymentFailed"
    assert "does not have secrets get permission" in error.details[0].message
    response = run_response(emulator, run_id(run))
    assert response["status"] == "Failed"
    assert "Forbidden" in response["pipelineRunErrorMessage"]


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (None, "SecretNotFound"),
        ("expired", "expired at"),
        ("readonly", "lacks the permission"),
    ],
)
def test_sas_token_problems_fail_the_run(source: dict[str, Any], secret: str | None, expected: str) -> None:
    from datetime import timedelta

    emulator: RunningEmulator = source["emulator"]
    secrets = {}
    if secret == "expired":
        secrets["acrexportsas"] = container_sas(source["container"], expires_in=timedelta(days=1))
    elif secret == "readonly":
        secrets["acrexportsas"] = container_sas(source["container"], permission="rl")
    emulator.admin.create_vault("sourcevault", secrets)
    exported = export_pipeline(
        emulator, "sourceregistry", source["url"], mode="SasToken", vault="sourcevault", secret=SAS_SECRET
    )
    if secret == "expired":
        emulator.admin.advance_clock(days=2)
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "sasblob"
    )
    assert state(run) == "Failed"
    message = run_response(emulator, run_id(run))["pipelineRunErrorMessage"]
    assert expected in message
    assert "sig=" not in message


def test_missing_artifact_fails_unless_continue_on_errors(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    pipeline_id = output(exported, "pipelineResourceId")
    run = export_run(
        emulator, "sourceregistry", pipeline_id, ["samples/hello:v1", "samples/missing:v9"], "missing"
    )
    assert state(run) == "Failed"
    message = run_response(emulator, run_id(run))["pipelineRunErrorMessage"]
    assert "samples/missing:v9" in message
    assert "NAME_UNKNOWN" in message
    assert not blob_service(emulator).get_blob_client(source["container"], "missing").exists()

    tolerant = export_pipeline(
        emulator, "sourceregistry", source["url"], options=["ContinueOnErrors", "OverwriteBlobs"]
    )
    run = export_run(
        emulator,
        "sourceregistry",
        output(tolerant, "pipelineResourceId"),
        ["samples/hello:v1", "samples/hello:nope"],
        "partial",
    )
    assert state(run) == "Succeeded"
    assert blob_service(emulator).get_blob_client(source["container"], "partial").exists()


def test_existing_blob_needs_overwrite_blobs(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    blob_service(emulator).get_blob_client(source["container"], "taken").upload_blob(b"x")
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "taken"
    )
    assert state(run) == "Failed"
    assert "OverwriteBlobs" in run_response(emulator, run_id(run))["pipelineRunErrorMessage"]

    exported = export_pipeline(emulator, "sourceregistry", source["url"], options=["OverwriteBlobs"])
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "taken"
    )
    assert state(run) == "Succeeded"


def test_old_blob_is_left_alone_by_the_trigger_and_imported_by_a_manual_run(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello:v1"], "oldblob"
    )
    assert state(run) == "Succeeded"
    emulator.admin.advance_clock(days=61)  # the blob is now 61 days old for the emulator
    imported = import_pipeline(
        emulator, "targetregistry", source["url"], trigger="Enabled", options=["DeleteSourceBlobOnSuccess"]
    )
    pipeline_id = output(imported, "pipelineResourceId")
    emulator.admin.scan_source_trigger()
    emulator.admin.scan_source_trigger()
    assert _trigger_runs(emulator, "targetregistry") == []
    assert emulator.admin.registry_content("targetregistry") == {}

    manual = import_run(emulator, "targetregistry", pipeline_id, "oldblob")
    assert state(manual) == "Succeeded", manual.properties.error
    response = run_response(emulator, run_id(manual))
    assert response["importedArtifacts"] == ["samples/hello:v1"]
    assert "trigger" not in response
    assert emulator.admin.registry_content("targetregistry")["samples/hello"]["tags"]["v1"]
    assert (
        not blob_service(emulator).get_blob_client(source["container"], "oldblob").exists()
    )  # deleted on success


def test_trigger_ignores_blobs_without_category_or_md5_and_retries_when_rewritten(
    source: dict[str, Any],
) -> None:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello:v1"], "plain"
    )
    assert state(run) == "Succeeded"
    blob = blob_service(emulator).get_blob_client(source["container"], "plain")
    blob.set_blob_metadata({})  # a copy that lost its metadata
    import_pipeline(emulator, "targetregistry", source["url"], trigger="Enabled")
    emulator.admin.scan_source_trigger()
    assert _trigger_runs(emulator, "targetregistry") == []
    blob.set_blob_metadata(
        {"category": "acr-transfer-blob"}
    )  # the documented fix: a new ETag and Last-Modified
    wait_for(lambda: _trigger_runs(emulator, "targetregistry", terminal=True))
    emulator.admin.scan_source_trigger()
    assert len(_trigger_runs(emulator, "targetregistry")) == 1  # once per version


def test_import_without_overwrite_tags_keeps_existing_tags(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.add_repositories("targetregistry", {"samples/hello": {"v1": DIGEST}})
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello:v1"], "conflict"
    )
    imported = import_pipeline(emulator, "targetregistry", source["url"], trigger="Disabled")
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "conflict")
    assert state(run) == "Failed"
    assert "OverwriteTags" in run_response(emulator, run_id(run))["pipelineRunErrorMessage"]
    assert emulator.admin.registry_content("targetregistry")["samples/hello"]["tags"]["v1"] == DIGEST

    imported = import_pipeline(
        emulator, "targetregistry", source["url"], trigger="Disabled", options=["OverwriteTags"]
    )
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "conflict")
    assert state(run) == "Succeeded"
    assert emulator.admin.registry_content("targetregistry")["samples/hello"]["tags"]["v1"] != DIGEST


def test_injected_run_failure(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    emulator.admin.fail_next_run("Simulated: the registry is unavailable.", pipeline="exportpipeline")
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "injected"
    )
    assert state(run) == "Failed"
    assert run.properties.error.details[0].details[0].message == "Simulated: the registry is unavailable."


def test_sas_token_mode_with_role_assignment_on_an_rbac_vault(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.create_vault("targetvault", {SAS_SECRET: container_sas(source["container"])}, rbac=True)
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello:v1"], "rbac"
    )
    imported = deploy(
        deployments_client(emulator),
        emulator.resource_group,
        "importPipelineRbac",
        template("import-pipeline"),
        parameters(
            registryName="targetregistry",
            importPipelineName="importpipeline",
            sourceUri=source["url"],
            storageAccessMode="SasToken",
            keyVaultName="targetvault",
            sasTokenSecretName=SAS_SECRET,
            keyVaultSecretAccess="RoleAssignment",
            sourceTriggerStatus="Disabled",
        ),
    )
    assert state(imported) == "Succeeded", imported.properties.error
    assert any("roleAssignments" in r.id for r in imported.properties.output_resources)
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "rbac")
    assert state(run) == "Succeeded", run.properties.error
    assert run_response(emulator, run_id(run))["source"]["keyVaultUri"].endswith(f"/secrets/{SAS_SECRET}")
