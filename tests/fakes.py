"""Hand-written in-memory fakes of every port (transfer/domain/ports.py), for service unit tests.

They behave like the real adapters, and the contract tests in tests/integration run the same tests
against both: ETags change on every write, conditional writes fail with PreconditionFailed, creating a
record that exists fails (AlreadyExists / False), keys and texts are normalised as the Table adapter
stores them (the same transfer/adapters/entities.py), and listings come in the adapters' order.

Every fake counts its calls (`fake.calls["get_resource"]`) and has the fault hooks of tests/faults.py:
`fake.fail("get_deployment", Throttled("slow down", retry_after=5), times=2)` raises that error on the
next two calls of that method (before it does anything), and `fake.around("get_deployment", hook)` sends
every call through `hook(call, *args)` (a slow read, a racing writer, an answer ARM may give).
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tests.faults import Hooks
from transfer.adapters.entities import (
    ACTIVE,
    CLEANUP,
    index_partition,
    ledger_supersedes,
    run_key,
    stored_blob_record,
    stored_ledger_entry,
    stored_run,
    table_key,
    utc,
)
from transfer.adapters.keyvault import parse_sas, split_secret_uri
from transfer.domain.arm_views import DeploymentState
from transfer.domain.errors import AccessDenied, AlreadyExists, NotFound, PreconditionFailed, TransferError
from transfer.domain.naming import check_run_id
from transfer.domain.ports import MAX_TOP
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
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger

PIPELINE_RUN_TYPE = "Microsoft.ContainerRegistry/registries/pipelineRuns"
# What the live service advertised for pipeline resources (docs/service-facts.md).
PIPELINE_API_VERSIONS = (
    "2025-06-01-preview",
    "2025-12-01-preview",
    "2026-01-01-preview",
    "2026-03-01-preview",
)
RUNNING_DEPLOYMENT_STATES = frozenset({"Accepted", "Running", "Created", "Creating", "Updating", "Waiting"})


@dataclass
class Clock:
    """A settable clock: `clock()` reads it, `clock.advance(hours=1)` moves it."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)
        return self.now


