"""on_image_pushed and follow_runs, called as the host calls them, against the service on fakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

import function_app
from tests.conftest import World, make_world
from tests.unit.service.test_pushes import PUSH_ENV, pushed
from transfer.domain.errors import Unavailable
from transfer.domain.runs import RunStatus, Trigger

IMPORT_ON_ARRIVAL = {**PUSH_ENV, "TRANSFER_IMPORT_ON_ARRIVAL": "true", "TRANSFER_PUSH_WINDOW_SECONDS": "0"}


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return lambda: make_world(IMPORT_ON_ARRIVAL)


def grid_event(body: dict[str, Any]) -> func.EventGridEvent:
    """What the Functions worker hands the function for one event of a delivered batch."""
    return func.EventGridEvent(
        id=body["id"],
        data=body["data"],
        topic="/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/src",
        subject=body["subject"],
        event_type=body["eventType"],
        event_time=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        data_version="1.0",
    )


def timer() -> func.TimerRequest:
    return func.timer.TimerRequest(past_due=False)


def test_a_push_event_is_recorded_and_with_no_window_exported_by_the_same_call(world: World) -> None:
    event = grid_event(pushed("team/api", "v1.0"))
    function_app.on_image_pushed(event)
    function_app.on_image_pushed(event)  # redelivered
    [run] = world.stored_runs()
    assert (run.trigger, run.artifacts) == (Trigger.PUSH, ("team/api:v1.0",))
    assert len(world.deployments_started()) == 1


def test_a_delete_event_and_a_tagless_push_do_nothing(world: World) -> None:
    function_app.on_image_pushed(grid_event(pushed("team/api", "v1.0", kind="ImageDeleted")))
    function_app.on_image_pushed(grid_event(pushed("team/api", None)))
    assert world.stored_runs() == []


def test_an_unrecorded_push_fails_the_call_so_event_grid_delivers_it_again(world: World) -> None:
    world.state.fail("record_push", Unavailable("tables down"))
    with pytest.raises(Unavailable):
        function_app.on_image_pushed(grid_event(pushed("team/api", "v1.0")))
    function_app.on_image_pushed(grid_event(pushed("team/api", "v1.0")))
    assert len(world.stored_runs()) == 1


def test_a_push_whose_start_fails_is_acknowledged_and_started_by_the_next_tick(world: World) -> None:
    world.state.fail("take_pushes", Unavailable("tables busy"))
    function_app.on_image_pushed(grid_event(pushed("team/api", "v1.0")))  # recorded: no raise
    assert world.stored_runs() == []
    function_app.follow_runs(timer())  # starts it, then follows it (ARM shows it running)
    [run] = world.stored_runs()
    assert (run.trigger, run.status) == (Trigger.PUSH, RunStatus.RUNNING)
    assert len(world.deployments_started()) == 1


def test_follow_runs_costs_no_arm_call_while_nothing_is_active(world: World) -> None:
    before = len(world.arm.history)
    function_app.follow_runs(timer())
    assert len(world.arm.history) == before


def test_follow_runs_moves_an_active_run_and_queues_the_step_after_its_success(world: World) -> None:
    function_app.on_image_pushed(grid_event(pushed("team/api", "v1.0")))
    [run] = world.stored_runs()
    world.finish(run)
    function_app.follow_runs(timer())
    assert world.stored_run(run.id).status is RunStatus.SUCCEEDED
    [entry] = world.state.exported("team/api").values()  # the steps after success ran in the follow tick
    assert entry.run_id == run.id


def test_an_arriving_blob_is_imported_at_once_and_once_with_import_on_arrival(world: World) -> None:
    world.add_blob("push-export.tar")  # fresh and eligible: the source trigger would take it
    function_app.on_target_blob(_client("push-export.tar"))
    function_app.on_target_blob(_client("push-export.tar"))  # a duplicate event
    [run] = world.stored_runs()
    assert (run.trigger, run.blob, run.status) == (Trigger.BLOB, "push-export.tar", RunStatus.DEPLOYING)
    assert len(world.deployments_started()) == 1


def test_the_sweep_still_leaves_fresh_blobs_to_the_source_trigger(world: World) -> None:
    world.add_blob("missed-event.tar")
    world.service.sweep()
    assert world.stored_runs() == []


def test_without_import_on_arrival_a_fresh_blob_is_left_to_the_source_trigger() -> None:
    world = make_world({**IMPORT_ON_ARRIVAL, "TRANSFER_IMPORT_ON_ARRIVAL": "false"})
    world.add_blob("export.tar")
    assert world.service.handle_blob("export.tar").outcome.value == "leave"


def _client(name: str) -> Any:
    from tests.functions.test_triggers import FakeBlobClient

    return FakeBlobClient(name)


def test_the_event_body_survives_the_worker_shape(world: World) -> None:
    event = grid_event(pushed("team/api", "v1.0"))
    assert json.loads(json.dumps(event.get_json()))["target"]["tag"] == "v1.0"


def test_follow_runs_reads_only_the_active_runs_never_the_source_trigger_listing(world: World) -> None:
    function_app.on_image_pushed(grid_event(pushed("team/api", "v1.0")))
    before = len(world.arm.history)
    function_app.follow_runs(timer())
    reads = [method for method, _ in world.arm.history[before:]]
    assert set(reads) == {"get_deployment", "get_resource"}
    function_app.reconcile(timer())  # the reconcile tick still lists the source trigger's runs
    assert "list_pipeline_runs" in [method for method, _ in world.arm.history]
