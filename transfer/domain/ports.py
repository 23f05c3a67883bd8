"""The service's view of the outside world, by role: each use case names the ports it touches. The
adapters implement them (one Table adapter implements every state role, one ARM adapter every ARM role)
and so do the hand-written fakes of tests/fakes.py."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from transfer.domain.arm_views import DeploymentState
from transfer.domain.pushes import Push
from transfer.domain.records import (
    BlobInfo,
    BlobRecord,
    CopyState,
    LedgerEntry,
    RequestRecord,
    SasSecret,
    TagInfo,
)
from transfer.domain.runs import Run, RunKind, RunStatus

MAX_TOP = 1000  # most runs one listing returns

# ---- ARM ------------------------------------------------------------------------------------------------


class Deployments(Protocol):
    """ARM template deployments in the registry's resource group."""

    def begin_deployment(self, name: str, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        """Send the deployment's initial PUT and return without waiting. A deployment of that name that is
        already running is adopted (no error): the caller reads its state later."""
        ...

    def get_deployment(self, name: str) -> DeploymentState | None: ...

    def delete_deployment(self, name: str) -> bool:
        """Delete it; absent is fine. True when it is gone now (done, or absent), False while ARM is still
        deleting it (202 Accepted)."""
        ...

    def count_deployments(self) -> int: ...


class PipelineResources(Protocol):
    """The registry's ACR Transfer resources: pipelines and pipelineRuns, as ARM's JSON."""

    def get_resource(self, resource_id: str) -> dict[str, Any] | None:
        """A pipeline resource (pipeline or run) by id, as ARM's JSON; None when absent."""
        ...

    def delete_resource(self, resource_id: str) -> bool:
        """Delete it; absent is fine. True when it is gone now, False while ARM is still deleting it."""
        ...

    def list_pipeline_runs(self) -> list[dict[str, Any]]:
        """Every pipelineRun of the configured registry, as ARM's JSON."""
        ...

    def list_pipelines(self, kind: str) -> list[dict[str, Any]]:
        """Every export (`kind` "export") or import pipeline of the configured registry, as ARM's JSON."""
        ...

    def supported_api_versions(self, resource_id: str) -> tuple[str, ...]:
        """The API versions the resource's provider advertises (`api-supported-versions`) for it."""
        ...


class RoleAssignments(Protocol):
    def role_assignments(self, principal_id: str) -> list[dict[str, Any]]:
        """The role assignments of a principal in the subscription (any scope), as ARM's JSON."""
        ...


class TenantReads(Protocol):
    """What a locked-down tenant's readiness checks read of ARM (domain/readiness.py)."""

    def list_resources(self, resource_type: str, api_version: str) -> list[dict[str, Any]]:
        """Every resource of a type in the subscription (storage accounts, vaults), as ARM's JSON."""
        ...

    def read_resource(self, resource_id: str, api_version: str) -> dict[str, Any] | None:
        """Any resource by id at an API version of its provider; None when absent."""
        ...

    def permissions(self, scope: str) -> list[dict[str, Any]]:
        """The app's own permissions at a scope (ARM's Microsoft.Authorization/permissions list)."""
        ...


class ResourceManager(Deployments, PipelineResources, RoleAssignments, TenantReads, Protocol):
    """ARM in one resource group: every ARM role at once (what the ARM adapter implements)."""


# ---- state ----------------------------------------------------------------------------------------------


class RunStore(Protocol):
    """Run records: each written ETag-conditionally, so of two writers one wins and the other finds out."""

    def add_run(self, run: Run) -> Run:
        """Create the record; raises AlreadyExists when the id is taken. Returns it with its etag."""
        ...

    def get_run(self, run_id: str) -> Run | None: ...

    def update_run(self, run: Run) -> Run:
        """Write if `run.etag` still matches (PreconditionFailed otherwise); returns it with the new etag."""
        ...

    def list_runs(
        self, *, kind: RunKind | None = None, status: RunStatus | None = None, top: int = 100
    ) -> list[Run]:
        """Newest first."""
        ...


class RunPages(Protocol):
    """Runs a page at a time, newest first, from a cursor: a page's cost follows its size, not the table's."""

    def runs_before(self, before: str | None, top: int) -> list[Run]:
        """At most `top` (<= MAX_TOP) runs created before the run with id `before` (None: the newest),
        newest first."""
        ...


class RunIndex(Protocol):
    """The runs a timer pass works on, read from an index: their cost follows those runs, not all runs."""

    def active_runs(self) -> list[Run]:
        """Runs not yet terminal (or with a copy to follow)."""
        ...

    def runs_to_clean(self) -> list[Run]:
        """Terminal runs whose ARM resources are not yet cleaned up."""
        ...

    def source_runs(self, since: datetime) -> set[str]:
        """The ids of recorded runs the source trigger started at or after `since`, in one read of an
        index. It may leave out a run (one recorded before the index, or whose index row was lost), never
        names one that is not recorded: look up by id what it does not name."""
        ...


class BlobRecords(Protocol):
    """What the app decided for each version of a watched blob; creating a record is the lock."""

    def claim_blob(self, record: BlobRecord) -> bool:
        """Create the record if (name, key) is new; False when another worker or event got there first."""
        ...

    def blob_records(self, name: str) -> list[BlobRecord]: ...

    def update_blob_record(self, record: BlobRecord) -> None: ...


class RequestRecords(Protocol):
    """Idempotency-Keys (and schedule ticks) and the run ids their first use claimed."""

    def claim_request(self, record: RequestRecord) -> RequestRecord:
        """Create the record if its key is new and return it; otherwise return the one stored first."""
        ...

    def get_request(self, key: str) -> RequestRecord | None: ...


class ExportLedger(Protocol):
    """Per repository and tag, the digest a run that succeeded exported."""

    def exported(self, repository: str) -> dict[str, LedgerEntry]:
        """The export ledger of one repository: its entries by `reference` (tag, or `@sha256:...`)."""
        ...

    def exported_under(self, prefix: str) -> dict[str, dict[str, LedgerEntry]]:
        """The ledgers of every repository whose name starts with `prefix` ("" for all), by repository
        (those with no entry left out), in one query's time however many repositories they are."""
        ...

    def record_exports(self, entries: Sequence[LedgerEntry]) -> None:
        """Write ledger entries, one row per repository and reference. A row is replaced only by an entry
        read at least as late as the stored one, by an ETag-conditional write: of concurrent runs none
        loses its update, and a slow older run never writes its older digest over a newer one."""
        ...


class PushLedger(Protocol):
    """Export on push: every push recorded once, pending until the run that took it is recorded."""

    def record_push(self, push: Push) -> bool:
        """Record the push (and its pending row, in one transaction) unless its key is known already:
        False for a push recorded before (a redelivered event, the same tag at the same digest)."""
        ...

    def pending_pushes(self) -> list[Push]:
        """The pushes no recorded run holds yet (taken ones included, with their run id), oldest first."""
        ...

    def take_pushes(self, pushes: Sequence[Push], run_id: str, now: datetime) -> bool:
        """Give `pushes` to `run_id` (taken at `now`), all or none, each only if unchanged since read (its
        etag): False when another worker took one of them first."""
        ...

    def release_pushes(self, pushes: Sequence[Push]) -> None:
        """Their run is recorded (or they need none): they are no longer pending."""
        ...


class StateProbe(Protocol):
    def ping(self) -> None:
        """Raise when the tables cannot be reached."""
        ...


class StateStore(
    RunStore, RunPages, RunIndex, BlobRecords, RequestRecords, ExportLedger, PushLedger, StateProbe, Protocol
):
    """Every state role at once (what the Table adapter and its fake implement)."""


# ---- Storage, the registry, Key Vault, templates ---------------------------------------------------------
class BlobPages(Protocol):
    """The watched container one page at a time, by name, from the listing's continuation marker."""

    def blob_page(self, marker: str | None, size: int) -> tuple[list[BlobInfo], str | None]:
        """At most `size` blobs with their metadata from `marker` (None: the first), and the marker of
        the next page (None: the last page)."""
        ...


class BlobStore(BlobPages, Protocol):
    """The watched container on the target side."""

    def get_properties(self, name: str) -> BlobInfo | None: ...

    def merge_metadata(self, name: str, updates: Mapping[str, str], etag: str) -> BlobInfo:
        """Metadata becomes the existing keys plus `updates`, only if the blob still has `etag`."""
        ...

    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every blob with its metadata, page by page."""
        ...

    def read_blob(self, name: str, max_bytes: int) -> bytes | None:
        """A small blob's content (a manifest; never a transfer blob): None when absent, a TransferError
        when it is larger than `max_bytes`."""
        ...


class BlobWriter(Protocol):
    """Writes small blobs (manifests) into a container given by URL: the export pipeline's container."""

    def write_blob(
        self, container_url: str, name: str, data: bytes, *, content_type: str, sas_token: str | None = None
    ) -> None:
        """Create or overwrite `name`, authorised by `sas_token` (never logged) or the app's identity."""
        ...


class Registry(Protocol):
    """The registry's data plane (read only): repositories, tags and their digests."""

    def repositories(self) -> Iterator[str]:
        """Every repository name, page by page."""
        ...

    def tags(self, repository: str) -> Iterator[TagInfo]:
        """Every tag of the repository, page by page; none when the repository does not exist."""
        ...

    def digest(self, repository: str, tag: str) -> str | None:
        """The digest `repository:tag` points at now; None when the tag or repository does not exist."""
        ...


class BlobCopier(Protocol):
    """Server-side copy of an exported blob into the copy target container."""

    def start_copy(self, source_url: str, name: str) -> CopyState:
        """`source_url` carries its own authorisation (SAS); it is never logged."""
        ...

    def copy_state(self, name: str) -> CopyState | None: ...


class TemplateSource(Protocol):
    """The ARM templates the app deploys, by name (arm_views names them)."""

    def load(self, name: str) -> dict[str, Any]: ...


class SasSigner(Protocol):
    """Read-only SASes the app signs with its own identity (a user delegation key): the copy step's source
    URL when the export pipeline is in ManagedIdentity mode."""

    def read_sas(self, container_url: str, starts_at: datetime, expires_at: datetime) -> str: ...


class SecretReader(Protocol):
    def read_sas(self, secret_uri: str) -> SasSecret: ...