class _Faults(Hooks):
    """Call counting, scripted failures and hooks, shared by the fakes."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.history: list[tuple[str, Any]] = []  # (method, first argument), in call order
        self._faults: dict[str, deque[BaseException]] = defaultdict(deque)
        self._lock = threading.RLock()

    def fail(self, method: str, error: BaseException, times: int = 1) -> None:
        if not hasattr(self, method):
            raise AttributeError(f"{type(self).__name__} has no method {method}")
        self._faults[method].extend([error] * times)

    def _enter(self, method: str, subject: Any = None) -> None:
        self.calls[method] += 1
        self.history.append((method, subject))
        queue = self._faults.get(method)
        if queue:
            raise queue.popleft()


# ---- state ---------------------------------------------------------------------------------------------


class FakeStateStore(_Faults):
    """Like TableStateStore: etags, AlreadyExists, PreconditionFailed, first-claim-wins, newest first."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, Run] = {}
        self.blobs: dict[tuple[str, str], BlobRecord] = {}
        self.requests: dict[str, RequestRecord] = {}
        self.ledger: dict[tuple[str, str], LedgerEntry] = {}
        self.pushes_seen: set[str] = set()
        self.pending: dict[str, Push] = {}
        self._etags = 0

    def _etag(self) -> str:
        self._etags += 1
        return f"W/\"datetime'fake-{self._etags:08d}'\""

    def add_run(self, run: Run) -> Run:
        with self._lock:
            self._enter("add_run", run.id)
            check_run_id(run.id)
            if run.id in self.runs:
                raise AlreadyExists(f"run {run.id} already exists", target="run_id")
            stored = replace(stored_run(run), etag=self._etag())
            self.runs[run.id] = stored
            return stored

    def source_runs(self, since: datetime) -> set[str]:
        with self._lock:
            self._enter("source_runs")
            return {
                r.id for r in self.runs.values() if r.trigger is Trigger.SOURCE and r.created_at >= utc(since)
            }

    def get_run(self, run_id: str) -> Run | None:
        with self._lock:
            self._enter("get_run", run_id)
            check_run_id(run_id)
            return self.runs.get(run_id)

    def update_run(self, run: Run) -> Run:
        with self._lock:
            self._enter("update_run", run.id)
            check_run_id(run.id)
            current = self.runs.get(run.id)
            if run.etag is None or current is None or current.etag != run.etag:
                raise PreconditionFailed(f"run {run.id} changed meanwhile", target="run_id")
            stored = replace(stored_run(run), etag=self._etag())
            self.runs[run.id] = stored
            return stored

    def list_runs(
        self, *, kind: RunKind | None = None, status: RunStatus | None = None, top: int = 100
    ) -> list[Run]:
        with self._lock:
            self._enter("list_runs")
            top = min(top, MAX_TOP)
            if top < 1:
                return []
            ordered = sorted(self.runs.values(), key=lambda r: run_key(r.id))
            return [
                r
                for r in ordered
                if (kind is None or r.kind is kind) and (status is None or r.status is status)
            ][:top]

    def runs_before(self, before: str | None, top: int) -> list[Run]:
        with self._lock:
            self._enter("runs_before", before)
            top = min(top, MAX_TOP)
            after = run_key(before) if before is not None else None
            ordered = sorted(self.runs.values(), key=lambda r: run_key(r.id))
            return [r for r in ordered if after is None or run_key(r.id) > after][: max(top, 0)]

    def active_runs(self) -> list[Run]:
        with self._lock:
            self._enter("active_runs")
            return sorted((r for r in self.runs.values() if index_partition(r) == ACTIVE), key=lambda r: r.id)

    def runs_to_clean(self) -> list[Run]:
        with self._lock:
            self._enter("runs_to_clean")
            return sorted(
                (r for r in self.runs.values() if index_partition(r) == CLEANUP), key=lambda r: r.id
            )

    def claim_blob(self, record: BlobRecord) -> bool:
        with self._lock:
            self._enter("claim_blob", record.name)
            key = (record.name, record.key)
            if key in self.blobs:
                return False
            self.blobs[key] = stored_blob_record(record)
            return True

    def blob_records(self, name: str) -> list[BlobRecord]:
        with self._lock:
            self._enter("blob_records", name)
            records = [r for (n, _), r in self.blobs.items() if n == name]
            return sorted(records, key=lambda r: table_key(r.key))

    def update_blob_record(self, record: BlobRecord) -> None:
        with self._lock:
            self._enter("update_blob_record", record.name)
            self.blobs[(record.name, record.key)] = stored_blob_record(record)

    def claim_request(self, record: RequestRecord) -> RequestRecord:
        with self._lock:
            self._enter("claim_request", record.key)
            return self.requests.setdefault(record.key, replace(record, created_at=utc(record.created_at)))

    def get_request(self, key: str) -> RequestRecord | None:
        with self._lock:
            self._enter("get_request", key)
            return self.requests.get(key)

    def exported(self, repository: str) -> dict[str, LedgerEntry]:
        with self._lock:
            self._enter("exported", repository)
            return {ref: entry for (repo, ref), entry in self.ledger.items() if repo == repository}

    def exported_under(self, prefix: str) -> dict[str, dict[str, LedgerEntry]]:
        with self._lock:
            self._enter("exported_under", prefix)
            found: dict[str, dict[str, LedgerEntry]] = {}
            for (repository, reference), entry in self.ledger.items():
                if repository.startswith(prefix):
                    found.setdefault(repository, {})[reference] = entry
            return found

    def record_exports(self, entries: Sequence[LedgerEntry]) -> None:
        """One row per (repository, reference); the lock stands in for the Table adapter's ETag-conditional
        write: a row is replaced only by an entry read at least as late."""
        with self._lock:
            self._enter("record_exports", len(entries))
            for entry in entries:
                key = (entry.repository, entry.reference)
                if ledger_supersedes(entry, self.ledger.get(key)):
                    self.ledger[key] = stored_ledger_entry(entry)

    def record_push(self, push: Push) -> bool:
        with self._lock:
            self._enter("record_push", push.artifact)
            if push.key in self.pushes_seen:
                return False
            self.pushes_seen.add(push.key)
            self.pending[push.key] = replace(push, received_at=utc(push.received_at), etag=self._etag())
            return True

    def pending_pushes(self) -> list[Push]:
        with self._lock:
            self._enter("pending_pushes")
            return sorted(self.pending.values(), key=lambda p: (p.received_at, p.key))

    def take_pushes(self, pushes: Sequence[Push], run_id: str, now: datetime) -> bool:
        """All or none, each only if its etag still matches: the Table adapter's transaction."""
        with self._lock:
            self._enter("take_pushes", run_id)
            if any(self.pending.get(p.key) is None or self.pending[p.key].etag != p.etag for p in pushes):
                return False
            for push in pushes:
                self.pending[push.key] = replace(push.taken(run_id, utc(now)), etag=self._etag())
            return True

    def release_pushes(self, pushes: Sequence[Push]) -> None:
        with self._lock:
            self._enter("release_pushes", len(pushes))
            for push in pushes:
                self.pending.pop(push.key, None)

    def ping(self) -> None:
        with self._lock:
            self._enter("ping")


