"""Start the emulator in-process for tests (`start_emulator`) and the objects tests need to talk to it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.admin import AdminClient
from emulator.runtime import Emulator
from emulator.state import Config


@dataclass
class RunningEmulator:
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
