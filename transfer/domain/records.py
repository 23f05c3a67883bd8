"""The records the service and its ports exchange: blobs as Storage shows them, what the app decided for a
blob, an idempotent request, the export ledger, a copy's state, a SAS, a tag. Plain values, no behaviour
beyond naming what they hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class BlobInfo:
    name: str
    etag: str
    last_modified: datetime
    content_md5: bytes | None
    metadata: Mapping[str, str]
    size: int = 0


class BlobAction(StrEnum):
    SOURCE_TRIGGER = "source-trigger"
    REFRESH = "refresh"
    IMPORT = "import"


@dataclass(frozen=True)
class BlobRecord:
    """What the app decided for one version of a blob. (name, key) is unique: creating it is the lock."""

    name: str
    key: str
    action: BlobAction
    decided_at: datetime
    last_modified: datetime
    run_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class RequestRecord:
    """An Idempotency-Key (or schedule tick) and the runs it produced."""

    key: str
    request_id: str
    fingerprint: str
    run_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class SasSecret:
    token: str = field(repr=False)
    expires_at: datetime | None
    permissions: str


@dataclass(frozen=True)
class TagInfo:
    """One tag of a repository as the registry's data plane lists it."""

    name: str
    digest: str
    last_updated: datetime | None = None


@dataclass(frozen=True)
class LedgerEntry:
    """The export ledger: the digest a tag had when a run that succeeded exported it.

    `reference` is the tag (or `@sha256:...` for a digest reference) within `repository`; `read_at` is
    when the digest was read (the run's start), so of two runs the later reading wins."""

    repository: str
    reference: str
    digest: str
    run_id: str
    read_at: datetime

    @property
    def artifact(self) -> str:
        joiner = "" if self.reference.startswith("@") else ":"
        return f"{self.repository}{joiner}{self.reference}"


@dataclass(frozen=True)
class CopyState:
    status: str  # pending / success / failed / aborted, as Storage reports it
    error: str | None = None