# ---- blobs ---------------------------------------------------------------------------------------------


class FakeBlobStore(_Faults):
    """Like AzureBlobStore: ETag and Last-Modified change on every metadata write (Last-Modified moves
    to the clock), metadata writes keep every existing key, listings come by name in pages."""

    def __init__(self, clock: Callable[[], datetime] | None = None, *, page_size: int = 1000) -> None:
        super().__init__()
        self.clock = clock or Clock()
        self.page_size = page_size
        self.blobs: dict[str, BlobInfo] = {}
        self.contents: dict[str, bytes] = {}  # only for blobs put with `content`
        self.pages_listed = 0
        self._etags = 0

    def _etag(self) -> str:
        self._etags += 1
        return f'"0x8DEFA4E{self._etags:09X}"'

    def put(
        self,
        name: str | BlobInfo,
        *,
        metadata: Mapping[str, str] | None = None,
        content_md5: bytes | None = None,
        last_modified: datetime | None = None,
        size: int = 0,
        content: bytes | None = None,
    ) -> BlobInfo:
        """Create or overwrite a blob (test setup; like an upload it sets a new ETag). With `content`,
        Content-MD5 and size come from it unless given. A BlobInfo is stored as it is."""
        with self._lock:
            if isinstance(name, BlobInfo):  # stored as given, ETag included
                self.blobs[name.name] = replace(name, metadata=dict(name.metadata))
                return self.blobs[name.name]
            self.contents.pop(name, None)
            if content is not None:
                size = size or len(content)
                content_md5 = content_md5 or hashlib.md5(content).digest()  # noqa: S324 - Content-MD5
                self.contents[name] = content
            info = BlobInfo(
                name=name,
                etag=self._etag(),
                last_modified=utc(last_modified or self.clock()),
                content_md5=content_md5,
                metadata=dict(metadata or {}),
                size=size,
            )
            self.blobs[name] = info
            return info

    def delete(self, name: str) -> None:
        with self._lock:
            self.blobs.pop(name, None)
            self.contents.pop(name, None)

    def get_properties(self, name: str) -> BlobInfo | None:
        with self._lock:
            self._enter("get_properties", name)
            return self.blobs.get(name)

    def merge_metadata(self, name: str, updates: Mapping[str, str], etag: str) -> BlobInfo:
        with self._lock:
            self._enter("merge_metadata", name)
            current = self.blobs.get(name)
            if current is None or current.etag != etag:
                raise PreconditionFailed(f"blob {name} changed meanwhile", target="blob")
            for key, value in updates.items():
                if not key.isidentifier() or not value.isascii():
                    raise TransferError(
                        f"blob storage: writing metadata of {name}: failed (400) (InvalidMetadata)"
                    )
            lowered = {k.lower() for k in updates}
            merged = {k: v for k, v in current.metadata.items() if k.lower() not in lowered}
            merged.update(updates)
            info = replace(current, etag=self._etag(), last_modified=utc(self.clock()), metadata=merged)
            self.blobs[name] = info
            return info

    def read_blob(self, name: str, max_bytes: int) -> bytes | None:
        with self._lock:
            self._enter("read_blob", name)
            if name not in self.blobs:
                return None
            data = self.contents.get(name, b"")
            if len(data) > max_bytes:
                raise TransferError(f"blob storage: {name} is larger than {max_bytes} bytes")
            return data

    def list_blobs(self) -> Iterator[BlobInfo]:
        self._enter("list_blobs")
        with self._lock:
            snapshot = [self.blobs[n] for n in sorted(self.blobs)]
        for start in range(0, len(snapshot), self.page_size):
            self.pages_listed += 1
            yield from snapshot[start : start + self.page_size]

    def blob_page(self, marker: str | None, size: int) -> tuple[list[BlobInfo], str | None]:
        """Like Storage's listing: by name from an opaque marker (here the next page's first name)."""
        self._enter("blob_page", marker)
        with self._lock:
            names = [n for n in sorted(self.blobs) if marker is None or n >= marker]
            self.pages_listed += 1
            page = [self.blobs[n] for n in names[:size]]
            return page, (names[size] if len(names) > size else None)


