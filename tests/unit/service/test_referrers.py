"""Referrers travel with their images (service/referrers.py, selecting.py, exports.py, the manifest and
the verification), on the fakes: discovery (recursion, filters, the ListReferrers limit and 429s within the
budget), the split, incremental pick-up of a late signature, the manifest's referrers and their links."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import ENV, World, make_world
from tests.fakes import FakeRegistry
from transfer.domain import manifests
from transfer.domain.errors import Throttled
from transfer.domain.referrers import Descriptor, ReferrerChoice
from transfer.domain.runs import Run, Trigger
from transfer.service.referrers import DiscoverReferrers

SIG = "application/vnd.cncf.notary.signature"
SBOM = "application/spdx+json"
CATEGORY = {"category": "acr-transfer-blob"}


def signed_world(**env: str) -> World:
    world = make_world({**ENV, **env})
    for tag in ("v1", "v2"):
        world.registry.retag("team/app", tag)
    return world


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return signed_world


def attach_supply_chain(world: World, tag: str = "v1") -> tuple[str, str, str]:
    """A signature and an SBOM of team/app:<tag>, and a signature of the SBOM."""
    image = world.registry.content["team/app"][tag]
    signature = world.registry.attach("team/app", image, SIG)
    sbom = world.registry.attach("team/app", image, SBOM)
    sbom_signature = world.registry.attach("team/app", sbom, SIG)
    return signature, sbom, sbom_signature


def exported(world: World, items: list[str], **kwargs: object) -> list[Run]:
    return world.service.start_export(items, Trigger.HTTP, **kwargs).runs  # type: ignore[arg-type]


def test_a_selector_exports_each_image_with_its_referrers_recursively_by_digest(world: World) -> None:
    signature, sbom, sbom_signature = attach_supply_chain(world)
    [run] = exported(world, ["team/app:v*"])
    assert run.artifacts == (
        "team/app:v1",
        f"team/app@{signature}",
        f"team/app@{sbom}",
        f"team/app@{sbom_signature}",
        "team/app:v2",
    )
    image = world.registry.content["team/app"]["v1"]
    assert run.referrers == (
        (f"team/app@{signature}", SIG, image),
        (f"team/app@{sbom}", SBOM, image),
        (f"team/app@{sbom_signature}", SIG, sbom),
    )
    assert world.stored_run(run.id).referrers == run.referrers
    assert world.arm.deployment_calls[0].parameters["artifacts"] == list(run.artifacts)


def test_an_exact_reference_brings_its_referrers_too(world: World) -> None:
    signature, _, _ = attach_supply_chain(world)
    [run] = exported(world, ["team/app:v1"])
    assert f"team/app@{signature}" in run.artifacts
    assert len(run.artifacts) == 4


def test_the_setting_chooses_which_referrers_travel() -> None:
    world = signed_world(TRANSFER_EXPORT_REFERRERS=SIG)
    signature, _, _ = attach_supply_chain(world)
    [run] = exported(world, ["team/app:v1"])
    assert run.artifacts == ("team/app:v1", f"team/app@{signature}")  # the SBOM's signature stays with it
    world = signed_world(TRANSFER_EXPORT_REFERRERS="none")
    attach_supply_chain(world)
    [run] = exported(world, ["team/app:v1"])
    assert run.artifacts == ("team/app:v1",)
    assert world.registry.calls["referrers"] == 0


def test_referrers_count_toward_the_split_and_stay_with_their_image(world: World) -> None:
    for index in range(20):
        tag = f"t{index:02}"
        image = world.registry.retag("team/many", tag)
        world.registry.attach("team/many", image, SIG)
        world.registry.attach("team/many", image, SBOM)
    runs = exported(world, ["team/many:*"])
    assert [len(run.artifacts) for run in runs] == [48, 12]
    for run in runs:
        subjects = {digest for _, _, digest in run.referrers}
        images = {world.registry.content["team/many"][a.split(":")[1]] for a in run.artifacts if ":t" in a}
        assert subjects == images


def test_an_incremental_export_sends_a_signature_added_after_its_image_was_exported(world: World) -> None:
    attach_supply_chain(world)
    [first] = exported(world, ["team/app:v1"], incremental=True)
    world.finish(first)
    world.service.reconcile()
    assert exported(world, ["team/app:v1"], incremental=True) == []  # nothing new
    image = world.registry.content["team/app"]["v1"]
    late = world.registry.attach("team/app", image, SIG, "added later")
    [second] = exported(world, ["team/app:v1"], incremental=True)
    assert second.artifacts == (f"team/app@{late}",)
    assert second.referrers == ((f"team/app@{late}", SIG, image),)


def test_the_manifest_lists_every_referrer_with_its_type_and_subject(world: World) -> None:
    signature, sbom, sbom_signature = attach_supply_chain(world)
    [run] = exported(world, ["team/app:v1"])
    world.finish(run)
    world.service.reconcile()
    stored = world.stored_run(run.id)
    assert stored.manifest is not None
    data = world.source.read_blob(stored.manifest, manifests.MAX_BYTES)
    assert data is not None
    manifest = manifests.parse(data)
    image = world.registry.content["team/app"]["v1"]
    assert [(r.digest, r.artifact_type, r.subject) for r in manifest.referrers] == [
        (signature, SIG, image),
        (sbom, SBOM, image),
        (sbom_signature, SIG, sbom),
    ]


def _import_with_referrers(world: World, linked: bool) -> Run:
    image = world.registry.content["team/app"]["v1"]
    signature = "sha256:" + "5" * 64
    manifest = manifests.build(
        run_id="20261126110000000e000001",
        pipeline_run_id=None,
        source_registry="source.azurecr.io",
        exported_at=world.clock(),
        blob="signed",
        artifacts=["team/app:v1", f"team/app@{signature}"],
        digests={"team/app:v1": image},
        referrers=[(f"team/app@{signature}", SIG, image)],
    )
    world.put_blob("signed", metadata=CATEGORY)
    world.blobs.put("signed.manifest.json", content=manifest.encode())
    if linked:
        world.registry.attached[("team/app", image)] = [Descriptor(signature, SIG)]
    [run] = world.service.start_import("signed", Trigger.HTTP).runs
    world.arm.finish_run(
        run.id, "Succeeded", imported_artifacts=manifest_artifacts(manifest), deployment=run.deployment_name
    )
    world.service.reconcile()
    return world.stored_run(run.id)


def manifest_artifacts(manifest: manifests.Manifest) -> tuple[str, ...]:
    return tuple(a.artifact for a in manifest.artifacts)


def test_verification_passes_when_each_referrer_is_linked_to_its_subject_on_the_target(world: World) -> None:
    run = _import_with_referrers(world, linked=True)
    assert run.verification == "passed"
    assert "1 referrer linked to its subject" in (run.verification_detail or "")


def test_a_referrer_the_target_does_not_list_under_its_subject_fails_verification(world: World) -> None:
    run = _import_with_referrers(world, linked=False)
    assert run.verification == "failed"
    assert "referrers not linked to their subject" in (run.verification_detail or "")


# ---- discovery's limits ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def discovery(registry: FakeRegistry, clock: Clock, **kwargs: float) -> DiscoverReferrers:
    return DiscoverReferrers(ReferrerChoice(None), registry, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


def test_a_429_is_waited_out_by_its_retry_after_within_the_budget() -> None:
    registry, clock = FakeRegistry({"a": {"v1": "sha256:" + "1" * 64}}), Clock()
    registry.attach("a", "sha256:" + "1" * 64, SIG)
    registry.fail("referrers", Throttled("registry: throttled (429)", retry_after=7), times=2)
    found = discovery(registry, clock)([("a:v1", "sha256:" + "1" * 64)])
    assert clock.slept == [7, 7]
    assert found.calls == 4
    assert len(found.found["a:v1"]) == 1


def test_past_the_budget_discovery_stops_and_names_the_images_it_did_not_look_at() -> None:
    registry, clock = FakeRegistry(), Clock()
    registry.attach("a", "sha256:" + "1" * 64, SIG)
    registry.fail("referrers", Throttled("registry: throttled (429)", retry_after=90), times=2)
    subjects = [("a:v1", "sha256:" + "1" * 64), ("a:v2", "sha256:" + "2" * 64)]
    found = discovery(registry, clock, budget=60)(subjects)
    assert found.unchecked == ["a:v1", "a:v2"]
    assert found.found == {}
    assert "throttled" in (found.stopped or "")
    assert clock.slept == []  # a Retry-After beyond the budget is not waited


def test_discovery_keeps_under_the_listreferrers_limit_a_minute() -> None:
    registry, clock = FakeRegistry(), Clock()
    subjects = [(f"a:t{i}", "sha256:" + f"{i:064x}") for i in range(5)]
    found = discovery(registry, clock, per_minute=2, budget=300)(subjects)
    assert found.calls == 5
    assert clock.slept == [60.0, 60.0]
    cut = discovery(registry, Clock(), per_minute=2, budget=30)(subjects)
    assert cut.calls == 2
    assert cut.unchecked == ["a:t2", "a:t3", "a:t4"]


def test_an_export_whose_discovery_ran_out_of_budget_goes_on_and_the_next_incremental_one_catches_up() -> (
    None
):
    world = signed_world()
    signature, _, _ = attach_supply_chain(world)
    world.registry.fail("referrers", Throttled("registry: throttled (429)", retry_after=600))
    [first] = exported(world, ["team/app:v1"], incremental=True)
    assert first.artifacts == ("team/app:v1",)
    world.finish(first)
    world.service.reconcile()
    [second] = exported(world, ["team/app:v1"], incremental=True)
    assert f"team/app@{signature}" in second.artifacts
    assert "team/app:v1" not in second.artifacts


def test_an_unreachable_data_plane_leaves_exact_references_exported_as_given(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from transfer.domain.errors import Unavailable

    attach_supply_chain(world)
    world.registry.fail("digest", Unavailable("registry: the service could not be reached"), times=5)
    [run] = exported(world, ["team/app:v1"])
    assert run.artifacts == ("team/app:v1",)
    assert "exported without reading their digests" in caplog.text
