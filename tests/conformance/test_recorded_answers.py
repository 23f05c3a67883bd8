"""The emulator's pipeline answers, field by field, against the live service's recorded ones
(fixtures/recorded-pipelines.json), and its run answers against the shape of the REST spec's examples
(fixtures/rest-api-examples). Generated values (principal ids, the tenant, times) are compared by kind."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from emulator.testing import RunningEmulator
from tests.conformance.arm import send
from tests.conformance.guide import container_sas

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDED = json.loads((FIXTURES / "recorded-pipelines.json").read_text(encoding="utf-8"))["recordings"]
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GENERATED_IDS = ("principalId", "clientId", "tenantId")
TIMES = ("createdAt", "lastModifiedAt")


def normalized(value: Any, key: str = "") -> Any:
    """Generated ids become "<guid>" (checked to be GUIDs), times "<time>" (checked to parse)."""
    if isinstance(value, dict):
        return {k: normalized(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if key in GENERATED_IDS and isinstance(value, str):
        assert GUID.match(value), f"{key} {value!r} is not a GUID"
        return "<guid>"
    if key in TIMES and isinstance(value, str):
        datetime.fromisoformat(value)
        return "<time>"
    return value


@pytest.mark.parametrize("recording", RECORDED, ids=[r["recording"] for r in RECORDED])
def test_pipeline_answers_match_the_recorded_ones(
    emulator_reset: RunningEmulator, recording: dict[str, Any]
) -> None:
    first = recording["interactions"][0]["request"]["path"]
    group = first.split("/")[4]
    emulator_reset.admin.create_registry("acrtest000003", {}, resource_group=group)
    if "identity" in recording:
        emulator_reset.admin.create_identity(recording["identity"].rsplit("/", 1)[1], resource_group=group)
    for interaction in recording["interactions"]:
        sent, recorded = interaction["request"], interaction["response"]
        status, headers, body = send(
            emulator_reset, sent["method"], sent["path"], sent["api-version"], sent.get("body")
        )
        where = f"{sent['method']} {sent['path']}"
        assert status == recorded["status"], f"{where}: {body}"
        for name, value in recorded["headers"].items():
            assert headers.get(name) == value, f"{where}: header {name}"
        assert normalized(body) == normalized(recorded["body"]), where


def test_a_pipeline_sent_without_options_or_with_none_answers_without_them(
    emulator_reset: RunningEmulator,
) -> None:
    """`options` is omitted when none were sent (recorded); the official templates send `[]` by default,
    taken as none (a guess: README). Sent options come back."""
    emulator_reset.admin.create_registry("myregistry01", {})
    registry = (
        f"/subscriptions/{emulator_reset.subscription_id}/resourceGroups/{emulator_reset.resource_group}"
        "/providers/Microsoft.ContainerRegistry/registries/myregistry01"
    )
    target = {
        "type": "AzureStorageBlobContainer",
        "uri": "https://account.blob.core.windows.net/transfer",
        "storageAccessMode": "ManagedIdentity",
    }
    cases = (
        ("nooptions", None, None),
        ("emptyoptions", [], None),
        ("withoptions", ["OverwriteBlobs"], ["OverwriteBlobs"]),
    )
    for name, options, echoed in cases:
        properties: dict[str, Any] = {"target": target}
        if options is not None:
            properties["options"] = options
        body = {"location": "westus", "identity": {"type": "SystemAssigned"}, "properties": properties}
        status, _, answer = send(
            emulator_reset, "PUT", f"{registry}/exportPipelines/{name}", "2025-06-01-preview", body
        )
        assert status == 200
        assert answer["properties"].get("options") == echoed
        assert "location" not in answer  # a request's location is not echoed
        assert answer["systemData"]["createdBy"] == "test@example.com"


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "rest-api-examples" / name).read_text(encoding="utf-8"))
    return document


def kinds(value: Any) -> Any:
    """A JSON value's shape: every member with the kind of its value."""
    if isinstance(value, dict):
        return {k: kinds(v) for k, v in value.items()}
    return type(value).__name__


