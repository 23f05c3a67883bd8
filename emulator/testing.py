"""Start the emulator in-process for tests (`start_emulator`) or in a process of its own (`spawn_emulator`,
for benchmarks: the app then shares neither the interpreter nor its lock with the service it measures),
and the objects tests need to talk to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.admin import AdminClient
from emulator.runtime import Emulator
from emulator.store import Config


class _Client:
    """What tests do with a running emulator, wherever it runs: its subclasses give `admin`,
    `arm_endpoint`, `ca_file`, `identity_endpoint` and `identity_header`."""

    def client_kwargs(self) -> dict[str, Any]:
        """kwargs for DeploymentsMgmtClient / ResourceManagementClient (after credential, subscription_id)."""
        return {
            "base_url": self.arm_endpoint,
            "credential_scopes": [self.arm_endpoint + "/.default"],
            "connection_verify": self.ca_file,
        }

    def reset(self) -> None:
        """Forget all state and restore the default settings of a fresh fixture."""
        self.admin.reset()
        defaults = Config()
        self.admin.configure(**{name: getattr(defaults, name) for name in Config.MUTABLE})

    @contextmanager
    def managed_identity_env(self) -> Iterator[None]:
        """IDENTITY_ENDPOINT / IDENTITY_HEADER / REQUESTS_CA_BUNDLE set for the block (App Service MSI)."""
        values = {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_file,
        }
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@dataclass
class RunningEmulator(_Client):
    emulator: Emulator
    admin: AdminClient

    @property
    def arm_endpoint(self) -> str:
        return self.emulator.arm_endpoint

    @property
    def ca_file(self) -> str:
        return str(self.emulator.ca_file)

    @property
    def identity_endpoint(self) -> str:
        return self.emulator.identity_endpoint

    @property
    def identity_header(self) -> str:
        return self.emulator.identity_header

    @property
    def subscription_id(self) -> str:
        return self.emulator.config.subscription_id

    @property
    def resource_group(self) -> str:
        return self.emulator.config.resource_group

    @property
    def tenant_id(self) -> str:
        return self.emulator.config.tenant_id

    @property
    def azurite_connection_string(self) -> str:
        return self.emulator.azurite_connection_string

    def settings(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.emulator.settings().items()}

    def registry_endpoint(self, name: str) -> str:
        """`https://127.0.0.1:{port}`, the data plane of the registry `name` (for ContainerRegistryClient,
        with `connection_verify=ca_file`)."""
        return self.emulator.registry_api.endpoint(name)

    def storage_url(self, account: str) -> str:
        """`https://127.0.0.1:{port}/{account}`: the account's blob endpoint with Entra ID (token credentials,
        user delegation keys), in front of Azurite."""
        return f"{self.emulator.storage_front_endpoint}/{account}"

    def stop(self) -> None:
        self.emulator.stop()


def start_emulator(
    azurite_connection_string: str,
    *,
    port: int = 0,
    state_dir: str | Path | None = None,
    config: Config | None = None,
    identity_header: str | None = None,
    **settings: Any,
) -> RunningEmulator:
    """Start the emulator in this process on a free port; `settings` override Config fields
    (e.g. run_seconds=0.1, deployment_limit=10)."""
    config = config or Config()
    for name, value in settings.items():
        if not hasattr(config, name):
            raise TypeError(f"unknown emulator setting '{name}'")
        setattr(config, name, value)
    emulator = Emulator(
        azurite_connection_string,
        port=port,
        state_dir=Path(state_dir) if state_dir else None,
        config=config,
        identity_header=identity_header,
    ).start()
    return RunningEmulator(emulator, AdminClient(emulator.arm_endpoint, emulator.ca_file))


def _printed(key: str) -> Any:
    """A member of EmulatorProcess: the setting `key` the child process printed."""
    return property(lambda self: self.printed[key])


@dataclass
class EmulatorProcess(_Client):
    """`python -m emulator` in a child process, with RunningEmulator's members: what it printed, and the
    admin API for everything else."""

    process: subprocess.Popen[str]
    printed: dict[str, str]
    admin: AdminClient

    arm_endpoint = _printed("EMULATOR_ARM_ENDPOINT")
    ca_file = _printed("EMULATOR_CA_FILE")
    identity_endpoint = _printed("IDENTITY_ENDPOINT")
    identity_header = _printed("IDENTITY_HEADER")
    subscription_id = _printed("AZURE_SUBSCRIPTION_ID")
    resource_group = _printed("TRANSFER_RESOURCE_GROUP")
    tenant_id = _printed("AZURE_TENANT_ID")
    azurite_connection_string = _printed("AZURITE_CONNECTION_STRING")

    def settings(self) -> dict[str, str]:
        return dict(self.printed)

    def registry_endpoint(self, name: str) -> str:
        return self.admin.registry_endpoint(name)

    def storage_url(self, account: str) -> str:
        return f"{self.printed['EMULATOR_STORAGE_FRONT']}/{account}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def spawn_emulator(azurite_connection_string: str, **settings: Any) -> EmulatorProcess:
    """Start `python -m emulator` against a running Azurite; `settings` are Config fields: run_seconds and
    trigger_interval are passed on its command line, the others set through the admin API once it is up."""
    command = [sys.executable, "-m", "emulator", "--azurite-connection-string", azurite_connection_string]
    command.append("--json")
    for name in ("run_seconds", "trigger_interval"):
        if name in settings:
            command += [f"--{name.replace('_', '-')}", str(settings.pop(name))]
    unknown = [name for name in settings if name not in Config.MUTABLE]
    if unknown:
        raise TypeError(f"emulator settings not settable in a child process: {', '.join(unknown)}")
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "}\n":  # --json prints one object, then serves until terminated
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the emulator exited ({process.wait()}) before printing its settings")
            lines.append(line)
        printed = {key: str(value) for key, value in json.loads("".join(lines)).items()}
        running = EmulatorProcess(
            process, printed, AdminClient(printed["EMULATOR_ARM_ENDPOINT"], printed["EMULATOR_CA_FILE"])
        )
        if settings:
            running.admin.configure(**settings)
        return running
    except BaseException:
        process.kill()
        process.wait()
        raise
