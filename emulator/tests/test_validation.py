"""The emulator refuses what the service refuses, with ARM's error shape and the offending field named.

Bodies go through the real SDK (generic resources by id), so each refusal is seen as a client sees it:
a 400 whose `error` has a code, a message naming the member and a `target`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from emulator import resource_models
from emulator.testing import RunningEmulator
from emulator.tests.helpers import PIPELINE_API, registry_id, resources_client

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

REGISTRY = "sourceregistry"
URI = "https://account.blob.core.windows.net/transfer"
VAULT_SECRET = "https://vault.vault.azure.net/secrets/sas"


def export_pipeline() -> dict[str, Any]:
    return {
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "target": {
                "type": "AzureStorageBlobContainer",
                "uri": URI,
                "storageAccessMode": "ManagedIdentity",
            },
            "options": ["OverwriteBlobs"],
        },
    }


def import_pipeline() -> dict[str, Any]:
    return {
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "source": {
                "type": "AzureStorageBlobContainer",
                "uri": URI,
                "storageAccessMode": "ManagedIdentity",
            },
            "trigger": {"sourceTrigger": {"status": "Enabled"}},
            "options": ["OverwriteTags"],
        },
    }


def export_run(pipeline_id: str) -> dict[str, Any]:
    return {
        "properties": {
            "request": {
                "pipelineResourceId": pipeline_id,
                "artifacts": ["samples/hello:v1"],
                "target": {"type": "AzureStorageBlob", "name": "blob1"},
            }
        }
    }


def changed(body: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(body)
    edit(copied)
    return copied


@pytest.fixture
def registry(emulator_reset: RunningEmulator) -> str:
    emulator_reset.admin.create_registry(REGISTRY, {"samples/hello": ["v1"]})
    return registry_id(emulator_reset, REGISTRY)


def put(emulator: RunningEmulator, resource_id: str, body: dict[str, Any]) -> Any:
    return (
        resources_client(emulator)
        .resources.begin_create_or_update_by_id(resource_id, api_version=PIPELINE_API, parameters=body)
        .result()
    )


def refused(emulator: RunningEmulator, resource_id: str, body: dict[str, Any]) -> Any:
    with pytest.raises(HttpResponseError) as caught:
        put(emulator, resource_id, body)
    assert caught.value.status_code == 400
    error = caught.value.error
    assert error.code
    assert error.message
    return error


PIPELINE_CASES = [
    pytest.param(
        "exportPipelines",
        changed(export_pipeline(), lambda b: b["properties"]["target"].update(url=URI)),
        "properties.target.url",
        "Could not find member 'url'",
        id="unknown property",
    ),
    pytest.param(
        "exportPipelines",
        changed(export_pipeline(), lambda b: b["properties"].update(source={"type": ""})),
        "properties.source",
        "Could not find member 'source'",
        id="export pipeline given the import side",
    ),
    pytest.param(
        "exportPipelines",
        changed(export_pipeline(), lambda b: b["properties"]["target"].update(storageAccessMode="Sometimes")),
        "properties.target.storageAccessMode",
        "'Sometimes'",
        id="storageAccessMode enum",
    ),
    pytest.param(
        "exportPipelines",
        changed(export_pipeline(), lambda b: b["properties"].update(options=["OverwriteEverything"])),
        "properties.options[0]",
        "'OverwriteEverything'",
        id="options enum",
    ),
    pytest.param(
        "exportPipelines",
        changed(export_pipeline(), lambda b: b["properties"].update(options=["OverwriteTags"])),
        "properties.options",
        "'OverwriteTags' is not valid for an export pipeline",
        id="an import option on an export pipeline",
    ),
    pytest.param(
        "exportPipelines",
        changed(export_pipeline(), lambda b: b["properties"]["target"].update(type="AzureFiles")),
        "properties.target.type",
        "'AzureFiles'",
        id="export target type",
    ),
    pytest.param(
        "importPipelines",
        changed(import_pipeline(), lambda b: b["properties"]["source"].update(type="")),
        "properties.source.type",
        "''",
        id="import source type empty",
    ),
    pytest.param(
        "importPipelines",
        changed(import_pipeline(), lambda b: b["properties"].update(target={"type": ""})),
        "properties.target",
        "Could not find member 'target'",
        id="import pipeline given the export side",
    ),
    pytest.param(
        "importPipelines",
        changed(import_pipeline(), lambda b: b["properties"]["trigger"]["sourceTrigger"].update(status="On")),
        "properties.trigger.sourceTrigger.status",
        "'On'",
        id="source trigger status enum",
    ),
    pytest.param(
        "importPipelines",
        changed(import_pipeline(), lambda b: b["properties"]["source"].pop("storageAccessMode")),
        "properties.source.keyVaultUri",
        "keyVaultUri",
        id="SasToken (the default) without a vault",
    ),
    pytest.param(
        "importPipelines",
        changed(import_pipeline(), lambda b: b.update(tags={"a": "b"})),
        "tags",
        "Could not find member 'tags'",
        id="pipelines take no tags",
    ),
]


@pytest.mark.parametrize(("collection", "body", "target", "fragment"), PIPELINE_CASES)
def test_a_pipeline_body_the_service_refuses(
    emulator_reset: RunningEmulator,
    registry: str,
    collection: str,
    body: dict[str, Any],
    target: str,
    fragment: str,
) -> None:
    error = refused(emulator_reset, f"{registry}/{collection}/pipeline1", body)
    assert error.target == target
    assert fragment in error.message
    assert target.rsplit(".", 1)[-1].split("[")[0] in error.message or "option" in error.message


@pytest.mark.parametrize(
    "name",
    ["pipe", "p" * 51, "pipe-line", "pipe_line", "pipeline!"],
    ids=["4", "51", "hyphen", "underscore", "!"],
)
@pytest.mark.parametrize("collection", ["exportPipelines", "importPipelines", "pipelineRuns"])
def test_names_outside_five_to_fifty_letters_and_digits(
    emulator_reset: RunningEmulator, registry: str, collection: str, name: str
) -> None:
    pipeline_id = f"{registry}/exportPipelines/exportpipeline"
    put(emulator_reset, pipeline_id, export_pipeline())
    body = {"exportPipelines": export_pipeline(), "importPipelines": import_pipeline()}.get(
        collection, export_run(pipeline_id)
    )
    error = refused(emulator_reset, f"{registry}/{collection}/{name}", body)
    assert error.target == "name"
    assert f"'{name}'" in error.message
    assert "5-50" in error.message


RUN_CASES = [
    pytest.param(
        lambda r: r.pop("pipelineResourceId"),
        "properties.request.pipelineResourceId",
        "pipelineResourceId",
        id="no pipelineResourceId",
    ),
    pytest.param(
        lambda r: r.update(artifacts=[f"samples/hello:{n}" for n in range(51)]),
        "properties.request.artifacts",
        "at most 50 artifacts",
        id="51 artifacts",
    ),
    pytest.param(
        lambda r: r.update(artifacts=["Samples/Hello:v1"]),
        "properties.request.artifacts[0]",
        "'Samples/Hello:v1'",
        id="upper-case repository",
    ),
    pytest.param(
        lambda r: r.update(artifacts=["samples/hello@sha256:abc"]),
        "properties.request.artifacts[0]",
        "'samples/hello@sha256:abc'",
        id="short digest",
    ),
    pytest.param(
        lambda r: r.update(artifacts=["samples/hello:"]),
        "properties.request.artifacts[0]",
        "'samples/hello:'",
        id="empty tag",
    ),
    pytest.param(
        lambda r: r.update(artifacts=[7]),
        "properties.request.artifacts[0]",
        "expected str",
        id="not a string",
    ),
    pytest.param(
        lambda r: r.update(source={"type": "", "name": "blob1"}),
        "properties.request.source.type",
        "''",
        id="a side with a blob name but no type",
    ),
    pytest.param(
        lambda r: r.update(source={"type": "AzureStorageBlob", "name": "blob1"}),
        "properties.request.source",
        "takes a 'target', not a 'source'",
        id="export run given the import side",
    ),
    pytest.param(
        lambda r: r["target"].update(type="AzureStorageBlobContainer"),
        "properties.request.target.type",
        "'AzureStorageBlobContainer'",
        id="run target type",
    ),
    pytest.param(
        lambda r: r.update(catalogDigest="md5:abc"),
        "properties.request.catalogDigest",
        "catalogDigest",
        id="catalog digest",
    ),
]


@pytest.mark.parametrize(("edit", "target", "fragment"), RUN_CASES)
def test_a_pipeline_run_the_service_refuses(
    emulator_reset: RunningEmulator,
    registry: str,
    edit: Callable[[dict[str, Any]], None],
    target: str,
    fragment: str,
) -> None:
    pipeline_id = f"{registry}/exportPipelines/exportpipeline"
    put(emulator_reset, pipeline_id, export_pipeline())
    body = export_run(pipeline_id)
    edit(body["properties"]["request"])
    error = refused(emulator_reset, f"{registry}/pipelineRuns/run00001", body)
    assert error.target == target
    assert fragment in error.message


def test_the_bodies_the_service_accepts_pass(emulator_reset: RunningEmulator, registry: str) -> None:
    pipeline_id = f"{registry}/exportPipelines/exportpipeline"
    assert put(emulator_reset, pipeline_id, export_pipeline()).properties["provisioningState"] == "Succeeded"
    put(emulator_reset, f"{registry}/importPipelines/importpipeline", import_pipeline())
    started = resources_client(emulator_reset).resources.begin_create_or_update_by_id(
        f"{registry}/pipelineRuns/run00001", api_version=PIPELINE_API, parameters=export_run(pipeline_id)
    )
    assert started.polling_method()._initial_response.http_response.status_code == 201


def test_a_run_as_the_official_templates_send_it_passes(
    emulator_reset: RunningEmulator, registry: str
) -> None:
    """Azure/acr's PipelineRun templates set `location` on the run and always send both sides, the unused
    one as {"type": "", "name": ""}, with an empty catalogDigest and forceUpdateTag: the service accepts
    that and echoes the request."""
    export_id = f"{registry}/exportPipelines/exportpipeline"
    put(emulator_reset, export_id, export_pipeline())
    put(emulator_reset, f"{registry}/importPipelines/importpipeline", import_pipeline())
    empty = {"type": "", "name": ""}
    body = export_run(export_id)
    body["location"] = "eastus"
    body["properties"]["request"].update(source=empty, catalogDigest="")
    body["properties"]["forceUpdateTag"] = ""
    client = resources_client(emulator_reset).resources
    client.begin_create_or_update_by_id(
        f"{registry}/pipelineRuns/exportrun1", api_version=PIPELINE_API, parameters=body
    )
    stored = client.get_by_id(f"{registry}/pipelineRuns/exportrun1", api_version=PIPELINE_API)
    assert stored.location is None
    assert stored.properties["request"] == body["properties"]["request"]
    import_body = {
        "location": "eastus",
        "properties": {
            "request": {
                "pipelineResourceId": f"{registry}/importPipelines/importpipeline",
                "artifacts": [],
                "source": {"type": "AzureStorageBlob", "name": "blob1"},
                "target": empty,
                "catalogDigest": "",
            },
            "forceUpdateTag": "",
        },
    }
    started = client.begin_create_or_update_by_id(
        f"{registry}/pipelineRuns/importrun1", api_version=PIPELINE_API, parameters=import_body
    )
    assert started.polling_method()._initial_response.http_response.status_code == 201


def test_an_empty_side_is_not_a_side(emulator_reset: RunningEmulator, registry: str) -> None:
    pipeline_id = f"{registry}/exportPipelines/exportpipeline"
    put(emulator_reset, pipeline_id, export_pipeline())
    body = export_run(pipeline_id)
    body["properties"]["request"]["target"] = {"type": "", "name": ""}
    error = refused(emulator_reset, f"{registry}/pipelineRuns/run00001", body)
    assert error.target == "properties.request.target"
    assert "needs 'request.target'" in error.message


def test_read_only_members_sent_back_are_ignored() -> None:
    body = export_pipeline()
    body["properties"]["provisioningState"] = "Succeeded"
    body["identity"]["principalId"] = "00000000-0000-0000-0000-000000000001"
    assert resource_models.problems(resource_models.EXPORT_PIPELINES, body) == []


def test_the_shapes_come_from_the_sdk_models() -> None:
    target = resource_models.root(resource_models.EXPORT_PIPELINES).members["properties"].shape
    assert isinstance(target, resource_models.Model)
    assert target.name == "ExportPipelineProperties"
    mode = target.members["target"].shape
    assert isinstance(mode, resource_models.Model)
    storage = mode.members["storageAccessMode"].shape
    assert isinstance(storage, resource_models.Scalar)
    assert storage.enum == ("ManagedIdentity", "SasToken")
    assert target.members["target"].required
    assert target.members["provisioningState"].read_only
