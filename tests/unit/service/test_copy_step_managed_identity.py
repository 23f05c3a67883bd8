"""Moving to ManagedIdentity loses nothing: with a ManagedIdentity export pipeline (no Key Vault secret) the
copy step hands the target a source URL with a read-only user delegation SAS the app's identity signs, and
the manifest is written with the app's identity."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from tests.conftest import CATEGORY, COPY_ENV, World, make_world
from tests.fakes import FakeSasSigner
from transfer.bootstrap import assemble
from transfer.domain.runs import CopyStatus, Trigger

EXPORTS = "https://source.blob.core.windows.net/exports"


def managed_identity_world(signer: FakeSasSigner | None) -> World:
    world = make_world(
        COPY_ENV,
        export_storage={"uri": EXPORTS, "storageAccessMode": "ManagedIdentity"},
        copy_status="pending",
    )
    ports = replace(world.ports, signer=signer)
    return replace(world, service=assemble(world.settings, ports, world.clock), ports=ports)


def test_the_copy_of_a_managed_identity_export_uses_a_user_delegation_sas(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    signer = FakeSasSigner()
    world = managed_identity_world(signer)
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.blob is not None
    world.source.put(run.blob, metadata=CATEGORY, content=b"exported")
    world.arm.finish_run(run.id, "Succeeded")
    world.service.reconcile()
    url = world.copier.source_urls[run.blob]
    assert url.startswith(f"{EXPORTS}/{run.blob}?skoid=app&sr=c&sp=r&spr=https")
    [(container, starts, expires)] = signer.signed
    assert container == EXPORTS
    assert starts == world.clock()
    assert expires > starts
    world.copier.finish(run.blob)
    world.service.reconcile()
    assert world.stored_run(run.id).copy_status is CopyStatus.SUCCEEDED
    assert "DELEGATED" not in caplog.text


def test_without_a_signer_the_copy_fails_with_the_reason() -> None:
    world = managed_identity_world(None)
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.blob is not None
    world.source.put(run.blob, metadata=CATEGORY, content=b"exported")
    world.arm.finish_run(run.id, "Succeeded")
    world.service.reconcile()
    stored = world.stored_run(run.id)
    assert stored.copy_status is CopyStatus.FAILED
    assert "user delegation SAS" in (stored.copy_error or "")
