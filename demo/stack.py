"""The local stack for the demo and the dev server: one Azurite with a source and a target storage
account (the two sides never share storage or state), the ARM/ACR emulator, two registries, a Key Vault
with the SAS secrets, and the environment of a source-side and a target-side app instance."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from emulator import azurite
from emulator.testing import EmulatorProcess, RunningEmulator, spawn_emulator, start_emulator

SOURCE_ACCOUNT = "sourceacct"
TARGET_ACCOUNT = "targetacct"
SOURCE_GROUP = "source-rg"
TARGET_GROUP = "target-rg"
SOURCE_REGISTRY = "sourceregistry"
TARGET_REGISTRY = "targetregistry"
EXPORT_PIPELINE = "exportpipeline"
IMPORT_PIPELINE = "importpipeline"
EXPORT_CONTAINER = "exports"
TARGET_CONTAINER = "transfer"
VAULT = "transfervault"
SCHEDULED_SELECTOR = "team/*:v1.*"  # the source side's TRANSFER_EXPORT_ARTIFACTS


@dataclass
class DemoClock:
    """Real time plus the offset the demo moved the emulator's clock by: the app sees the same time."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Stack:
    azurite: azurite.Azurite
    emulator: RunningEmulator | EmulatorProcess
    keys: dict[str, str]
    source_env: dict[str, str]
    target_env: dict[str, str]
    clock: DemoClock

    def connection_string(self, account: str) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={self.keys[account]};"
            f"BlobEndpoint=http://127.0.0.1:{self.azurite.blob_port}/{account};"
            f"QueueEndpoint=http://127.0.0.1:{self.azurite.queue_port}/{account};"
            f"TableEndpoint=http://127.0.0.1:{self.azurite.table_port}/{account};"
        )

    def container_url(self, account: str, container: str) -> str:
        return f"http://127.0.0.1:{self.azurite.blob_port}/{account}/{container}"

    def advance_clock(self, **delta: float) -> None:
        self.emulator.admin.advance_clock(**delta)
        self.clock.offset += timedelta(**delta)

    def stop(self) -> None:
        try:
            self.emulator.stop()
        finally:
            azurite.stop(self.azurite)


def _container_sas(stack: Stack, account: str, container: str, permission: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        account,
        container,
        account_key=stack.keys[account],
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + timedelta(days=365),
    )


