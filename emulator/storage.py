"""How a pipeline reaches its storage container in Azurite, and why it may not.

SasToken mode: the SAS token read from Key Vault is judged as the service and storage judge it (the official
troubleshooting guide's causes): its signature against the account key (keys rotated), its time window
against the emulator's clock, HTTPS only (`spr=https`), the Blob service and `srt=sco` for an account SAS, a
container SAS (`sr=c`) for a service SAS, and the permissions the pipeline needs (export `rwla`, import `rl`
plus `d` with DeleteSourceBlobOnSuccess). ManagedIdentity mode: the pipeline's identity needs a blob data role
on the storage account (authorization.py). Once access is granted the emulator reaches Azurite with the
account's key: Azurite speaks HTTP, which an HTTPS-only SAS would not be allowed over.

Storage accounts live in Azurite; their ARM side (`Microsoft.Storage/storageAccounts`, the scope role
assignments are made at) is a resource of the emulator, registered through the admin API or deployed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from azure.storage.blob import ContainerClient

from emulator import ids, network_rules
from emulator.resources import ResourceManager
from emulator.store import Config, State

_LOOPBACK = ("127.0.0.1", "localhost")
STORAGE_ACCOUNTS = "Microsoft.Storage/storageAccounts"
STORAGE_API = "2023-05-01"

# Storage's own error codes and messages (Azure Storage REST: common error codes).
STORAGE_MESSAGES = {
    "AuthenticationFailed": "Server failed to authenticate the request. Make sure the value of Authorization "
    "header is formed correctly including the signature.",
    "AuthorizationPermissionMismatch": "This request is not authorized to perform this operation using this "
    "permission.",
    "AuthorizationFailure": "This request is not authorized to perform this operation.",
    "AuthorizationResourceTypeMismatch": "This request is not authorized to perform this operation using "
    "this resource type.",
    "AuthorizationProtocolMismatch": "This request is not authorized to perform this operation using this "
    "protocol.",
    "AuthorizationServiceMismatch": "This request is not authorized to perform this operation using this "
    "service.",
    "ContainerNotFound": "The specified container does not exist.",
    "BlobNotFound": "The specified blob does not exist.",
    "BlobAlreadyExists": "The specified blob already exists.",
}
STATUS = {"ContainerNotFound": 404, "BlobNotFound": 404, "BlobAlreadyExists": 409}

# What each pipeline kind needs of its SAS (official troubleshooting guide).
PERMISSION_NAMES = {"r": "read", "a": "add", "c": "create", "w": "write", "d": "delete", "l": "list"}
EXPORT_PERMISSIONS = "rwla"
IMPORT_PERMISSIONS = "rl"
DELETE_PERMISSION = "d"


class StorageAccessError(Exception):
    """The run cannot use the container; the message goes into pipelineRunErrorMessage (never the SAS)."""

    def __init__(self, message: str, code: str = "AuthorizationFailure", status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def storage_error(what: str, account: str, code: str, cause: str = "") -> str:
    """`<what> failed: storage account '<account>' answered <status> <Code>: <storage's message> <cause>`."""
    status = STATUS.get(code, 403)
    text = f"{what} failed: storage account '{account}' answered {status} {code}: {STORAGE_MESSAGES[code]}"
    return f"{text} {cause}".rstrip()


@dataclass(frozen=True)
class ContainerAddress:
    """Where a pipeline's container URI points: its account as ARM knows it, and the Azurite account."""

    uri: str  # as the pipeline was given it
    base: str  # account URL in Azurite, e.g. http://127.0.0.1:10000/devstoreaccount1
    container: str
    account: str  # the storage account's name (ARM side: role assignments, messages)
    data_account: str  # the Azurite account holding the data (signs SAS tokens, has the key)


def connection_parts(connection_string: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)


def address(
    uri: str, azurite_blob_endpoint: str, azurite_account: str = "devstoreaccount1", front: str | None = None
) -> ContainerAddress:
    """Loopback URIs are used as they are (`http://127.0.0.1:port/<account>/<container>`), the storage
    front's (`front`, `127.0.0.1:port`) lead to Azurite itself; any other host (e.g.
    `https://<account>.blob.core.windows.net/<container>` from an example parameter file) maps onto the
    Azurite account, keeping the container name (the last path segment) and the account's name for ARM."""
    parsed = urlparse(uri)
    segments = [s for s in parsed.path.split("/") if s]
    if not segments:
        raise StorageAccessError(f"The storage URI '{uri}' names no container.", "InvalidUri", 400)
    container = segments[-1]
    if front is not None and parsed.netloc == front and len(segments) >= 2:
        origin = azurite_blob_endpoint.rstrip("/").rsplit("/", 1)[0]
        base = f"{origin}/" + "/".join(segments[:-1])
        return ContainerAddress(uri, base, container, segments[0], segments[0])
    if parsed.hostname in _LOOPBACK and len(segments) >= 2:
        base = f"{parsed.scheme}://{parsed.netloc}/" + "/".join(segments[:-1])
        return ContainerAddress(uri, base, container, segments[0], segments[0])
    account = (parsed.hostname or azurite_account).split(".")[0]
    return ContainerAddress(uri, azurite_blob_endpoint.rstrip("/"), container, account, azurite_account)


