"""Export on push: the registry's ImagePushed events recorded before they are acknowledged, gathered for
the window into runs of at most 50, exactly once under redelivery, racing workers and a crash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import COPY_ENV, World, make_world
from tests.unit.service.test_referrers import SBOM, SIG
from transfer.domain.errors import Unavailable
from transfer.domain.runs import RunKind, RunStatus, Trigger

PUSH_ENV = {
    **COPY_ENV,
    "TRANSFER_COPY_TARGET_URL": "",
    "TRANSFER_EXPORT_ARTIFACTS": "team/*:v1.*,samples/nginx:1.27",
    "TRANSFER_EXPORT_ON_PUSH": "true",
    "TRANSFER_PUSH_WINDOW_SECONDS": "60",
}


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return lambda: make_world(PUSH_ENV)


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def pushed(
    repository: str, tag: str | None, at: str = "a", *, kind: str = "ImagePushed", of: str | None = None
) -> dict[str, Any]:
    """An event as ACR sends it (Event Grid schema); `of` is the pushed digest when the registry holds it."""
    target: dict[str, Any] = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 524,
        "digest": of or digest(f"{repository}:{tag}:{at}"),
        "length": 524,
        "repository": repository,
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": f"evt-{repository}-{tag}-{at}",
        "eventType": f"Microsoft.ContainerRegistry.{kind}",
        "subject": f"{repository}:{tag}",
        "data": {"id": "x", "timestamp": "2026-11-26T12:00:00Z", "action": "push", "target": target},
    }


def export_runs(world: World) -> list[Any]:
    return [run for run in world.stored_runs() if run.kind is RunKind.EXPORT]


def test_a_matching_push_is_recorded_at_once_and_exported_when_the_window_has_passed(world: World) -> None:
    report = world.service.record_pushes([pushed("team/api", "v1.2")])
    assert report.counts == {"recorded": 1}
    assert [p.artifact for p in world.state.pending_pushes()] == ["team/api:v1.2"]
    assert world.service.start_push_exports() == []  # the window is still open
    world.clock.advance(seconds=60)
    [run] = world.service.start_push_exports()
    assert (run.trigger, run.status, run.artifacts) == (Trigger.PUSH, RunStatus.DEPLOYING, ("team/api:v1.2",))
    assert run.digests == (("team/api:v1.2", digest("team/api:v1.2:a")),)
    assert run.blob == f"push-{run.id}"
    assert world.deployments_started() == [run.deployment_name]
    assert world.state.pending_pushes() == []


def test_other_event_types_untagged_pushes_and_unselected_repositories_start_nothing(world: World) -> None:
    report = world.service.record_pushes(
        [
            pushed("team/api", "v1.2", kind="ImageDeleted"),
            pushed("team/api", None),
            pushed("other/repo", "v1.0"),
            pushed("team/api", "v2.0"),  # the tag pattern is v1.*
            {"eventType": "Microsoft.ContainerRegistry.ImagePushed", "data": "not an object"},
            pushed("Team/API", "v1.0"),  # not a valid repository name
        ]
    )
    assert report.counts == {"ignored": 4, "unselected": 2}
    assert any("without a tag" in reason for reason in report.reasons)
    world.clock.advance(minutes=5)
    assert world.service.start_push_exports() == []
    assert world.deployments_started() == []


def test_a_redelivered_event_and_the_same_digest_under_another_event_start_one_export(world: World) -> None:
    event = pushed("samples/nginx", "1.27")
    again = {**event, "id": "another-event-id"}
    assert world.service.record_pushes([event, event]).counts == {"recorded": 1, "repeated": 1}
    assert world.service.record_pushes([again]).counts == {"repeated": 1}
    world.clock.advance(seconds=61)
    [run] = world.service.start_push_exports()
    world.service.record_pushes([event])  # delivered again after the run started
    world.clock.advance(seconds=61)
    assert world.service.start_push_exports() == []
    assert run.artifacts == ("samples/nginx:1.27",)
    assert len(world.deployments_started()) == 1


def test_a_burst_becomes_runs_of_at_most_50_artifacts(world: World) -> None:
    world.service.record_pushes([pushed("team/api", f"v1.{i}") for i in range(120)])
    world.clock.advance(seconds=30)
    world.service.record_pushes([pushed("team/web", "v1.0")])  # within the window of the first
    world.clock.advance(seconds=30)
    runs = world.service.start_push_exports()
    assert [len(run.artifacts) for run in runs] == [50, 50]  # the last 21: pushes came 30 s ago
    world.clock.advance(seconds=29)
    assert world.service.start_push_exports() == []
    world.clock.advance(seconds=1)  # a window without a push: the partial run starts
    runs += world.service.start_push_exports()
    assert [len(run.artifacts) for run in runs] == [50, 50, 21]
    assert len({a for run in runs for a in run.artifacts}) == 121
    assert len(world.deployments_started()) == 3  # ceil(121 / 50)


def test_a_partial_run_held_while_pushes_trickle_in_starts_after_two_windows(world: World) -> None:
    started: dict[int, list[Any]] = {}
    for i in range(4):  # one push every 40 s: never a quiet window
        world.service.record_pushes([pushed("team/api", f"v1.{i}")])
        started[40 * i] = world.service.start_push_exports()
        world.clock.advance(seconds=40)
    assert started[0] == started[40] == started[80] == []  # due at 60 s, held at 80 s: pushes still come
    [run] = started[120]  # two windows after the first push
    assert len(run.artifacts) == 4


def test_a_tag_pushed_twice_within_the_window_is_exported_once_at_its_newest_digest(world: World) -> None:
    world.service.record_pushes([pushed("team/api", "v1.0", "old")])
    world.clock.advance(seconds=10)
    world.service.record_pushes([pushed("team/api", "v1.0", "new")])
    world.clock.advance(seconds=60)
    [run] = world.service.start_push_exports()
    assert run.digests == (("team/api:v1.0", digest("team/api:v1.0:new")),)
    assert world.state.pending_pushes() == []


def test_two_workers_starting_the_same_pushes_start_one_export(world: World) -> None:
    world.service.record_pushes([pushed("team/api", f"v1.{i}") for i in range(3)])
    world.clock.advance(seconds=60)
    other = world.new_worker()
    taken: list[str] = []

    def the_other_worker_first(take: Callable[..., bool], *args: Any) -> bool:
        if not taken:  # the other worker takes the pushes between this worker's read and its take
            taken.append("other")
            other.start_push_exports()
        return take(*args)

    world.state.around("take_pushes", the_other_worker_first)
    assert world.service.start_push_exports() == []
    [run] = export_runs(world)
    assert len(run.artifacts) == 3
    assert len(world.deployments_started()) == 1


def test_a_worker_dying_between_taking_and_recording_loses_nothing(world: World) -> None:
    world.service.record_pushes([pushed("team/api", "v1.0"), pushed("team/web", "v1.0")])
    world.clock.advance(seconds=60)
    world.state.fail("add_run", Unavailable("the worker died here"))
    with pytest.raises(Unavailable):
        world.service.start_push_exports()
    [taken_by] = {p.run_id for p in world.state.pending_pushes()}
    assert taken_by is not None
    assert export_runs(world) == []
    world.service.start_push_exports()  # too early: the dead worker's starter may be alive
    assert export_runs(world) == []
    world.clock.advance(minutes=2, seconds=1)
    world.service.reconcile()  # reconcile's own tick does not start pushes; the timers call start first
    [run] = world.service.start_push_exports()
    assert run.id == taken_by
    assert run.artifacts == ("team/api:v1.0", "team/web:v1.0")
    assert world.state.pending_pushes() == []


def test_a_push_is_not_acknowledged_unless_recorded(world: World) -> None:
    world.state.fail("record_push", Unavailable("tables down"))
    with pytest.raises(Unavailable):  # the function raises: Event Grid delivers the event again
        world.service.record_pushes([pushed("team/api", "v1.0")])
    assert world.service.record_pushes([pushed("team/api", "v1.0")]).counts == {"recorded": 1}


def test_a_push_of_a_tag_already_exported_at_that_digest_starts_nothing(world: World) -> None:
    world.service.record_pushes([pushed("team/api", "v1.0")])
    world.clock.advance(seconds=60)
    [run] = world.service.start_push_exports()
    world.finish(run)
    world.service.reconcile()  # the ledger records the digest with the success
    world.clock.advance(days=1)
    world.state.pushes_seen.clear()  # the same push recorded again (e.g. a seen row pruned)
    world.service.record_pushes([pushed("team/api", "v1.0")])
    world.clock.advance(seconds=60)
    assert world.service.start_push_exports() == []
    assert world.state.pending_pushes() == []
    assert len(world.deployments_started()) == 1


def test_the_schedule_exports_only_what_the_events_missed(world: World) -> None:
    world.registry.content = {"team/api": {"v1.0": digest("team/api:v1.0:a"), "v1.1": digest("missed")}}
    world.service.record_pushes([pushed("team/api", "v1.0")])
    world.clock.advance(seconds=60)
    [run] = world.service.start_push_exports()
    world.finish(run)
    world.service.reconcile()
    accepted = world.service.start_scheduled_export()
    assert accepted is not None
    [scheduled] = accepted.runs
    assert scheduled.artifacts == ("team/api:v1.1", "samples/nginx:1.27")  # nginx: never pushed or exported
    assert accepted.skipped == ("team/api:v1.0",)


def test_with_export_on_push_off_events_are_acknowledged_and_ignored() -> None:
    world = make_world({**PUSH_ENV, "TRANSFER_EXPORT_ON_PUSH": "false"})
    report = world.service.record_pushes([pushed("team/api", "v1.0")])
    assert report.counts == {"ignored": 1}
    assert "TRANSFER_EXPORT_ON_PUSH" in report.reasons[0]
    assert world.state.pending_pushes() == []
    world.clock.advance(minutes=5)
    assert world.service.start_push_exports() == []


def test_a_burst_of_events_lists_the_waiting_pushes_once_per_window_not_once_per_event(world: World) -> None:
    for i in range(50):  # what on_image_pushed does for each event: record, then start what is due
        world.service.record_pushes([pushed("team/api", f"v1.{i}")])
        world.service.start_push_exports()
        world.clock.advance(seconds=1)
    assert [call[0] for call in world.state.history].count("pending_pushes") == 1
    world.clock.advance(seconds=10)  # the window of the first push has closed
    [run] = world.service.start_push_exports()
    assert len(run.artifacts) == 50


def push_with_referrers(world: World, repository: str, tag: str, *types: str) -> tuple[str, list[str]]:
    """An image pushed to the registry with referrers of these types attached; its digest and theirs."""
    image = world.registry.push_image(repository, tag, [1024])
    referrers = [world.registry.attach(repository, image, kind) for kind in types]
    world.service.record_pushes([pushed(repository, tag, of=image)])
    return image, referrers


def test_a_pushed_image_exports_with_its_signature_and_sbom_in_one_run(world: World) -> None:
    image, [signature, sbom] = push_with_referrers(world, "team/api", "v1.0", SIG, SBOM)
    world.clock.advance(seconds=60)
    [run] = world.service.start_push_exports()
    assert run.artifacts == ("team/api:v1.0", f"team/api@{signature}", f"team/api@{sbom}")
    assert run.referrers == ((f"team/api@{signature}", SIG, image), (f"team/api@{sbom}", SBOM, image))
    assert dict(run.digests) == {
        "team/api:v1.0": image,
        f"team/api@{signature}": signature,
        f"team/api@{sbom}": sbom,
    }


def test_with_referrers_none_a_pushed_image_exports_alone() -> None:
    world = make_world({**PUSH_ENV, "TRANSFER_EXPORT_REFERRERS": "none"})
    push_with_referrers(world, "team/api", "v1.0", SIG, SBOM)
    world.clock.advance(seconds=60)
    [run] = world.service.start_push_exports()
    assert (run.artifacts, run.referrers) == (("team/api:v1.0",), ())


def test_a_pushed_image_with_a_layer_over_8_gb_starts_nothing_and_says_why(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    big = world.registry.push_image("team/big", "v1.0", [1024, 9 * 10**9])
    world.service.record_pushes([pushed("team/big", "v1.0", of=big)])
    world.clock.advance(seconds=60)
    assert world.service.start_push_exports() == []
    assert export_runs(world) == []
    assert world.deployments_started() == []
    assert world.state.pending_pushes() == []  # released: a later push of the tag is judged afresh
    assert "pre-flight: team/big:v1.0" in caplog.text
    assert "8 GB" in caplog.text
    checks = {c.name: c for c in world.service.health()}
    assert "team/big:v1.0" in checks["preflight"].detail


def test_a_refused_image_leaves_the_rest_of_its_batch_to_export(world: World) -> None:
    big = world.registry.push_image("team/big", "v1.0", [9 * 10**9])
    world.service.record_pushes([pushed("team/big", "v1.0", of=big)])
    _, [signature] = push_with_referrers(world, "team/api", "v1.0", SIG)
    world.clock.advance(seconds=60)
    [run] = world.service.start_push_exports()
    assert run.artifacts == ("team/api:v1.0", f"team/api@{signature}")


def fifty_signed_images(world: World) -> dict[str, str]:
    """50 pushed images, each with one signature: referrer digest -> its image's tag."""
    signed = {}
    for i in range(50):
        _, [signature] = push_with_referrers(world, "team/api", f"v1.{i}", SIG)
        signed[f"team/api@{signature}"] = f"team/api:v1.{i}"
    return signed