class FakeBlobCopier(_Faults):
    """Like AzureBlobCopier. `start_copy` copies blob `name` of `source` (when given) into `target`
    (when given) with its Content-MD5 and metadata, and reports `initial_status` ("success" at once by
    default, or "pending" until `finish(name)`). The source URL's SAS is kept only for assertions in
    `source_urls`, never in a repr."""

    def __init__(
        self,
        source: FakeBlobStore | None = None,
        target: FakeBlobStore | None = None,
        *,
        initial_status: str = "success",
    ) -> None:
        super().__init__()
        self.source = source
        self.target = target
        self.initial_status = initial_status
        self.states: dict[str, CopyState] = {}
        self.source_urls: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"FakeBlobCopier(copies={sorted(self.states)!r})"

    def start_copy(self, source_url: str, name: str) -> CopyState:
        with self._lock:
            self._enter("start_copy", name)
            if self.source is not None and name not in self.source.blobs:
                raise TransferError(f"blob storage: copying {name}: failed (404) (CannotVerifyCopySource)")
            self.source_urls[name] = source_url
            state = CopyState(self.initial_status)
            self.states[name] = state
            if state.status == "success":
                self._land(name)
            return state

    def finish(self, name: str, status: str = "success", error: str | None = None) -> None:
        with self._lock:
            self.states[name] = CopyState(status, error)
            if status == "success":
                self._land(name)

    def _land(self, name: str) -> None:
        if self.target is None:
            return
        original = self.source.blobs.get(name) if self.source is not None else None
        self.target.put(
            name,
            metadata=original.metadata if original else {},
            content_md5=original.content_md5 if original else None,
            size=original.size if original else 0,
            content=self.source.contents.get(name) if self.source is not None else None,
        )

    def copy_state(self, name: str) -> CopyState | None:
        with self._lock:
            self._enter("copy_state", name)
            state = self.states.get(name)
            if self.target is None:
                return state
            if name in self.target.blobs:
                return state or CopyState("success")
            # a pending or failed copy leaves a destination blob in Azure; a deleted one is gone
            return state if state is not None and state.status != "success" else None


