"""A locked-down tenant end to end: the real ARM adapter against the emulator, which answers as the
service does in each situation (a firewalled storage account, a registry whose export policy is disabled,
an app holding too few roles). Each is found in health with its errorCause and hint and refuses a start
before anything is written; a run the service fails anyway carries the same cause."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from demo import scenario
from demo import stack as demo_stack
from demo.stack import Stack
from tests.integration.polling import wait_for
from tests.integration.test_service_emulator import blob_client, finished, side
from transfer.domain.errors import Conflict, NotFound, PipelineNotReady, Throttled
from transfer.domain.runs import RunStatus, Trigger
from transfer.service.pipeline_admin import PipelineSpec

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    started = demo_stack.start(run_seconds=0.2)
    try:
        with demo_stack.identity(started):
            scenario.prepare(started, side(started, "source"), side(started, "target"))
            started.emulator.admin.add_repositories(demo_stack.SOURCE_REGISTRY, {"lock/app": {"v1": None}})
            yield started
    finally:
        started.stop()


def app_principal() -> str:
    """The object id the emulator sees for the app: its managed identity token's `oid`."""
    from azure.identity import ManagedIdentityCredential

    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default").token
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return str(claims.get("oid") or claims.get("appid"))


def checks(s: scenario.Side) -> dict[str, Any]:
    return {c.name: c for c in s.service.health()}


def firewall(stack: Stack, account: str, action: str) -> None:
    stack.emulator.admin.register_storage_account(
        account,
        key=stack.keys[account],
        resource_group=demo_stack.SOURCE_GROUP
        if account == demo_stack.SOURCE_ACCOUNT
        else demo_stack.TARGET_GROUP,
        default_action=action,
    )


def test_an_open_tenant_passes_every_check(stack: Stack) -> None:
    found = checks(side(stack, "source"))
    for name in ("exportStorageNetwork", "exportVaultAccess", "exportPolicy", "exportAppRole"):
        assert found[name].ok, found[name]
        assert not found[name].detail.startswith("unknown"), found[name]
    assert checks(side(stack, "target"))["importAppRole"].ok


def test_a_firewalled_account_is_found_refuses_starts_and_names_a_run_the_service_fails_anyway(
    stack: Stack,
) -> None:
    warm = side(stack, "source")
    try:
        firewall(stack, demo_stack.SOURCE_ACCOUNT, "Deny")
        cold = side(stack, "source")
        check = checks(cold)["exportStorageNetwork"]
        assert not check.ok
        assert check.cause.code == "StorageNetworkRestricted"
        with pytest.raises(PipelineNotReady, match="StorageNetworkRestricted"):
            cold.service.start_export(["lock/app:v1"], Trigger.HTTP)
        assert cold.service.list_runs(kind="export") == []
        # a warm worker that read the tenant before the firewall went up starts the run; the service fails it
        firewall(stack, demo_stack.SOURCE_ACCOUNT, "Allow")
        warm.service.start_export(["lock/app:v1"], Trigger.HTTP, "lockwarm")  # reads the tenant: open
        firewall(stack, demo_stack.SOURCE_ACCOUNT, "Deny")
        [run] = warm.service.start_export(["lock/app:v1"], Trigger.HTTP, "lockfailed").runs
        failed = finished(warm, run)
        assert failed.status is RunStatus.FAILED
        assert failed.error_cause == "StorageNetworkRestricted", failed.error
    finally:
        firewall(stack, demo_stack.SOURCE_ACCOUNT, "Allow")


def test_a_disabled_export_policy_refuses_the_pipelines_deployment_before_arm_is_written(
    stack: Stack,
) -> None:
    admin = stack.emulator.admin
    admin.create_registry(
        "lockedregistry",
        resource_group=demo_stack.SOURCE_GROUP,
        export_policy="disabled",
        public_network_access="Disabled",
    )
    locked = side(
        stack, "source", TRANSFER_REGISTRY="lockedregistry", TRANSFER_EXPORT_PIPELINE="lockedexport"
    )
    check = checks(locked)["exportPolicy"]
    assert not check.ok
    assert check.cause.code == "ExportPolicyDisabled"
    uri = stack.container_url(demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER)
    with pytest.raises(PipelineNotReady, match="ExportPolicyDisabled"):
        locked.service.deploy_pipeline("export", PipelineSpec(uri, "SasToken", "sourcevault", "pipelinesas"))
    with pytest.raises(NotFound, match="no deployment"):
        locked.service.deployment("transfer-export-pipeline-lockedexport")


