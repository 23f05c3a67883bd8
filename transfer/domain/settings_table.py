"""Every app setting, one row each: its name, what it means, its default, and the rule that reads it.
`load_settings` (settings.py) builds Settings from these rows; docs/settings.md's table is generated from
them (`markdown_table`, a test keeps the two equal). The rules after the table relate settings to each
other. Each problem names its setting; connection strings and SAS never appear in one."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from transfer.domain.artifacts import parse_artifacts
from transfer.domain.errors import InvalidInput
from transfer.domain.settings_reader import Reader
from transfer.domain.settings_values import (
    ACR_NAME,
    API_VERSION,
    CLOUDS,
    CONTAINER,
    GUID,
    RESOURCE_GROUP,
    SECRET_URI_PATH,
    Cloud,
    StaleAction,
    StorageConnection,
    with_suffix,
)


def _artifacts(read: Reader, name: str) -> tuple[str, ...]:
    raw = read.get(name)
    if raw is None:
        return ()
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            read.problems.append(f"{name} is not valid JSON: {exc.msg}")
            return ()
    else:
        items = [item.strip() for item in raw.split(",") if item.strip()]
    try:
        return tuple(parse_artifacts(items, target=name, selectors=True))
    except InvalidInput as exc:
        read.problems.append(f"{exc.target}: {exc.message}")
        return ()


def _secret_uri(read: Reader, name: str) -> str | None:
    value = read.url(name)
    if value and not SECRET_URI_PATH.fullmatch(urlsplit(value).path):
        read.problems.append(f"{name} must be a Key Vault secret URI (…/secrets/NAME)")
    return value


def _state(read: Reader, name: str) -> StorageConnection | None:
    return read.storage(name) or read.storage("AzureWebJobsStorage")


Parse = Callable[[Reader, str], Any]


def _matching(pattern: re.Pattern[str], rule: str, *, required: bool = False) -> Parse:
    return lambda read, name: read.matching(name, pattern, rule, required=required)


def _integer(low: int, high: int) -> Parse:
    return lambda read, name: read.integer(name, low, high)


_SCHEDULE: Parse = Reader.schedule
_PIPELINE = _matching(ACR_NAME, "5-50 letters and digits")
_STALE_ACTIONS = {action.value: action for action in StaleAction}


@dataclass(frozen=True)
class Setting:
    name: str
    field: str  # the Settings attribute it sets
    parse: Parse  # the rule: reads the setting, records what is wrong with it
    meaning: str
    default: str | None = None  # the value when unset
    shown: str | None = None  # the documented default, when it is not the value (required, derived)

    @property
    def documented_default(self) -> str:
        return self.shown or (f"`{self.default}`" if self.default is not None else "unset")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "AZURE_SUBSCRIPTION_ID",
        "subscription_id",
        _matching(GUID, "a GUID", required=True),
        "subscription of the registry (a GUID)",
        shown="required",
    ),
    Setting(
        "TRANSFER_RESOURCE_GROUP",
        "resource_group",
        _matching(RESOURCE_GROUP, "1-90 letters, digits, - _ . ( )", required=True),
        "resource group of the registry, its pipelines and the deployments",
        shown="required",
    ),
    Setting(
        "TRANSFER_REGISTRY",
        "registry",
        _matching(ACR_NAME, "5-50 letters and digits", required=True),
        "registry name (5-50 letters and digits)",
        shown="required",
    ),
    Setting(
        "TRANSFER_EXPORT_PIPELINE",
        "export_pipeline",
        _PIPELINE,
        "export pipeline name; unset: this instance does not export",
    ),
    Setting(
        "TRANSFER_IMPORT_PIPELINE",
        "import_pipeline",
        _PIPELINE,
        "import pipeline name; unset: this instance does not import",
    ),
    Setting(
        "TRANSFER_EXPORT_ARTIFACTS",
        "export_artifacts",
        _artifacts,
        "artifacts or selectors of the scheduled export (`samples/nginx:1.27`, `team/*:v1.*`; README "
        '"Selectors"): a JSON array or a comma list; unset: no scheduled export. A selector that matches '
        "nothing is logged, the rest exported",
    ),
    Setting(
        "TRANSFER_EXPORT_INCREMENTAL",
        "export_incremental",
        Reader.boolean,
        "the scheduled export leaves out tags already exported with the same digest by a run that "
        "succeeded (the export ledger), and starts nothing when nothing changed (`true`/`false`)",
        "true",
    ),
    Setting(
        "TRANSFER_EXPORT_MAX_ARTIFACTS",
        "export_max_artifacts",
        _integer(1, 10_000),
        "most artifacts the selectors of one request may expand to (1-10000), before the incremental "
        "filter; more refuses the request. Exact references do not count",
        "500",
    ),
    Setting(
        "TRANSFER_REGISTRY_ENDPOINT",
        "registry_endpoint",
        partial(Reader.url, https_only=False),
        "the registry's data-plane URL (the emulator, private endpoints): selectors, incremental exports "
        "and, on the target side, verification read tags there (the app's identity needs `AcrPull`)",
        shown="`https://<registry>.<cloud's login server suffix>`",
    ),
    Setting(
        "TRANSFER_EXPORT_SCHEDULE", "export_schedule", _SCHEDULE, "NCRONTAB, 6 fields, UTC", "0 0 2 * * *"
    ),
    Setting("TRANSFER_RECONCILE_SCHEDULE", "reconcile_schedule", _SCHEDULE, "NCRONTAB", "0 */5 * * * *"),
    Setting("TRANSFER_SWEEP_SCHEDULE", "sweep_schedule", _SCHEDULE, "NCRONTAB", "0 30 3 * * *"),
    Setting(
        "TRANSFER_TARGET_CONTAINER",
        "target_container",
        _matching(CONTAINER, "a container name (3-63 lower-case letters, digits, -)"),
        "container the blob trigger and the sweep watch",
        "transfer",
    ),
    Setting(
        "TransferStorage",
        "transfer_storage",
        Reader.storage,
        "the watched account: a connection string, or `TransferStorage__blobServiceUri` + "
        "`TransferStorage__queueServiceUri` for identity",
        shown="required on the target side",
    ),
    Setting(
        "TransferState",
        "state_storage",
        _state,
        "state tables: a connection string, `TransferState__tableServiceUri`, or "
        "`TransferState__accountName`; falls back to `AzureWebJobsStorage`",
        shown="fallback",
    ),
    Setting(
        "TRANSFER_STALE_BLOB_ACTION",
        "stale_action",
        lambda read, name: read.choice(name, _STALE_ACTIONS, "refresh or import"),
        "`refresh` (merge a metadata key so Last-Modified moves to now) or `import` (a manual import run)",
        "refresh",
    ),
    Setting(
        "TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS",
        "window_days",
        _integer(1, 365),
        "the source trigger's Last-Modified window",
        "60",
    ),
    Setting(
        "TRANSFER_STALE_MARGIN_HOURS",
        "margin_hours",
        _integer(0, 24 * 365),
        "act when a blob's age ≥ window − margin",  # noqa: RUF001 - the docs' own signs
        "24",
    ),
    Setting(
        "TRANSFER_RUN_RETENTION_HOURS",
        "retention_hours",
        _integer(0, 24 * 365),
        "delete the ARM resources of finished runs after",
        "72",
    ),
    Setting(
        "TRANSFER_RUN_TIMEOUT_HOURS",
        "run_timeout_hours",
        _integer(1, 24 * 30),
        "a run still active after this many hours fails as `TimedOut` (1-720)",
        "24",
    ),
    Setting(
        "TRANSFER_IMPORT_MAX_ATTEMPTS",
        "import_max_attempts",
        _integer(1, 100),
        "manual import runs tried per blob version before it waits for a person (1-100)",
        "3",
    ),
    Setting(
        "TRANSFER_COPY_TARGET_URL",
        "copy_target_url",
        partial(Reader.url, https_only=False),
        "target container URL for the automatic copy after an export (no SAS in it)",
    ),
    Setting(
        "TRANSFER_COPY_TARGET_SAS_SECRET_URI",
        "copy_target_sas_secret_uri",
        _secret_uri,
        "Key Vault secret holding a SAS for that container; unset: managed identity",
    ),
    Setting(
        "TRANSFER_CLOUD",
        "cloud",
        lambda read, name: read.choice(name, CLOUDS, f"one of {', '.join(CLOUDS)}"),
        "`AzureCloud`, `AzureUSGovernment` or `AzureChinaCloud`: ARM endpoint, authority, storage suffix, "
        "login server suffix (`azurecr.io`, `.us`, `.cn`) and the registry token audience",
        "AzureCloud",
    ),
    Setting(
        "TRANSFER_ARM_ENDPOINT",
        "arm_endpoint",
        Reader.url,
        "overrides the cloud's ARM endpoint (the emulator, private clouds); https only",
        shown="from the cloud",
    ),
    Setting(
        "TRANSFER_PIPELINE_API_VERSION",
        "pipeline_api_version",
        _matching(API_VERSION, "an API version such as 2025-06-01-preview"),
        "API version for pipeline resources; health compares it with the versions the service advertises "
        "(`api-supported-versions`)",
        "2025-06-01-preview",
    ),
    Setting(
        "AZURE_CLIENT_ID",
        "client_id",
        _matching(GUID, "a GUID (the user-assigned identity's client id)"),
        "client id of a user-assigned managed identity",
    ),
    Setting(
        "TRANSFER_EXPORT_ON_PUSH",
        "export_on_push",
        Reader.boolean,
        "export the source registry's pushes (Event Grid `ImagePushed`, function `on_image_pushed`) that "
        "match `TRANSFER_EXPORT_ARTIFACTS`, gathered for `TRANSFER_PUSH_WINDOW_SECONDS` (`true`/`false`)",
        "false",
    ),
    Setting(
        "TRANSFER_PUSH_WINDOW_SECONDS",
        "push_window_seconds",
        _integer(0, 3600),
        "pushes arriving within this many seconds of the first one are gathered into runs of at most 50 "
        "artifacts (0-3600)",
        "60",
    ),
    Setting(
        "TRANSFER_IMPORT_ON_ARRIVAL",
        "import_on_arrival",
        Reader.boolean,
        "import each arriving blob at once with a manual import run instead of leaving it to the import "
        "pipeline's source trigger (`true`/`false`); disable that trigger then, or it imports them too",
        "false",
    ),
    Setting(
        "TRANSFER_FOLLOW_SCHEDULE",
        "follow_schedule",
        _SCHEDULE,
        "NCRONTAB of the `follow_runs` timer: it returns at once when no run is active and no push waits "
        "(no ARM call), else follows the active runs and starts the gathered pushes",
        "*/10 * * * * *",
    ),
)
DEFAULTS = {setting.name: setting.default for setting in SETTINGS if setting.default is not None}


# ---- how settings relate: each rule reads the values as parsed and completes or refuses them ----------

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


def markdown_table() -> str:
    """docs/settings.md's table of every setting."""
    rows = [f"| `{s.name}` | {s.meaning} | {s.documented_default} |" for s in SETTINGS]
    return "\n".join(["| setting | meaning | default |", "| --- | --- | --- |", *rows]) + "\n"
