"""Composition root: real adapters wired into the service, once per process."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from transfer.domain.settings import Settings, load_settings

if TYPE_CHECKING:  # the service and its use cases load on the first invocation, not at cold start
    from transfer.domain.ports import BlobCopier
    from transfer.service import TransferService


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_service(settings: Settings, clock: Callable[[], datetime] = utc_now) -> TransferService:
    from transfer.adapters.arm import ArmResourceManager
    from transfer.adapters.blobs import AzureBlobCopier, AzureBlobStore, AzureBlobWriter
    from transfer.adapters.credentials import make_credential
    from transfer.adapters.keyvault import KeyVaultSecretReader
    from transfer.adapters.registry import AzureRegistry
    from transfer.adapters.state import TableStateStore
    from transfer.adapters.templates import FileTemplates
    from transfer.service import TransferService

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
    return TransferService(
        settings,
        arm=ArmResourceManager(settings, credential),
        state=TableStateStore(settings.state_storage, credential),
        blobs=blobs,
        copier=copier if settings.copy_target_url else None,
        secrets_reader=secrets_reader,
        clock=clock,
        registry=AzureRegistry(
            settings.registry_endpoint, credential, audience=settings.cloud.registry_audience
        ),
        blob_writer=AzureBlobWriter(credential) if settings.export_pipeline else None,
        templates=FileTemplates(),
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