def test_an_app_without_the_transfer_role_is_found_from_arms_permissions_api(stack: Stack) -> None:
    admin = stack.emulator.admin
    app = app_principal()
    source = side(stack, "source")
    subscription = f"/subscriptions/{stack.emulator.subscription_id}"
    admin.assign_role(app, "Reader", scope=subscription)
    admin.restrict_arm_access(app)
    try:
        check = checks(source)["exportAppRole"]
        assert not check.ok
        assert check.cause.code == "TransferRoleMissing"
        assert "pipelineRuns/write" in check.detail
        with pytest.raises(PipelineNotReady, match="TransferRoleMissing"):
            source.service.start_export(["lock/app:v1"], Trigger.HTTP)
        registry = source.settings.registry_id
        admin.assign_role(app, "Container Registry Transfer Pipeline Contributor", scope=registry)
        admin.assign_role(app, "Contributor", scope=registry.split("/providers/")[0])
        assert checks(side(stack, "source"))["exportAppRole"].ok
    finally:
        admin.restrict_arm_access(app, restricted=False)


def _deployed(s: scenario.Side, spec: PipelineSpec) -> None:
    name = s.service.deploy_pipeline("export", spec)
    state = wait_for(
        lambda: (
            s.service.deployment(name).provisioning_state in ("Succeeded", "Failed", "Canceled")
            and s.service.deployment(name)
        ),
        f"deployment {name}",
    )
    assert state.provisioning_state == "Succeeded", state.error


def test_the_rbac_vault_variant_deploys_and_its_pipeline_reads_the_secret(stack: Stack) -> None:
    """`pipelines deploy` finds the vault uses RBAC and lets the template grant Key Vault Secrets User;
    an access policy alone (the official templates' way) leaves the pipeline unable to read it."""
    admin = stack.emulator.admin
    admin.create_vault("rbacvault", resource_group=demo_stack.SOURCE_GROUP, rbac=True)
    sas = demo_stack._container_sas(stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, "racwl")
    admin.set_secret("rbacvault", "pipelinesas", sas)
    uri = stack.container_url(demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER)

    policy_only = side(stack, "source", TRANSFER_EXPORT_PIPELINE="policyexport")
    _deployed(
        policy_only,
        PipelineSpec(uri, "SasToken", "rbacvault", "pipelinesas", key_vault_access="AccessPolicy"),
    )
    check = checks(policy_only)["exportVaultAccess"]
    assert not check.ok
    assert check.cause.code == "KeyVaultRoleMissing"
    with pytest.raises(PipelineNotReady, match="KeyVaultRoleMissing"):
        policy_only.service.start_export(["lock/app:v1"], Trigger.HTTP)

    rbac = side(stack, "source", TRANSFER_EXPORT_PIPELINE="rbacexport")
    _deployed(rbac, PipelineSpec(uri, "SasToken", "rbacvault", "pipelinesas"))  # detected: RoleAssignment
    check = checks(rbac)["exportVaultAccess"]
    assert check.ok, check
    assert "Key Vault Secrets User" in check.detail
    [run] = rbac.service.start_export(["lock/app:v1"], Trigger.HTTP, "rbacvaultblob").runs
    done = finished(rbac, run)
    assert done.status is RunStatus.SUCCEEDED, done.error


def test_migrate_is_refused_while_a_run_is_active_then_moves_the_pipeline_to_managed_identity(
    stack: Stack,
) -> None:
    s = side(
        stack,
        "source",
        TRANSFER_EXPORT_PIPELINE="migrateexport",
        TRANSFER_COPY_TARGET_URL="",
        TRANSFER_COPY_TARGET_SAS_SECRET_URI="",
    )
    uri = stack.container_url(demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER)
    _deployed(s, PipelineSpec(uri, "SasToken", "sourcevault", "pipelinesas", ("OverwriteBlobs",)))
    [run] = s.service.start_export(["lock/app:v1"], Trigger.HTTP, "migratebefore").runs
    with pytest.raises(Conflict, match="active"):
        s.service.migrate_pipeline("export", "ManagedIdentity")
    assert s.service.pipeline("export").storage_access_mode == "SasToken"
    assert finished(s, run).status is RunStatus.SUCCEEDED

    done = s.service.migrate_pipeline("export", "ManagedIdentity")
    assert done.outcome == "migrated"
    assert done.deployment is not None
    state = wait_for(
        lambda: (
            s.service.deployment(done.deployment).provisioning_state in ("Succeeded", "Failed")
            and s.service.deployment(done.deployment)
        ),
        "the migration's deployment",
    )
    assert state.provisioning_state == "Succeeded", state.error
    pipeline = s.service.pipeline("export")
    assert (pipeline.name, pipeline.storage_access_mode) == ("migrateexport", "ManagedIdentity")
    assert pipeline.options == ("OverwriteBlobs",)
    assert checks(s)["exportStorageRole"].ok  # the template granted it: same group, the app may
    [after] = s.service.start_export(["lock/app:v1"], Trigger.HTTP, "migrateafter").runs
    assert finished(s, after).status is RunStatus.SUCCEEDED
    assert s.service.migrate_pipeline("export", "ManagedIdentity").outcome == "already"


