"""The known failure causes of the official troubleshooting guide, each as the run reports it: Key Vault 403,
storage 403 in SasToken mode (expiry, keys rotated, HTTPS only, resource types, services, permissions),
storage 403 in ManagedIdentity mode (role assignments, listable as ARM lists them), missing blob or
container, and what ContinueOnErrors keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.rest import HttpRequest
from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas, generate_blob_sas

from emulator import azurite
from emulator.admin import AdminError
from emulator.testing import RunningEmulator
from emulator.tests.helpers import (
    blob_service,
    container_sas,
    grant_blob_data,
    resources_client,
    run_response,
    state,
)
from emulator.tests.test_transfer import (
    DIGEST,
    SAS_SECRET,
    export_pipeline,
    export_run,
    import_pipeline,
    import_run,
    output,
    run_id,
)

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

OTHER_KEY = "A" * 86 + "=="  # a key the account does not have (as after a key rotation)
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcd635"


@pytest.fixture
def source(emulator_reset: RunningEmulator) -> dict[str, Any]:
    emulator_reset.admin.create_registry(
        "sourceregistry", {"samples/hello": {"v1": None, "latest": None}, "samples/nginx": {"v2": DIGEST}}
    )
    emulator_reset.admin.create_registry("targetregistry", {})
    service = blob_service(emulator_reset)
    container = "causes" + datetime.now(UTC).strftime("%H%M%S%f")
    service.create_container(container)
    return {
        "emulator": emulator_reset,
        "container": container,
        "url": f"{service.url.rstrip('/')}/{container}",
    }


def account_sas(
    resource_types: str = "sco", services: str = "b", permission: str = "rwdlac", protocol: str = "https"
) -> str:
    return generate_account_sas(
        azurite.ACCOUNT,
        azurite.ACCOUNT_KEY,
        ResourceTypes.from_string(resource_types),
        AccountSasPermissions.from_string(permission),
        datetime.now(UTC) + timedelta(days=1),
        services=services,
        protocol=protocol,
    )


def message_of(emulator: RunningEmulator, deployment: Any) -> str:
    assert state(deployment) == "Failed"
    return str(run_response(emulator, run_id(deployment))["pipelineRunErrorMessage"])


def sas_export(source: dict[str, Any], sas: str, blob: str = "sasblob") -> Any:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.create_vault("sourcevault", {SAS_SECRET: sas})
    exported = export_pipeline(
        emulator, "sourceregistry", source["url"], mode="SasToken", vault="sourcevault", secret=SAS_SECRET
    )
    return export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], blob
    )


@pytest.mark.parametrize(
    ("sas", "code", "cause"),
    [
        (lambda c: container_sas(c, account_key=OTHER_KEY), "AuthenticationFailed", "keys may have changed"),
        (lambda c: container_sas(c, protocol=None), "AuthorizationProtocolMismatch", "spr=https,http"),
        (lambda c: container_sas(c, protocol="https,http"), "AuthorizationProtocolMismatch", "HTTPS-only"),
        (lambda c: container_sas(c, permission="rwl"), "AuthorizationPermissionMismatch", "add (sp=rwl)"),
        (lambda c: container_sas(c, permission="racl"), "AuthorizationPermissionMismatch", "write"),
        (lambda c: account_sas(resource_types="co"), "AuthorizationResourceTypeMismatch", "srt=sco"),
        (lambda c: account_sas(services="q"), "AuthorizationServiceMismatch", "ss=q"),
        (
            lambda c: generate_blob_sas(
                azurite.ACCOUNT,
                c,
                "sasblob",
                account_key=azurite.ACCOUNT_KEY,
                permission="racwdl",
                expiry=datetime.now(UTC) + timedelta(days=1),
                protocol="https",
            ),
            "AuthorizationResourceTypeMismatch",
            "sr=b",
        ),
        (lambda c: "se=2030-01-01&sp=rwla&spr=https", "AuthenticationFailed", "does not hold a SAS token"),
    ],
)
def test_sas_token_rules_fail_the_run_with_storage_s_403(
    source: dict[str, Any], sas: Any, code: str, cause: str
) -> None:
    emulator: RunningEmulator = source["emulator"]
    message = message_of(emulator, sas_export(source, sas(source["container"])))
    assert f"storage account '{azurite.ACCOUNT}' answered 403 {code}: " in message
    assert cause in message
    assert "Key Vault secret '" in message
    assert "sig=" not in message
    assert not blob_service(emulator).get_blob_client(source["container"], "sasblob").exists()


def test_expired_sas_by_the_emulator_clock(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    sas = container_sas(source["container"], expires_in=timedelta(days=1))
    emulator.admin.advance_clock(days=2)
    message = message_of(emulator, sas_export(source, sas))
    assert "answered 403 AuthenticationFailed: Server failed to authenticate the request." in message
    assert "Signature not valid in the specified time frame: the SAS token expired at" in message


def test_good_sas_tokens_export_and_import(source: dict[str, Any]) -> None:
    """Export needs rwla, import rl (+d with DeleteSourceBlobOnSuccess); an account SAS needs srt=sco."""
    emulator: RunningEmulator = source["emulator"]
    run = sas_export(source, container_sas(source["container"], permission="rwla"), "goodblob")
    assert state(run) == "Succeeded", run_response(emulator, run_id(run))
    emulator.admin.create_vault("targetvault", {"importsas": account_sas(permission="rl")})
    imported = import_pipeline(
        emulator, "targetregistry", source["url"], mode="SasToken", vault="targetvault",
        secret="importsas",  # noqa: S106 - a secret's name
        trigger="Disabled",
    )  # fmt: skip
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "goodblob")
    assert state(run) == "Succeeded", run_response(emulator, run_id(run))

    deleting = import_pipeline(
        emulator, "targetregistry", source["url"], mode="SasToken", vault="targetvault",
        secret="importsas",  # noqa: S106 - a secret's name
        trigger="Disabled", options=["DeleteSourceBlobOnSuccess", "OverwriteTags"],
    )  # fmt: skip
    run = import_run(emulator, "targetregistry", output(deleting, "pipelineResourceId"), "goodblob")
    message = message_of(emulator, run)
    assert "403 AuthorizationPermissionMismatch" in message
    assert "lacks the permission(s) delete (sp=rl)" in message
    assert blob_service(emulator).get_blob_client(source["container"], "goodblob").exists()


def test_key_vault_403_in_the_vault_s_words(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.create_vault("sourcevault", {SAS_SECRET: container_sas(source["container"])})
    exported = export_pipeline(
        emulator, "sourceregistry", source["url"], mode="SasToken", vault="sourcevault", secret=SAS_SECRET,
        access="None",
    )  # fmt: skip
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "kv"
    )
    message = message_of(emulator, run)
    principal = output(exported, "principalId")
    assert "403 Forbidden (AccessDenied): The user, group or application 'appid=" in message
    assert (
        f";oid={principal};iss=https://sts.windows.net/{emulator.tenant_id}/' does not have secrets get"
        in message
    )
    assert "permission on key vault 'sourcevault;location=eastus'" in message

    emulator.admin.create_vault("rbacvault", {SAS_SECRET: container_sas(source["container"])}, rbac=True)
    exported = export_pipeline(
        emulator, "sourceregistry", source["url"], mode="SasToken", vault="rbacvault", secret=SAS_SECRET,
        access="None",
    )  # fmt: skip
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "kv2"
    )
    message = message_of(emulator, run)
    assert (
        "403 Forbidden (ForbiddenByRbac): Caller is not authorized to perform action on resource." in message
    )
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'" in message


def test_managed_identity_needs_a_blob_data_role_on_the_account(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"], grant=False)
    pipeline, principal = output(exported, "pipelineResourceId"), output(exported, "principalId")
    run = export_run(emulator, "sourceregistry", pipeline, ["samples/hello"], "mi1")
    message = message_of(emulator, run)
    assert message.startswith(
        f"Access to container '{source['container']}' with the pipeline's managed identity failed: storage "
        f"account '{azurite.ACCOUNT}' answered 403 AuthorizationPermissionMismatch: This request is not "
        "authorized to perform this operation using this permission."
    )
    assert f"(principal id {principal}) has no Storage Blob Data Contributor role assignment" in message

    subscription = f"/subscriptions/{emulator.subscription_id}"
    for role in (OWNER, CONTRIBUTOR):  # no data actions: storage refuses them too
        emulator.admin.assign_role(principal, role, scope=subscription)
    assert state(export_run(emulator, "sourceregistry", pipeline, ["samples/hello"], "mi2")) == "Failed"

    emulator.admin.assign_role(
        principal,
        "Storage Blob Data Contributor",
        scope=f"{subscription}/resourceGroups/{emulator.resource_group}",
    )  # at the resource group: inherited by the account
    run = export_run(emulator, "sourceregistry", pipeline, ["samples/hello"], "mi3")
    assert state(run) == "Succeeded"

    other = export_pipeline(emulator, "sourceregistry", source["url"], grant=False, identity=_uai(emulator))
    emulator.admin.configure(enforce_storage_roles=False)  # the old leniency, for callers that need it
    run = export_run(
        emulator, "sourceregistry", output(other, "pipelineResourceId"), ["samples/hello"], "mi4"
    )
    assert state(run) == "Succeeded"


def _uai(emulator: RunningEmulator) -> str:
    return str(emulator.admin.create_identity("transferidentity")["id"])


def test_storage_accounts_registered_in_their_group_are_the_scope(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    account = emulator.admin.register_storage_account(azurite.ACCOUNT, resource_group="storage-rg")
    assert account["id"].endswith(
        "/resourceGroups/storage-rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
    )
    found = resources_client(emulator).resources.get_by_id(account["id"], api_version="2023-05-01")
    assert found.name == azurite.ACCOUNT
    imported = import_pipeline(emulator, "targetregistry", source["url"], grant=False, trigger="Disabled")
    principal = output(imported, "principalId")
    grant_blob_data(emulator, principal)  # in the emulator's default group: not the account's scope
    blob_service(emulator).get_blob_client(source["container"], "x").upload_blob(b"{}")
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "x")
    assert "no Storage Blob Data Contributor role assignment" in message_of(emulator, run)
    emulator.admin.assign_role(principal, storage_account=azurite.ACCOUNT)
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "x")
    assert "not a transfer blob" in message_of(emulator, run)  # storage access granted: the blob is read
    with pytest.raises(AdminError):
        emulator.admin.register_storage_account("Not_Valid")


def test_role_assignments_are_listed_as_arm_lists_them(emulator_reset: RunningEmulator) -> None:
    client = resources_client(emulator_reset)
    subscription = f"/subscriptions/{emulator_reset.subscription_id}"
    group = f"{subscription}/resourceGroups/{emulator_reset.resource_group}"
    account = f"{group}/providers/Microsoft.Storage/storageAccounts/acct"
    alice, bob = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    emulator_reset.admin.assign_role(alice, "Storage Blob Data Contributor", scope=account)
    emulator_reset.admin.assign_role(bob, "Reader", scope=group)
    emulator_reset.admin.assign_role(bob, "Storage Blob Data Owner", scope=f"{account}/blobServices/default")

    def listed(scope: str, query: str = "") -> list[tuple[str, str, str]]:
        path = f"{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01{query}"
        response = client.send_request(HttpRequest("GET", path))
        response.raise_for_status()
        return sorted(
            (
                a["properties"]["principalId"],
                a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1],
                a["properties"]["scope"],
            )
            for a in response.json()["value"]
        )

    everything = listed(subscription)
    assert len(everything) == 3
    assert listed(subscription, f"&$filter=principalId eq '{alice}'") == [
        (alice, "ba92f5b4-2d11-453d-a403-e96b0029c9fe", account)
    ]
    assert [p for p, _, _ in listed(account)] == sorted([alice, bob, bob])  # at, above and below the account
    assert sorted(s for _, _, s in listed(account, "&$filter=atScope()")) == sorted([account, group])
    assert listed(account, f"&$filter=atScope() and assignedTo('{bob}')") == [
        (bob, "acdd72a7-3385-48ef-bd42-f606fba81ae7", group)
    ]
    one = client.send_request(
        HttpRequest(
            "GET", f"{subscription}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"
        )
    ).json()["value"][0]
    assert set(one) == {"id", "name", "type", "properties"}
    assert one["type"] == "Microsoft.Authorization/roleAssignments"
    assert {"roleDefinitionId", "principalId", "scope"} <= set(one["properties"])
    assert client.resources.get_by_id(one["id"], api_version="2022-04-01").name == one["name"]


def test_role_assignment_rules(emulator_reset: RunningEmulator) -> None:
    client = resources_client(emulator_reset)
    scope = f"/subscriptions/{emulator_reset.subscription_id}/resourceGroups/{emulator_reset.resource_group}"
    principal = "33333333-3333-4333-8333-333333333333"
    body = {"properties": {"roleDefinitionId": CONTRIBUTOR, "principalId": principal}}
    cases = [
        ("not-a-guid", body, 400, "InvalidRoleAssignmentId"),
        (
            "44444444-4444-4444-8444-444444444444",
            {"properties": {"principalId": principal}},
            400,
            "InvalidRoleDefinitionId",
        ),
        (
            "44444444-4444-4444-8444-444444444444",
            {"properties": {"roleDefinitionId": CONTRIBUTOR}},
            400,
            "InvalidPrincipalId",
        ),
    ]
    for name, payload, status, code in cases:
        response = client.send_request(
            HttpRequest(
                "PUT",
                f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01",
                json=payload,
            )
        )
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    first = f"{scope}/providers/Microsoft.Authorization/roleAssignments/55555555-5555-4555-8555-555555555555"
    created = client.resources.begin_create_or_update_by_id(
        first, api_version="2022-04-01", parameters=body
    ).result()
    assert created.properties["scope"] == scope
    assert created.properties["roleDefinitionId"].endswith(f"/roleDefinitions/{CONTRIBUTOR}")
    second = first.replace("55555555-5555-4555-8555-555555555555", "66666666-6666-4666-8666-666666666666")
    response = client.send_request(HttpRequest("PUT", f"{second}?api-version=2022-04-01", json=body))
    assert (response.status_code, response.json()["error"]["code"]) == (409, "RoleAssignmentExists")


def test_missing_blob_and_container_in_storage_s_words(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    imported = import_pipeline(emulator, "targetregistry", source["url"], trigger="Disabled")
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "nosuchblob")
    assert message_of(emulator, run) == (
        f"Reading blob 'nosuchblob' from container '{source['container']}' failed: storage account "
        f"'{azurite.ACCOUNT}' answered 404 BlobNotFound: The specified blob does not exist."
    )
    gone = source["url"].rsplit("/", 1)[0] + "/nocontainerhere"
    exported = export_pipeline(emulator, "sourceregistry", gone)
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "b"
    )
    assert message_of(emulator, run) == (
        "Writing blob 'b' to container 'nocontainerhere' failed: storage account "
        f"'{azurite.ACCOUNT}' answered 404 ContainerNotFound: The specified container does not exist."
    )
    blob_service(emulator).get_blob_client(source["container"], "taken").upload_blob(b"x")
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    run = export_run(
        emulator, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/hello"], "taken"
    )
    assert message_of(emulator, run) == (
        f"Writing blob 'taken' to container '{source['container']}' failed: storage account "
        f"'{azurite.ACCOUNT}' answered 409 BlobAlreadyExists: The specified blob already exists. The export "
        "pipeline does not have the 'OverwriteBlobs' option."
    )


def test_continue_on_errors_keeps_the_message_and_lists_only_what_was_imported(
    source: dict[str, Any],
) -> None:
    emulator: RunningEmulator = source["emulator"]
    emulator.admin.add_repositories("targetregistry", {"samples/nginx": {"v2": "sha256:" + "cd" * 32}})
    exported = export_pipeline(emulator, "sourceregistry", source["url"], options=["ContinueOnErrors"])
    run = export_run(
        emulator,
        "sourceregistry",
        output(exported, "pipelineResourceId"),
        ["samples/hello:v1", "samples/hello:nope", "samples/nginx:v2"],
        "partial",
    )
    assert state(run) == "Succeeded"
    response = run_response(emulator, run_id(run))
    assert response["status"] == "Succeeded"
    assert "samples/hello:nope" in response["pipelineRunErrorMessage"]
    assert "MANIFEST_UNKNOWN" in response["pipelineRunErrorMessage"]

    imported = import_pipeline(
        emulator, "targetregistry", source["url"], trigger="Disabled", options=["ContinueOnErrors"]
    )
    run = import_run(emulator, "targetregistry", output(imported, "pipelineResourceId"), "partial")
    assert state(run) == "Succeeded"
    response = run_response(emulator, run_id(run))
    assert response["importedArtifacts"] == ["samples/hello:v1"]  # nginx:v2 exists with another digest
    assert "samples/nginx:v2" in response["pipelineRunErrorMessage"]
    assert "OverwriteTags" in response["pipelineRunErrorMessage"]


def test_a_layer_over_8_gb_is_not_exported(source: dict[str, Any]) -> None:
    emulator: RunningEmulator = source["emulator"]
    big = emulator.admin.add_image("sourceregistry", "samples/big", "v1", [1024, 9_000_000_000])
    assert big["size"] > 9_000_000_000
    assert emulator.admin.registry_content("sourceregistry")["samples/big"]["tags"]["v1"] == big["digest"]
    exported = export_pipeline(emulator, "sourceregistry", source["url"])
    pipeline = output(exported, "pipelineResourceId")
    run = export_run(emulator, "sourceregistry", pipeline, ["samples/big:v1", "samples/hello:v1"], "big")
    message = message_of(emulator, run)
    assert message.startswith("Failed to export artifact 'samples/big:v1': its layer 'sha256:")
    assert "is 9000000000 bytes; ACR Transfer supports artifacts with layer sizes up to 8 GB" in message
    tolerant = export_pipeline(emulator, "sourceregistry", source["url"], options=["ContinueOnErrors"])
    run = export_run(
        emulator,
        "sourceregistry",
        output(tolerant, "pipelineResourceId"),
        ["samples/big:v1", "samples/hello:v1"],
        "big",
    )
    assert state(run) == "Succeeded"
    assert "8 GB" in run_response(emulator, run_id(run))["pipelineRunErrorMessage"]
    small = emulator.admin.add_image("sourceregistry", "samples/big", "v2", [8 * 1024**3])  # the limit itself
    run = export_run(emulator, "sourceregistry", pipeline, ["samples/big:v2"], "big2")
    assert state(run) == "Succeeded", small
    with pytest.raises(AdminError):
        emulator.admin.add_image("sourceregistry", "samples/big", "v3", [])
