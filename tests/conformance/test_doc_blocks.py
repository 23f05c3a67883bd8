"""docs/deploy.md's az blocks as written, with the real Azure CLI against the emulator: the one command per
side (publishing printed, there is no Functions host here), and section 3's deployment of the app with each
hosting plan. (infra/README.md's deploy block and README's rehearsal have tests of their own.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.conftest import Cli
from tests.doc_blocks import block

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

ROOT = Path(__file__).resolve().parents[2]


def states(az: Cli, group: str) -> dict[str, str]:
    listed = az.az_json("deployment", "group", "list", "-g", group)
    return {d["name"]: d["properties"]["provisioningState"] for d in listed}


def test_deploy_md_one_command_per_side_runs_as_written(az: Cli) -> None:
    written = block("docs/deploy.md", "infra/deploy-side.sh target")
    done = az.shell(written.text, cwd=ROOT, variables={"PUBLISH": "print", "WAIT_SECONDS": "30"})
    assert states(az, "acr-transfer-target-rg")["acrtransfer-target"] == "Succeeded"
    assert states(az, "acr-transfer-source-rg")["acrtransfer-source"] == "Succeeded"
    assert done.stderr.count("== still to do by a person") == 2


def test_deploy_md_section_3_deploys_the_app_with_either_plan_as_written(az: Cli) -> None:
    az.shell(block("docs/deploy.md", "az group create -n acr-transfer-rg").text, cwd=ROOT)
    deployed = states(az, "acr-transfer-rg")
    assert deployed["acrtransfer-app"] == "Succeeded"
    assert set(deployed.values()) == {"Succeeded"}, deployed
    az.shell(
        block("docs/deploy.md", "az deployment group create -g acr-transfer-rg -n acrtransfer-app").text,
        cwd=ROOT,
    )
    plan = az.az_json(
        "deployment", "group", "show", "-g", "acr-transfer-rg", "-n", "acrtransfer-app",
        "--query", "properties.outputs.hostingPlan.value",
    )  # fmt: skip
    assert plan == "ElasticPremium"
