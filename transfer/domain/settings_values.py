"""The values settings are made of: clouds, the stale-blob action, storage connections, and the name
rules settings share. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit


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


GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
ACR_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
SECRET_URI_PATH = re.compile(r"^/secrets/[0-9a-zA-Z-]{1,127}(/[0-9a-fA-F]{32})?/?$")
KEY_ID_PATH = re.compile(r"^/keys/[0-9a-zA-Z-]{1,127}(/[0-9a-zA-Z]{1,64})?/?$")


def is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}


def with_suffix(conn: StorageConnection | None, suffix: str) -> StorageConnection | None:
    """Service URIs made from an account name get the cloud's storage suffix."""
    if conn is None or conn.connection_string:
        return conn

    def filled(uri: str | None) -> str | None:
        return uri.replace("{suffix}", suffix) if uri else None

    return StorageConnection(
        conn.setting,
        blob_service_uri=filled(conn.blob_service_uri),
        queue_service_uri=filled(conn.queue_service_uri),
        table_service_uri=filled(conn.table_service_uri),
    )
