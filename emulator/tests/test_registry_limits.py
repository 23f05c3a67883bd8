"""Data-plane throttling: a 429 injected on any route with a Retry-After that counts down (and the real SDK
honouring it), and the published ListReferrers limits per registry and per identity."""

from __future__ import annotations

import time

import pytest

from emulator.testing import RunningEmulator
from emulator.tests.registry_helpers import client, entra_jwt, get, referrers

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


@pytest.fixture
def registry(emulator_reset: RunningEmulator) -> RunningEmulator:
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["v1", "v2"]})
    return emulator_reset


def _tags(emulator: RunningEmulator) -> tuple[int, str | None]:
    answer = get(
        emulator, "sourceregistry", "/v2/samples/hello/tags/list", scope="repository:samples/hello:pull"
    )
    return answer.status_code, answer.headers.get("Retry-After")


def test_an_injected_429_counts_its_retry_after_down_to_the_end_of_the_window(
    registry: RunningEmulator,
) -> None:
    registry.admin.throttle_registry("sourceregistry", path="/tags/list$", seconds=3)
    first = get(
        registry, "sourceregistry", "/v2/samples/hello/tags/list", scope="repository:samples/hello:pull"
    )
    assert first.status_code == 429
    assert first.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert first.headers["Retry-After"] == "3"
    time.sleep(1.1)
    status, after = _tags(registry)
    assert status == 429
    assert after is not None
    assert 1 <= int(after) <= 2  # counting down, wherever the machine's time went
    time.sleep(int(after) + 0.1)  # a client that waits what it was told is served
    assert _tags(registry) == (200, None)
    # other routes were never throttled
    catalog = get(registry, "sourceregistry", "/v2/_catalog", scope="registry:catalog:*")
    assert catalog.status_code == 200
    assert registry.admin.registry_throttles("sourceregistry")["throttled"] == 2


def test_the_sdk_honours_retry_after_on_tags_and_manifests(registry: RunningEmulator) -> None:
    registry.admin.throttle_registry("sourceregistry", path="/_tags", method="GET", seconds=1, count=1)
    registry.admin.throttle_registry("sourceregistry", path="/manifests/", seconds=1, count=1)
    acr = client(registry, "sourceregistry")
    started = time.monotonic()
    assert sorted(t.name for t in acr.list_tag_properties("samples/hello")) == ["v1", "v2"]
    assert acr.get_manifest("samples/hello", "v1").manifest["schemaVersion"] == 2
    assert time.monotonic() - started >= 1.0  # it waited as told before retrying
    assert registry.admin.registry_throttles("sourceregistry")["throttled"] == 2


def test_list_referrers_limits_per_identity_and_per_registry(registry: RunningEmulator) -> None:
    limits = registry.admin.set_referrer_limits(
        "sourceregistry", per_identity=2, per_registry=3, window_seconds=30
    )
    assert limits == {"listReferrersPerRegistry": 3, "listReferrersPerIdentity": 2, "windowSeconds": 30.0}
    image = registry.admin.registry_content("sourceregistry")["samples/hello"]["tags"]["v1"]
    alice, bob = entra_jwt("alice-oid"), entra_jwt("bob-oid")
    assert [referrers(registry, "sourceregistry", "samples/hello", image, entra=alice).status_code
            for _ in range(2)] == [200, 200]  # fmt: skip
    over = referrers(registry, "sourceregistry", "samples/hello", image, entra=alice)
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 30
    assert over.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    # another identity has its own allowance, until the registry's is spent
    assert referrers(registry, "sourceregistry", "samples/hello", image, entra=bob).status_code == 200
    assert referrers(registry, "sourceregistry", "samples/hello", image, entra=bob).status_code == 429
    # other routes are not ListReferrers
    assert _tags(registry) == (200, None)


def test_the_published_limits_are_the_default_and_can_be_turned_off(registry: RunningEmulator) -> None:
    assert registry.admin.registry_throttles("sourceregistry")["limits"] == {
        "listReferrersPerRegistry": 2000,
        "listReferrersPerIdentity": 1000,
        "windowSeconds": 60.0,
    }
    registry.admin.set_referrer_limits("sourceregistry", per_identity=1, per_registry=None)
    image = registry.admin.registry_content("sourceregistry")["samples/hello"]["tags"]["v1"]
    assert referrers(registry, "sourceregistry", "samples/hello", image).status_code == 200
    assert referrers(registry, "sourceregistry", "samples/hello", image).status_code == 429
    registry.admin.set_referrer_limits("sourceregistry", per_identity=None)
    assert referrers(registry, "sourceregistry", "samples/hello", image).status_code == 200