def test_fifty_pushed_images_with_a_referrer_each_make_runs_of_50_each_image_beside_its_referrer(
    world: World,
) -> None:
    signed = fifty_signed_images(world)
    world.clock.advance(seconds=60)
    runs = world.service.start_push_exports()
    assert [len(run.artifacts) for run in runs] == [50, 50]
    for run in runs:
        for referrer, image in signed.items():
            assert (referrer in run.artifacts) == (image in run.artifacts)
    assert sorted(a for run in runs for a in run.artifacts) == sorted([*signed, *signed.values()])
    assert runs[1].id == f"{runs[0].id}2"
    assert len(world.deployments_started()) == 2
    assert world.state.pending_pushes() == []


def test_a_worker_dying_between_the_runs_of_one_batch_starts_only_the_missing_run(world: World) -> None:
    fifty_signed_images(world)
    world.clock.advance(seconds=60)
    world.state.around("add_run", lambda call, run: call(run) if not run.id.endswith("2") else _die())
    with pytest.raises(Unavailable):
        world.service.start_push_exports()
    [first] = export_runs(world)
    world.state.around("add_run", None)
    world.clock.advance(minutes=2, seconds=1)
    runs = world.service.start_push_exports()
    assert [run.id for run in runs] == [first.id, f"{first.id}2"]
    assert runs[0].artifacts == first.artifacts
    assert len(export_runs(world)) == 2
    assert len(world.deployments_started()) == 2
    assert world.state.pending_pushes() == []


def _die() -> None:
    raise Unavailable("the worker died here")