class FakeBlobWriter(_Faults):
    """Like AzureBlobWriter: writes into the FakeBlobStore registered for a container URL (`containers`),
    overwriting. `auth` records, per blob written, "sas" or "identity" (never the token itself)."""

    def __init__(self, containers: Mapping[str, FakeBlobStore] | None = None) -> None:
        super().__init__()
        self.containers: dict[str, FakeBlobStore] = {
            url.rstrip("/"): store for url, store in (containers or {}).items()
        }
        self.auth: dict[str, str] = {}

    def write_blob(
        self, container_url: str, name: str, data: bytes, *, content_type: str, sas_token: str | None = None
    ) -> None:
        with self._lock:
            self._enter("write_blob", name)
            store = self.containers.get(container_url.rstrip("/"))
            if store is None:
                raise TransferError(f"blob storage: writing {name}: failed (404) (ContainerNotFound)")
            store.put(name, content=data)
            self.auth[name] = "sas" if sas_token else "identity"


# ---- registry ------------------------------------------------------------------------------------------


class FakeRegistry(_Faults):
    """Like AzureRegistry over `content` {repository: {tag: digest}}: listings by name, in pages of
    `page_size` (counted in `pages_listed`), an absent repository lists no tags, an absent tag reads None.
    `deny(status)` makes every call fail as the adapter reports a 401 / 403 (naming AcrPull)."""

    def __init__(
        self, content: Mapping[str, Mapping[str, str]] | None = None, *, page_size: int = 100
    ) -> None:
        super().__init__()
        self.content: dict[str, dict[str, str]] = {r: dict(t) for r, t in (content or {}).items()}
        self.page_size = page_size
        self.pages_listed = 0
        self.denied: int | None = None
        self._pushes = 0

    def retag(self, repository: str, tag: str, digest: str | None = None) -> str:
        """Point the tag at a new image (a fresh digest) or at `digest`; returns the digest."""
        with self._lock:
            self._pushes += 1
            new = (
                digest
                or "sha256:" + hashlib.sha256(f"{repository}:{tag}:{self._pushes}".encode()).hexdigest()
            )
            self.content.setdefault(repository, {})[tag] = new
            return new

    def deny(self, status: int | None = 403) -> None:
        self.denied = status

    def _check(self, what: str) -> None:
        if self.denied is not None:
            why = "not authenticated" if self.denied == 401 else "not authorized"
            raise AccessDenied(
                f"registry: {what}: {why} ({self.denied}): check the managed identity and its role "
                "assignments; the app's identity needs AcrPull on the registry"
            )

    def _pages(self, items: list[Any]) -> Iterator[Any]:
        for start in range(0, len(items), self.page_size):
            self.pages_listed += 1
            yield from items[start : start + self.page_size]
        if not items:
            self.pages_listed += 1

    def repositories(self) -> Iterator[str]:
        self._enter("repositories")
        self._check("listing repositories")
        with self._lock:
            names = sorted(self.content)
        yield from self._pages(names)

    def tags(self, repository: str) -> Iterator[TagInfo]:
        self._enter("tags", repository)
        self._check(f"listing the tags of {repository}")
        with self._lock:
            tags = sorted(self.content.get(repository, {}).items())
        yield from self._pages([TagInfo(name, digest) for name, digest in tags])

    def digest(self, repository: str, tag: str) -> str | None:
        with self._lock:
            self._enter("digest", f"{repository}:{tag}")
            self._check(f"reading {repository}:{tag}")
            return self.content.get(repository, {}).get(tag)


# ---- secrets -------------------------------------------------------------------------------------------


