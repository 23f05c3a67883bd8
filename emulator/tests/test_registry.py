"""The registry data plane through the real `azure.containerregistry.ContainerRegistryClient` (1.2.0):
the token challenge and exchange, catalog, tags and manifests with digests, paging, manifests whose sha256
is their digest, AcrPull denials, retag, and digests kept across export + import."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential

from emulator.testing import RunningEmulator
from emulator.tests.helpers import new_container, run_response, state
from emulator.tests.registry_helpers import JwtCredential, client
from emulator.tests.test_transfer import (
    export_pipeline,
    export_run,
    import_pipeline,
    import_run,
    output,
    run_id,
)

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

GIVEN = "sha256:" + "cd" * 32


@pytest.fixture
def registry(emulator_reset: RunningEmulator) -> RunningEmulator:
    emulator_reset.admin.create_registry(
        "sourceregistry",
        {
            "samples/hello": {"v1": None, "v2": None, "latest": None},
            "samples/nginx": {"1.27": None, "@untagged": GIVEN},
            "base/alpine": ["3.20"],
        },
    )
    return emulator_reset


def test_endpoint_is_printed_and_served_per_registry(registry: RunningEmulator) -> None:
    registry.admin.create_registry("targetregistry", {})
    source = registry.registry_endpoint("sourceregistry")
    target = registry.registry_endpoint("targetregistry")
    assert source.startswith("https://127.0.0.1:")
    assert source != target
    settings = registry.settings()
    assert settings["EMULATOR_REGISTRY_SOURCEREGISTRY_ENDPOINT"] == source
    assert settings["EMULATOR_REGISTRY_TARGETREGISTRY_ENDPOINT"] == target
    assert registry.admin.registry_endpoint("sourceregistry") == source
    assert list(client(registry, "targetregistry").list_repository_names()) == []


def test_unauthenticated_request_gets_the_acr_challenge(registry: RunningEmulator) -> None:
    endpoint = registry.registry_endpoint("sourceregistry")
    host = endpoint.removeprefix("https://")
    answer = requests.get(f"{endpoint}/acr/v1/samples/hello/_tags", verify=registry.ca_file, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{host}/oauth2/token",service="{host}",'
        'scope="repository:samples/hello:metadata_read"'
    )
    error = answer.json()["errors"][0]
    assert error["code"] == "UNAUTHORIZED"
    assert error["detail"] == [{"Type": "repository", "Name": "samples/hello", "Action": "metadata_read"}]

    refresh = requests.post(
        f"{endpoint}/oauth2/exchange",
        data={"grant_type": "access_token", "service": host, "tenant": "t", "access_token": "entra"},
        verify=registry.ca_file,
        timeout=10,
    ).json()["refresh_token"]
    access = requests.post(
        f"{endpoint}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": host,
            "scope": "repository:samples/hello:metadata_read",
            "refresh_token": refresh,
        },
        verify=registry.ca_file,
        timeout=10,
    ).json()["access_token"]
    answer = requests.get(
        f"{endpoint}/acr/v1/samples/hello/_tags",
        headers={"Authorization": f"Bearer {access}"},
        verify=registry.ca_file,
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["registry"] == "sourceregistry.azurecr.io"
    # a token for one repository does not open another
    other = requests.get(
        f"{endpoint}/acr/v1/samples/nginx/_tags",
        headers={"Authorization": f"Bearer {access}"},
        verify=registry.ca_file,
        timeout=10,
    )
    assert other.status_code == 401


def test_catalog_tags_and_manifests_with_default_azure_credential(
    registry: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    content = registry.admin.registry_content("sourceregistry")
    with registry.managed_identity_env():
        acr = client(registry, "sourceregistry", DefaultAzureCredential())
        assert list(acr.list_repository_names()) == ["base/alpine", "samples/hello", "samples/nginx"]

        tags = {t.name: t for t in acr.list_tag_properties("samples/hello")}
        assert sorted(tags) == ["latest", "v1", "v2"]
        for name, tag in tags.items():
            assert tag.digest == content["samples/hello"]["tags"][name]
            assert tag.last_updated_on is not None
            assert tag.created_on is not None
            assert tag.can_read

        manifests = {m.digest: m for m in acr.list_manifest_properties("samples/nginx")}
        assert set(manifests) == set(content["samples/nginx"]["manifests"])
        tagged = content["samples/nginx"]["tags"]["1.27"]
        assert manifests[tagged].tags == ["1.27"]
        assert manifests[GIVEN].tags == []
        assert manifests[tagged].size_in_bytes > 0
        assert manifests[tagged].architecture == "amd64"
        assert manifests[tagged].operating_system == "linux"

        repository = acr.get_repository_properties("samples/hello")
        assert (repository.tag_count, repository.manifest_count) == (3, 3)


def test_manifest_properties_by_tag_and_by_digest_and_the_manifest_itself(registry: RunningEmulator) -> None:
    acr = client(registry, "sourceregistry")
    by_tag = acr.get_manifest_properties("samples/hello", "v1")
    by_digest = acr.get_manifest_properties("samples/hello", by_tag.digest)
    assert (
        by_tag.digest
        == by_digest.digest
        == registry.admin.registry_content("sourceregistry")["samples/hello"]["tags"]["v1"]
    )
    assert by_digest.tags == ["v1"]
    assert acr.get_tag_properties("samples/hello", "v2").digest != by_tag.digest

    manifest = acr.get_manifest("samples/hello", "v1")  # the SDK checks sha256(body) == the digest
    assert manifest.digest == by_tag.digest
    assert manifest.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert manifest.manifest["schemaVersion"] == 2
    assert manifest.manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert len(manifest.manifest["layers"]) == 1
    sizes = [manifest.manifest["config"]["size"], manifest.manifest["layers"][0]["size"]]
    assert by_tag.size_in_bytes == sum(sizes)
    assert acr.get_manifest("samples/hello", by_tag.digest).digest == by_tag.digest

    with pytest.raises(ResourceNotFoundError):
        acr.get_tag_properties("samples/hello", "nope")
    with pytest.raises(ResourceNotFoundError):
        acr.get_manifest_properties("samples/missing", "v1")
    with pytest.raises(ResourceNotFoundError):  # a digest given through the admin API has no document
        acr.get_manifest("samples/nginx", GIVEN)


def test_seeded_digests_are_stable_and_listed_by_the_admin_api(registry: RunningEmulator) -> None:
    digest = registry.admin.registry_content("sourceregistry")["samples/hello"]["tags"]["v1"]
    registry.admin.create_registry("otherregistry", {"samples/hello": {"v1": None}})
    assert registry.admin.registry_content("otherregistry")["samples/hello"]["tags"]["v1"] == digest
    listed = {(m["repository"], m["digest"]): m for m in registry.admin.registry_manifests("sourceregistry")}
    assert listed[("samples/hello", digest)]["tags"] == ["v1"]
    assert listed[("samples/hello", digest)]["document"] is True
    assert listed[("samples/nginx", GIVEN)]["document"] is False


def test_paging_over_two_thousand_tags(registry: RunningEmulator) -> None:
    tags = [f"t{i:04d}" for i in range(2000)]
    registry.admin.add_repositories("sourceregistry", {"big/repo": dict.fromkeys(tags)})
    acr = client(registry, "sourceregistry")
    pages = list(acr.list_tag_properties("big/repo", results_per_page=300).by_page())
    assert len(pages) == 7
    names = [t.name for page in pages for t in page]
    assert names == tags
    assert len({t.digest for t in acr.list_tag_properties("big/repo")}) == 2000  # default pages of 100
    assert len(list(acr.list_manifest_properties("big/repo", results_per_page=500))) == 2000

    newest = list(acr.list_tag_properties("big/repo", order_by="timedesc", results_per_page=700))
    assert len(newest) == 2000
    assert [t.last_updated_on for t in newest] == sorted((t.last_updated_on for t in newest), reverse=True)

    registry.admin.add_repositories("sourceregistry", {f"many/r{i:03d}": ["v1"] for i in range(250)})
    repositories = list(acr.list_repository_names(results_per_page=40))
    assert len(repositories) == 250 + 4
    assert repositories == sorted(repositories)


def test_link_header_of_a_page(registry: RunningEmulator) -> None:
    endpoint = registry.registry_endpoint("sourceregistry")
    host = endpoint.removeprefix("https://")
    token = _access_token(endpoint, host, "registry:catalog:*", registry.ca_file)
    answer = requests.get(
        f"{endpoint}/acr/v1/_catalog?n=2",
        headers={"Authorization": f"Bearer {token}"},
        verify=registry.ca_file,
        timeout=10,
    )
    assert answer.json() == {"repositories": ["base/alpine", "samples/hello"]}
    assert answer.headers["Link"] == '</acr/v1/_catalog?last=samples%2Fhello&n=2>; rel="next"'
    last = requests.get(
        f"{endpoint}/acr/v1/_catalog?last=samples%2Fhello&n=2",
        headers={"Authorization": f"Bearer {token}"},
        verify=registry.ca_file,
        timeout=10,
    )
    assert last.json() == {"repositories": ["samples/nginx"]}
    assert "Link" not in last.headers


def _access_token(endpoint: str, host: str, scope: str, ca_file: str) -> str:
    refresh = requests.post(
        f"{endpoint}/oauth2/exchange",
        data={"grant_type": "access_token", "service": host, "access_token": "entra"},
        verify=ca_file,
        timeout=10,
    ).json()["refresh_token"]
    return str(
        requests.post(
            f"{endpoint}/oauth2/token",
            data={"grant_type": "refresh_token", "service": host, "scope": scope, "refresh_token": refresh},
            verify=ca_file,
            timeout=10,
        ).json()["access_token"]
    )


def test_principal_without_acr_pull_gets_401_or_403(registry: RunningEmulator) -> None:
    allowed, denied = JwtCredential("11111111-aaaa"), JwtCredential("22222222-bbbb")
    registry.admin.set_pull_access("sourceregistry", False, principal="22222222-bbbb")
    assert len(list(client(registry, "sourceregistry", allowed).list_tag_properties("samples/hello"))) == 3
    with pytest.raises(ClientAuthenticationError) as raised:
        list(client(registry, "sourceregistry", denied).list_tag_properties("samples/hello"))
    assert raised.value.status_code == 401
    assert "UNAUTHORIZED" in str(raised.value)

    registry.admin.set_pull_access("sourceregistry", False, status=403)  # every caller
    with pytest.raises(HttpResponseError) as raised:
        client(registry, "sourceregistry").get_manifest_properties("samples/hello", "v1")
    assert raised.value.status_code == 403
    assert "DENIED" in str(raised.value)
    registry.admin.set_pull_access("sourceregistry", True)
    registry.admin.set_pull_access("sourceregistry", True, principal="22222222-bbbb")
    assert client(registry, "sourceregistry", denied).get_tag_properties("samples/hello", "v1").digest


def test_retag_changes_the_digest(registry: RunningEmulator) -> None:
    acr = client(registry, "sourceregistry")
    before = acr.get_tag_properties("samples/hello", "v1")
    moved = registry.admin.retag("sourceregistry", "samples/hello", "v1")
    assert moved["previousDigest"] == before.digest
    after = acr.get_tag_properties("samples/hello", "v1")
    assert after.digest == moved["digest"] != before.digest
    assert after.created_on == before.created_on
    assert after.last_updated_on > before.last_updated_on
    assert acr.get_manifest("samples/hello", "v1").digest == after.digest
    assert acr.get_manifest_properties("samples/hello", before.digest).tags == []  # the old image stays

    back = registry.admin.retag("sourceregistry", "samples/hello", "v1", digest=before.digest)
    assert back["digest"] == acr.get_tag_properties("samples/hello", "v1").digest == before.digest
    fresh = registry.admin.retag("sourceregistry", "samples/new", "v1")
    assert fresh["previousDigest"] is None
    assert acr.get_tag_properties("samples/new", "v1").digest == fresh["digest"]


@pytest.fixture
def transfer(registry: RunningEmulator) -> dict[str, Any]:
    registry.admin.create_registry("targetregistry", {})
    container, url = new_container(registry)
    exported = export_pipeline(registry, "sourceregistry", url)
    imported = import_pipeline(
        registry, "targetregistry", url, trigger="Disabled", options=["ContinueOnErrors"]
    )
    assert state(exported) == "Succeeded", exported.properties.error
    assert state(imported) == "Succeeded", imported.properties.error
    return {
        "export": output(exported, "pipelineResourceId"),
        "import": output(imported, "pipelineResourceId"),
        "container": container,
    }


def test_export_then_import_keeps_the_digests(registry: RunningEmulator, transfer: dict[str, Any]) -> None:
    registry.admin.retag("sourceregistry", "samples/hello", "v2")  # a rebuilt image: a fresh digest
    source = client(registry, "sourceregistry")
    untagged = source.get_manifest_properties("samples/hello", "latest").digest
    run = export_run(
        registry,
        "sourceregistry",
        transfer["export"],
        ["samples/hello:v1", "samples/hello:v2", f"samples/hello@{untagged}", "base/alpine:3.20"],
        "digests",
    )
    assert state(run) == "Succeeded", run.properties.error
    run = import_run(registry, "targetregistry", transfer["import"], "digests")
    assert state(run) == "Succeeded", run.properties.error

    target = client(registry, "targetregistry")
    assert list(target.list_repository_names()) == ["base/alpine", "samples/hello"]
    for repository, tag in (("samples/hello", "v1"), ("samples/hello", "v2"), ("base/alpine", "3.20")):
        expected = source.get_tag_properties(repository, tag).digest
        assert target.get_tag_properties(repository, tag).digest == expected
        assert target.get_manifest(repository, tag).digest == expected  # the same bytes
    assert {t.name for t in target.list_tag_properties("samples/hello")} == {"v1", "v2"}
    assert untagged in {m.digest for m in target.list_manifest_properties("samples/hello")}
    assert target.get_manifest_properties("samples/hello", untagged).tags == []


def test_import_skips_an_artifact_it_cannot_import(
    registry: RunningEmulator, transfer: dict[str, Any]
) -> None:
    run = export_run(
        registry, "sourceregistry", transfer["export"], ["samples/hello:v1", "samples/hello:v2"], "skipping"
    )
    assert state(run) == "Succeeded", run.properties.error
    registry.admin.fail_imports_of("targetregistry", ["samples/hello:v2"], "layer upload failed")
    run = import_run(registry, "targetregistry", transfer["import"], "skipping")
    assert state(run) == "Succeeded", run.properties.error
    response = run_response(registry, run_id(run))
    assert response["importedArtifacts"] == ["samples/hello:v1"]
    assert "samples/hello:v2" in response["pipelineRunErrorMessage"]
    assert "layer upload failed" in response["pipelineRunErrorMessage"]
    assert [t.name for t in client(registry, "targetregistry").list_tag_properties("samples/hello")] == ["v1"]

    registry.admin.clear_import_failures("targetregistry")
    run = import_run(registry, "targetregistry", transfer["import"], "skipping")
    imported = run_response(registry, run_id(run))["importedArtifacts"]
    assert imported == ["samples/hello:v1", "samples/hello:v2"]


def test_transfer_blob_carries_each_manifest(registry: RunningEmulator, transfer: dict[str, Any]) -> None:
    from emulator.tests.helpers import blob_service

    export_run(registry, "sourceregistry", transfer["export"], ["samples/hello:v1"], "carried")
    blob = blob_service(registry).get_blob_client(transfer["container"], "carried").download_blob().readall()
    (artifact,) = json.loads(blob)["artifacts"]
    assert artifact["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert "sha256:" + hashlib.sha256(artifact["manifest"].encode()).hexdigest() == artifact["digest"]
