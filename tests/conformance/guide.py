"""The manual guide's `az` blocks, character for character, and what a user prepares before them.

Only names differ from the guide (resource groups, registries, storage containers), as its tables ask the
user to fill in; the parameter files are written the way the guide's tables tell the user to edit them.
Storage is Azurite: both "accounts" are containers of its one account, so the two sides stay apart.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from emulator import azurite
from emulator.testing import EmulatorProcess

TEMPLATES = Path(__file__).resolve().parent / "templates"

SOURCE_RG = "acrsource-rg"
TARGET_RG = "acrtarget-rg"
SOURCE_REGISTRY = "sourceregistry01"
TARGET_REGISTRY = "targetregistry01"
SOURCE_VAULT = "sourcevault01"
TARGET_VAULT = "targetvault01"
EXPORT_CONTAINER = "exports"
IMPORT_CONTAINER = "imports"  # watched by the import pipeline with the source trigger
MANUAL_CONTAINER = "manualimports"  # of the import pipeline without it (manual import runs)
ARTIFACT = "samples/hello-world:v1"

# "Create the resource", Option 1 (export pipeline)
CREATE_EXPORT_PIPELINE = r"""
az deployment group create \
  --resource-group $SOURCE_RG \
  --template-file azuredeploy.json \
  --name exportPipeline \
  --parameters azuredeploy.parameters.json
"""
# Option 2: a user-assigned identity
CREATE_EXPORT_PIPELINE_USER_IDENTITY = r"""
az deployment group create \
  --resource-group $SOURCE_RG \
  --template-file azuredeploy.json \
  --name exportPipeline \
  --parameters azuredeploy.parameters.json \
  --parameters userAssignedIdentity="$USER_IDENTITY_ID"
"""
EXPORT_RES_ID = r"""
EXPORT_RES_ID=$(az deployment group show \
  --resource-group $SOURCE_RG \
  --name exportPipeline \
  --query 'properties.outputResources[1].id' \
  --output tsv)
"""
CREATE_IMPORT_PIPELINE = r"""
az deployment group create \
  --resource-group $TARGET_RG \
  --template-file azuredeploy.json \
  --name importPipeline \
  --parameters azuredeploy.parameters.json
"""
IMPORT_RES_ID = r"""
IMPORT_RES_ID=$(az deployment group show \
  --resource-group $TARGET_RG \
  --name importPipeline \
  --query 'properties.outputResources[1].id' \
  --output tsv)
"""
CREATE_EXPORT_RUN = r"""
az deployment group create \
  --resource-group $SOURCE_RG \
  --template-file azuredeploy.json \
  --name exportPipelineRun \
  --parameters azuredeploy.parameters.json
"""
EXPORT_RUN_RES_ID = r"""
EXPORT_RUN_RES_ID=$(az deployment group show \
  --resource-group $SOURCE_RG \
  --name exportPipelineRun \
  --query 'properties.outputResources[0].id' \
  --output tsv)
"""
LIST_TARGET_REPOSITORIES = r"""
az acr repository list --name $TARGET_REGISTRY
"""
CREATE_IMPORT_RUN = r"""
az deployment group create \
  --resource-group $TARGET_RG \
  --name importPipelineRun \
  --template-file azuredeploy.json \
  --parameters azuredeploy.parameters.json
"""
IMPORT_RUN_RES_ID = r"""
IMPORT_RUN_RES_ID=$(az deployment group show \
  --resource-group $TARGET_RG \
  --name importPipelineRun \
  --query 'properties.outputResources[0].id' \
  --output tsv)
"""
REDEPLOY_EXPORT_RUN = r"""
CURRENT_DATETIME=`date +"%Y-%m-%d:%T"`

az deployment group create \
  --resource-group $SOURCE_RG \
  --template-file azuredeploy.json \
  --name exportPipelineRun \
  --parameters azuredeploy.parameters.json \
  --parameters forceUpdateTag=$CURRENT_DATETIME
