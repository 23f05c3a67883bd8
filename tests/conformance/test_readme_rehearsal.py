"""README's "Rehearse your own `az` workflow" block, run as written: it starts `python -m emulator` with
Azurite itself, registers the cloud, logs in and deploys with the real Azure CLI, then stops."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conformance.conftest import AZ_BIN, BASH

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

ROOT = Path(__file__).resolve().parents[2]


def rehearsal_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Rehearse your own `az` workflow\n", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "README.md has a bash block under 'Rehearse your own `az` workflow'"
    return match.group(1)


def test_the_readme_rehearsal_runs_as_written() -> None:
    if not (AZ_BIN / "az").exists():
        pytest.fail(f"{AZ_BIN / 'az'} is missing: `make test` installs it", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        env.pop(proxy, None)
    done = subprocess.run(
        [BASH, "-euo", "pipefail", "-c", rehearsal_block()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert '"storageAccessMode": "ManagedIdentity"' in done.stdout
    assert '"samples/hello-world"' in done.stdout
