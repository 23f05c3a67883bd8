"""All app settings, read from the environment in one place and validated once: `load_settings` builds
Settings from the rows of settings_table.py, where each setting's name, meaning, default and rule live."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from transfer.domain.errors import SettingsError
from transfer.domain.settings_reader import Reader
from transfer.domain.settings_table import DEFAULTS, RULES, SETTINGS
from transfer.domain.settings_values import (
    ACR_NAME,
    CLOUDS,
    Cloud,
    StaleAction,
    StorageConnection,
    is_loopback_http,
)

__all__ = [
    "ACR_NAME",
    "CLOUDS",
    "Cloud",
    "Settings",
    "StaleAction",
    "StorageConnection",
    "is_loopback_http",
    "load_settings",
]


@dataclass(frozen=True)
class Settings:
    subscription_id: str
    resource_group: str
    registry: str
    export_pipeline: str | None
    import_pipeline: str | None
    export_artifacts: tuple[str, ...]
    export_schedule: str
    reconcile_schedule: str
    sweep_schedule: str
    target_container: str
    transfer_storage: StorageConnection | None
    state_storage: StorageConnection
    stale_action: StaleAction
    window_days: int
    margin_hours: int
    retention_hours: int
    copy_target_url: str | None
    copy_target_sas_secret_uri: str | None
    cloud: Cloud
    arm_endpoint: str
    pipeline_api_version: str
    client_id: str | None
    export_incremental: bool
    export_max_artifacts: int
    registry_endpoint: str
    run_timeout_hours: int
    import_max_attempts: int
    export_on_push: bool
    push_window_seconds: int
    import_on_arrival: bool
    follow_schedule: str

    @property
    def credential_scope(self) -> str:
        return self.arm_endpoint.rstrip("/") + "/.default"

    @property
    def registry_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerRegistry/registries/{self.registry}"
        )

    def pipeline_id(self, kind: str) -> str:
        name = self.export_pipeline if kind == "export" else self.import_pipeline
        return f"{self.registry_id}/{kind}Pipelines/{name}"


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; raise SettingsError naming every bad setting."""
    read = Reader(env, DEFAULTS)
    values = {setting.field: setting.parse(read, setting.name) for setting in SETTINGS}
    for rule in RULES:
        rule(read, values)
    if read.problems:
        raise SettingsError(read.problems)
    return Settings(**values)
