"""Interim in-memory fakes of the ports, until tests/fakes.py lands; only what these tests need."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from transfer.errors import AlreadyExists, PreconditionFailed
from transfer.ports import BlobInfo, BlobRecord, RequestRecord
from transfer.runs import DeploymentState, Run, RunKind, RunStatus


class FakeResourceManager:
    def __init__(self) -> None:
        self.deployments: dict[str, DeploymentState] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    def begin_deployment(self, name: str, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.calls.append(("begin_deployment", name))
        self.deployments.setdefault(name, DeploymentState(name, "Running"))

    def get_deployment(self, name: str) -> DeploymentState | None:
        return self.deployments.get(name)

    def delete_deployment(self, name: str) -> None:
        self.calls.append(("delete_deployment", name))
        self.deployments.pop(name, None)

    def count_deployments(self) -> int:
        return len(self.deployments)

    def get_resource(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_id.lower())

    def delete_resource(self, resource_id: str) -> None:
        self.calls.append(("delete_resource", resource_id))
        self.resources.pop(resource_id.lower(), None)

    def list_pipeline_runs(self) -> list[dict[str, Any]]:
        return [r for k, r in self.resources.items() if "/pipelineruns/" in k]

    def put_resource(self, resource: dict[str, Any]) -> None:
        self.resources[resource["id"].lower()] = resource


class FakeStateStore:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.requests: dict[str, RequestRecord] = {}
        self.blobs: dict[tuple[str, str], BlobRecord] = {}
        self._etag = 0

    def _tag(self, run: Run) -> Run:
        self._etag += 1
        stored = replace(run, etag=str(self._etag))
        self.runs[run.id] = stored
        return stored

    def add_run(self, run: Run) -> Run:
        if run.id in self.runs:
            raise AlreadyExists(f"run {run.id} exists")
        return self._tag(run)

    def get_run(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def update_run(self, run: Run) -> Run:
        if self.runs[run.id].etag != run.etag:
            raise PreconditionFailed("etag")
        return self._tag(run)

    def list_runs(
        self, *, kind: RunKind | None = None, status: RunStatus | None = None, top: int = 100
    ) -> list[Run]:
        runs = sorted(self.runs.values(), key=lambda r: r.id, reverse=True)
        runs = [
            r for r in runs if (kind is None or r.kind is kind) and (status is None or r.status is status)
        ]
        return runs[:top]

    def active_runs(self) -> list[Run]:
        return [r for r in self.runs.values() if not r.status.terminal]

    def runs_to_clean(self) -> list[Run]:
        return [r for r in self.runs.values() if r.status.terminal and not r.cleaned_up]

    def claim_blob(self, record: BlobRecord) -> bool:
        if (record.name, record.key) in self.blobs:
            return False
        self.blobs[(record.name, record.key)] = record
        return True

    def blob_records(self, name: str) -> list[BlobRecord]:
        return [r for (n, _), r in self.blobs.items() if n == name]

    def update_blob_record(self, record: BlobRecord) -> None:
        self.blobs[(record.name, record.key)] = record

    def claim_request(self, record: RequestRecord) -> RequestRecord:
        return self.requests.setdefault(record.key, record)

    def ping(self) -> None:
        return None


class FakeBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, BlobInfo] = {}

    def put(self, info: BlobInfo) -> None:
        self.blobs[info.name] = info

    def get_properties(self, name: str) -> BlobInfo | None:
        return self.blobs.get(name)

    def merge_metadata(self, name: str, updates: Mapping[str, str], etag: str) -> BlobInfo:
        blob = self.blobs[name]
        if blob.etag != etag:
            raise PreconditionFailed("etag")
        self.blobs[name] = replace(blob, metadata={**blob.metadata, **updates}, etag=etag + "+")
        return self.blobs[name]

    def list_blobs(self) -> Iterator[BlobInfo]:
        return iter(list(self.blobs.values()))
