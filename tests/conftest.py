"""Fixtures for the entry-point tests: a TransferService on the contract-tested fakes of tests/fakes.py
with a fixed clock, wired as bootstrap.build_service wires the real adapters, and injected through
bootstrap.use_service() so function_app and the CLI find it as they would the real one."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import (
    Clock,
    FakeBlobCopier,
    FakeBlobStore,
    FakeBlobWriter,
    FakeRegistry,
    FakeResourceManager,
    FakeSecretReader,
    FakeStateStore,
)
from transfer import bootstrap
from transfer.adapters.templates import FileTemplates
from transfer.bootstrap import Ports, assemble
from transfer.domain.records import BlobInfo
from transfer.domain.runs import Run
from transfer.domain.settings import Settings, load_settings
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE
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


@dataclass
class World:
    """The service and what it talks to; tests read the fakes, never the service's internals."""

    service: TransferService
    arm: FakeResourceManager
    state: FakeStateStore
    blobs: FakeBlobStore
    secrets: FakeSecretReader
    copier: FakeBlobCopier
    source: FakeBlobStore  # the export pipeline's container, which the copier copies from
    clock: Clock
    settings: Settings
    registry: FakeRegistry  # the registry's data plane (this side's registry), empty to begin with
    writer: FakeBlobWriter  # writes manifests into `source`
    ports: Ports  # the fakes as the service was wired with them

    def new_worker(self) -> TransferService:
        """Another worker over the same fakes: its own memory (caches, cursors, pauses), nothing else."""
        return assemble(self.settings, self.ports, self.clock)

    def arm_writes(self) -> list[tuple[str, Any]]:
        """The ARM writes in call order, as (method, name or resource id)."""
        return [call for call in self.arm.history if call[0] in WRITES]

    def deployments_started(self) -> list[str]:
        """Every begin_deployment call's name, in order, adopted ones included."""
        return [call.name for call in self.arm.deployment_calls]

    def stored_runs(self) -> list[Run]:
        return self.state.list_runs(top=1000)

    def stored_run(self, run_id: str) -> Run:
        """The run as the state store holds it; a test that asks for it expects it there."""
        run = self.state.get_run(run_id)
        assert run is not None, f"run {run_id} is not recorded"
        return run

    def finish(self, run: Run, status: str = "Succeeded", error: str | None = None) -> None:
        """ARM reports the run's pipelineRun ended in `status` and its deployment done."""
        assert run.pipeline_run_id == self.arm.pipeline_run_id(run.id)
        self.arm.finish_run(run.id, status, error=error, deployment=run.deployment_name)

    def add_blob(
        self, name: str, *, age_days: float = 0, md5: bool = True, category: bool = True
    ) -> BlobInfo:
        return self.blobs.put(
            name,
            metadata={CATEGORY_KEY: CATEGORY_VALUE} if category else {},
            content_md5=b"\x01" * 16 if md5 else None,
            last_modified=self.clock() - timedelta(days=age_days),
            size=1024,
        )

    def put_blob(self, name: str, age: timedelta = timedelta(0), **kwargs: Any) -> BlobInfo:
        """A blob in the watched container with `category` and another key, and content (so an MD5)."""
        kwargs.setdefault("metadata", {CATEGORY_KEY: CATEGORY_VALUE, "owner": "team"})
        kwargs.setdefault("content", f"transfer blob {name}".encode())
        return self.blobs.put(name, last_modified=self.clock() - age, **kwargs)


def pipeline_resource(
    settings: Settings, kind: str, trigger: str = "Enabled", **storage: Any
) -> dict[str, Any]:
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
        props["trigger"] = {"sourceTrigger": {"status": trigger}}
    return {
        "id": settings.pipeline_id(kind),
        "name": getattr(settings, f"{kind}_pipeline"),
        "properties": props,
    }


