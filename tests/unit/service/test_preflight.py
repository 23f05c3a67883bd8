"""Pre-flight of exports, on the fakes (service/preflight.py through selecting.py): a layer over 8 GB is a
400 naming it over HTTP and left out by the schedule (logged, in health), before any run; foreign layers
are flagged; at most one manifest read per digest the export ledger does not hold."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import ENV, World, make_world
from transfer.domain.errors import InvalidInput
from transfer.domain.runs import Trigger

BIG = 9 * 10**9  # over 8 GiB


def preflight_world(**env: str) -> World:
    world = make_world({**ENV, "TRANSFER_EXPORT_REFERRERS": "none", **env})
    world.registry.push_image("team/app", "v1", [2048, 4096])
    world.registry.push_image("team/big", "v1", [1024, BIG])
    world.registry.push_index("team/multi", "v1", [[1024], [1024, BIG]])
    world.registry.push_image("team/win", "v1", [1024, 2048], foreign=True)
    return world


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return preflight_world


@pytest.mark.parametrize("big", ["team/big:v1", "team/multi:v1"])
def test_a_request_with_a_layer_over_8_gb_is_refused_naming_it_before_any_run(world: World, big: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        world.service.start_export(["team/app:v1", big], Trigger.HTTP)
    assert refused.value.http_status == 400
    assert refused.value.target == "artifacts[1]"
    assert big in refused.value.message
    assert "8 GB" in refused.value.message
    assert world.arm.deployment_calls == []
    assert world.state.list_runs() == []


def test_a_selector_that_matches_one_is_refused_too(world: World) -> None:
    with pytest.raises(InvalidInput, match="team/big:v1"):
        world.service.start_export(["team/*:v1"], Trigger.HTTP)


def test_the_schedule_leaves_it_out_logs_it_and_health_shows_it(caplog: pytest.LogCaptureFixture) -> None:
    world = preflight_world(TRANSFER_EXPORT_ARTIFACTS="team/*:v1")
    accepted = world.service.start_scheduled_export({"Last": "a", "Next": "b"})
    assert accepted is not None
    [run] = accepted.runs
    assert run.artifacts == ("team/app:v1", "team/win:v1")
    assert "pre-flight: team/big:v1" in caplog.text
    assert "pre-flight: team/multi:v1" in caplog.text
    checks = {c.name: c for c in world.service.health()}
    assert checks["preflight"].ok
    assert checks["preflight"].detail.startswith("warning: 3 artifacts refused or flagged before a run")
    assert "team/big:v1" in checks["preflight"].detail


def test_foreign_layers_are_flagged_and_the_image_still_exported(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    [run] = world.service.start_export(["team/win:v1"], Trigger.HTTP).runs
    assert run.artifacts == ("team/win:v1",)
    assert "foreign (non-distributable) layers" in caplog.text
    checks = {c.name: c for c in world.service.health()}
    assert "team/win:v1" in checks["preflight"].detail


def test_at_most_one_manifest_read_per_digest_not_in_the_ledger(world: World) -> None:
    world.registry.retag("team/app", "latest", world.registry.content["team/app"]["v1"])  # same digest
    [run] = world.service.start_export(["team/app:v1", "team/app:latest"], Trigger.HTTP).runs
    assert world.registry.calls["manifest"] == 1
    world.finish(run)
    world.service.reconcile()
    world.registry.calls.clear()
    world.service.start_export(["team/app:v1", "team/app:latest"], Trigger.HTTP)
    assert world.registry.calls["manifest"] == 0  # exported at this digest: the ledger holds it
    world.registry.calls.clear()
    world.service.start_export(["team/multi:v1"], Trigger.SCHEDULE)
    assert world.registry.calls["manifest"] == 3  # the index and its two platforms
