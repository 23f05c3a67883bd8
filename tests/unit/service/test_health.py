"""Permissions checked before a run fails: a SasToken pipeline's SAS at the start of a run and in health,
a ManagedIdentity pipeline's storage role in health, and the pipeline API version the service advertises."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ENV, World, make_world
from tests.faults import instead
from transfer.domain.errors import AccessDenied, PipelineNotReady
from transfer.domain.runs import Trigger

VAULT = "https://vault.vault.azure.net/secrets/transfersas"
GOOD_EXPORT_SAS = "sv=2024-11-04&sr=c&sp=rwla&spr=https&se=2027-01-01T00:00:00Z&sig=SECRET"
PRINCIPAL = "11111111-2222-3333-4444-555555555555"
CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
ACCOUNT_SCOPE = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/storage-rg"
    "/providers/Microsoft.Storage/storageAccounts/importacct"
)


def sas_world(token: str, **import_storage: Any) -> World:
    storage = {"storageAccessMode": "SasToken", "keyVaultUri": VAULT}
    return make_world(
        ENV,
        export_storage=storage,
        import_storage={**storage, **import_storage},
        secrets={VAULT: token},
    )


def checks(world: World) -> dict[str, Any]:
    return {c.name: c for c in world.service.health()}


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (GOOD_EXPORT_SAS.replace("sp=rwla", "sp=rwl"), "lacks add"),
        (GOOD_EXPORT_SAS.replace("&spr=https", ""), "not HTTPS-only"),
        (GOOD_EXPORT_SAS + "&ss=b&srt=co", "lacks resource types s"),
        (GOOD_EXPORT_SAS.replace("2027-01-01", "2026-01-01"), "expired"),
    ],
)
def test_an_export_whose_sas_would_fail_is_refused_before_anything_is_recorded(
    token: str, fragment: str
) -> None:
    world = sas_world(token)
    with pytest.raises(PipelineNotReady) as refused:
        world.service.start_export(["samples/hello:v1"], Trigger.HTTP)
    assert fragment in refused.value.message
    assert "SECRET" not in refused.value.message
    assert world.stored_runs() == []
    assert world.arm.deployment_calls == []
    assert not checks(world)["exportSas"].ok
    assert fragment in checks(world)["exportSas"].detail


def test_an_import_with_delete_source_blob_needs_delete_in_its_sas() -> None:
    world = sas_world(GOOD_EXPORT_SAS.replace("sp=rwla", "sp=rl"))
    world.put_blob("in1")
    assert world.service.start_import("in1", Trigger.HTTP).runs  # read and list are enough
    world.arm.resources[world.settings.pipeline_id("import").lower()]["properties"]["options"] = [
        "DeleteSourceBlobOnSuccess"
    ]
    world.clock.advance(minutes=6)  # past the pipeline cache
    world.put_blob("in2")
    with pytest.raises(PipelineNotReady, match="lacks delete"):
        world.service.start_import("in2", Trigger.HTTP)


def test_a_good_sas_passes_health_with_its_expiry() -> None:
    world = sas_world(GOOD_EXPORT_SAS)
    assert checks(world)["exportSas"].ok
    assert "valid until 2027-01-01" in checks(world)["exportSas"].detail
    assert checks(world)["importSas"].ok  # an import needs read and list: the same SAS has both


def mi_world() -> World:
    world = make_world()
    pipeline = world.arm.resources[world.settings.pipeline_id("import").lower()]
    pipeline["identity"] = {"type": "systemAssigned", "principalId": PRINCIPAL}
    return world


def test_health_says_whether_a_managed_identity_pipeline_holds_its_storage_role() -> None:
    world = mi_world()
    missing = checks(world)["importStorageRole"]
    assert not missing.ok
    assert PRINCIPAL in missing.detail
    assert "Storage Blob Data Contributor" in missing.detail
    assert "importacct" in missing.detail
    world.arm.assign_role(PRINCIPAL, CONTRIBUTOR, ACCOUNT_SCOPE)
    held = checks(world)["importStorageRole"]
    assert held.ok
    assert "holds Storage Blob Data Contributor at the account scope" in held.detail


def test_a_role_on_another_account_does_not_count_and_a_group_scope_is_taken_on_trust() -> None:
    world = mi_world()
    world.arm.assign_role(PRINCIPAL, CONTRIBUTOR, ACCOUNT_SCOPE.replace("importacct", "otheracct"))
    assert not checks(world)["importStorageRole"].ok
    world.arm.assign_role(PRINCIPAL, CONTRIBUTOR, ACCOUNT_SCOPE.split("/providers/")[0])
    assert "resource group scope" in checks(world)["importStorageRole"].detail


def test_role_assignments_the_app_cannot_read_are_said_plainly() -> None:

    world = mi_world()
    world.arm.fail("role_assignments", AccessDenied("ARM: not authorized (403)"))
    check = checks(world)["importStorageRole"]
    assert check.ok
    assert "cannot read the role assignments" in check.detail
    assert "check by hand" in check.detail


def test_health_compares_the_configured_api_version_with_the_advertised_ones() -> None:
    world = make_world()
    assert checks(world)["exportApiVersion"].ok
    world.arm.api_versions = ("2026-01-01-preview", "2026-03-01-preview")
    check = checks(world)["exportApiVersion"]
    assert not check.ok
    assert "TRANSFER_PIPELINE_API_VERSION 2025-06-01-preview" in check.detail
    assert "2026-03-01-preview" in check.detail


def test_over_http_a_start_the_sas_would_fail_is_a_422_naming_the_missing_part() -> None:
    import json

    import azure.functions as func

    import function_app
    from transfer import bootstrap

    world = sas_world(GOOD_EXPORT_SAS.replace("sp=rwla", "sp=rla"))
    request = func.HttpRequest(
        "POST",
        "https://app.azurewebsites.net/api/exports",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"artifacts": ["samples/hello:v1"]}).encode(),
    )
    with bootstrap.use_service(world.service):
        response = function_app.start_export(request)
    body = json.loads(response.get_body())
    assert response.status_code == 422
    assert body["error"]["code"] == "PipelineNotReady"
    assert "lacks write" in body["error"]["message"]
    assert body["error"]["target"] == "exportPipeline"
    assert world.stored_runs() == []


def test_health_runs_its_checks_at_once_so_a_dependency_down_is_waited_out_once() -> None:
    """Each probe that needs ARM meets the others at a barrier: run one after the other, none would pass
    it (a slow ARM would cost its retries once per check)."""
    import threading

    from transfer.domain.errors import Unavailable

    world = make_world()
    meeting = threading.Barrier(3, timeout=10)  # the two pipeline reads and the deployments count

    def unreachable(*_: Any, **__: Any) -> Any:
        meeting.wait()
        raise Unavailable("ARM: the service could not be reached (ServiceRequestError)")

    world.arm.around("get_resource", instead(unreachable))
    world.arm.around("count_deployments", instead(unreachable))
    found = world.service.health()
    names = [c.name for c in found]
    assert names[:2] == ["settings", "state"]
    assert names[-1] == "deployments"
    assert names.index("exportPipeline") < names.index("importPipeline") < names.index("watchedContainer")
    failing = {c.name: c.detail for c in found if not c.ok}
    assert set(failing) == {"exportPipeline", "importPipeline", "deployments"}, failing
    assert all("could not be reached" in detail for detail in failing.values())


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ("sv=2024-11-04&sr=c&sp=rwla&spr=https&se=2027-01-01T00:00:00Z", "no sig="),
        (
            "DefaultEndpointsProtocol=https;AccountName=exportacct;AccountKey=c2VjcmV0a2V5;"
            "EndpointSuffix=core.windows.net",
            "connection string",
        ),
    ],
)
def test_a_secret_health_reports_as_not_a_sas_is_refused_at_start_with_no_arm_call(
    secret: str, fragment: str
) -> None:
    """It answered 202 and deployed; the run failed in ARM, explained as StorageSasExpired."""
    world = sas_world(secret)
    assert not checks(world)["exportSas"].ok
    assert fragment in checks(world)["exportSas"].detail
    arm_calls = len(world.arm.history)
    with pytest.raises(PipelineNotReady) as refused:
        world.service.start_export(["samples/hello:v1"], Trigger.HTTP)
    assert fragment in refused.value.message
    assert refused.value.target == "exportPipeline"
    assert "c2VjcmV0a2V5" not in refused.value.message
    assert world.stored_runs() == []
    assert [c for c in world.arm.history[arm_calls:] if c[0] in ("begin_deployment", "put_resource")] == []
    assert world.arm.deployment_calls == []
    world.put_blob("in1")
    with pytest.raises(PipelineNotReady, match="not a SAS"):
        world.service.start_import("in1", Trigger.HTTP)


COPY_SECRET = "https://copyvault.vault.azure.net/secrets/copysas"


@pytest.mark.parametrize(
    ("secret", "ok", "fragment"),
    [
        ("sv=2024-11-04&sr=c&sp=rw&spr=https&se=2027-01-01T00:00:00Z&sig=SECRET", True, "valid until"),
        ("sv=2024-11-04&sr=c&sp=r&spr=https&se=2027-01-01T00:00:00Z&sig=SECRET", False, "lacks write"),
        ("sv=2024-11-04&sr=c&sp=rw&spr=https&se=2027-01-01T00:00:00Z", False, "no sig="),
    ],
)
def test_the_copy_targets_secret_is_checked_in_health_like_the_pipelines(
    secret: str, ok: bool, fragment: str
) -> None:
    env = {
        **ENV,
        "TRANSFER_COPY_TARGET_URL": "https://target.blob.core.windows.net/transfer",
        "TRANSFER_COPY_TARGET_SAS_SECRET_URI": COPY_SECRET,
    }
    world = make_world(env, secrets={COPY_SECRET: secret})
    check = checks(world)["copySas"]  # health had no such check
    assert check.ok is ok
    assert fragment in check.detail
    assert "SECRET" not in check.detail
