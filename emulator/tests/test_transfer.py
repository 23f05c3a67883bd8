"""ACR Transfer end to end through the real SDK clients: pipelines from our templates in both storage modes
and both identity kinds, export runs writing the blob, the source trigger, manual import runs."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.testing import RunningEmulator
from emulator.tests.helpers import (
    list_runs,
    blob_service,
    container_sas,
    deploy,
    deployments_client,
    get_resource,
    new_container,
    parameters,
    run_response,
    state,
    template,
    unique,
    wait_for,
)

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

DIGEST = "sha256:" + "ab" * 32


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
) -> Any:
    return deploy(
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
) -> Any:
    return deploy(
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


def export_run(emulator: RunningEmulator, registry: str, pipeline_id: str, artifacts: list[str], blob: str) -> Any:
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


@pytest.fixture
def source(emulator_reset: RunningEmulator) -> dict[str, Any]:
    emulator_reset.admin.create_registry(
        "sourceregistry", {"samples/hello": {"v1": None, "latest": None}, "samples/nginx": {"v2": DIGEST}}
    )
    emulator_reset.admin.create_registry("targetregistry", {})
    container, url = new_container(emulator_reset)
    return {"emulator": emulator_reset, "container": container, "url": url}


def test_export_run_writes_the_transfer_blob_and_the_source_trigger_imports_it(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    assert state(exported) == "Succeeded", exported.properties.error
    imported = import_pipeline(emulator, "targetregistry", source["url"], trigger="Enabled")
    assert state(imported) == "Succeeded", imported.properties.error

    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello:v1", "samples/nginx@" + DIGEST], "blob1"
    )
    assert state(run) == "Succeeded", run.properties.error
    response = run_response(emulator, output(run, "pipelineRunResourceId"))
    assert response["status"] == "Succeeded"
    assert response["progress"] == {"percentage": "100"}
    assert response["catalogDigest"].startswith("sha256:")
    assert response["target"]["name"] == "blob1"
    assert response["startTime"] <= response["finishTime"]

    properties = blob_service(emulator).get_blob_client(source["container"], "blob1").get_blob_properties()
    assert properties.metadata == {"category": "acr-transfer-blob"}
    assert properties.content_settings.content_md5

    content = wait_for(lambda: emulator.admin.registry_content("targetregistry").get("samples/hello"))
    assert "v1" in content["tags"]
    target_runs = wait_for(lambda: _trigger_runs(emulator, "targetregistry"))
    assert target_runs[0]["properties"]["response"]["trigger"]["sourceTrigger"]["timestamp"]
    assert target_runs[0]["properties"]["request"]["source"]["name"] == "blob1"
    wait_for(lambda: _trigger_runs(emulator, "targetregistry", terminal=True))
    assert sorted(target_runs[0]["properties"]["request"].keys()) == ["pipelineResourceId", "source"]


def _trigger_runs(emulator: RunningEmulator, registry: str, terminal: bool = False) -> list[dict[str, Any]]:
    runs = [r for r in list_runs(emulator, registry) if "trigger" in r["properties"]["response"]]
    if terminal:
        runs = [r for r in runs if r["properties"]["provisioningState"] in ("Succeeded", "Failed")]
    return runs