# --- SAS tokens


@dataclass(frozen=True)
class Sas:
    """A SAS token's parameters (URL-decoded)."""

    fields: dict[str, str]
    token: str  # as stored, without a leading '?'

    @classmethod
    def parse(cls, token: str) -> Sas:
        text = token.strip().lstrip("?")
        query = parse_qs(text, keep_blank_values=True)
        return cls({k: v[0] for k, v in query.items()}, text)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def is_account_sas(self) -> bool:
        return "srt" in self.fields or "ss" in self.fields

    def string_to_sign(self, account: str, container: str) -> str | None:
        """What the account key signed (service SAS for a container, or account SAS), for the versions
        whose format the emulator knows (2018-11-09 on); None for older ones."""
        version = self.get("sv")
        if version < "2018-11-09":
            return None
        scope = ["ses"] if version >= "2020-12-06" else []
        if self.is_account_sas:
            names = ["sp", "ss", "srt", "st", "se", "sip", "spr", "sv", *scope]
            return account + "\n" + "".join(self.get(n) + "\n" for n in names)
        resource = f"/blob/{account}/{container}"
        head = [self.get("sp"), self.get("st"), self.get("se"), resource, self.get("si")]
        names = ["sip", "spr", "sv", "sr", "snapshot", *scope, "rscc", "rscd", "rsce", "rscl", "rsct"]
        return "\n".join(head + [self.get(n) for n in names])

    def signature_matches(self, account: str, container: str, key: str) -> bool | None:
        text = self.string_to_sign(account, container)
        if text is None:
            return None
        digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
        return hmac.compare_digest(base64.b64encode(digest).decode("ascii"), self.get("sig"))


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def needed_permissions(kind: str, options: list[str]) -> str:
    """The SAS permissions a pipeline of this kind needs (official troubleshooting guide)."""
    if kind == "export":
        return EXPORT_PERMISSIONS
    return IMPORT_PERMISSIONS + (DELETE_PERMISSION if "DeleteSourceBlobOnSuccess" in options else "")


def check_sas(
    token: str,
    *,
    needed: str,
    kind: str,
    now: datetime,
    secret_uri: str,
    where: ContainerAddress,
    key: str | None,
    https_only: bool = True,
) -> Sas:
    """Judge a SAS token as storage would for this pipeline; raises StorageAccessError with storage's code.
    Messages name the secret and the SAS's parameters, never its signature."""
    sas = Sas.parse(token)
    what = f"Access to container '{where.container}' with the SAS token of Key Vault secret '{secret_uri}'"

    def refuse(code: str, cause: str) -> StorageAccessError:
        return StorageAccessError(storage_error(what, where.account, code, cause), code)

    if not sas.get("sig") or not sas.get("sv"):
        raise refuse("AuthenticationFailed", "The secret does not hold a SAS token (no 'sig' or 'sv').")
    if sas.is_account_sas:
        if "b" not in sas.get("ss"):
            raise refuse(
                "AuthorizationServiceMismatch",
                f"The account SAS does not cover the Blob service (ss={sas.get('ss')}; needs b).",
            )
        missing_types = "".join(t for t in "sco" if t not in sas.get("srt"))
        if missing_types:
            raise refuse(
                "AuthorizationResourceTypeMismatch",
                f"The account SAS's allowed resource types are srt={sas.get('srt')}: ACR Transfer needs "
                "service, container and object (srt=sco).",
            )
    elif sas.get("sr") != "c":
        raise refuse(
            "AuthorizationResourceTypeMismatch",
            f"The service SAS is for sr={sas.get('sr')}: the pipeline needs its container (sr=c), or an "
            "account SAS with srt=sco.",
        )
    if key is not None and sas.signature_matches(where.data_account, where.container, key) is False:
        raise refuse(
            "AuthenticationFailed",
            "Signature did not match: the storage account keys may have changed since the SAS token was "
            "created, or it was made for another account or container. Store a new SAS token in the secret.",
        )
    expiry, start = _time(sas.get("se")), _time(sas.get("st"))
    if sas.get("se") and expiry is None:
        raise refuse("AuthenticationFailed", f"The SAS token's expiry 'se={sas.get('se')}' is unreadable.")
    if expiry is not None and expiry <= now:
        raise refuse(
            "AuthenticationFailed",
            f"Signature not valid in the specified time frame: the SAS token expired at {sas.get('se')} "
            f"(now {now:%Y-%m-%dT%H:%M:%SZ}). Store a new SAS token in the secret.",
        )
    if start is not None and start > now:
        raise refuse(
            "AuthenticationFailed",
            f"Signature not valid in the specified time frame: the SAS token is valid from {sas.get('st')} "
            f"(now {now:%Y-%m-%dT%H:%M:%SZ}).",
        )
    protocol = sas.get("spr")
    if protocol != "https" and (https_only or protocol not in ("", "https,http", "http,https")):
        raise refuse(
            "AuthorizationProtocolMismatch",
            f"The SAS token is not HTTPS-only (spr={protocol or 'https,http'}): ACR Transfer needs "
            "spr=https.",
        )
    permissions = sas.get("sp")
    missing = "".join(p for p in needed if p not in permissions)
    if missing:
        names = ", ".join(PERMISSION_NAMES[p] for p in missing)
        need = (
            "read, write, list and add (sp=rwla)"
            if kind == "export"
            else ("read and list (sp=rl), and delete with DeleteSourceBlobOnSuccess (sp=rdl)")
        )
        raise refuse(
            "AuthorizationPermissionMismatch",
            f"The SAS token lacks the permission(s) {names} (sp={permissions}): an {kind} pipeline "
            f"needs {need}.",
        )
    return sas


