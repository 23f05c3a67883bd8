"""The manual guide's `az` commands, as printed, against `python -m emulator`: templates with every shape
of the official Azure/acr ones (tests/conformance/templates), the real Azure CLI logged in with
`az login --identity`, the registry's data plane through `az acr repository list`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import guide
from tests.conformance.conftest import Cli

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

GROUPS = {
    "SOURCE_RG": guide.SOURCE_RG,
    "TARGET_RG": guide.TARGET_RG,
    "TARGET_REGISTRY": guide.TARGET_REGISTRY,
}


def repositories(az: Cli, work: Path, registry: str = guide.TARGET_REGISTRY) -> list[str]:
    done = az.shell(
        guide.LIST_TARGET_REPOSITORIES, cwd=work, variables={**GROUPS, "TARGET_REGISTRY": registry}
    )
    return list(json.loads(done.stdout))


def wait_for_repository(az: Cli, work: Path, repository: str, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = repositories(az, work)
        if repository in found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def resource(az: Cli, resource_id: str) -> dict[str, Any]:
    result: dict[str, Any] = az.az_json(
        "resource", "show", "--ids", resource_id, "--api-version", "2025-06-01-preview"
    )
    return result


def vault_principals(az: Cli, group: str, vault: str) -> list[str]:
    found = az.az_json(
        "resource",
        "show",
        "--ids",
        f"/subscriptions/{az.emulator.subscription_id}/resourceGroups/{group}/providers/"
        f"Microsoft.KeyVault/vaults/{vault}",
        "--api-version",
        "2023-07-01",
    )
    return [policy["objectId"] for policy in found["properties"]["accessPolicies"]]


def walk_the_guide(az: Cli, tmp_path: Path, templates: guide.Templates) -> None:
    """Export pipeline (system identity, SasToken), export run, the copy, the import pipeline's source
    trigger, a manual import run on a pipeline without the trigger, the forceUpdateTag redeploy and the
    deletion, each block as the guide prints it."""
    blobs = guide.prepare(az.emulator)
    export_folder = guide.folder(
        tmp_path, templates.export_pipeline, guide.export_pipeline_parameters(), "export"
    )
    done = az.shell(
        guide.CREATE_EXPORT_PIPELINE + guide.EXPORT_RES_ID + guide.print_variables("EXPORT_RES_ID"),
        cwd=export_folder,
        variables=GROUPS,
    )
    found = guide.read_variables(done.stdout)
    export_id = found["EXPORT_RES_ID"]
    assert export_id.lower().endswith("/registries/sourceregistry01/exportpipelines/exportpipeline")
    pipeline = resource(az, export_id)
    assert pipeline["identity"]["type"] == "systemAssigned"
    assert "location" not in pipeline or pipeline["location"] is None
    # made by the deployment as its caller: the identity of `az login --identity`
    assert pipeline["systemData"]["createdByType"] == "ManagedIdentity"
    assert re.fullmatch(r"[0-9a-f-]{36}", pipeline["systemData"]["createdBy"])  # its client id
    # SasToken mode: the access policy, its principal from reference(pipeline, <api version>, 'Full')
    assert pipeline["identity"]["principalId"] in vault_principals(az, guide.SOURCE_RG, guide.SOURCE_VAULT)

    run_parameters = {
        "registryName": guide.SOURCE_REGISTRY,
        "pipelineRunName": "exportrun01",
        "pipelineResourceId": export_id,
        "targetName": "transfer01",
        "artifacts": [guide.ARTIFACT],
    }
    run_folder = guide.folder(tmp_path, templates.export_run, run_parameters, "export-run")
    done = az.shell(
        guide.CREATE_EXPORT_RUN + guide.EXPORT_RUN_RES_ID + guide.print_variables("EXPORT_RUN_RES_ID"),
        cwd=run_folder,
        variables=GROUPS,
    )
    export_run_id = guide.read_variables(done.stdout)["EXPORT_RUN_RES_ID"]
    run = resource(az, export_run_id)
    assert run["properties"]["response"]["status"] == "Succeeded"
    assert run["properties"]["request"]["source"] == {"type": "", "name": ""}  # the unused side, as sent
    assert blobs.get_blob_client(guide.EXPORT_CONTAINER, "transfer01").exists()

    # Transfer blob, then the import pipeline with its source trigger (the default): the artifact arrives.
    guide.copy_blob(blobs, "transfer01")
    import_folder = guide.folder(
        tmp_path, templates.import_pipeline, guide.import_pipeline_parameters(), "import"
    )
    done = az.shell(
        guide.CREATE_IMPORT_PIPELINE + guide.IMPORT_RES_ID + guide.print_variables("IMPORT_RES_ID"),
        cwd=import_folder,
        variables=GROUPS,
    )
    import_id = guide.read_variables(done.stdout)["IMPORT_RES_ID"]
    assert import_id.lower().endswith("/importpipelines/importpipeline")
    assert "samples/hello-world" in wait_for_repository(az, tmp_path, "samples/hello-world")

    # A manual import run, on an import pipeline whose trigger is Disabled (the guide's other path).
    guide.copy_blob(blobs, "transfer01", guide.MANUAL_CONTAINER)
    manual_folder = guide.folder(
        tmp_path, templates.import_pipeline, guide.import_pipeline_parameters(manual=True), "manual"
    )
    done = az.shell(
        guide.CREATE_IMPORT_PIPELINE + guide.IMPORT_RES_ID + guide.print_variables("IMPORT_RES_ID"),
        cwd=manual_folder,
        variables=GROUPS,
    )
    manual_id = guide.read_variables(done.stdout)["IMPORT_RES_ID"]
    import_run = guide.folder(
        tmp_path,
        templates.import_run,
        {
            "registryName": guide.TARGET_REGISTRY,
            "pipelineRunName": "importrun01",
            "pipelineResourceId": manual_id,
            "sourceName": "transfer01",
        },
        "import-run",
    )
    done = az.shell(
        guide.CREATE_IMPORT_RUN + guide.IMPORT_RUN_RES_ID + guide.print_variables("IMPORT_RUN_RES_ID"),
        cwd=import_run,
        variables=GROUPS,
    )
    import_run_id = guide.read_variables(done.stdout)["IMPORT_RUN_RES_ID"]
    imported = resource(az, import_run_id)["properties"]
    assert imported["response"]["status"] == "Succeeded"
    assert imported["response"]["importedArtifacts"] == [guide.ARTIFACT]
    assert imported["request"]["target"] == {"type": "", "name": ""}

    # Redeploy with identical properties and a new forceUpdateTag: a second export, which overwrites.
    before = resource(az, export_run_id)["properties"]["response"]["startTime"]
    az.shell(guide.REDEPLOY_EXPORT_RUN, cwd=run_folder, variables=GROUPS)
    again = resource(az, export_run_id)["properties"]
    assert again["forceUpdateTag"]
    assert again["response"]["status"] == "Succeeded"
    assert again["response"]["startTime"] != before

    variables = {
        **GROUPS,
        "EXPORT_RES_ID": export_id,
        "EXPORT_RUN_RES_ID": export_run_id,
        "IMPORT_RES_ID": manual_id,
        "IMPORT_RUN_RES_ID": import_run_id,
    }
    az.shell(guide.DELETE_EXPORT_RESOURCES + guide.DELETE_IMPORT_RESOURCES, cwd=tmp_path, variables=variables)
    for gone in (export_id, export_run_id, manual_id, import_run_id):
        missing = az.az("resource", "show", "--ids", gone, "--api-version", "2025-06-01-preview", check=False)
        assert missing.returncode != 0
        assert "ResourceNotFound" in missing.stderr


def test_the_guide_end_to_end(az: Cli, tmp_path: Path) -> None:
    walk_the_guide(az, tmp_path, guide.OURS)


def test_option_2_a_user_assigned_identity(az: Cli, tmp_path: Path) -> None:
    """Option 2 of the guide: the identity's resource id as an extra --parameters; the template keys
    userAssignedIdentities by that expression, and the access policy goes to the identity's principal."""
    guide.prepare(az.emulator)
    identity = az.az_json(
        "identity", "create", "--resource-group", guide.SOURCE_RG, "--name", "transferidentity"
    )
    export_folder = guide.folder(
        tmp_path, guide.OURS.export_pipeline, guide.export_pipeline_parameters(), "export"
    )
    done = az.shell(
        guide.CREATE_EXPORT_PIPELINE_USER_IDENTITY
        + guide.EXPORT_RES_ID
        + guide.print_variables("EXPORT_RES_ID"),
        cwd=export_folder,
        variables={**GROUPS, "USER_IDENTITY_ID": identity["id"]},
    )
    pipeline = resource(az, guide.read_variables(done.stdout)["EXPORT_RES_ID"])
    assert pipeline["identity"]["type"] == "userAssigned"
    (assigned,) = pipeline["identity"]["userAssignedIdentities"].values()
    assert assigned["principalId"] == identity["principalId"]
    assert identity["principalId"] in vault_principals(az, guide.SOURCE_RG, guide.SOURCE_VAULT)


