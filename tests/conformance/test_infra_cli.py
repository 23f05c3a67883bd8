"""infra/README.md's "Deploy" block, as written, with the real Azure CLI against the emulator: the function
app's template (nested deployments, role assignments, the types the emulator stores as ARM answers them)
and deploy-eventgrid.sh (which reads the host's keys with `az functionapp keys list`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conformance.conftest import Cli

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

ROOT = Path(__file__).resolve().parents[2]


def deploy_block() -> str:
    readme = (ROOT / "infra" / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Deploy\n", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "infra/README.md has a bash block under ## Deploy"
    return match.group(1)


def test_the_infra_readme_deploy_block_runs_as_written(az: Cli) -> None:
    block = deploy_block()
    assert "az deployment group create" in block
    assert "deploy-eventgrid.sh" in block
    az.shell(block, cwd=ROOT, variables={"WAIT_SECONDS": "30"})
    deployments = az.az_json("deployment", "group", "list", "-g", "acr-transfer-rg")
    states = {d["name"]: d["properties"]["provisioningState"] for d in deployments}
    app = next(d for d in deployments if d["name"] == "acrtransfer-app")
    host = app["properties"]["outputs"]["functionAppHostName"]["value"]
    assert host.endswith(".azurewebsites.net")
    events = next(d for d in deployments if d["name"].endswith("-eventgrid"))
    assert set(states.values()) == {"Succeeded"}, states
    subscription = events["properties"]["outputs"]["eventSubscriptionResourceId"]["value"]
    found = az.az_json("resource", "show", "--ids", subscription, "--api-version", "2022-06-15")
    destination = found["properties"]["destination"]
    assert destination["endpointType"] == "WebHook"