"""
DELETE_EXPORT_RESOURCES = r"""
# Delete export resources
az resource delete \
--resource-group $SOURCE_RG \
--ids $EXPORT_RES_ID $EXPORT_RUN_RES_ID \
--api-version 2025-06-01-preview
"""
DELETE_IMPORT_RESOURCES = r"""
# Delete import resources
az resource delete \
--resource-group $TARGET_RG \
--ids $IMPORT_RES_ID $IMPORT_RUN_RES_ID \
--api-version 2025-06-01-preview
"""


def print_variables(*names: str) -> str:
    """A line after a block that prints the variables it set, for the test to read."""
    return "\n" + "\n".join(f'echo "{name}=${{{name}}}"' for name in names) + "\n"


def read_variables(stdout: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in stdout.splitlines() if "=" in line and not line.startswith(" ")
    )


def container_sas(container: str, permission: str) -> str:
    return generate_container_sas(
        azurite.ACCOUNT,
        container,
        account_key=azurite.ACCOUNT_KEY,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + timedelta(days=1),
        protocol="https",
    )


def prepare(emulator: EmulatorProcess) -> BlobServiceClient:
    """The guide's prerequisites: a Premium registry on each side, a storage container each, a Key Vault
    each with a SAS token secret (export: read, write, list, add; import: read, delete, list)."""
    blobs = BlobServiceClient.from_connection_string(emulator.azurite_connection_string)
    for container in (EXPORT_CONTAINER, IMPORT_CONTAINER, MANUAL_CONTAINER):
        if not blobs.get_container_client(container).exists():
            blobs.create_container(container)
    admin = emulator.admin
    admin.create_registry(SOURCE_REGISTRY, {"samples/hello-world": {"v1": None}}, resource_group=SOURCE_RG)
    admin.create_registry(TARGET_REGISTRY, {}, resource_group=TARGET_RG)
    admin.create_vault(
        SOURCE_VAULT, {"acrexportsas": container_sas(EXPORT_CONTAINER, "rwla")}, resource_group=SOURCE_RG
    )
    secrets = {
        "acrimportsas": container_sas(IMPORT_CONTAINER, "rdl"),
        "acrmanualsas": container_sas(MANUAL_CONTAINER, "rdl"),
    }
    admin.create_vault(TARGET_VAULT, secrets, resource_group=TARGET_RG)
    return blobs


@dataclass(frozen=True)
class Templates:
    """Where the guide's four template folders come from: the conformance suite's own (templates/) or the
    official Azure/acr ones (ExportPipelines, ImportPipelines, PipelineRun/PipelineRun-Export|Import)."""

    export_pipeline: Path
    import_pipeline: Path
    export_run: Path
    import_run: Path


OURS = Templates(
    TEMPLATES / "export-pipeline",
    TEMPLATES / "import-pipeline",
    TEMPLATES / "pipelinerun",
    TEMPLATES / "pipelinerun",
)


def folder(work: Path, source: Path, parameters: dict[str, Any], name: str) -> Path:
    """A local folder with the template and its azuredeploy.parameters.json filled in, as the guide has
    the user copy and edit them (values of a parameter file that comes with the template are kept unless
    given here)."""
    target = work / name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "azuredeploy.json", target / "azuredeploy.json")
    given = source / "azuredeploy.parameters.json"
    document: dict[str, Any] = (
        json.loads(given.read_text(encoding="utf-8"))
        if given.exists()
        else {
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
            "contentVersion": "1.0.0.0",
            "parameters": {},
        }
    )
    document["parameters"].update({key: {"value": value} for key, value in parameters.items()})
    (target / "azuredeploy.parameters.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    return target


def export_pipeline_parameters(mode: str = "SasToken") -> dict[str, Any]:
    return {
        "registryName": SOURCE_REGISTRY,
        "exportPipelineName": "exportpipeline",
        "targetUri": f"https://sourcestorage.blob.core.windows.net/{EXPORT_CONTAINER}",
        "keyVaultName": SOURCE_VAULT,
        "sasTokenSecretName": "acrexportsas",
        "options": ["OverwriteBlobs", "ContinueOnErrors"],
        "storageAccessMode": mode,
    }


def import_pipeline_parameters(manual: bool = False) -> dict[str, Any]:
    """The import pipeline with the source trigger (default), or one without it for manual runs."""
    container = MANUAL_CONTAINER if manual else IMPORT_CONTAINER
    return {
        "registryName": TARGET_REGISTRY,
        "importPipelineName": "manualimport" if manual else "importpipeline",
        "sourceUri": f"https://targetstorage.blob.core.windows.net/{container}",
        "keyVaultName": TARGET_VAULT,
        "sasTokenSecretName": "acrmanualsas" if manual else "acrimportsas",
        "options": ["OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors"],
        "storageAccessMode": "SasToken",
        "sourceTriggerStatus": "Disabled" if manual else "Enabled",
    }


def copy_blob(blobs: BlobServiceClient, name: str, container: str = IMPORT_CONTAINER) -> None:
    """The guide's optional "Transfer blob" step (azcopy there): the exported blob into a target container."""
    source = blobs.get_blob_client(EXPORT_CONTAINER, name)
    target = blobs.get_blob_client(container, name)
    target.start_copy_from_url(source.url)
