"""infra/deploy-side.sh, the one command that deploys a side, with the real Azure CLI against the emulator:
the infrastructure, the package it would publish (nothing to publish to here: PUBLISH=print names the
command and the package), the Event Grid subscription, the grants left to the deployer, and what a person
still has to do; a second run writes nothing to ARM (its request log holds reads and validations only)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.conformance.conftest import Cli

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "deploy-side.sh"
WRITES = {"PUT", "PATCH", "DELETE"}


def deploy(az: Cli, side: str, group: str, *parameters: str) -> str:
    done = az.shell(
        " ".join([str(SCRIPT), side, group, *parameters]),
        cwd=ROOT,
        variables={"PUBLISH": "print", "WAIT_SECONDS": "30", "LOCATION": "westeurope"},
    )
    return str(done.stderr) + str(done.stdout)


def writes(az: Cli, since: int) -> list[str]:
    return [
        f"{r['method']} {r['path']}"
        for r in az.emulator.admin.requests(since)
        if r["method"] in WRITES
        or (r["method"] == "POST" and not r["path"].endswith(("/validate", "/listkeys", "/listKeys")))
    ]


@pytest.mark.parametrize("side", ["target", "source"])
def test_one_command_deploys_a_side_and_a_second_run_writes_nothing(az: Cli, side: str) -> None:
    group = f"deploy-{side}-rg"
    first = deploy(az, side, group)
    deployments = az.az_json("deployment", "group", "list", "-g", group)
    states = {d["name"]: d["properties"]["provisioningState"] for d in deployments}
    assert states.get(f"acrtransfer-{side}") == "Succeeded", states
    assert set(states.values()) == {"Succeeded"}, states
    app = az.az_json(
        "resource", "show", "-g", group, "-n", f"acrtransfer-{side}", "--resource-type", "Microsoft.Web/sites"
    )
    assert app["kind"] == "functionapp,linux"
    # the package it would send: make package's zip, named by its SHA-256, and the command that sends it
    package = ROOT / "dist" / "functionapp.zip"
    sha = hashlib.sha256(package.read_bytes()).hexdigest()
    assert (
        f"would publish package {sha} ({package}) with: az functionapp deployment source config-zip "
        f"-g {group} -n acrtransfer-{side} --src {package} --build-remote true" in first
    )
    if side == "target":
        assert any(name.endswith("-eventgrid") for name in states), states
    else:
        assert not any(name.endswith("-eventgrid") for name in states), states
    assert "== still to do by a person" in first
    assert "publish the code: az functionapp deployment source config-zip" in first

    since = max((r["index"] for r in az.emulator.admin.requests()), default=0) + 1
    second = deploy(az, side, group)
    assert "exists" in second
    assert f"deployment acrtransfer-{side} in {group}: unchanged" in second
    assert writes(az, since) == []
    assert az.az_json("deployment", "group", "list", "-g", group) == deployments


def test_a_changed_parameter_is_deployed_again(az: Cli) -> None:
    group = "deploy-change-rg"
    deploy(az, "source", group)
    since = max((r["index"] for r in az.emulator.admin.requests()), default=0) + 1
    changed = deploy(az, "source", group, "exportSchedule='0 0 4 * * *'")
    assert "unchanged" not in changed
    assert any(re.search(r"^PUT .*/deployments/acrtransfer-source$", w) for w in writes(az, since))
    recorded = az.az_json(
        "deployment", "group", "show", "-g", group, "-n", "acrtransfer-source",
        "--query", "properties.parameters.exportSchedule.value",
    )  # fmt: skip
    assert recorded == "0 0 4 * * *"