class FakeSecretReader(_Faults):
    """Like KeyVaultSecretReader over `secrets` {secret URI: value}; a versionless URI reads the value
    stored under the URI without its version too."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.secrets: dict[str, str] = dict(secrets or {})

    def __repr__(self) -> str:
        return f"FakeSecretReader(uris={sorted(self.secrets)!r})"

    def read_sas(self, secret_uri: str) -> SasSecret:
        with self._lock:
            self._enter("read_sas", secret_uri)
            vault, name, _version = split_secret_uri(secret_uri)
            value = self.secrets.get(secret_uri.rstrip("/"))
            if value is None:
                value = self.secrets.get(f"{vault}/secrets/{name}")
            if value is None:
                raise NotFound(
                    f"key vault: reading secret {name}: no such secret in {vault}", target="secretUri"
                )
            try:
                expires_at, permissions = parse_sas(value)
            except ValueError as exc:
                raise TransferError(
                    f"key vault: reading secret {name}: {exc}", code="InvalidSecret"
                ) from None
            return SasSecret(token=value.strip().lstrip("?"), expires_at=expires_at, permissions=permissions)


# ---- ARM -----------------------------------------------------------------------------------------------


@dataclass
class DeploymentCall:
    name: str
    template: dict[str, Any]
    parameters: dict[str, Any]
    adopted: bool


class FakeResourceManager(_Faults):
    """Like ArmResourceManager for one registry's resource group.

    - `begin_deployment` records the call (`deployment_calls`) and, unless the deployment of that name is
      still running (then it is adopted, as ARM's 409 DeploymentActive is), (re)starts it in state
      `deployment_state` ("Running"). With `auto_run` (default) a deployment whose parameters carry
      `pipelineRunName` also creates the pipelineRun resource, as the run templates do: provisioningState
      "Creating", response.status "Running".
    - Tests script what ARM says: `set_deployment(...)`, `finish_run(...)`, `put_resource(...)`.
    - Resource ids compare case-insensitively, as ARM's do.
    """

    def __init__(self, registry_id: str | None = None, *, auto_run: bool = True) -> None:
        super().__init__()
        self.registry_id = registry_id
        self.auto_run = auto_run
        self.deployment_state = "Running"
        self.deployments: dict[str, DeploymentState] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.deployment_calls: list[DeploymentCall] = []
        self.deleted_deployments: list[str] = []
        self.deleted_resources: list[str] = []
        self.other_deployments = 0  # deployments in the group the app did not make (count_deployments)
        self.assignments: list[dict[str, Any]] = []  # role assignments, as ARM lists them
        self.api_versions: tuple[str, ...] = PIPELINE_API_VERSIONS  # what the provider advertises
        self.grants: dict[str, list[dict[str, Any]]] = {}  # the app's permissions by scope (lower-case)

    # -- scripting --

    def set_deployment(
        self,
        name: str,
        provisioning_state: str,
        *,
        outputs: Mapping[str, Any] | None = None,
        output_resource_ids: tuple[str, ...] = (),
        error: str | None = None,
    ) -> DeploymentState:
        state = DeploymentState(name, provisioning_state, dict(outputs or {}), output_resource_ids, error)
        self.deployments[name] = state
        return state

    def put_resource(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(dict(resource))
        self.resources[str(body["id"]).lower()] = body
        return body

    def pipeline_run_id(self, run_name: str) -> str:
        if self.registry_id is None:
            raise ValueError("FakeResourceManager needs registry_id for pipeline runs")
        return f"{self.registry_id}/pipelineRuns/{run_name}"

    def put_pipeline_run(
        self,
        run_name: str,
        *,
        status: str = "Running",
        provisioning_state: str = "Creating",
        request: Mapping[str, Any] | None = None,
        source_trigger: bool = False,
        source_trigger_at: str = "2026-11-26T12:00:00Z",
        response_source: Mapping[str, Any] | None = None,
        progress: str | None = None,
        imported_artifacts: tuple[str, ...] = (),
        error: str | None = None,
    ) -> dict[str, Any]:
        response: dict[str, Any] = {"status": status}
        if progress is not None:
            response["progress"] = {"percentage": progress}
        if imported_artifacts:
            response["importedArtifacts"] = list(imported_artifacts)
        if error:
            response["pipelineRunErrorMessage"] = error
        if source_trigger:
            response["trigger"] = {"sourceTrigger": {"timestamp": source_trigger_at}}
        if response_source is not None:
            response["source"] = dict(response_source)
        return self.put_resource(
            {
                "id": self.pipeline_run_id(run_name),
                "name": run_name,
                "type": PIPELINE_RUN_TYPE,
                "properties": {
                    "provisioningState": provisioning_state,
                    "request": dict(request or {}),
                    "response": response,
                },
            }
        )

    def finish_run(
        self,
        run_name: str,
        status: str = "Succeeded",
        *,
        imported_artifacts: tuple[str, ...] = (),
        error: str | None = None,
        deployment: str | None = None,
    ) -> None:
        """The pipelineRun ends with `status`; its deployment (`deployment`, default the one that created
        it) ends Succeeded, or Failed with `error` when the run failed."""
        resource = self.resources[self.pipeline_run_id(run_name).lower()]
        props = resource["properties"]
        props["provisioningState"] = "Succeeded" if status == "Succeeded" else "Failed"
        props["response"]["status"] = status
        props["response"]["progress"] = {"percentage": "100"}
        if imported_artifacts:
            props["response"]["importedArtifacts"] = list(imported_artifacts)
        if error:
            props["response"]["pipelineRunErrorMessage"] = error
        name = deployment or next(
            (
                c.name
                for c in reversed(self.deployment_calls)
                if c.parameters.get("pipelineRunName") == run_name
            ),
            None,
        )
        if name is not None and name in self.deployments:
            if status == "Succeeded":
                self.set_deployment(name, "Succeeded", outputs={"pipelineRunResourceId": resource["id"]})
            else:
                self.set_deployment(name, "Failed", error=error or f"the pipeline run {status.lower()}")

    # -- the port --

    def begin_deployment(self, name: str, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        with self._lock:
            self._enter("begin_deployment", name)
            current = self.deployments.get(name)
            adopted = current is not None and current.provisioning_state in RUNNING_DEPLOYMENT_STATES
            self.deployment_calls.append(
                DeploymentCall(name, copy.deepcopy(dict(template)), copy.deepcopy(dict(parameters)), adopted)
            )
            if adopted:
                return
            self.set_deployment(name, self.deployment_state)
            run_name = parameters.get("pipelineRunName")
            if self.auto_run and run_name and self.registry_id is not None:
                existing = self.resources.get(self.pipeline_run_id(str(run_name)).lower())
                tag = parameters.get("forceUpdateTag")
                if existing is None or existing["properties"].get("forceUpdateTag") != tag:
                    request = {
                        k: v for k, v in parameters.items() if k in ("pipelineResourceId", "artifacts")
                    }
                    if "sourceName" in parameters:
                        request["source"] = {"type": "AzureStorageBlob", "name": parameters["sourceName"]}
                    if "targetName" in parameters:
                        request["target"] = {"type": "AzureStorageBlob", "name": parameters["targetName"]}
                    body = self.put_pipeline_run(str(run_name), request=request)
                    body["properties"]["forceUpdateTag"] = tag

    def get_deployment(self, name: str) -> DeploymentState | None:
        with self._lock:
            self._enter("get_deployment", name)
            return self.deployments.get(name)

    def delete_deployment(self, name: str) -> bool:
        with self._lock:
            self._enter("delete_deployment", name)
            self.deleted_deployments.append(name)
            self.deployments.pop(name, None)
            return True  # ARM's 200/204/404: gone now

    def count_deployments(self) -> int:
        with self._lock:
            self._enter("count_deployments")
            return len(self.deployments) + self.other_deployments

    def get_resource(self, resource_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._enter("get_resource", resource_id)
            body = self.resources.get(resource_id.lower())
            return copy.deepcopy(body) if body is not None else None

    def delete_resource(self, resource_id: str) -> bool:
        with self._lock:
            self._enter("delete_resource", resource_id)
            self.deleted_resources.append(resource_id)
            self.resources.pop(resource_id.lower(), None)
            return True

    def assign_role(self, principal_id: str, role_definition_guid: str, scope: str) -> None:
        """Script a role assignment, shaped as ARM lists it."""
        authorization = "/providers/Microsoft.Authorization"
        self.assignments.append(
            {
                "id": f"{scope}{authorization}/roleAssignments/{len(self.assignments):08d}",
                "properties": {
                    "principalId": principal_id,
                    "roleDefinitionId": f"{authorization}/roleDefinitions/{role_definition_guid}",
                    "scope": scope,
                },
            }
        )

    def role_assignments(self, principal_id: str) -> list[dict[str, Any]]:
        with self._lock:
            self._enter("role_assignments", principal_id)
            return [
                copy.deepcopy(a) for a in self.assignments if a["properties"]["principalId"] == principal_id
            ]

    def list_resources(self, resource_type: str, api_version: str) -> list[dict[str, Any]]:
        with self._lock:
            self._enter("list_resources", resource_type)
            marker = f"/providers/{resource_type}/".lower()
            return [copy.deepcopy(b) for k, b in sorted(self.resources.items()) if marker in k + "/"]

    def read_resource(self, resource_id: str, api_version: str) -> dict[str, Any] | None:
        with self._lock:
            self._enter("read_resource", resource_id)
            body = self.resources.get(resource_id.lower())
            return copy.deepcopy(body) if body is not None else None

    def permissions(self, scope: str) -> list[dict[str, Any]]:
        """Scripted in `grants` (scope -> entries); an unscripted scope is an Owner's `*`, as the emulator
        answers an unrestricted caller."""
        with self._lock:
            self._enter("permissions", scope)
            return copy.deepcopy(self.grants.get(scope.lower(), [{"actions": ["*"], "notActions": []}]))

    def supported_api_versions(self, resource_id: str) -> tuple[str, ...]:
        with self._lock:
            self._enter("supported_api_versions", resource_id)
            return self.api_versions

    def list_pipeline_runs(self) -> list[dict[str, Any]]:
        with self._lock:
            self._enter("list_pipeline_runs")
            prefix = f"{self.registry_id}/pipelineRuns/".lower() if self.registry_id else "/pipelineruns/"
            return [
                copy.deepcopy(body)
                for key, body in sorted(self.resources.items())
                if (key.startswith(prefix) if self.registry_id else prefix in key)
            ]

    def list_pipelines(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            self._enter("list_pipelines", kind)
            if kind not in ("export", "import"):
                raise ValueError(f"not a pipeline kind: {kind!r}")
            if self.registry_id is None:
                raise ValueError("FakeResourceManager needs registry_id for pipelines")
            prefix = f"{self.registry_id}/{kind}Pipelines/".lower()
            return [
                copy.deepcopy(body) for key, body in sorted(self.resources.items()) if key.startswith(prefix)
            ]


class FakeSasSigner(_Faults):
    """Like AzureDelegationSigner: a read-only container SAS the app's identity signs (in `signed`)."""

    def __init__(self) -> None:
        super().__init__()
        self.signed: list[tuple[str, datetime, datetime]] = []

    def read_sas(self, container_url: str, starts_at: datetime, expires_at: datetime) -> str:
        with self._lock:
            self._enter("read_sas", container_url)
            self.signed.append((container_url, starts_at, expires_at))
            expiry = f"{expires_at:%Y-%m-%dT%H:%M:%SZ}"
            return f"skoid=app&sr=c&sp=r&spr=https&se={expiry}&sig=DELEGATED{len(self.signed)}"
