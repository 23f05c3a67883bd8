"""Registry contract: FakeRegistry and AzureRegistry (on the emulator's data plane, through the real
ContainerRegistryClient and the managed identity) agree on what the service relies on: every repository
and tag comes back across pages, by name, each tag with its digest; an absent repository has no tags, an
absent tag no digest; a retag moves the digest; a 401 or 403 is an AccessDenied that names AcrPull."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes import FakeRegistry
from transfer.domain.errors import Throttled, TransferError
from transfer.domain.ports import Registry

CONTENT = {
    "team/api": ["v1.0", "v1.1", "v2.0"],
    "team/web": ["v1.0"],
    "samples/hello": ["v1", "v2", "latest"],
    "a": ["1"],
    "b/c/d": ["x"],
}
AUDIENCE = "https://containerregistry.azure.net"


@dataclass
class RegistryWorld:
    registry: Registry
    digests: Callable[[], dict[str, str]]  # artifact -> digest, as the registry holds them now
    retag: Callable[[str, str], str]  # (repository, tag) -> the new digest
    deny: Callable[[int], None]  # the app's identity lacks AcrPull: 401 or 403
    attach: Callable[[str, str, str], str]  # (repository, subject digest, artifact type) -> referrer digest
    admin: Any = None  # the emulator's admin client and registry name (emulator only)
    name: str = ""


@pytest.fixture(params=["fake", pytest.param("emulator", marks=[pytest.mark.emulator, pytest.mark.azurite])])
def registry_world(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> RegistryWorld:
    if request.param == "fake":
        fake = FakeRegistry(page_size=2)
        for repository, tags in CONTENT.items():
            for tag in tags:
                fake.retag(repository, tag)

        def fake_digests() -> dict[str, str]:
            return {f"{r}:{t}": d for r, tags in fake.content.items() for t, d in tags.items()}

        return RegistryWorld(fake, fake_digests, fake.retag, lambda status: fake.deny(status), fake.attach)

    from transfer.adapters.credentials import make_credential
    from transfer.adapters.registry import AzureRegistry
    from transfer.domain.settings import load_settings

    emulator = request.getfixturevalue("emulator_reset")
    for variable in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "MSI_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", emulator.identity_header)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_file)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    name = "reg" + uuid.uuid4().hex[:10]
    admin = emulator.admin
    admin.create_registry(name, {repo: dict.fromkeys(tags) for repo, tags in CONTENT.items()})
    settings = load_settings(
        {
            "AZURE_SUBSCRIPTION_ID": emulator.subscription_id,
            "TRANSFER_RESOURCE_GROUP": emulator.resource_group,
            "TRANSFER_REGISTRY": name,
            "TRANSFER_EXPORT_PIPELINE": "exportpipeline",
            "TransferState": "UseDevelopmentStorage=true",
            "TRANSFER_REGISTRY_ENDPOINT": emulator.registry_endpoint(name),
        }
    )
    registry = AzureRegistry(
        settings.registry_endpoint,
        make_credential(settings),
        audience=settings.cloud.registry_audience,
        page_size=2,
    )

    def emulator_digests() -> dict[str, str]:
        content = admin.registry_content(name)
        return {f"{r}:{t}": d for r, body in content.items() for t, d in body["tags"].items()}

    def emulator_retag(repository: str, tag: str) -> str:
        return str(admin.retag(name, repository, tag)["digest"])

    def emulator_deny(status: int) -> None:
        admin.set_pull_access(name, False, status=status)

    def emulator_attach(repository: str, subject: str, artifact_type: str) -> str:
        return str(admin.attach_referrer(name, repository, subject, artifact_type)["digest"])

    return RegistryWorld(
        registry, emulator_digests, emulator_retag, emulator_deny, emulator_attach, admin, name
    )


def test_every_repository_comes_back_across_pages_by_name(registry_world: RegistryWorld) -> None:
    assert sorted(registry_world.registry.repositories()) == sorted(CONTENT)


def test_every_tag_comes_back_with_its_digest(registry_world: RegistryWorld) -> None:
    registry, digests = registry_world.registry, registry_world.digests()
    tags = list(registry.tags("team/api"))
    assert sorted(t.name for t in tags) == ["v1.0", "v1.1", "v2.0"]
    assert {f"team/api:{t.name}": t.digest for t in tags} == {
        a: d for a, d in digests.items() if a.startswith("team/api:")
    }
    assert all(t.digest.startswith("sha256:") and len(t.digest) == 71 for t in tags)
    assert [t.name for t in registry.tags("b/c/d")] == ["x"]


def test_absent_repositories_have_no_tags_and_absent_tags_no_digest(registry_world: RegistryWorld) -> None:
    registry, digests = registry_world.registry, registry_world.digests()
    assert list(registry.tags("no/such-repo")) == []
    assert registry.digest("no/such-repo", "v1") is None
    assert registry.digest("team/api", "v9") is None
    assert registry.digest("team/api", "v1.1") == digests["team/api:v1.1"]


def test_a_retag_moves_the_digest(registry_world: RegistryWorld) -> None:
    registry = registry_world.registry
    before = registry.digest("team/api", "v1.1")
    after = registry_world.retag("team/api", "v1.1")
    assert after != before
    assert registry.digest("team/api", "v1.1") == after
    assert {t.name: t.digest for t in registry.tags("team/api")}["v1.1"] == after


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_names_the_role_the_identity_lacks(registry_world: RegistryWorld, status: int) -> None:
    registry_world.deny(status)
    for call in (
        lambda: list(registry_world.registry.repositories()),
        lambda: list(registry_world.registry.tags("team/api")),
        lambda: registry_world.registry.digest("team/api", "v1.0"),
        lambda: registry_world.registry.referrers("team/api", "sha256:" + "0" * 64),
    ):
        with pytest.raises(TransferError) as caught:
            call()
        assert caught.value.code == "AccessDenied"
        assert "AcrPull" in caught.value.message
        assert str(status) in caught.value.message


SIG = "application/vnd.cncf.notary.signature"
SBOM = "application/spdx+json"


def supply_chain(world: RegistryWorld) -> tuple[str, str, str, str]:
    image = world.digests()["team/api:v1.0"]
    signature = world.attach("team/api", image, SIG)
    sbom = world.attach("team/api", image, SBOM)
    return image, signature, sbom, world.attach("team/api", sbom, SIG)


def test_an_images_referrers_are_listed_with_their_artifact_type(registry_world: RegistryWorld) -> None:
    image, signature, sbom, sbom_signature = supply_chain(registry_world)
    registry = registry_world.registry
    assert {(d.digest, d.artifact_type) for d in registry.referrers("team/api", image)} == {
        (signature, SIG),
        (sbom, SBOM),
    }
    assert [(d.digest, d.artifact_type) for d in registry.referrers("team/api", sbom)] == [
        (sbom_signature, SIG)
    ]
    assert registry.referrers("team/api", "sha256:" + "0" * 64) == []
    assert registry.referrers("team/api", registry_world.digests()["team/api:v2.0"]) == []


@pytest.mark.emulator
@pytest.mark.azurite
def test_referrers_come_back_across_pages_and_from_the_fallback_tag_without_the_api(
    registry_world: RegistryWorld,
) -> None:
    if registry_world.admin is None:
        pytest.skip("the emulator's registry only")
    image, signature, sbom, _ = supply_chain(registry_world)
    admin, name, registry = registry_world.admin, registry_world.name, registry_world.registry
    admin.set_referrers_api(name, True, page_size=1)
    assert {d.digest for d in registry.referrers("team/api", image)} == {signature, sbom}
    admin.set_referrers_api(name, False)
    assert {(d.digest, d.artifact_type) for d in registry.referrers("team/api", image)} == {
        (signature, SIG),
        (sbom, SBOM),
    }
    late = registry_world.attach("team/api", image, SIG)  # kept in the fallback tag as a client keeps it
    assert late in {d.digest for d in registry.referrers("team/api", image)}
    assert registry.referrers("team/api", registry_world.digests()["team/api:v2.0"]) == []


@pytest.mark.emulator
@pytest.mark.azurite
def test_a_listreferrers_429_is_throttled_with_its_retry_after_not_retried(
    registry_world: RegistryWorld,
) -> None:
    if registry_world.admin is None:
        pytest.skip("the emulator's registry only")
    image = registry_world.digests()["team/api:v1.0"]
    admin, name = registry_world.admin, registry_world.name
    admin.set_referrer_limits(name, per_identity=1, window_seconds=30)
    registry_world.registry.referrers("team/api", image)
    with pytest.raises(Throttled) as caught:
        registry_world.registry.referrers("team/api", image)
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 30
    assert admin.registry_throttles(name)["throttled"] == 1  # one request: the adapter does not retry


def test_a_manifest_is_read_by_digest_and_an_unknown_digest_has_none(registry_world: RegistryWorld) -> None:
    image = registry_world.digests()["team/api:v1.0"]
    document = registry_world.registry.manifest("team/api", image)
    assert document is not None
    assert isinstance(document.get("layers"), list)
    assert all(isinstance(layer.get("size"), int) for layer in document["layers"])
    assert registry_world.registry.manifest("team/api", "sha256:" + "0" * 64) is None


@pytest.mark.emulator
@pytest.mark.azurite
def test_the_preflight_reads_declared_sizes_foreign_layers_and_index_platforms(
    registry_world: RegistryWorld,
) -> None:
    from transfer.domain.preflight import LAYER_LIMIT, facts

    if registry_world.admin is None:
        pytest.skip("the emulator's registry only")
    admin, name, registry = registry_world.admin, registry_world.name, registry_world.registry
    big = admin.add_image(name, "team/big", "v1", [1024, LAYER_LIMIT + 1])["digest"]
    assert facts(registry.manifest("team/big", big) or {}).oversized[0][1] == LAYER_LIMIT + 1
    index = admin.add_index(
        name, "team/multi", "v1", platforms=[{"os": "linux", "architecture": "amd64", "layerSizes": [10]}]
    )
    children = facts(registry.manifest("team/multi", index["digest"]) or {}).children
    assert children == tuple(m["digest"] for m in index["manifests"])
