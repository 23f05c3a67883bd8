"""Composition root: settings read once, the adapters built, and every use case wired with exactly the
ports it names, once per worker. Tests wire the same use cases over hand-written fakes with `assemble`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from transfer.domain.settings import Settings, load_settings

if TYPE_CHECKING:  # the service and its use cases load on the first invocation, not at cold start
    from transfer.domain.ports import (
        BlobCopier,
        BlobStore,
        BlobWriter,
        ManifestSigner,
        ManifestVerifier,
        Registry,
        ResourceManager,
        SasSigner,
        SecretReader,
        StateStore,
        TemplateSource,
    )
    from transfer.service import TransferService
    from transfer.service.blob_events import HandleBlob
    from transfer.service.cleanup import Cleanup, DeleteRun
    from transfer.service.dashboard import Dashboard
    from transfer.service.diagnosis import DiagnoseBlob
    from transfer.service.exports import ScheduledExport, StartExport
    from transfer.service.health import Health
    from transfer.service.imports import StartImport
    from transfer.service.inventory import Inventory
    from transfer.service.lifecycle import RunLifecycle
    from transfer.service.memory import WorkerMemory
    from transfer.service.pipeline_admin import PipelineAdmin
    from transfer.service.pipelines import Pipelines
    from transfer.service.pushes import RecordPushes, StartPushExports
    from transfer.service.reads import ReadRuns
    from transfer.service.reconcile import Reconcile, ReconcileRun
    from transfer.service.selecting import Selecting
    from transfer.service.sweep import Sweep

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Ports:
    """The adapters of one worker (or their fakes): what `assemble` hands each use case a part of."""

    arm: ResourceManager
    state: StateStore
    templates: TemplateSource
    blobs: BlobStore | None = None  # the watched container (the target side)
    copier: BlobCopier | None = None  # the copy target (TRANSFER_COPY_TARGET_URL)
    secrets: SecretReader | None = None
    registry: Registry | None = None  # the registry's data plane
    blob_writer: BlobWriter | None = None  # manifests beside exported blobs (the source side)
    sas_signer: SasSigner | None = None  # user delegation SASes (a ManagedIdentity export pipeline's copies)
    manifest_signer: ManifestSigner | None = None  # signs manifests (TRANSFER_MANIFEST_SIGNING_KEY)
    manifest_verifier: ManifestVerifier | None = None  # checks them (TRANSFER_MANIFEST_VERIFY_KEY)


def assemble(
    settings: Settings, ports: Ports, clock: Clock = utc_now, token: Callable[[], str] | None = None
) -> TransferService:
    """The service of one worker: its use cases over `ports`, sharing one WorkerMemory."""
    from transfer.service import TransferService, UseCases
    from transfer.service.lifecycle import RunLifecycle, random_token
    from transfer.service.memory import WorkerMemory
    from transfer.service.migrate import MigratePipeline
    from transfer.service.pipelines import Pipelines
    from transfer.service.readiness import Readiness

    memory = WorkerMemory()
    tenant = Readiness(settings, ports.arm, ports.arm, memory, clock)
    pipelines = Pipelines(settings, ports.arm, ports.secrets, memory, clock, tenant, ports.sas_signer)
    lifecycle = RunLifecycle(
        settings, ports.state, ports.arm, ports.templates, memory, clock, token or random_token
    )
    start_export, scheduled_export, start_import = _starting(
        settings, ports, pipelines, lifecycle, clock, memory
    )
    handle_blob, sweep, diagnose_blob = _watching(settings, ports, pipelines, lifecycle, memory, clock)
    reconcile, reconcile_run, cleanup, delete_run = _reconciling(
        settings, ports, pipelines, lifecycle, memory, clock
    )
    reads, health, pipeline_admin, inventory = _operating(settings, ports, pipelines, clock, memory)
    record_pushes, start_push_exports = _on_push(
        settings, ports, pipelines, lifecycle, start_export.selecting, memory, clock
    )
    use_cases = UseCases(
        start_export=start_export,
        scheduled_export=scheduled_export,
        start_import=start_import,
        handle_blob=handle_blob,
        sweep=sweep,
        diagnose_blob=diagnose_blob,
        reconcile=reconcile,
        reconcile_run=reconcile_run,
        cleanup=cleanup,
        delete_run=delete_run,
        reads=reads,
        health=health,
        pipelines=pipeline_admin,
        inventory=inventory,
        record_pushes=record_pushes,
        start_push_exports=start_push_exports,
        dashboard=_dashboard(settings, ports, pipelines, health, memory, clock),
        migrate=MigratePipeline(
            settings, ports.arm, ports.arm, ports.state, pipelines, pipeline_admin, pipelines.tenant
        ),
    )
    return TransferService(settings, use_cases)


def _on_push(
    settings: Settings,
    ports: Ports,
    pipelines: Pipelines,
    lifecycle: RunLifecycle,
    selecting: Selecting,
    memory: WorkerMemory,
    clock: Clock,
) -> tuple[RecordPushes, StartPushExports]:
    from transfer.service.pushes import RecordPushes, StartPushExports

    return (
        RecordPushes(settings, ports.state, clock),
        StartPushExports(settings, ports.state, ports.state, pipelines, lifecycle, selecting, memory, clock),
    )


def _starting(
    settings: Settings,
    ports: Ports,
    pipelines: Pipelines,
    lifecycle: RunLifecycle,
    clock: Clock,
    memory: WorkerMemory,
) -> tuple[StartExport, ScheduledExport, StartImport]:
    from transfer.service.exports import ScheduledExport, StartExport
    from transfer.service.imports import StartImport
    from transfer.service.requests import IdempotentRequests
    from transfer.service.selecting import Selecting

    requests = IdempotentRequests(ports.state, ports.state, lifecycle.new_id, clock)
    selecting = Selecting(settings, ports.registry, ports.state, memory=memory, clock=clock)
    start_export = StartExport(settings, pipelines, selecting, requests, lifecycle, ports.state)
    return (
        start_export,
        ScheduledExport(settings, start_export, clock),
        StartImport(settings, ports.blobs, pipelines, requests, lifecycle),
    )


def _watching(
    settings: Settings,
    ports: Ports,
    pipelines: Pipelines,
    lifecycle: RunLifecycle,
    memory: WorkerMemory,
    clock: Clock,
) -> tuple[HandleBlob, Sweep, DiagnoseBlob]:
    from transfer.service.blob_events import HandleBlob
    from transfer.service.blob_rule import BlobRule
    from transfer.service.diagnosis import DiagnoseBlob
    from transfer.service.sweep import Sweep

    rule = BlobRule(settings, pipelines, ports.state, ports.state, memory)
    handle_blob = HandleBlob(settings, ports.blobs, rule, ports.state, lifecycle, clock)
    return (
        handle_blob,
        Sweep(settings, ports.blobs, handle_blob, memory, clock),
        DiagnoseBlob(settings, ports.blobs, rule, ports.state, ports.state, clock),
    )


def _reconciling(
    settings: Settings,
    ports: Ports,
    pipelines: Pipelines,
    lifecycle: RunLifecycle,
    memory: WorkerMemory,
    clock: Clock,
) -> tuple[Reconcile, ReconcileRun, Cleanup, DeleteRun]:
    from transfer.service.after_success import (
        AfterSuccess,
        QueueCopy,
        RecordLedger,
        VerifyImport,
        WriteManifest,
    )
    from transfer.service.blob_finding import FindManifest
    from transfer.service.cleanup import Cleanup, DeleteRun, DeleteRunResources
    from transfer.service.copy_step import CopyStep
    from transfer.service.reconcile import Reconcile, ReconcileRun
    from transfer.service.source_runs import AdoptSourceRuns

    after_success = AfterSuccess(
        [
            WriteManifest(
                settings, ports.blob_writer, pipelines, ports.registry, clock, ports.manifest_signer
            ),
            RecordLedger(ports.state),
            VerifyImport(ports.blobs, ports.registry, FindManifest(ports.blobs), ports.manifest_verifier),
            QueueCopy(settings),
        ]
    )
    reconcile_run = ReconcileRun(settings, ports.arm, ports.arm, pipelines, lifecycle, after_success, clock)
    copies = CopyStep(ports.copier, pipelines, lifecycle, clock, signed=ports.manifest_signer is not None)
    adopt = AdoptSourceRuns(
        settings, ports.arm, ports.state, ports.state, pipelines, after_success, memory, clock
    )
    delete_resources = DeleteRunResources(settings, ports.arm, ports.arm, lifecycle, clock)
    return (
        Reconcile(settings, ports.state, reconcile_run, copies, adopt, memory, clock),
        reconcile_run,
        Cleanup(settings, ports.state, delete_resources, memory, clock),
        DeleteRun(delete_resources),
    )


def _operating(
    settings: Settings, ports: Ports, pipelines: Pipelines, clock: Clock, memory: WorkerMemory
) -> tuple[ReadRuns, Health, PipelineAdmin, Inventory]:
    from transfer.service.health import Health
    from transfer.service.inventory import Inventory
    from transfer.service.pipeline_admin import PipelineAdmin
    from transfer.service.reads import ReadRuns

    arm, state = ports.arm, ports.state
    return (
        ReadRuns(state),
        Health(
            settings, state, state, ports.blobs, arm, arm, arm, pipelines, clock, pipelines.tenant, memory
        ),
        PipelineAdmin(settings, arm, ports.templates, pipelines, pipelines.tenant),
        Inventory(settings, arm, arm, state, pipelines),
    )


def _dashboard(
    settings: Settings, ports: Ports, pipelines: Pipelines, health: Health, memory: WorkerMemory, clock: Clock
) -> Dashboard:
    from transfer.service.blob_rule import BlobRule
    from transfer.service.dashboard import Dashboard
    from transfer.service.dashboard_blobs import WatchedBlobs

    watched = None
    if ports.blobs is not None:
        rule = BlobRule(settings, pipelines, ports.state, ports.state, memory)
        watched = WatchedBlobs(settings, ports.blobs, ports.blobs, rule, clock)
    return Dashboard(settings, ports.state, ports.state, health, pipelines, watched, clock)


def build_service(settings: Settings, clock: Clock = utc_now) -> TransferService:
    """The service over the real adapters (SDK clients are built lazily, on first use)."""
    return assemble(settings, real_ports(settings), clock)


def real_ports(settings: Settings) -> Ports:
    from transfer.adapters.arm import ArmResourceManager
    from transfer.adapters.blobs import AzureBlobCopier, AzureBlobStore, AzureBlobWriter, DeferredCopier
    from transfer.adapters.credentials import make_credential
    from transfer.adapters.delegation import AzureDelegationSigner
    from transfer.adapters.keyvault import KeyVaultSecretReader
    from transfer.adapters.registry import AzureRegistry
    from transfer.adapters.signing import KeyVaultSigner, PublicKeyVerifier
    from transfer.adapters.state import TableStateStore
    from transfer.adapters.templates import FileTemplates

    credential = make_credential(settings)
    secrets_reader = KeyVaultSecretReader(credential)

    def copier() -> BlobCopier:
        assert settings.copy_target_url is not None
        sas = None
        if settings.copy_target_sas_secret_uri:
            sas = secrets_reader.read_sas(settings.copy_target_sas_secret_uri).token
        return AzureBlobCopier(
            settings.copy_target_url, sas_token=sas, credential=None if sas else credential
        )

    blobs = None
    if settings.transfer_storage is not None:
        blobs = AzureBlobStore(settings.transfer_storage, settings.target_container, credential)
    return Ports(
        arm=ArmResourceManager(settings, credential),
        state=TableStateStore(settings.state_storage, credential),
        templates=FileTemplates(),
        blobs=blobs,
        copier=DeferredCopier(copier) if settings.copy_target_url else None,  # its SAS read on first use
        secrets=secrets_reader,
        registry=AzureRegistry(
            settings.registry_endpoint, credential, audience=settings.cloud.registry_audience
        ),
        blob_writer=AzureBlobWriter(credential) if settings.export_pipeline else None,
        sas_signer=AzureDelegationSigner(credential)
        if settings.export_pipeline and settings.copy_target_url
        else None,
        manifest_signer=KeyVaultSigner(key, credential) if (key := settings.manifest_signing_key) else None,
        manifest_verifier=PublicKeyVerifier(public) if (public := settings.manifest_verify_key) else None,
    )


@cache
def settings_from_environment() -> Settings:
    return load_settings(os.environ)


_overrides: list[TransferService] = []


@contextmanager
def use_service(service: TransferService) -> Iterator[TransferService]:
    """Make service_from_environment() return `service` inside the block (tests, a local dev server)."""
    _overrides.append(service)
    try:
        yield service
    finally:
        _overrides.remove(service)


def service_from_environment() -> TransferService:
    return _overrides[-1] if _overrides else _service_from_environment()


@cache
def _service_from_environment() -> TransferService:
    return build_service(settings_from_environment())


def reset() -> None:
    """Forget the cached settings and service: the next use reads the environment again (tests)."""
    settings_from_environment.cache_clear()
    _service_from_environment.cache_clear()