def make_world(
    env: Mapping[str, str] | None = None,
    *,
    export_storage: Mapping[str, str] | None = None,
    import_storage: Mapping[str, str] | None = None,
    trigger: str = "Enabled",
    secrets: Mapping[str, str] | None = None,
    copy_status: str = "success",
) -> World:
    """The service wired as bootstrap.build_service wires it: blobs with an import pipeline, a secret
    reader always, a copier only with TRANSFER_COPY_TARGET_URL. Pipelines are ManagedIdentity unless
    `export_storage` / `import_storage` say otherwise; `secrets` are the Key Vault's {secret URI: value}."""
    settings = load_settings(env or ENV)
    clock = Clock(NOW)
    arm, state, blobs = FakeResourceManager(settings.registry_id), FakeStateStore(), FakeBlobStore(clock)
    source = FakeBlobStore(clock)
    reader = FakeSecretReader(secrets)
    copier = FakeBlobCopier(source, FakeBlobStore(clock), initial_status=copy_status)
    tokens = itertools.count(1)
    storage = {"export": export_storage or {}, "import": import_storage or {}}
    for kind in ("export", "import"):
        if getattr(settings, f"{kind}_pipeline"):
            arm.put_resource(pipeline_resource(settings, kind, trigger, **storage[kind]))
    registry = FakeRegistry()
    export_uri = storage["export"].get("uri", "https://exportacct.blob.core.windows.net/transfer")
    writer = FakeBlobWriter({export_uri: source})
    ports = Ports(
        arm=arm,
        state=state,
        templates=FileTemplates(),
        blobs=blobs if settings.import_pipeline else None,
        copier=copier if settings.copy_target_url else None,
        secrets=reader,
        registry=registry,
        blob_writer=writer,
    )
    service = assemble(settings, ports, clock, token=lambda: f"{next(tokens):06x}")
    return World(service, arm, state, blobs, reader, copier, source, clock, settings, registry, writer, ports)


# ---- a world for both roles, exports through a SasToken pipeline whose secret the copy step reads ----

SUB = "00000000-0000-0000-0000-000000000001"
COPY_ENV = {
    "AZURE_SUBSCRIPTION_ID": SUB,
    "TRANSFER_RESOURCE_GROUP": "transfer-rg",
    "TRANSFER_REGISTRY": "myregistry",
    "TRANSFER_EXPORT_PIPELINE": "exportpipe",
    "TRANSFER_IMPORT_PIPELINE": "importpipe",
    "TransferStorage": "UseDevelopmentStorage=true",
    "TransferState": "UseDevelopmentStorage=true",
    "TRANSFER_COPY_TARGET_URL": "https://target.blob.core.windows.net/transfer",
}
COPY_VAULT = "https://sourcevault.vault.azure.net"
COPY_SAS = "sv=2024-11-04&se=2027-06-01T00%3A00%3A00Z&sp=rwla&spr=https&sig=SUPERSECRETSIGNATURE"
CATEGORY = {CATEGORY_KEY: CATEGORY_VALUE}


def sas_copy_world(stale_action: str = "refresh", trigger: str = "Enabled", **env: str) -> World:
    """The one world builder, set for both roles: exports through a SasToken pipeline whose secret the copy
    step reads; copies pend."""
    return make_world(
        {**COPY_ENV, "TRANSFER_STALE_BLOB_ACTION": stale_action, **env},
        export_storage={
            "uri": "https://source.blob.core.windows.net/exports",
            "storageAccessMode": "SasToken",
            "keyVaultUri": f"{COPY_VAULT}/secrets/exportsas",
        },
        import_storage={"uri": "https://target.blob.core.windows.net/transfer"},
        trigger=trigger,
        secrets={f"{COPY_VAULT}/secrets/exportsas": COPY_SAS},
        copy_status="pending",
    )


@pytest.fixture
def world_setup() -> Callable[[], World]:
    """How the tests of a module build their world: a module that needs another overrides this fixture
    (`return sas_copy_world`, or a function of its own over make_world)."""
    return make_world


@pytest.fixture
def world(world_setup: Callable[[], World]) -> Iterator[World]:
    """The one world fixture: the service over the fakes, also what function_app and the CLI find."""
    built = world_setup()
    with bootstrap.use_service(built.service):
        yield built
