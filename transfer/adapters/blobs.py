"""Blob Storage: the watched container (properties, metadata merges, listing), the server-side copy, and
the manifests written beside exported blobs.

Never downloads a transfer blob's content (only manifests, small and bounded: `read_blob`). Set Blob
Metadata replaces the whole set, so `merge_metadata` writes the existing keys plus the updates, conditional
on the ETag the caller decided on. A source URL with its SAS is never logged nor put into an exception.
azure-storage-blob loads lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from transfer.adapters.retry import client_timeouts, storage_retry_policy
from transfer.adapters.sdk_errors import IGNORE, install_log_redaction, redact, translated
from transfer.domain.errors import PreconditionFailed, Refused, TransferError
from transfer.domain.ports import BlobCopier
from transfer.domain.records import BlobInfo, CopyState
from transfer.domain.settings import StorageConnection
from transfer.domain.staleness import METADATA_LIMIT, metadata_bytes

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobProperties, ContainerClient

PAGE_SIZE = 1000


def blob_info(props: BlobProperties) -> BlobInfo:
    md5 = props.content_settings.content_md5 if props.content_settings is not None else None
    last_modified: datetime = props.last_modified
    if last_modified.tzinfo is None:
        last_modified = last_modified.replace(tzinfo=UTC)
    return BlobInfo(
        name=str(props.name),
        etag=str(props.etag),
        last_modified=last_modified,
        content_md5=bytes(md5) if md5 else None,
        metadata=dict(props.metadata or {}),
        size=int(props.size or 0),
    )


def merged_metadata(current: Mapping[str, str], updates: Mapping[str, str]) -> dict[str, str]:
    """Every existing key plus the updates; metadata names are case-insensitive, so an update replaces
    an existing key that differs only in case."""
    replaced = {key.lower() for key in updates}
    merged = {k: v for k, v in current.items() if k.lower() not in replaced}
    merged.update(updates)
    return merged


class AzureBlobStore:
    """BlobStore on one container of Azure Blob Storage (or Azurite)."""

    def __init__(
        self,
        connection: StorageConnection,
        container: str,
        credential: TokenCredential | None = None,
        *,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not connection.connection_string and not connection.blob_service_uri:
            raise TransferError(f"{connection.setting} has no blob endpoint")
        if not connection.connection_string and credential is None:
            raise TransferError(f"{connection.setting}: a blob endpoint without a credential")
        install_log_redaction()
        self._connection = connection
        self._container_name = container
        self._credential = credential
        self._page_size = page_size
        self._client: ContainerClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureBlobStore({self._connection.setting!r}, {self._container_name!r})"

    def _container(self) -> ContainerClient:
        with self._lock:
            if self._client is None:
                from azure.storage.blob import BlobServiceClient

                if self._connection.connection_string:
                    service = BlobServiceClient.from_connection_string(
                        self._connection.connection_string,
                        retry_policy=storage_retry_policy(),
                        **client_timeouts(),
                    )
                else:
                    service = BlobServiceClient(
                        self._connection.blob_service_uri or "",
                        credential=self._credential,
                        retry_policy=storage_retry_policy(),
                        **client_timeouts(),
                    )
                self._client = service.get_container_client(self._container_name)
            return self._client

    def get_properties(self, name: str) -> BlobInfo | None:
        with translated(f"blob storage: reading properties of {name}", absent=IGNORE) as call:
            props = self._container().get_blob_client(name).get_blob_properties()
        return None if call.ignored else blob_info(props)

    def merge_metadata(self, name: str, updates: Mapping[str, str], etag: str) -> BlobInfo:
        """Raises PreconditionFailed when the blob no longer has `etag` (changed, or deleted), Refused when
        Storage refuses the write for good (too much metadata, immutable, leased)."""
        from azure.core import MatchConditions

        client = self._container().get_blob_client(name)
        condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        lost = PreconditionFailed(f"blob {name} changed meanwhile", target="blob")
        what = f"blob storage: writing metadata of {name}"
        with translated(what, changed=lost, absent=lost):
            props = client.get_blob_properties(**condition)
            metadata = merged_metadata(props.metadata or {}, updates)
            size = metadata_bytes(metadata)
            if size > METADATA_LIMIT:  # Azure answers 400 MetadataTooLarge; Azurite would take it
                raise Refused(f"{what}: {size} bytes of metadata, over the {METADATA_LIMIT} allowed")
            written = client.set_blob_metadata(metadata, **condition)
        info = blob_info(props)
        last_modified = written.get("last_modified")
        return BlobInfo(
            name=info.name,
            etag=str(written.get("etag") or info.etag),
            last_modified=last_modified if isinstance(last_modified, datetime) else info.last_modified,
            content_md5=info.content_md5,
            metadata=metadata,
            size=info.size,
        )

    def list_blobs(self) -> Iterator[BlobInfo]:
        with translated(f"blob storage: listing container {self._container_name}"):
            pages = self._container().list_blobs(include=["metadata"], results_per_page=self._page_size)
            for page in pages.by_page():
                for props in page:
                    yield blob_info(props)

    def blob_page(self, marker: str | None, size: int) -> tuple[list[BlobInfo], str | None]:
        with translated(f"blob storage: listing container {self._container_name}"):
            listing = self._container().list_blobs(include=["metadata"], results_per_page=size)
            pages = listing.by_page(continuation_token=marker or None)
            page = [blob_info(props) for props in next(pages, [])]
            return page, pages.continuation_token or None

    def read_blob(self, name: str, max_bytes: int) -> bytes | None:
        client = self._container().get_blob_client(name)
        with translated(f"blob storage: reading {name}", absent=IGNORE) as call:
            props = client.get_blob_properties()
            if int(props.size or 0) > max_bytes:
                raise TransferError(f"blob storage: {name} is larger than {max_bytes} bytes")
            data = client.download_blob(etag=props.etag, match_condition=_if_not_modified()).readall()
        return None if call.ignored else bytes(data)


def _if_not_modified() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


class AzureBlobWriter:
    """BlobWriter: small blobs into containers given by URL, each with a SAS or the app's identity."""

    def __init__(self, credential: TokenCredential | None) -> None:
        install_log_redaction()
        self._credential = credential

    def __repr__(self) -> str:
        return "AzureBlobWriter()"

    def write_blob(
        self, container_url: str, name: str, data: bytes, *, content_type: str, sas_token: str | None = None
    ) -> None:
        from azure.storage.blob import ContainerClient, ContentSettings

        parts = urlsplit(container_url)
        if parts.query or not parts.netloc or parts.scheme not in ("https", "http"):
            raise TransferError("the manifest's container must be a container URL without a query string")
        auth: Any = sas_token.strip().lstrip("?") if sas_token else self._credential
        if auth is None:
            raise TransferError("writing a manifest needs a SAS token or a credential")
        where = f"blob storage: writing {name} to {container_url.rstrip('/')}"
        with translated(where, sas=bool(sas_token)):
            container = ContainerClient.from_container_url(
                container_url.rstrip("/"),
                credential=auth,
                retry_policy=storage_retry_policy(),
                **client_timeouts(),
            )
            container.upload_blob(
                name, data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
            )


