"""Fixtures for the entry-point tests: a TransferService on in-memory fakes with a fixed clock, injected
through bootstrap.use_service() so function_app and the CLI find it as they would the real one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.functions._fakes import FakeBlobStore, FakeResourceManager, FakeStateStore
from transfer import bootstrap
from transfer.config import Settings, load_settings
from transfer.ports import BlobInfo
from transfer.runs import DeploymentState, Run
from transfer.service import TransferService

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
ENV = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "TRANSFER_RESOURCE_GROUP": "transfer-rg",
    "TRANSFER_REGISTRY": "myregistry",
    "TRANSFER_EXPORT_PIPELINE": "exportpipeline",
    "TRANSFER_IMPORT_PIPELINE": "importpipeline",
    "TRANSFER_EXPORT_ARTIFACTS": '["samples/hello-world:v1", "samples/nginx:1.27"]',
    "TransferStorage": "UseDevelopmentStorage=true",
    "TransferState": "UseDevelopmentStorage=true",
}
WRITES = ("begin_deployment", "delete_deployment", "delete_resource")


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    """The service and what it talks to; tests read the fakes, never the service's internals."""

    service: TransferService
    arm: FakeResourceManager
    state: FakeStateStore
    blobs: FakeBlobStore
    clock: Clock
    settings: Settings
    tokens: Iterator[int] = field(default_factory=itertools.count)

    def arm_writes(self) -> list[tuple[str, str]]:
        return [call for call in self.arm.calls if call[0] in WRITES]

    def deployments_started(self) -> list[str]:
        return [name for kind, name in self.arm.calls if kind == "begin_deployment"]

    def stored_runs(self) -> list[Run]:
        return self.state.list_runs(top=1000)

    def finish(self, run: Run, status: str = "Succeeded", error: str | None = None) -> None:
        """ARM reports the run's deployment done and its pipelineRun in `status`."""
        assert run.pipeline_run_id
        state = "Failed" if status == "Failed" else "Succeeded"
        self.arm.deployments[run.deployment_name] = DeploymentState(run.deployment_name, state)
        response: dict[str, Any] = {"status": status, "progress": {"percentage": "100"}}
        if error:
            response["pipelineRunErrorMessage"] = error
        self.arm.put_resource(
            {
                "id": run.pipeline_run_id,
                "name": run.id,
                "properties": {"provisioningState": "Succeeded", "response": response},
            }
        )

    def add_blob(
        self, name: str, *, age_days: float = 0, md5: bool = True, category: bool = True
    ) -> BlobInfo:
        info = BlobInfo(
            name=name,
            etag=f'"0x{len(self.blobs.blobs) + 1:04X}"',
            last_modified=self.clock() - timedelta(days=age_days),
            content_md5=b"\x01" * 16 if md5 else None,
            metadata={"category": "acr-transfer-blob"} if category else {},
            size=1024,
        )
        self.blobs.put(info)
        return info


def pipeline_resource(settings: Settings, kind: str, **storage: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "target" if kind == "export" else "source": {
            "type": "AzureStorageBlobContainer",
            "uri": f"https://{kind}acct.blob.core.windows.net/transfer",
            "storageAccessMode": "ManagedIdentity",
            **storage,
        },
        "options": [],
    }
    if kind == "import":
        props["trigger"] = {"sourceTrigger": {"status": "Enabled"}}
    return {"id": settings.pipeline_id(kind), "name": f"{kind}pipeline", "properties": props}


def make_world(env: dict[str, str] | None = None) -> World:
    settings = load_settings(env or ENV)
    arm, state, blobs, clock = FakeResourceManager(), FakeStateStore(), FakeBlobStore(), Clock()
    tokens = itertools.count(1)
    for kind in ("export", "import"):
        if getattr(settings, f"{kind}_pipeline"):
            arm.put_resource(pipeline_resource(settings, kind))
    service = TransferService(
        settings,
        arm=arm,
        state=state,
        blobs=blobs if settings.import_pipeline else None,
        clock=clock,
        token=lambda: f"{next(tokens):06d}",
    )
    return World(service, arm, state, blobs, clock, settings, tokens)


@pytest.fixture
def world() -> Iterator[World]:
    built = make_world()
    with bootstrap.use_service(built.service):
        yield built
