"""Starting exports: records before deployments, idempotency, the schedule, the roles."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import World, sas_copy_world
from transfer.domain.errors import (
    Conflict,
    InvalidInput,
    NotConfigured,
    TransferError,
    Unavailable,
)
from transfer.domain.runs import RunStatus, Trigger


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


# ---- exports ------------------------------------------------------------------------------------------


def test_export_records_the_run_then_deploys_the_run_template(world: World) -> None:
    accepted = world.service.start_export(["samples/hello", "samples/nginx:v1"], Trigger.HTTP, "nightly")
    [run] = accepted.runs
    assert run.status is RunStatus.DEPLOYING
    assert run.artifacts == ("samples/hello:latest", "samples/nginx:v1")
    assert run.blob == f"nightly-{run.id}"
    [call] = world.arm.deployment_calls
    assert call.name == run.deployment_name == f"acrtransfer-{run.id}"
    assert call.parameters == {
        "registryName": "myregistry",
        "pipelineRunName": run.id,
        "pipelineResourceId": world.service.settings.pipeline_id("export"),
        "forceUpdateTag": run.id,
        "artifacts": ["samples/hello:latest", "samples/nginx:v1"],
        "targetName": run.blob,
    }
    assert call.template["resources"][0]["type"] == "Microsoft.ContainerRegistry/registries/pipelineRuns"
    assert world.state.get_run(run.id) == run


def test_the_record_exists_before_the_deployment_and_reconcile_finishes_a_crashed_start(world: World) -> None:
    world.arm.fail("begin_deployment", Unavailable("ARM is down"))
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.status is RunStatus.ACCEPTED
    assert "reconcile deploys it" in (run.warning or "")  # the answer says why it waits
    assert world.state.get_run(run.id) is not None
    assert world.arm.deployment_calls == []

    world.service.reconcile()  # at once: its own start may still be on its way, so no second PUT yet
    assert world.stored_run(run.id).status is RunStatus.ACCEPTED
    world.clock.advance(minutes=1, seconds=1)
    world.service.reconcile()
    assert world.stored_run(run.id).status is RunStatus.DEPLOYING
    assert world.stored_run(run.id).warning is None  # the deferral note is over
    assert [c.name for c in world.arm.deployment_calls] == [run.deployment_name]


def test_more_than_fifty_artifacts_become_several_runs(world: World) -> None:
    refs = [f"repo{i}" for i in range(120)]
    accepted = world.service.start_export(refs, Trigger.HTTP)
    assert [len(r.artifacts) for r in accepted.runs] == [50, 50, 20]
    assert len({r.id for r in accepted.runs}) == 3
    assert len({r.blob for r in accepted.runs}) == 3
    assert {r.request_id for r in accepted.runs} == {accepted.request_id}
    assert len(world.arm.deployment_calls) == 3


@pytest.mark.parametrize(
    ("artifacts", "target"),
    [([], "artifacts"), (["ok", "Bad"], "artifacts[1]"), ("repo", "artifacts"), ([1], "artifacts[0]")],
)
def test_bad_input_writes_nothing_and_calls_no_arm(world: World, artifacts: object, target: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.service.start_export(artifacts, Trigger.HTTP)
    assert caught.value.target == target
    assert world.state.runs == {}
    assert sum(world.arm.calls.values()) == 0


def test_bad_target_name_is_rejected_before_anything(world: World) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.service.start_export(["a"], Trigger.HTTP, target_name="../escape")
    assert caught.value.target == "targetName"
    assert world.state.runs == {}


def test_idempotency_key_repeat_returns_the_same_runs_and_deploys_once(world: World) -> None:
    first = world.service.start_export(["a", "b"], Trigger.HTTP, idempotency_key="job-1")
    again = world.service.start_export(["a", "b"], Trigger.HTTP, idempotency_key="job-1")
    assert again.repeated
    assert again.request_id == first.request_id
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert len(world.arm.deployment_calls) == 1
    with pytest.raises(Conflict) as caught:
        world.service.start_export(["c"], Trigger.HTTP, idempotency_key="job-1")
    assert caught.value.code == "IdempotencyKeyReused"


def test_scheduled_export_is_once_per_occurrence_even_across_a_minute() -> None:
    scheduled = sas_copy_world(TRANSFER_EXPORT_ARTIFACTS="a")
    occurrence = {"Last": "2026-11-25T02:00:00Z", "Next": "2026-11-26T02:00:00Z"}
    first = scheduled.service.start_scheduled_export(occurrence)
    scheduled.clock.advance(minutes=1)
    again = scheduled.service.start_scheduled_export(dict(occurrence))
    later = scheduled.service.start_scheduled_export(
        {"Last": "2026-11-26T02:00:00Z", "Next": "2026-11-27T02:00:00Z"}
    )
    assert first is not None
    assert again is not None
    assert later is not None
    assert again.repeated
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert not later.repeated
    assert len(scheduled.arm.deployment_calls) == 2


def test_scheduled_export_is_once_per_tick(world: World) -> None:
    service = sas_copy_world(TRANSFER_EXPORT_ARTIFACTS="a,b:v1").service
    first = service.start_scheduled_export()
    again = service.start_scheduled_export()
    assert first is not None
    assert again is not None
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert world.service.start_scheduled_export() is None  # no TRANSFER_EXPORT_ARTIFACTS


def test_a_rejected_deployment_fails_the_run_with_the_reason(world: World) -> None:
    from transfer.domain.errors import TransferError

    world.arm.fail("begin_deployment", TransferError("InvalidTemplate: bad parameter"))
    [run] = world.service.start_export(["a"], Trigger.HTTP).runs
    assert run.status is RunStatus.FAILED
    assert run.error == "InvalidTemplate: bad parameter"
    assert run.finished_at == world.clock()


def test_roles_are_enforced() -> None:
    export_only = sas_copy_world(TRANSFER_IMPORT_PIPELINE="").service
    with pytest.raises(NotConfigured):
        export_only.start_import("blob", Trigger.HTTP)
    with pytest.raises(NotConfigured):
        export_only.handle_blob("blob")


def test_a_three_level_preflight_rejection_keeps_its_inner_message_and_the_answers_correlation_id(
    world: World,
) -> None:
    """ARM's 400 InvalidTemplateDeployment with PreflightValidationCheckFailed and the provider's reason
    below it, as the SDK raises it and the ARM adapter translates it (transfer/adapters/arm.py)."""
    import json

    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.core.exceptions import ARMErrorFormat

    from transfer.adapters.arm import _arm_detail
    from transfer.adapters.sdk_errors import translated

    body = {
        "error": {
            "code": "InvalidTemplateDeployment",
            "message": "The template deployment 'd' is not valid according to the validation procedure.",
            "details": [
                {
                    "code": "PreflightValidationCheckFailed",
                    "message": "Preflight validation failed. Please refer to the details.",
                    "details": [
                        {"code": "InvalidPipelineRun", "message": "The artifact a:b does not exist."}
                    ],
                }
            ],
        }
    }

    class Raw:
        status_code = 400
        reason = "Bad Request"
        content_type = "application/json"
        headers = {"x-ms-correlation-request-id": "c0ffee00-0000-4000-8000-000000000001"}

        def text(self, encoding: str | None = None) -> str:
            return json.dumps(body)

        def body(self) -> bytes:
            return json.dumps(body).encode()

        def json(self) -> object:
            return body

    try:
        with translated("ARM: starting deployment d", detail=_arm_detail):
            raise HttpResponseError(response=Raw(), error_format=ARMErrorFormat)  # type: ignore[arg-type]
    except TransferError as exc:
        rejection = exc
    world.arm.fail("begin_deployment", rejection)
    [run] = world.service.start_export(["samples/hello:v1"], Trigger.HTTP).runs
    stored = world.stored_run(run.id)
    assert stored.status is RunStatus.FAILED
    assert "The artifact a:b does not exist." in (stored.error or "")
    assert stored.correlation_id == "c0ffee00-0000-4000-8000-000000000001"  # it was None
