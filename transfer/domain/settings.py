"""All app settings, read from the environment in one place and validated once."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from transfer.domain.artifacts import parse_artifacts
from transfer.domain.errors import InvalidInput, SettingsError


@dataclass(frozen=True)
class Cloud:
    name: str
    arm_endpoint: str
    authority_host: str
    storage_suffix: str
    registry_suffix: str  # login servers are <registry>.<suffix>
    registry_audience: str  # the token audience the registry data plane accepts (docs/service-facts.md)


CLOUDS = {
    c.name: c
    for c in (
        Cloud(
            "AzureCloud",
            "https://management.azure.com",
            "login.microsoftonline.com",
            "core.windows.net",
            "azurecr.io",
            "https://containerregistry.azure.net",
        ),
        Cloud(
            "AzureUSGovernment",
            "https://management.usgovcloudapi.net",
            "login.microsoftonline.us",
            "core.usgovcloudapi.net",
            "azurecr.us",
            "https://management.usgovcloudapi.net",
        ),
        Cloud(
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn",
            "login.chinacloudapi.cn",
            "core.chinacloudapi.cn",
            "azurecr.cn",
            "https://management.chinacloudapi.cn",
        ),
    )
}


class StaleAction(StrEnum):
    REFRESH = "refresh"
    IMPORT = "import"


@dataclass(frozen=True)
class StorageConnection:
    """A connection string (Azurite, keys) or service URIs for identity-based access; never logged."""

    setting: str
    connection_string: str | None = field(default=None, repr=False)
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None


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
    export_incremental: bool = True
    export_max_artifacts: int = 500
    registry_endpoint: str = ""
    run_timeout_hours: int = 24
    import_max_attempts: int = 3

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


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
ACR_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_NCRONTAB_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
_SECRET_URI_PATH = re.compile(r"^/secrets/[0-9a-zA-Z-]{1,127}(/[0-9a-fA-F]{32})?/?$")

DEFAULTS = {
    "TRANSFER_EXPORT_SCHEDULE": "0 0 2 * * *",
    "TRANSFER_RECONCILE_SCHEDULE": "0 */5 * * * *",
    "TRANSFER_SWEEP_SCHEDULE": "0 30 3 * * *",
    "TRANSFER_TARGET_CONTAINER": "transfer",
    "TRANSFER_STALE_BLOB_ACTION": "refresh",
    "TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS": "60",
    "TRANSFER_STALE_MARGIN_HOURS": "24",
    "TRANSFER_RUN_RETENTION_HOURS": "72",
    "TRANSFER_CLOUD": "AzureCloud",
    "TRANSFER_PIPELINE_API_VERSION": "2025-06-01-preview",
    "TRANSFER_EXPORT_INCREMENTAL": "true",
    "TRANSFER_EXPORT_MAX_ARTIFACTS": "500",
    "TRANSFER_RUN_TIMEOUT_HOURS": "24",
    "TRANSFER_IMPORT_MAX_ATTEMPTS": "3",
}


def is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}


class _Reader:
    """Collects every problem so one error lists them all, each naming its setting."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        value = self.env.get(name, DEFAULTS.get(name))
        value = value.strip() if value is not None else None
        return value or DEFAULTS.get(name) or None

    def required(self, name: str, why: str = "") -> str:
        value = self.get(name)
        if value is None:
            self.problems.append(f"{name} is required{why}")
            return ""
        return value

    def matching(
        self, name: str, pattern: re.Pattern[str], rule: str, *, required: bool = False
    ) -> str | None:
        value = self.required(name) if required else self.get(name)
        if value and not pattern.fullmatch(value):
            self.problems.append(f"{name} must be {rule}")
        return value or None

    def integer(self, name: str, low: int, high: int) -> int:
        raw = self.get(name) or ""
        try:
            number = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return int(DEFAULTS[name])
        if not low <= number <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {number}")
        return number

    def boolean(self, name: str) -> bool:
        raw = (self.get(name) or "").lower()
        if raw in ("true", "1", "yes"):
            return True
        if raw in ("false", "0", "no"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return DEFAULTS[name] == "true"

    def schedule(self, name: str) -> str:
        value = self.get(name) or ""
        fields = value.split()
        if len(fields) == 6 and all(_NCRONTAB_FIELD.fullmatch(f) for f in fields):
            return value
        self.problems.append(
            f"{name} must be an NCRONTAB expression of 6 fields (seconds first), got {value!r}"
        )
        return value

    def url(self, name: str, *, https_only: bool = True) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.query:
            self.problems.append(f"{name} must not carry a query string (no SAS in settings)")
        elif not parts.hostname or (
            parts.scheme != "https" and not (not https_only and is_loopback_http(value))
        ):
            self.problems.append(f"{name} must be an https:// URL")
        return value.rstrip("/")

    def storage(self, name: str) -> StorageConnection | None:
        conn = self.get(name)
        uris = {kind: self.get(f"{name}__{kind}ServiceUri") for kind in ("blob", "queue", "table")}
        account = self.get(f"{name}__accountName")
        if conn:
            if "=" not in conn:
                self.problems.append(f"{name} is not a storage connection string")
            return StorageConnection(name, connection_string=conn)
        if account and not any(uris.values()):
            uris = {kind: f"https://{account}.{kind}.{{suffix}}" for kind in uris}
        if any(uris.values()):
            for kind, uri in uris.items():
                if uri and not uri.startswith("https://") and not is_loopback_http(uri):
                    self.problems.append(f"{name}__{kind}ServiceUri must be an https:// URL")
            return StorageConnection(
                name,
                blob_service_uri=uris["blob"],
                queue_service_uri=uris["queue"],
                table_service_uri=uris["table"],
            )
        return None


def _with_suffix(conn: StorageConnection | None, suffix: str) -> StorageConnection | None:
    if conn is None or conn.connection_string:
        return conn
    return StorageConnection(
        conn.setting,
        blob_service_uri=conn.blob_service_uri.replace("{suffix}", suffix) if conn.blob_service_uri else None,
        queue_service_uri=conn.queue_service_uri.replace("{suffix}", suffix)
        if conn.queue_service_uri
        else None,
        table_service_uri=conn.table_service_uri.replace("{suffix}", suffix)
        if conn.table_service_uri
        else None,
    )


def _artifacts(read: _Reader) -> tuple[str, ...]:
    raw = read.get("TRANSFER_EXPORT_ARTIFACTS")
    if raw is None:
        return ()
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            read.problems.append(f"TRANSFER_EXPORT_ARTIFACTS is not valid JSON: {exc.msg}")
            return ()
    else:
        items = [item.strip() for item in raw.split(",") if item.strip()]
    try:
        return tuple(parse_artifacts(items, target="TRANSFER_EXPORT_ARTIFACTS", selectors=True))
    except InvalidInput as exc:
        read.problems.append(f"{exc.target}: {exc.message}")
        return ()


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; raise SettingsError naming every bad setting."""
    read = _Reader(env)
    export_pipeline = read.matching("TRANSFER_EXPORT_PIPELINE", ACR_NAME, "5-50 letters and digits")
    import_pipeline = read.matching("TRANSFER_IMPORT_PIPELINE", ACR_NAME, "5-50 letters and digits")
    if not export_pipeline and not import_pipeline:
        read.problems.append(
            "set TRANSFER_EXPORT_PIPELINE (source side), TRANSFER_IMPORT_PIPELINE (target side) or both"
        )
    subscription = read.matching("AZURE_SUBSCRIPTION_ID", _GUID, "a GUID", required=True) or ""
    resource_group = read.matching(
        "TRANSFER_RESOURCE_GROUP", _RESOURCE_GROUP, "1-90 letters, digits, - _ . ( )", required=True
    )
    registry = read.matching("TRANSFER_REGISTRY", ACR_NAME, "5-50 letters and digits", required=True)
    artifacts = _artifacts(read)
    if artifacts and not export_pipeline:
        read.problems.append("TRANSFER_EXPORT_ARTIFACTS needs TRANSFER_EXPORT_PIPELINE")

    cloud_name = read.get("TRANSFER_CLOUD") or "AzureCloud"
    cloud = CLOUDS.get(cloud_name)
    if cloud is None:
        read.problems.append(f"TRANSFER_CLOUD must be one of {', '.join(CLOUDS)}, got {cloud_name!r}")
        cloud = CLOUDS["AzureCloud"]
    arm_endpoint = read.url("TRANSFER_ARM_ENDPOINT") or cloud.arm_endpoint

    transfer_storage = _with_suffix(read.storage("TransferStorage"), cloud.storage_suffix)
    if import_pipeline and transfer_storage is None:
        read.problems.append(
            "TransferStorage is required on the target side (a connection string, or "
            "TransferStorage__blobServiceUri and TransferStorage__queueServiceUri)"
        )
    state_storage = _with_suffix(
        read.storage("TransferState") or read.storage("AzureWebJobsStorage"), cloud.storage_suffix
    )
    if state_storage is None:
        read.problems.append(
            "TransferState (or AzureWebJobsStorage) is required: "
            "a connection string or TransferState__tableServiceUri"
        )
    elif not state_storage.connection_string and not state_storage.table_service_uri:
        read.problems.append(
            f"{state_storage.setting} has no table endpoint: set {state_storage.setting}__tableServiceUri"
        )

    stale_raw = read.get("TRANSFER_STALE_BLOB_ACTION") or "refresh"
    try:
        stale_action = StaleAction(stale_raw)
    except ValueError:
        read.problems.append(f"TRANSFER_STALE_BLOB_ACTION must be refresh or import, got {stale_raw!r}")
        stale_action = StaleAction.REFRESH
    window_days = read.integer("TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS", 1, 365)
    margin_hours = read.integer("TRANSFER_STALE_MARGIN_HOURS", 0, 24 * 365)
    if margin_hours >= window_days * 24:
        read.problems.append("TRANSFER_STALE_MARGIN_HOURS must be shorter than the window")
    copy_url = read.url("TRANSFER_COPY_TARGET_URL", https_only=False)
    copy_secret = read.url("TRANSFER_COPY_TARGET_SAS_SECRET_URI")
    if copy_secret and not _SECRET_URI_PATH.fullmatch(urlsplit(copy_secret).path):
        read.problems.append(
            "TRANSFER_COPY_TARGET_SAS_SECRET_URI must be a Key Vault secret URI (…/secrets/NAME)"
        )
    if copy_secret and not copy_url:
        read.problems.append("TRANSFER_COPY_TARGET_SAS_SECRET_URI needs TRANSFER_COPY_TARGET_URL")
    if copy_url and not export_pipeline:
        read.problems.append("TRANSFER_COPY_TARGET_URL needs TRANSFER_EXPORT_PIPELINE")

    settings = Settings(
        subscription_id=subscription,
        resource_group=resource_group or "",
        registry=registry or "",
        export_pipeline=export_pipeline,
        import_pipeline=import_pipeline,
        export_artifacts=artifacts,
        export_schedule=read.schedule("TRANSFER_EXPORT_SCHEDULE"),
        reconcile_schedule=read.schedule("TRANSFER_RECONCILE_SCHEDULE"),
        sweep_schedule=read.schedule("TRANSFER_SWEEP_SCHEDULE"),
        target_container=read.matching(
            "TRANSFER_TARGET_CONTAINER", _CONTAINER, "a container name (3-63 lower-case letters, digits, -)"
        )
        or "transfer",
        transfer_storage=transfer_storage,
        state_storage=state_storage or StorageConnection("TransferState"),
        stale_action=stale_action,
        window_days=window_days,
        margin_hours=margin_hours,
        retention_hours=read.integer("TRANSFER_RUN_RETENTION_HOURS", 0, 24 * 365),
        copy_target_url=copy_url,
        copy_target_sas_secret_uri=copy_secret,
        cloud=cloud,
        arm_endpoint=arm_endpoint.rstrip("/"),
        pipeline_api_version=read.matching(
            "TRANSFER_PIPELINE_API_VERSION", _API_VERSION, "an API version such as 2025-06-01-preview"
        )
        or "2025-06-01-preview",
        client_id=read.matching("AZURE_CLIENT_ID", _GUID, "a GUID (the user-assigned identity's client id)"),
        export_incremental=read.boolean("TRANSFER_EXPORT_INCREMENTAL"),
        export_max_artifacts=read.integer("TRANSFER_EXPORT_MAX_ARTIFACTS", 1, 10_000),
        registry_endpoint=(
            read.url("TRANSFER_REGISTRY_ENDPOINT", https_only=False)
            or f"https://{registry}.{cloud.registry_suffix}"
        ),
        run_timeout_hours=read.integer("TRANSFER_RUN_TIMEOUT_HOURS", 1, 24 * 30),
        import_max_attempts=read.integer("TRANSFER_IMPORT_MAX_ATTEMPTS", 1, 100),
    )
    if read.problems:
        raise SettingsError(read.problems)
    return settings
