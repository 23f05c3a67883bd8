"""How settings relate: each rule reads the values as the rows of settings_table.py parsed them, and
completes or refuses them (each problem names its settings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transfer.domain.settings_reader import Reader
from transfer.domain.settings_values import Cloud, StorageConnection, with_suffix

Values = dict[str, Any]


def _roles(read: Reader, values: Values) -> None:
    if not values["export_pipeline"] and not values["import_pipeline"]:
        read.problems.append(
            "set TRANSFER_EXPORT_PIPELINE (source side), TRANSFER_IMPORT_PIPELINE (target side) or both"
        )
    if values["export_artifacts"] and not values["export_pipeline"]:
        read.problems.append("TRANSFER_EXPORT_ARTIFACTS needs TRANSFER_EXPORT_PIPELINE")


def _cloud(read: Reader, values: Values) -> None:
    cloud: Cloud = values["cloud"]
    values["arm_endpoint"] = (values["arm_endpoint"] or cloud.arm_endpoint).rstrip("/")
    values["registry_endpoint"] = (
        values["registry_endpoint"] or f"https://{values['registry']}.{cloud.registry_suffix}"
    )
    for field in ("transfer_storage", "state_storage"):
        values[field] = with_suffix(values[field], cloud.storage_suffix)


def _storage(read: Reader, values: Values) -> None:
    if values["import_pipeline"] and values["transfer_storage"] is None:
        read.problems.append(
            "TransferStorage is required on the target side (a connection string, or "
            "TransferStorage__blobServiceUri and TransferStorage__queueServiceUri)"
        )
    state: StorageConnection | None = values["state_storage"]
    if state is None:
        read.problems.append(
            "TransferState (or AzureWebJobsStorage) is required: "
            "a connection string or TransferState__tableServiceUri"
        )
        values["state_storage"] = StorageConnection("TransferState")
    elif not state.connection_string and not state.table_service_uri:
        read.problems.append(f"{state.setting} has no table endpoint: set {state.setting}__tableServiceUri")


def _window(read: Reader, values: Values) -> None:
    if values["margin_hours"] >= values["window_days"] * 24:
        read.problems.append("TRANSFER_STALE_MARGIN_HOURS must be shorter than the window")


def _copy(read: Reader, values: Values) -> None:
    if values["copy_target_sas_secret_uri"] and not values["copy_target_url"]:
        read.problems.append("TRANSFER_COPY_TARGET_SAS_SECRET_URI needs TRANSFER_COPY_TARGET_URL")
    if values["copy_target_url"] and not values["export_pipeline"]:
        read.problems.append("TRANSFER_COPY_TARGET_URL needs TRANSFER_EXPORT_PIPELINE")


def _on_push(read: Reader, values: Values) -> None:
    if values["export_on_push"] and not values["export_artifacts"]:
        read.problems.append("TRANSFER_EXPORT_ON_PUSH needs TRANSFER_EXPORT_ARTIFACTS (the pushes to export)")
    if values["import_on_arrival"] and not values["import_pipeline"]:
        read.problems.append("TRANSFER_IMPORT_ON_ARRIVAL needs TRANSFER_IMPORT_PIPELINE")


RULES: tuple[Callable[[Reader, Values], None], ...] = (_roles, _cloud, _storage, _window, _copy, _on_push)