def _copy_state(status: Any, description: Any) -> CopyState:
    text = str(status.value if hasattr(status, "value") else status or "pending")
    error = redact(str(description), 500) if description and text != "success" else None
    return CopyState(text, error)


class DeferredCopier:
    """A BlobCopier built on first use, once: building it may read the target's SAS from Key Vault, which
    belongs to the first copy, not to a worker's start."""

    def __init__(self, build: Callable[[], BlobCopier]) -> None:
        self._build = build
        self._copier: BlobCopier | None = None
        self._lock = threading.Lock()

    def _get(self) -> BlobCopier:
        with self._lock:
            if self._copier is None:
                self._copier = self._build()
            return self._copier

    def start_copy(self, source_url: str, name: str) -> CopyState:
        return self._get().start_copy(source_url, name)

    def copy_state(self, name: str) -> CopyState | None:
        return self._get().copy_state(name)


class AzureBlobCopier:
    """BlobCopier into one container, authorised by a SAS (`sas_token`) or an identity (`credential`)."""

    def __init__(
        self,
        container_url: str,
        *,
        sas_token: str | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        parts = urlsplit(container_url)
        if parts.query or not parts.netloc or parts.scheme not in ("https", "http"):
            raise TransferError("the copy target must be a container URL without a query string")
        if sas_token is None and credential is None:
            raise TransferError("the copy target needs a SAS token or a credential")
        install_log_redaction()
        self._container_url = container_url.rstrip("/")
        self._auth: Any = sas_token.strip().lstrip("?") if sas_token else credential
        self._sas = bool(sas_token)
        self._client: ContainerClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureBlobCopier({self._container_url!r})"

    def _container(self) -> ContainerClient:
        with self._lock:
            if self._client is None:
                from azure.storage.blob import ContainerClient

                self._client = ContainerClient.from_container_url(
                    self._container_url,
                    credential=self._auth,
                    retry_policy=storage_retry_policy(),
                    **client_timeouts(),
                )
            return self._client

    def start_copy(self, source_url: str, name: str) -> CopyState:
        """Server-side asynchronous copy (large blobs included); the copy keeps the source's metadata and
        Content-MD5. The source URL is never logged nor put into an error."""
        with translated(f"blob storage: copying {name}", sas=self._sas):
            result = self._container().get_blob_client(name).start_copy_from_url(source_url)
        return _copy_state(result.get("copy_status"), None)

    def copy_state(self, name: str) -> CopyState | None:
        """The copy's state from the destination blob; None when it does not exist. A blob without copy
        properties (written otherwise, or overwritten since) counts as copied."""
        what = f"blob storage: reading the copy state of {name}"
        with translated(what, absent=IGNORE, sas=self._sas) as call:
            props = self._container().get_blob_client(name).get_blob_properties()
        if call.ignored:
            return None
        copy = props.copy
        if copy is None or copy.status is None:
            return CopyState("success")
        return _copy_state(copy.status, copy.status_description)
