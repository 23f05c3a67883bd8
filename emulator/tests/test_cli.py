"""`python -m emulator` prints the client settings, serves, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from emulator import azurite

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]
ROOT = Path(__file__).resolve().parents[2]


def test_python_m_emulator_prints_settings_and_serves(azurite: azurite.Azurite, tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"registries": [{"name": "seededregistry", "repositories": {"a/b": ["v1"]}}]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--azurite-connection-string", azurite.connection_string, "--json",
         "--state-dir", str(tmp_path / "state"), "--seed", str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = []
        while not lines or lines[-1] != "}\n":
            line = process.stdout.readline()
            assert line, "the emulator exited before printing its settings"
            lines.append(line)
        settings = json.loads("".join(lines))
        assert settings["IDENTITY_ENDPOINT"].endswith("/msi/token")
        assert Path(settings["EMULATOR_CA_FILE"]).parent == tmp_path / "state"
        context = ssl.create_default_context(cafile=settings["EMULATOR_CA_FILE"])
        url = settings["EMULATOR_ARM_ENDPOINT"] + "/_emulator/registries/seededregistry"
        with urllib.request.urlopen(url, context=context) as response:  # noqa: S310
            registry = json.loads(response.read())
        assert "a/b" in registry["content"]
        assert settings["EMULATOR_REGISTRY_SEEDEDREGISTRY_ENDPOINT"] == registry["endpoint"]
        challenge = urllib.request.Request(registry["endpoint"] + "/v2/a/b/manifests/v1")  # noqa: S310
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(challenge, context=context)  # noqa: S310
        assert raised.value.code == 401  # the registry's data plane, on its own port
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def test_spawn_emulator_runs_it_in_a_process_of_its_own(azurite: azurite.Azurite) -> None:
    from emulator.testing import spawn_emulator

    running = spawn_emulator(azurite.connection_string, run_seconds=1.5, require_https_sas=False)
    try:
        assert running.process.pid != os.getpid()
        config = running.admin.config()
        assert (config["run_seconds"], config["require_https_sas"]) == (1.5, False)
        running.admin.create_registry("spawnedregistry")
        assert running.registry_endpoint("spawnedregistry").startswith("https://127.0.0.1:")
        assert running.client_kwargs()["base_url"] == running.arm_endpoint
        assert running.settings()["IDENTITY_HEADER"] == running.identity_header
    finally:
        running.stop()
    assert running.process.returncode is not None
    with pytest.raises(TypeError, match="deployment_cleanup"):
        spawn_emulator(azurite.connection_string, subscription_id="x", deployment_cleanup=1)