def test_managed_identity_mode_has_one_output_resource(az: Cli, tmp_path: Path) -> None:
    """In ManagedIdentity mode the access policy is not deployed: outputResources has only the pipeline,
    so the guide's `outputResources[1]` names nothing (README: the order of outputResources)."""
    guide.prepare(az.emulator)
    export_folder = guide.folder(
        tmp_path, guide.OURS.export_pipeline, guide.export_pipeline_parameters("ManagedIdentity"), "export"
    )
    done = az.shell(
        guide.CREATE_EXPORT_PIPELINE + guide.EXPORT_RES_ID + guide.print_variables("EXPORT_RES_ID"),
        cwd=export_folder,
        variables=GROUPS,
    )
    assert guide.read_variables(done.stdout)["EXPORT_RES_ID"] == ""
    ids = az.az_json(
        "deployment", "group", "show", "-g", guide.SOURCE_RG, "-n", "exportPipeline", "--query",
        "properties.outputResources[].id",
    )  # fmt: skip
    (pipeline_id,) = ids
    pipeline = resource(az, pipeline_id)
    assert pipeline["properties"]["target"]["storageAccessMode"] == "ManagedIdentity"
    assert "keyVaultUri" not in pipeline["properties"]["target"]
    az.emulator.admin.assign_role(pipeline["identity"]["principalId"], storage_account="sourcestorage")
    run_folder = guide.folder(
        tmp_path,
        guide.OURS.export_run,
        {
            "registryName": guide.SOURCE_REGISTRY,
            "pipelineRunName": "exportrun02",
            "pipelineResourceId": pipeline_id,
            "targetName": "transfer02",
            "artifacts": [guide.ARTIFACT],
        },
        "export-run",
    )
    done = az.shell(
        guide.CREATE_EXPORT_RUN + guide.EXPORT_RUN_RES_ID + guide.print_variables("EXPORT_RUN_RES_ID"),
        cwd=run_folder,
        variables=GROUPS,
    )
    run = resource(az, guide.read_variables(done.stdout)["EXPORT_RUN_RES_ID"])
    assert run["properties"]["response"]["status"] == "Succeeded"