class Arm:
    """PUT and GET on the emulator at the examples' API version, as the test's one user."""

    VERSION = "2026-03-01-preview"

    def __init__(self, emulator: RunningEmulator) -> None:
        self.emulator = emulator
        self.group = f"/subscriptions/{emulator.subscription_id}/resourceGroups/{emulator.resource_group}"
        self.registry = f"{self.group}/providers/Microsoft.ContainerRegistry/registries/myregistry"

    def put(self, path: str, body: dict[str, Any], version: str = VERSION) -> tuple[int, Any]:
        status, _, answer = send(self.emulator, "PUT", path, version, body)
        assert status in (200, 201), answer
        return status, answer

    def pipeline(self, kind: str, storage: dict[str, Any]) -> str:
        """A pipeline of the kind whose identity may read the vault's secret (an access policy)."""
        pipeline_id = f"{self.registry}/{kind}Pipelines/my{kind}pipeline"
        properties: dict[str, Any] = {"target" if kind == "export" else "source": storage}
        if kind == "export":
            properties["options"] = ["OverwriteBlobs"]
        else:
            properties["trigger"] = {"sourceTrigger": {"status": "Disabled"}}
        _, created = self.put(pipeline_id, {"identity": {"type": "SystemAssigned"}, "properties": properties})
        policy = {
            "objectId": created["identity"]["principalId"],
            "tenantId": self.emulator.tenant_id,
            "permissions": {"secrets": ["get"]},
        }
        self.put(
            f"{self.group}/providers/Microsoft.KeyVault/vaults/myvault/accessPolicies/add",
            {"properties": {"accessPolicies": [policy]}},
            "2023-07-01",
        )
        return pipeline_id

    def run(self, name: str, properties: dict[str, Any], timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
        """PUT a run, then its answer once finished."""
        run_id = f"{self.registry}/pipelineRuns/{name}"
        status, _ = self.put(run_id, {"properties": properties})
        deadline = time.monotonic() + timeout
        while True:
            _, _, body = send(self.emulator, "GET", run_id, self.VERSION)
            state = body["properties"]["provisioningState"]
            if state in ("Succeeded", "Failed") or time.monotonic() > deadline:
                assert state == "Succeeded", body
                return status, body
            time.sleep(0.05)


@pytest.mark.parametrize("kind", ["Export", "Import"])
def test_a_finished_run_has_the_response_members_of_the_rest_specs_example(
    emulator_reset: RunningEmulator, kind: str
) -> None:
    """The example's `properties.response` (status, progress.percentage as a string, start and finish times,
    the catalog digest, the blob's URI in target/source with the vault and the access mode, the imported
    artifacts), no location; the request is echoed as sent (the example shows only part of it)."""
    documented = example(f"PipelineRunCreate_{kind}.json")
    sent = documented["parameters"]["pipelineRunCreateParameters"]["properties"]
    arm = Arm(emulator_reset)
    emulator_reset.admin.create_registry("myregistry", {"sourcerepository/hello-world": {"latest": None}})
    container = "examples"
    blobs = BlobServiceClient.from_connection_string(emulator_reset.azurite_connection_string)
    if not blobs.get_container_client(container).exists():
        blobs.create_container(container)
    vault = emulator_reset.admin.create_vault("myvault", {"acrsas": container_sas(container, "racwdl")})
    storage = {
        "type": "AzureStorageBlobContainer",
        "uri": f"https://accountname.blob.core.windows.net/{container}",
        "keyVaultUri": f"{vault['properties']['vaultUri']}secrets/acrsas",
        "storageAccessMode": "SasToken",
    }
    exporter = arm.pipeline("export", storage)
    artifacts = ["sourcerepository/hello-world"]  # the example's second artifact has no real digest
    blob = {"type": "AzureStorageBlob", "name": "myblob.tar.gz"}
    if kind == "Export":
        request = {**sent["request"], "pipelineResourceId": exporter, "artifacts": artifacts}
    else:
        arm.run(
            "myexportrun",
            {"request": {"pipelineResourceId": exporter, "artifacts": artifacts, "target": blob}},
        )
        request = {**sent["request"], "pipelineResourceId": arm.pipeline("import", storage)}
        request.pop("catalogDigest")  # the example's "sha256@" is the digest of nothing
    status, finished = arm.run("myPipelineRun", {**sent, "request": request})
    assert status == 201
    assert set(finished) == {"id", "name", "type", "systemData", "properties"}  # no location
    answered = kinds(finished["properties"]["response"])
    for member, shape in kinds(documented["responses"]["201"]["body"]["properties"]["response"]).items():
        assert member in answered, member
        if isinstance(shape, dict):
            assert set(shape) <= set(answered[member]), member
        else:
            assert answered[member] == shape, member
    side = finished["properties"]["response"]["target" if kind == "Export" else "source"]
    assert side["type"] == "AzureStorageBlob"
    assert side["uri"].endswith(f"/{container}/myblob.tar.gz")
    assert finished["properties"]["request"] == request
