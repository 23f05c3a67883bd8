from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from transfer.domain.arm_views import DeploymentState, PipelineRun
from transfer.domain.observation import observation
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger, advance

NOW = datetime(2026, 11, 26, tzinfo=UTC)
A, D, R, S, F, C = (
    RunStatus.ACCEPTED,
    RunStatus.DEPLOYING,
    RunStatus.RUNNING,
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELED,
)


@pytest.mark.parametrize(
    ("current", "observed", "result"),
    [
        (A, D, D), (A, R, R), (A, S, S), (A, F, F), (D, R, R), (D, F, F), (R, S, S), (R, C, C),
        (R, D, R), (R, A, R), (D, A, D),  # stale reads never move a run back
        (S, F, S), (F, S, F), (C, R, C), (S, R, S),  # terminal is final
    ],
)  # fmt: skip
def test_advance(current: RunStatus, observed: RunStatus, result: RunStatus) -> None:
    assert advance(current, observed) is result


def pipeline_run(status: str | None, provisioning: str = "Succeeded", **response: object) -> PipelineRun:
    body: dict[str, Any] = {"provisioningState": provisioning, "response": dict(response)}
    if status is not None:
        body["response"]["status"] = status
    return PipelineRun.from_arm({"id": "/subscriptions/s/.../pipelineRuns/r1", "properties": body})


@pytest.mark.parametrize(
    ("status", "provisioning", "expected"),
    [
        ("Succeeded", "Succeeded", S),
        ("succeeded", "Succeeded", S),
        ("Failed", "Failed", F),
        ("Canceled", "Canceled", C),
        ("Cancelled", "Succeeded", C),
        ("Running", "Creating", R),
        ("Queued", "Creating", R),  # unknown values count as running
        ("SomethingNew", "Succeeded", R),
        (None, "Creating", R),
        (None, "Failed", F),
        ("Running", "Failed", F),  # provisioning failed: the run will not finish
    ],
)
def test_observe_pipeline_run(status: str | None, provisioning: str, expected: RunStatus) -> None:
    seen = observation(None, pipeline_run(status, provisioning))
    assert seen is not None
    assert seen.status is expected


def test_observe_records_progress_error_and_imported_artifacts() -> None:
    seen = observation(
        None,
        pipeline_run(
            "Failed",
            progress={"percentage": "40"},
            pipelineRunErrorMessage="repo:v1 not found",
            importedArtifacts=["a:v1"],
        ),
    )
    assert seen is not None
    assert (seen.progress, seen.error, seen.imported_artifacts) == ("40", "repo:v1 not found", ("a:v1",))
    assert seen.pipeline_run_id == "/subscriptions/s/.../pipelineRuns/r1"


def test_failed_run_without_message_takes_the_deployment_error() -> None:
    deployment = DeploymentState("d", "Failed", error="InvalidTemplate: bad")
    seen = observation(deployment, pipeline_run("Failed", "Failed"))
    assert seen is not None
    assert seen.error == "InvalidTemplate: bad"


@pytest.mark.parametrize(
    ("state", "expected"),
    [("Accepted", D), ("Running", D), ("Created", D), ("Failed", F), ("Canceled", C), ("Succeeded", F)],
)
def test_observe_deployment_only(state: str, expected: RunStatus) -> None:
    seen = observation(DeploymentState("d", state, error="boom" if state == "Failed" else None), None)
    assert seen is not None
    assert seen.status is expected


def test_observe_nothing() -> None:
    assert observation(None, None) is None


def make_run(status: RunStatus) -> Run:
    return Run("r1abcdef", RunKind.EXPORT, Trigger.HTTP, status, NOW, NOW, "req", "acrtransfer-r1abcdef")


def test_apply_moves_forward_and_stamps_finish() -> None:
    later = NOW + timedelta(minutes=3)
    seen = observation(None, pipeline_run("Succeeded", progress={"percentage": "100"}))
    assert seen is not None
    after = make_run(R).observed(seen, later)
    assert (after.status, after.progress, after.finished_at, after.updated_at) == (S, "100", later, later)


def test_apply_leaves_terminal_runs_untouched() -> None:
    seen = observation(None, pipeline_run("Running"))
    assert seen is not None
    done = make_run(F)
    assert done.observed(seen, NOW + timedelta(hours=1)) is done


def test_terminal_statuses() -> None:
    assert {s for s in RunStatus if s.terminal} == {S, F, C}
