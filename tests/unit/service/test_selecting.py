"""Exports by selector and incremental exports (service/selecting.py, exports.py, the ledger written by
reconcile), on the fakes: expansion through the registry, paging, the cap, selectors matching nothing,
the ledger written only after success, and concurrent runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import ENV, World, make_world
from transfer.domain.errors import InvalidInput, TransferError
from transfer.domain.runs import Run, RunStatus, Trigger

TEAM = {
    "team/api": ["v1.0", "v1.1", "v2.0"],
    "team/web": ["v1.0", "v3"],
    "team/tools/cli": ["v1.0"],
    "other/x": ["v1.0"],
}


def seeded(page_size: int = 100, **env: str) -> World:
    world = make_world({**ENV, **env})
    world.registry.page_size = page_size
    for repository, tags in TEAM.items():
        for tag in tags:
            world.registry.retag(repository, tag)
    return world


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return seeded


def digest_of(world: World, artifact: str) -> str:
    repository, _, tag = artifact.rpartition(":")
    return world.registry.content[repository][tag]


def succeed(world: World, *runs: Run) -> None:
    for run in runs:
        world.finish(run)
    world.service.reconcile()


def test_a_selector_expands_by_repository_then_tag_with_its_digests(world: World) -> None:
    [run] = world.service.start_export(["team/*:v1.*"], Trigger.HTTP).runs
    expected = ("team/api:v1.0", "team/api:v1.1", "team/web:v1.0")
    assert run.artifacts == expected
    assert run.digests == tuple((a, digest_of(world, a)) for a in expected)
    assert world.arm.deployment_calls[0].parameters["artifacts"] == list(expected)
    assert world.stored_run(run.id).digests == run.digests


def test_exact_references_pass_through_beside_selectors_and_cost_one_digest_and_one_manifest_read() -> None:
    world = seeded(TRANSFER_EXPORT_REFERRERS="none")
    [run] = world.service.start_export(
        ["samples/hello:v1", "team/tools/**:*", "team/web:v3"], Trigger.HTTP
    ).runs
    assert run.artifacts == ("samples/hello:v1", "team/tools/cli:v1.0", "team/web:v3")
    assert [a for a, _ in run.digests] == ["team/tools/cli:v1.0", "team/web:v3"]  # samples/hello is absent
    assert world.registry.calls["digest"] == 2
    world.registry.calls.clear()
    world.service.start_export(["team/web:v3"], Trigger.HTTP)
    # the tag's digest, then its manifest for the pre-flight: no catalog, no tag listing
    assert dict(world.registry.calls) == {"digest": 1, "manifest": 1}


def test_a_repository_pattern_without_wildcards_lists_no_catalog(world: World) -> None:
    [run] = world.service.start_export(["team/api:*"], Trigger.HTTP).runs
    assert run.artifacts == ("team/api:v1.0", "team/api:v1.1", "team/api:v2.0")
    assert world.registry.calls["repositories"] == 0


def test_expansion_pages_through_the_catalog_and_the_tags() -> None:
    world = seeded(page_size=2)
    for n in range(7):
        world.registry.retag("many", f"t{n}")
    [run] = world.service.start_export(["*:*", "team/**:*"], Trigger.HTTP).runs
    assert len(run.artifacts) == 7 + 6  # "*" stays within one path component: only "many" has one
    assert run.artifacts[:7] == tuple(f"many:t{n}" for n in range(7))
    assert world.registry.pages_listed >= 3 + 4  # catalog of 5 in pages of 2, tags of "many" in 4


def test_more_than_fifty_matches_become_runs_of_fifty() -> None:
    world = seeded()
    for n in range(60):
        world.registry.retag("bulk/svc", f"v{n:02d}")
    accepted = world.service.start_export(["bulk/svc:*"], Trigger.HTTP)
    assert [len(r.artifacts) for r in accepted.runs] == [50, 10]
    assert all(len(r.digests) == len(r.artifacts) for r in accepted.runs)


def test_matches_beyond_the_cap_refuse_the_request_before_anything_is_written() -> None:
    world = seeded(TRANSFER_EXPORT_MAX_ARTIFACTS="3")
    with pytest.raises(InvalidInput) as caught:
        world.service.start_export(["samples/hello:v1", "team/**:*"], Trigger.HTTP)
    assert caught.value.target == "artifacts"
    assert "TRANSFER_EXPORT_MAX_ARTIFACTS" in caught.value.message
    assert world.stored_runs() == []
    assert world.arm.deployment_calls == []
    assert world.registry.calls["tags"] == 2  # team/api (3), team/tools/cli (the 4th): the listing stops
    # exact references do not count against it
    assert (
        len(world.service.start_export(["team/api:*", "a:1", "b:2", "c:3"], Trigger.HTTP).runs[0].artifacts)
        == 6
    )


def test_a_selector_matching_nothing_is_refused_naming_it(world: World) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.service.start_export(["team/api:v1.0", "team/*:v9.*"], Trigger.HTTP)
    assert caught.value.target == "artifacts[1]"
    assert "matches no tag" in caught.value.message
    with pytest.raises(InvalidInput, match="matches no tag"):
        world.service.start_export(["nothing/here:*"], Trigger.CLI)
    assert world.stored_runs() == []


def test_the_schedule_reports_a_selector_matching_nothing_and_exports_the_rest() -> None:
    world = seeded(TRANSFER_EXPORT_ARTIFACTS="team/*:v9.*, team/web:v3")
    accepted = world.service.start_scheduled_export({"Last": "a", "Next": "b"})
    assert accepted is not None
    assert accepted.unmatched == ("team/*:v9.*",)
    assert [r.artifacts for r in accepted.runs] == [("team/web:v3",)]


def test_a_registry_refusing_the_identity_names_acrpull_and_writes_nothing(world: World) -> None:
    world.registry.deny(403)
    with pytest.raises(TransferError) as caught:
        world.service.start_export(["team/*:v1.*"], Trigger.HTTP)
    assert caught.value.code == "AccessDenied"
    assert "AcrPull" in caught.value.message
    assert world.stored_runs() == []
    # exact references still export as before, incremental or not
    assert world.service.start_export(["team/api:v1.0"], Trigger.HTTP, incremental=True).runs


def test_incremental_leaves_out_what_a_succeeded_run_exported(world: World) -> None:
    [first] = world.service.start_export(["team/*:v1.*"], Trigger.HTTP, incremental=True).runs
    # not succeeded yet: the ledger is empty, so everything is exported again
    [again] = world.service.start_export(["team/*:v1.*"], Trigger.HTTP, incremental=True).runs
    assert again.artifacts == first.artifacts
    assert world.state.ledger == {}
    succeed(world, first)
    assert {(r, ref): e.digest for (r, ref), e in world.state.ledger.items()} == {
        ("team/api", "v1.0"): digest_of(world, "team/api:v1.0"),
        ("team/api", "v1.1"): digest_of(world, "team/api:v1.1"),
        ("team/web", "v1.0"): digest_of(world, "team/web:v1.0"),
    }
    nothing = world.service.start_export(["team/*:v1.*"], Trigger.HTTP, incremental=True)
    assert nothing.runs == []
    assert nothing.skipped == first.artifacts
    assert nothing.incremental
    world.registry.retag("team/api", "v1.1")
    [changed] = world.service.start_export(["team/*:v1.*"], Trigger.HTTP, incremental=True).runs
    assert changed.artifacts == ("team/api:v1.1",)
    assert changed.digests == (("team/api:v1.1", digest_of(world, "team/api:v1.1")),)
    # not incremental: everything, whatever the ledger says
    assert len(world.service.start_export(["team/*:v1.*"], Trigger.HTTP).runs[0].artifacts) == 3


def test_the_ledger_is_read_once_per_selector_prefix_and_once_per_other_repository(world: World) -> None:
    asked = ["team/**:v1.*", "team/*:v1.0", "other/x:v1.0", "team/api:v1.1"]
    [first] = world.service.start_export(asked, Trigger.HTTP, incremental=True).runs
    succeed(world, first)
    world.state.calls.clear()
    nothing = world.service.start_export(asked, Trigger.HTTP, incremental=True)
    assert (nothing.runs, nothing.skipped) == ([], first.artifacts)
    # "team/" covers every team repository (both selectors, and team/api given exactly); other/x alone
    assert (world.state.calls["exported_under"], world.state.calls["exported"]) == (1, 1)


def test_a_failed_run_is_exported_again(world: World) -> None:
    [first] = world.service.start_export(["team/api:*"], Trigger.HTTP, incremental=True).runs
    world.finish(first, "Failed", error="the storage said no")
    world.service.reconcile()
    assert world.stored_run(first.id).status is RunStatus.FAILED
    assert world.state.ledger == {}
    [again] = world.service.start_export(["team/api:*"], Trigger.HTTP, incremental=True).runs
    assert again.artifacts == first.artifacts


def test_exact_references_are_compared_by_the_digest_the_registry_shows(world: World) -> None:
    [first] = world.service.start_export(
        ["team/api:v1.0", "team/web:v3"], Trigger.HTTP, incremental=True
    ).runs
    assert dict(first.digests) == {a: digest_of(world, a) for a in ("team/api:v1.0", "team/web:v3")}
    succeed(world, first)
    world.registry.retag("team/web", "v3")
    [second] = world.service.start_export(
        ["team/api:v1.0", "team/web:v3"], Trigger.HTTP, incremental=True
    ).runs
    assert second.artifacts == ("team/web:v3",)
    missing = world.service.start_export(["team/api:v1.0", "ghost:v1"], Trigger.HTTP, incremental=True)
    assert [r.artifacts for r in missing.runs] == [("ghost:v1",)]  # unknown to the registry: exported, fails


def test_concurrent_runs_keep_the_latest_reading_of_a_tag(world: World) -> None:
    [older] = world.service.start_export(["team/api:v1.1"], Trigger.HTTP, incremental=True).runs
    world.clock.advance(minutes=1)
    new_digest = world.registry.retag("team/api", "v1.1")
    [newer] = world.service.start_export(
        ["team/api:v1.1", "team/web:v3"], Trigger.HTTP, incremental=True
    ).runs
    succeed(world, newer)
    succeed(world, older)  # the run that read first finishes last: it must not write its old digest back
    assert world.state.ledger[("team/api", "v1.1")].digest == new_digest
    assert world.state.ledger[("team/web", "v3")].run_id == newer.id
    assert (
        world.service.start_export(["team/api:v1.1", "team/web:v3"], Trigger.HTTP, incremental=True).runs
        == []
    )


def test_the_schedule_is_incremental_by_default_and_starts_nothing_when_nothing_changed() -> None:
    world = seeded(TRANSFER_EXPORT_ARTIFACTS="team/*:v1.*")
    first = world.service.start_scheduled_export({"Last": "d1", "Next": "d2"})
    assert first is not None
    assert first.incremental
    succeed(world, *first.runs)
    second = world.service.start_scheduled_export({"Last": "d2", "Next": "d3"})
    assert second is not None
    assert (second.runs, len(second.skipped)) == ([], 3)
    world.registry.retag("team/web", "v1.0")
    third = world.service.start_scheduled_export({"Last": "d3", "Next": "d4"})
    assert third is not None
    assert [r.artifacts for r in third.runs] == [("team/web:v1.0",)]
    off = seeded(TRANSFER_EXPORT_ARTIFACTS="team/*:v1.*", TRANSFER_EXPORT_INCREMENTAL="false")
    assert not off.service.start_scheduled_export({"Last": "d1", "Next": "d2"}).incremental  # type: ignore[union-attr]


def test_a_repeated_request_answers_its_first_runs_without_reading_the_registry_again(world: World) -> None:
    first = world.service.start_export(["team/*:v1.*"], Trigger.HTTP, idempotency_key="k1", incremental=True)
    world.registry.calls.clear()
    world.registry.retag("team/api", "v1.0")
    again = world.service.start_export(["team/*:v1.*"], Trigger.HTTP, idempotency_key="k1", incremental=True)
    assert again.repeated
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert sum(world.registry.calls.values()) == 0
    with pytest.raises(TransferError, match="already used"):  # incremental is part of the request
        world.service.start_export(["team/*:v1.*"], Trigger.HTTP, idempotency_key="k1")


def test_a_repeat_after_a_worker_died_between_claim_and_record_fills_the_claimed_runs(world: World) -> None:
    world.state.fail("add_run", RuntimeError("worker died"))
    with pytest.raises(RuntimeError):
        world.service.start_export(["team/*:*"], Trigger.HTTP, idempotency_key="k2")
    again = world.service.start_export(["team/*:*"], Trigger.HTTP, idempotency_key="k2")
    assert again.repeated
    [run] = again.runs
    assert len(run.artifacts) == len(run.digests) == 5


def test_incremental_must_be_a_boolean(world: World) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.service.start_export(["team/*:*"], Trigger.HTTP, incremental="yes")
    assert caught.value.target == "incremental"