def test_a_managed_identity_export_is_copied_from_a_user_delegation_sas_and_gets_its_manifest(
    stack: Stack,
) -> None:
    """Moving to ManagedIdentity loses nothing: the export pipeline's container is the storage front's
    (Entra ID), the app writes the manifest with its identity and copies the blob from a user delegation
    SAS it signs itself; no Key Vault secret is read for either."""
    admin = stack.emulator.admin
    app = app_principal()
    admin.assign_role(app, "Storage Blob Data Contributor", storage_account=demo_stack.SOURCE_ACCOUNT)
    exports = f"{stack.emulator.storage_url(demo_stack.SOURCE_ACCOUNT)}/{demo_stack.EXPORT_CONTAINER}"
    target = f"{stack.emulator.storage_url(demo_stack.TARGET_ACCOUNT)}/{demo_stack.TARGET_CONTAINER}"
    s = side(stack, "source", TRANSFER_EXPORT_PIPELINE="frontexport", TRANSFER_COPY_TARGET_URL=target)
    _deployed(s, PipelineSpec(exports, "ManagedIdentity", grant_storage_role=True))
    [run] = s.service.start_export(["lock/app:v1"], Trigger.HTTP, "frontblob").runs
    done = finished(s, run, copied=True)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.copy_status is not None
    assert done.copy_status.value == "success", done.copy_error
    assert done.blob is not None
    copied = blob_client(stack, demo_stack.TARGET_ACCOUNT, demo_stack.TARGET_CONTAINER, done.blob)
    assert copied.get_blob_properties().size > 0
    assert done.manifest
    manifest = blob_client(stack, demo_stack.SOURCE_ACCOUNT, demo_stack.EXPORT_CONTAINER, done.manifest)
    assert b"lock/app" in manifest.download_blob().readall()


def test_the_registrys_429_is_waited_out_when_it_fits_and_defers_the_export_when_it_does_not(
    stack: Stack,
) -> None:
    """The data plane's 429 carries a Retry-After counting down: selector expansion waits out a short one
    (the SDK's retry, capped) and refuses a long one at once with Throttled and its Retry-After, nothing
    recorded, instead of sleeping inside the invocation."""
    admin = stack.emulator.admin
    admin.add_repositories(demo_stack.SOURCE_REGISTRY, {"thr/api": {"v1": None}, "thr/web": {"v1": None}})
    source = side(stack, "source")
    try:
        admin.throttle_registry(demo_stack.SOURCE_REGISTRY, path="_tags", seconds=2)
        [run] = source.service.start_export(["thr/*:v1"], Trigger.HTTP).runs
        assert run.artifacts == ("thr/api:v1", "thr/web:v1")
        assert admin.registry_throttles(demo_stack.SOURCE_REGISTRY)["throttled"] >= 1
        admin.clear_registry_throttles(demo_stack.SOURCE_REGISTRY)

        admin.throttle_registry(demo_stack.SOURCE_REGISTRY, path="_tags", seconds=120)
        before = len(source.service.list_runs(kind="export", top=1000))
        started = time.monotonic()
        with pytest.raises(Throttled) as deferred:
            source.service.start_export(["thr/*:v1"], Trigger.HTTP)
        assert time.monotonic() - started < 10  # not slept inside the call
        assert deferred.value.retry_after is not None
        assert 60 < deferred.value.retry_after <= 120
        assert "429" in deferred.value.message
        assert len(source.service.list_runs(kind="export", top=1000)) == before
    finally:
        admin.clear_registry_throttles(demo_stack.SOURCE_REGISTRY)


@pytest.mark.parametrize("shape", ["null", "empty", "omitted"])
def test_null_identity_fields_and_an_empty_key_vault_uri_never_fail_health(stack: Stack, shape: str) -> None:
    """The troubleshooting guide's ManagedIdentity answers: a user-assigned identity's top-level principalId
    and tenantId null, keyVaultUri null or empty. Expected, not faults."""
    admin = stack.emulator.admin
    admin.configure(managed_identity_answer_shape=shape)
    try:
        s = side(stack, "source", TRANSFER_EXPORT_PIPELINE="frontexport")  # ManagedIdentity (test above)
        pipeline = s.service.pipeline("export")
        assert pipeline.storage_access_mode == "ManagedIdentity"
        failing = {c.name: c.detail for c in s.service.health() if not c.ok and c.name.startswith("export")}
        assert failing == {}, failing
    finally:
        admin.configure(managed_identity_answer_shape="omitted")
