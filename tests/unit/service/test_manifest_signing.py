"""Signed manifests, on the fakes and the real verifier (transfer/adapters/signing.py's PublicKeyVerifier):
the export side writes the signature beside the manifest and the copy step carries both; the target side
trusts nothing in a manifest before its signature verifies: tampered, unsigned or signed with another key
is a failed verification that says why, and health warns."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import World, sas_copy_world
from tests.fakes import FakeSigner
from transfer.adapters.signing import PublicKeyVerifier
from transfer.bootstrap import assemble
from transfer.domain import manifests
from transfer.domain.errors import SettingsError
from transfer.domain.runs import Run, Trigger

CATEGORY = {"category": "acr-transfer-blob"}


def signing_world(signer: FakeSigner | None, verify_with: str | None) -> World:
    world = sas_copy_world()
    world.registry.retag("team/api", "v1")
    verifier = PublicKeyVerifier(verify_with) if verify_with else None
    ports = replace(world.ports, manifest_signer=signer, manifest_verifier=verifier)
    return replace(world, service=assemble(world.settings, ports, world.clock), ports=ports)


def exported(world: World) -> Run:
    [run] = world.service.start_export(["team/api:v1"], Trigger.HTTP, "signed").runs
    world.finish(run)
    world.service.reconcile()
    return world.stored_run(run.id)


def landed(world: World, run: Run, *, tamper: bool = False, unsigned: bool = False) -> Run:
    """The export's blob, manifest and signature carried to the watched container, then imported."""
    assert run.blob is not None
    assert run.manifest is not None
    data = world.source.read_blob(run.manifest, manifests.MAX_BYTES)
    signature = world.source.read_blob(manifests.signature_name(run.manifest), 16384)
    assert data is not None
    assert signature is not None
    if tamper:
        data = data.replace(b'"team/api:v1"', b'"team/api:v9"', 1)
    world.put_blob(run.blob, metadata=CATEGORY)
    world.blobs.put(run.manifest, content=data)
    if not unsigned:
        world.blobs.put(manifests.signature_name(run.manifest), content=signature)
    [imported] = world.service.start_import(run.blob, Trigger.HTTP).runs
    world.arm.finish_run(
        imported.id, "Succeeded", imported_artifacts=("team/api:v1",), deployment=imported.deployment_name
    )
    world.service.reconcile()
    return world.stored_run(imported.id)


def test_the_export_side_signs_each_manifest_and_the_target_trusts_it() -> None:
    signer = FakeSigner()
    world = signing_world(signer, signer.public_pem)
    run = exported(world)
    assert signer.calls["sign"] == 1
    assert run.manifest is not None
    assert world.source.read_blob(manifests.signature_name(run.manifest), 16384) is not None
    assert landed(world, run).verification == "passed"


def test_the_copy_step_carries_the_signature_before_the_manifest() -> None:
    signer = FakeSigner()
    world = signing_world(signer, None)
    run = exported(world)
    assert run.manifest is not None
    world.service.reconcile()
    names = [name for method, name in world.copier.history if method == "start_copy"]
    assert names[:2] == [manifests.signature_name(run.manifest), run.manifest]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "does not verify with the configured public key"),
        ("unsigned", "is not signed"),
        ("wrong key", "does not verify with the configured public key"),
    ],
)
def test_an_untrusted_manifest_fails_verification_with_the_reason_and_health_warns(
    case: str, reason: str
) -> None:
    signer = FakeSigner()
    world = signing_world(signer, FakeSigner().public_pem if case == "wrong key" else signer.public_pem)
    run = landed(world, exported(world), tamper=case == "tampered", unsigned=case == "unsigned")
    assert run.verification == "failed"
    assert reason in (run.verification_detail or "")
    assert run.skipped_artifacts == ()  # nothing in the manifest was read
    checks = {c.name: c for c in world.service.health()}
    assert checks["verification"].detail.startswith("warning:")


def test_the_public_key_is_a_pem_or_a_public_jwk() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()

    def b64(value: int) -> str:
        import base64

        return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()

    PublicKeyVerifier(f'{{"kty": "EC", "crv": "P-256", "x": "{b64(numbers.x)}", "y": "{b64(numbers.y)}"}}')
    with pytest.raises(SettingsError, match="TRANSFER_MANIFEST_VERIFY_KEY"):
        PublicKeyVerifier('{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}')
    with pytest.raises(SettingsError, match="TRANSFER_MANIFEST_VERIFY_KEY"):
        PublicKeyVerifier("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----")