# --- storage accounts: their ARM scope and their Azurite key


class StorageAccounts:
    """The storage accounts the emulator knows: an ARM resource each (the scope of role assignments), and
    the Azurite account key that lets the emulator reach the data once a pipeline's access is granted."""

    def __init__(
        self,
        state: State,
        config: Config,
        resources: ResourceManager,
        connection_string: str,
        blob_endpoint: str,
    ) -> None:
        self.state = state
        self.config = config
        self.resources = resources
        parts = connection_parts(connection_string)
        self.default_account = parts.get("AccountName", "devstoreaccount1")
        self._default_key = parts.get("AccountKey")
        self.blob_endpoint = blob_endpoint
        self.front: str | None = None  # "127.0.0.1:{port}" of the storage front (storage_front.py)

    def address(self, uri: str) -> ContainerAddress:
        return address(uri, self.blob_endpoint, self.default_account, self.front)

    def register(
        self,
        name: str,
        *,
        key: str | None = None,
        resource_group: str | None = None,
        subscription_id: str | None = None,
        network: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create (or update) the account's ARM resource (with its network rules: `network` is
        network_rules.network_properties' keywords); remember its key for the data plane."""
        group = ids.group_id(
            subscription_id or self.config.subscription_id, resource_group or self.config.resource_group
        )
        resource_id = f"{group}/providers/{STORAGE_ACCOUNTS}/{name}"
        existing = self.find(name)
        if existing is not None and ids.key(existing) != ids.key(resource_id):
            self.resources.delete(existing)  # an account name is global: it moves
        body = {
            "location": self.config.location,
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "properties": {
                "primaryEndpoints": {"blob": f"{self.blob_endpoint.rsplit('/', 1)[0]}/{name}/"},
                **network_rules.network_properties(**(network or {}), account_id=resource_id),
            },
        }
        result = self.resources.put(resource_id, STORAGE_API, body)
        if key:
            with self.state.lock:
                self.state.storage_keys[name.lower()] = key
        with self.state.lock:
            return dict(result.resource.body)

    def properties(self, name: str) -> dict[str, Any] | None:
        """The account's ARM properties (network rules among them), when it has a resource."""
        found = self.find(name)
        resource = self.resources.find(found) if found else None
        if resource is None:
            return None
        with self.state.lock:
            return dict(resource.body.get("properties") or {})

    def find(self, name: str) -> str | None:
        """The id of the account's ARM resource, registered or deployed (names are global)."""
        for resource in self.resources.by_type(STORAGE_ACCOUNTS):
            if resource.body["name"].lower() == name.lower():
                return resource.id
        return None

    def scope(self, name: str) -> str:
        """Where role assignments on the account are made: its resource, else the one it would be in the
        emulator's default resource group."""
        found = self.find(name)
        if found is not None:
            return found
        group = ids.group_id(self.config.subscription_id, self.config.resource_group)
        return f"{group}/providers/{STORAGE_ACCOUNTS}/{name}"

    def key(self, data_account: str) -> str | None:
        with self.state.lock:
            registered = self.state.storage_keys.get(data_account.lower())
        if registered:
            return registered
        return self._default_key if data_account.lower() == self.default_account.lower() else None

    def client(self, where: ContainerAddress, sas: Sas | None = None) -> ContainerClient:
        """A client with the account's key, else (an account the emulator has no key of) with the pipeline's
        SAS when it may be used over Azurite's HTTP (then Azurite judges its signature)."""
        key = self.key(where.data_account)
        if key is None and sas is not None and sas.get("spr") != "https":
            return ContainerClient.from_container_url(f"{where.base}/{where.container}?{sas.token}")
        if key is None:
            raise StorageAccessError(
                f"The emulator does not know the key of Azurite account '{where.data_account}', so it cannot "
                "reach container "
                f"'{where.container}': register it with POST /_emulator/storage-accounts "
                f'{{"name": "{where.data_account}", "key": "..."}}.',
                "EmulatorAccountKeyUnknown",
                500,
            )
        return ContainerClient(
            where.base, where.container, credential={"account_name": where.data_account, "account_key": key}
        )