def test_deployment_order_makes_the_guide_delete_the_access_policy_which_arm_refuses(
    az: Cli, tmp_path: Path
) -> None:
    """With outputResources in deployment order, the guide's `outputResources[1]` of a SasToken export
    pipeline is the Key Vault access policy, and its `az resource delete --api-version 2025-06-01-preview`
    is refused as ARM refuses a version the type does not have: never a silent success."""
    guide.prepare(az.emulator)
    az.emulator.admin.configure(output_resources_order="deployed")
    export_folder = guide.folder(
        tmp_path, guide.OURS.export_pipeline, guide.export_pipeline_parameters(), "export"
    )
    done = az.shell(
        guide.CREATE_EXPORT_PIPELINE + guide.EXPORT_RES_ID + guide.print_variables("EXPORT_RES_ID"),
        cwd=export_folder,
        variables=GROUPS,
    )
    policy_id = guide.read_variables(done.stdout)["EXPORT_RES_ID"]
    assert policy_id.lower().endswith(f"/vaults/{guide.SOURCE_VAULT}/accesspolicies/add")
    refused = az.shell(
        guide.DELETE_EXPORT_RESOURCES,
        cwd=tmp_path,
        variables={**GROUPS, "EXPORT_RES_ID": policy_id, "EXPORT_RUN_RES_ID": ""},
        check=False,
    )
    assert refused.returncode != 0
    detail = az.az(
        "resource",
        "delete",
        "--ids",
        policy_id,
        "--api-version",
        "2025-06-01-preview",
        "--verbose",
        check=False,
    )
    assert "NoRegisteredProviderFound" in detail.stderr
    assert "'vaults/accessPolicies'" in detail.stderr
    assert "2023-07-01" in detail.stderr  # the versions it does have


def test_outputs_in_every_order(az: Cli, tmp_path: Path) -> None:
    """The setting output_resources_order offers each plausible order of outputResources."""
    guide.prepare(az.emulator)
    export_folder = guide.folder(
        tmp_path, guide.OURS.export_pipeline, guide.export_pipeline_parameters(), "export"
    )
    az.shell(guide.CREATE_EXPORT_PIPELINE, cwd=export_folder, variables=GROUPS)
    orders = {}
    for order in ("reverse", "deployed", "sorted"):
        az.emulator.admin.configure(output_resources_order=order)
        ids = az.az_json(
            "deployment", "group", "show", "-g", guide.SOURCE_RG, "-n", "exportPipeline", "--query",
            "properties.outputResources[].id",
        )  # fmt: skip
        orders[order] = [i.rsplit("/", 2)[1] for i in ids]
    assert orders == {
        "reverse": ["accessPolicies", "exportPipelines"],
        "deployed": ["exportPipelines", "accessPolicies"],
        "sorted": ["exportPipelines", "accessPolicies"],  # Microsoft.ContainerRegistry < Microsoft.KeyVault
    }