def start(run_seconds: float = 0.3, *, own_process: bool = False) -> Stack:
    """Start Azurite and the emulator (in this process, or `own_process`), create both sides' storage,
    registries and the Key Vault."""
    keys = {
        name: base64.b64encode(secrets.token_bytes(32)).decode() for name in (SOURCE_ACCOUNT, TARGET_ACCOUNT)
    }
    accounts = ";".join(f"{name}:{key}" for name, key in keys.items())
    server = azurite.start(env={"AZURITE_ACCOUNTS": f"{azurite.ACCOUNT}:{azurite.ACCOUNT_KEY};{accounts}"})
    try:
        # require_https_sas=False: Azurite speaks HTTP, and the app's copy step reads the export pipeline's
        # SAS and uses it there too; on Azure the pipelines' SAS must be HTTPS only (spr=https).
        emulator = (spawn_emulator if own_process else start_emulator)(
            server.connection_string, run_seconds=run_seconds, trigger_interval=0.2, require_https_sas=False
        )
    except BaseException:
        azurite.stop(server)
        raise
    stack = Stack(server, emulator, keys, {}, {}, DemoClock())
    try:
        _provision(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _provision(stack: Stack) -> None:
    from azure.storage.blob import BlobServiceClient

    for account, container in ((SOURCE_ACCOUNT, EXPORT_CONTAINER), (TARGET_ACCOUNT, TARGET_CONTAINER)):
        BlobServiceClient.from_connection_string(stack.connection_string(account)).create_container(container)
    admin = stack.emulator.admin
    # The emulator learns each account: its ARM resource (where role assignments go) and its Azurite key.
    for group, account in ((SOURCE_GROUP, SOURCE_ACCOUNT), (TARGET_GROUP, TARGET_ACCOUNT)):
        admin.register_storage_account(account, key=stack.keys[account], resource_group=group)
    admin.create_registry(SOURCE_REGISTRY, resource_group=SOURCE_GROUP)
    admin.create_registry(TARGET_REGISTRY, resource_group=TARGET_GROUP)
    # One vault per side, each holding the SAS its pipeline uses; the source vault also holds the SAS the
    # app's copy step writes to the target container with, and the key that signs the manifests.
    vaults: dict[str, str] = {}
    for group, name, account, container, permission in (
        (SOURCE_GROUP, "sourcevault", SOURCE_ACCOUNT, EXPORT_CONTAINER, "racwl"),
        (TARGET_GROUP, "targetvault", TARGET_ACCOUNT, TARGET_CONTAINER, "rdl"),
    ):
        created = admin.create_vault(name, resource_group=group)
        admin.set_secret(name, "pipelinesas", _container_sas(stack, account, container, permission))
        vaults[name] = str(created["properties"]["vaultUri"])
    copy_secret = admin.set_secret(
        "sourcevault", "copytargetsas", _container_sas(stack, TARGET_ACCOUNT, TARGET_CONTAINER, "racw")
    )
    signing_key, public_key = _manifest_key(stack, vaults["sourcevault"])
    common = {
        "AZURE_SUBSCRIPTION_ID": stack.emulator.subscription_id,
        "TRANSFER_ARM_ENDPOINT": stack.emulator.arm_endpoint,
        "TRANSFER_STALE_BLOB_ACTION": "import",
    }
    stack.source_env = {
        **common,
        "TRANSFER_RESOURCE_GROUP": SOURCE_GROUP,
        "TRANSFER_REGISTRY": SOURCE_REGISTRY,
        "TRANSFER_EXPORT_PIPELINE": EXPORT_PIPELINE,
        "TransferState": stack.connection_string(SOURCE_ACCOUNT),
        "TRANSFER_REGISTRY_ENDPOINT": stack.emulator.registry_endpoint(SOURCE_REGISTRY),
        "TRANSFER_EXPORT_ARTIFACTS": SCHEDULED_SELECTOR,  # incremental by default
        "TRANSFER_COPY_TARGET_URL": stack.container_url(TARGET_ACCOUNT, TARGET_CONTAINER),
        "TRANSFER_COPY_TARGET_SAS_SECRET_URI": copy_secret["secretUri"],
        "TRANSFER_MANIFEST_SIGNING_KEY": signing_key,
    }
    stack.target_env = {
        **common,
        "TRANSFER_RESOURCE_GROUP": TARGET_GROUP,
        "TRANSFER_REGISTRY": TARGET_REGISTRY,
        "TRANSFER_IMPORT_PIPELINE": IMPORT_PIPELINE,
        "TRANSFER_TARGET_CONTAINER": TARGET_CONTAINER,
        "TransferStorage": stack.connection_string(TARGET_ACCOUNT),
        "TransferState": stack.connection_string(TARGET_ACCOUNT),
        "TRANSFER_REGISTRY_ENDPOINT": stack.emulator.registry_endpoint(TARGET_REGISTRY),
        "TRANSFER_MANIFEST_VERIFY_KEY": public_key,  # the isolated side holds the public key only
    }


def _manifest_key(stack: Stack, vault_uri: str) -> tuple[str, str]:
    """An EC P-256 key in the source vault, created through the vault's data plane; (its id, its public
    key as PEM), as `az keyvault key create` and `az keyvault key download --encoding PEM` give them."""
    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.keys import KeyClient

    from transfer.adapters.signing import public_pem

    with identity(stack):
        key = KeyClient(vault_uri, ManagedIdentityCredential()).create_ec_key("manifests", curve="P-256")
    material = key.key
    jwk = {"kty": "EC", "crv": "P-256", "x": _b64(material.x), "y": _b64(material.y)}
    return str(key.id), public_pem(jwk)


def _b64(value: bytes | None) -> str:
    return base64.urlsafe_b64encode(value or b"").rstrip(b"=").decode()


@contextmanager
def identity(stack: Stack) -> Iterator[None]:
    """The app's managed identity, as Functions provides it: the emulator serves the token endpoint."""
    saved = os.environ.get("AZURE_TOKEN_CREDENTIALS")
    os.environ["AZURE_TOKEN_CREDENTIALS"] = "ManagedIdentityCredential"  # noqa: S105 - a credential name
    try:
        with stack.emulator.managed_identity_env():
            yield
    finally:
        if saved is None:
            os.environ.pop("AZURE_TOKEN_CREDENTIALS", None)
        else:
            os.environ["AZURE_TOKEN_CREDENTIALS"] = saved
