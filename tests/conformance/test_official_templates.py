"""The official Azure/acr image-transfer templates themselves, with the guide's edits, through the guide's
`az` blocks. They are not in this repository: point ACR_OFFICIAL_TEMPLATES at a checkout's
`docs/image-transfer` folder (git clone https://github.com/Azure/acr) to run this; otherwise it is skipped.
The templates of our own (templates/ beside this file) use each of their shapes and always run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import guide
from tests.conformance.conftest import Cli
from tests.conformance.test_guide import walk_the_guide

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

OFFICIAL = os.environ.get("ACR_OFFICIAL_TEMPLATES", "")
FOLDERS = {
    "export_pipeline": "ExportPipelines",
    "import_pipeline": "ImportPipelines",
    "export_run": "PipelineRun/PipelineRun-Export",
    "import_run": "PipelineRun/PipelineRun-Import",
}
GUIDE_API_VERSION = "2025-06-01-preview"
STORAGE_ACCESS_MODE = {
    "type": "string",
    "defaultValue": "SasToken",
    "allowedValues": ["SasToken", "ManagedIdentity"],
    "metadata": {"description": "Storage access mode: SasToken or ManagedIdentity"},
}


def with_the_guides_edits(template: dict[str, Any]) -> dict[str, Any]:
    """ "Update the ARM template for storage access mode": the pipeline's apiVersion 2025-06-01-preview, the
    storageAccessMode parameter, and storageAccessMode inside target (export) or source (import). A template
    that has them already (the official ones since 2026-02) stays as it is."""
    edited = json.loads(json.dumps(template))
    for resource in edited["resources"]:
        kind = resource["type"].rstrip("/").rsplit("/", 1)[-1].lower()
        if kind not in ("exportpipelines", "importpipelines"):
            continue
        resource["apiVersion"] = GUIDE_API_VERSION
        edited["parameters"].setdefault("storageAccessMode", STORAGE_ACCESS_MODE)
        side = resource["properties"]["target" if kind == "exportpipelines" else "source"]
        side.setdefault("storageAccessMode", "[parameters('storageAccessMode')]")
    return edited


def official_templates(work: Path) -> guide.Templates:
    """A local copy of each official folder, as the guide has the user copy them, with its edits."""
    root = Path(OFFICIAL)
    copies: dict[str, Path] = {}
    for field, relative in FOLDERS.items():
        source = root / relative
        if not (source / "azuredeploy.json").exists():
            pytest.fail(
                f"ACR_OFFICIAL_TEMPLATES={OFFICIAL} has no {relative}/azuredeploy.json", pytrace=False
            )
        target = work / "official" / relative
        shutil.copytree(source, target)
        template = json.loads((target / "azuredeploy.json").read_text(encoding="utf-8"))
        (target / "azuredeploy.json").write_text(json.dumps(with_the_guides_edits(template), indent=2))
        copies[field] = target
    return guide.Templates(**copies)


def test_the_guides_edits_are_idempotent_and_add_what_the_guide_says() -> None:
    before = {
        "parameters": {},
        "resources": [
            {
                "type": "Microsoft.ContainerRegistry/registries/exportPipelines/",
                "apiVersion": "2019-12-01-preview",
                "properties": {"target": {"type": "AzureStorageBlobContainer"}},
            },
            {
                "type": "Microsoft.KeyVault/vaults/accessPolicies",
                "apiVersion": "2023-07-01",
                "properties": {},
            },
        ],
    }
    after = with_the_guides_edits(before)
    assert after["resources"][0]["apiVersion"] == GUIDE_API_VERSION
    assert (
        after["resources"][0]["properties"]["target"]["storageAccessMode"]
        == "[parameters('storageAccessMode')]"
    )
    assert after["parameters"]["storageAccessMode"]["allowedValues"] == ["SasToken", "ManagedIdentity"]
    assert after["resources"][1]["apiVersion"] == "2023-07-01"
    assert with_the_guides_edits(after) == after


@pytest.mark.skipif(
    not OFFICIAL, reason="ACR_OFFICIAL_TEMPLATES (a checkout's docs/image-transfer) is not set"
)
def test_the_official_templates_through_the_guide(az: Cli, tmp_path: Path) -> None:
    walk_the_guide(az, tmp_path, official_templates(tmp_path))
