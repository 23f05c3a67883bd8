"""The CLI in-process: `cli.main(argv)` against the service on fakes (bootstrap.use_service)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.conftest import World
from transfer import bootstrap, cli
from transfer.arm_views import DeploymentState
from transfer.errors import Unavailable


class Cli:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out=out, err=err, sleep=self.sleep, monotonic=lambda: self.now)
        return code, out.getvalue(), err.getvalue()

    def json(self, *argv: str) -> tuple[int, Any]:
        code, out, _ = self("--output", "json", *argv)
        return code, json.loads(out)


@pytest.fixture
def run_cli() -> Cli:
    return Cli()


def test_export_prints_a_table_of_the_runs(world: World, run_cli: Cli) -> None:
    code, out, _ = run_cli("export", "samples/hello:v1", "samples/web", "--target-name", "nightly")
    assert code == cli.OK
    (run,) = world.stored_runs()
    assert out.splitlines()[0].split() == [
        "RUN",
        "KIND",
        "TRIGGER",
        "STATUS",
        "PROGRESS",
        "CREATED",
        "WHAT",
        "ERROR",
    ]
    assert run.id in out
    assert "Deploying" in out
    assert "samples/hello:v1 +1" in out
    assert run.trigger.value == "cli"
    assert run.blob == f"nightly-{run.id}"


def test_export_json_has_the_http_run_keys(world: World, run_cli: Cli) -> None:
    code, body = run_cli.json("export", *[f"r{i}:v1" for i in range(51)], "--idempotency-key", "k1")
    assert code == cli.OK
    assert [len(r["artifacts"]) for r in body["runs"]] == [50, 1]
    assert set(body["runs"][0]) >= {
        "id", "kind", "trigger", "status", "artifacts", "blob", "pipelineRunId", "deploymentName",
        "progress", "importedArtifacts", "error", "createdAt", "updatedAt", "finishedAt", "cleanedUp",
    }  # fmt: skip
    assert "url" not in body["runs"][0]
    _, again = run_cli.json("export", *[f"r{i}:v1" for i in range(51)], "--idempotency-key", "k1")
    assert again["requestId"] == body["requestId"]
    assert len(world.deployments_started()) == 2


def test_export_wait_shows_progress_until_the_runs_finish(
    world: World, run_cli: Cli, monkeypatch: Any
) -> None:
    reconcile_run = world.service.reconcile_run
    polls = []

    def finishing_reconcile(run_id: str) -> Any:
        polls.append(run_id)
        if len(polls) == 2:
            for run in world.stored_runs():
                world.finish(run)
        return reconcile_run(run_id)

    monkeypatch.setattr(world.service, "reconcile_run", finishing_reconcile)
    code, out, err = run_cli("export", "samples/hello:v1", "--wait", "--interval", "5")
    assert code == cli.OK
    assert "Succeeded" in out
    lines = err.splitlines()
    assert "Deploying" in lines[0]
    assert "Succeeded 100%" in lines[-1]
    assert run_cli.sleeps == [5, 5]


def test_wait_exits_1_when_a_run_fails_and_shows_its_error(
    world: World, run_cli: Cli, monkeypatch: Any
) -> None:
    reconcile_run = world.service.reconcile_run

    def failing_reconcile(run_id: str) -> Any:
        for run in world.stored_runs():
            world.finish(run, "Failed", error="blob already exists")
        return reconcile_run(run_id)

    monkeypatch.setattr(world.service, "reconcile_run", failing_reconcile)
    code, body = run_cli.json("export", "samples/hello:v1", "--wait")
    assert code == cli.FAILED
    assert body["runs"][0]["status"] == "Failed"
    assert body["runs"][0]["error"] == "blob already exists"


def test_wait_times_out_with_exit_5(world: World, run_cli: Cli) -> None:
    code, _, err = run_cli("export", "samples/hello:v1", "--wait", "--timeout", "30", "--interval", "10")
    assert code == cli.EXIT_TRANSIENT
    assert "timed out" in err
    assert sum(run_cli.sleeps) == 30


def test_import_of_a_missing_blob_exits_3(world: World, run_cli: Cli) -> None:
    code, out, err = run_cli("import", "missing-blob")
    assert code == cli.NOT_FOUND
    assert out == ""
    assert err.startswith("error: ")
    assert "(blob)" in err
    assert "Traceback" not in err


def test_import_starts_a_run(world: World, run_cli: Cli) -> None:
    world.add_blob("export-1")
    code, body = run_cli.json("import", "export-1")
    assert code == cli.OK
    assert (body["runs"][0]["kind"], body["runs"][0]["trigger"]) == ("import", "cli")


def test_bad_input_exits_2_with_the_target_and_changes_nothing(world: World, run_cli: Cli) -> None:
    code, _out, err = run_cli("export", "samples/ok:v1", "Bad Repo")
    assert code == cli.BAD_INPUT
    assert "(artifacts[1])" in err
    assert world.stored_runs() == []
    assert world.arm_writes() == []
    code, body = run_cli.json("export", "samples/ok:v1", "Bad Repo")
    assert body == {
        "error": {"code": "InvalidInput", "message": body["error"]["message"], "target": "artifacts[1]"}
    }


def test_runs_and_show(world: World, run_cli: Cli) -> None:
    run_cli("export", "a:v1")
    run_cli("export", "b:v1")
    code, body = run_cli.json("runs", "--kind", "export", "--top", "1")
    assert code == cli.OK
    assert len(body["runs"]) == 1
    run_id = body["runs"][0]["id"]
    code, out, _ = run_cli("show", run_id)
    assert code == cli.OK
    assert out.splitlines()[0].split() == ["id", run_id]
    code, shown = run_cli.json("show", run_id)
    assert shown == body["runs"][0]


def test_show_unknown_exits_3_and_bad_id_exits_2(world: World, run_cli: Cli) -> None:
    assert run_cli("show", "20261126120000000e999999")[0] == cli.NOT_FOUND
    assert run_cli("show", "not a run!")[0] == cli.BAD_INPUT


def test_runs_on_an_empty_store(world: World, run_cli: Cli) -> None:
    assert run_cli("runs") == (cli.OK, "no runs\n", "")


def test_reconcile_and_cleanup_dry_run(world: World, run_cli: Cli) -> None:
    run_cli("export", "a:v1")
    (run,) = world.stored_runs()
    world.finish(run)
    code, report = run_cli.json("reconcile")
    assert code == cli.OK
    assert report["counts"] == {"Succeeded": 1}
    world.clock.advance(hours=100)
    code, out, _ = run_cli("cleanup", "--dry-run")
    assert code == cli.OK
    assert "would-delete: 1" in out
    assert [c for c in world.arm_writes() if c[0] != "begin_deployment"] == []
    code, report = run_cli.json("cleanup")
    assert report["counts"] == {"deleted": 1}
    assert world.stored_runs()[0].cleaned_up


def test_reconcile_with_deferred_runs_exits_5(world: World, run_cli: Cli, monkeypatch: Any) -> None:
    run_cli("export", "a:v1")

    def down(name: str) -> Any:
        raise Unavailable("ARM did not answer")

    monkeypatch.setattr(world.arm, "get_deployment", down)
    code, out, _ = run_cli("reconcile")
    assert code == cli.EXIT_TRANSIENT
    assert "deferred" in out


def test_sweep(world: World, run_cli: Cli) -> None:
    world.add_blob("aged", age_days=59.5)
    code, report = run_cli.json("sweep")
    assert code == cli.OK
    assert report["counts"] == {"refresh": 1}


def test_health_table_and_unhealthy_exit(world: World, run_cli: Cli, monkeypatch: Any) -> None:
    code, out, _ = run_cli("health")
    assert code == cli.OK
    assert out.rstrip().endswith("healthy")

    def down() -> None:
        raise Unavailable("Table Storage did not answer")

    monkeypatch.setattr(world.state, "ping", down)
    code, body = run_cli.json("health")
    assert code == cli.FAILED
    assert body["status"] == "unhealthy"


def test_settings_problems_are_printed_one_per_line_with_exit_2(run_cli: Cli, monkeypatch: Any) -> None:
    for name in ("TRANSFER_REGISTRY", "TRANSFER_EXPORT_PIPELINE", "TRANSFER_IMPORT_PIPELINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "nope")
    bootstrap.reset()
    try:
        code, _out, err = run_cli("runs")
        json_code, body = run_cli.json("health")
    finally:
        bootstrap.reset()
    assert code == json_code == cli.BAD_INPUT
    assert err.splitlines()[0] == "error: invalid settings:"
    assert any(line.startswith("  - AZURE_SUBSCRIPTION_ID") for line in err.splitlines())
    assert any(line.startswith("  - TRANSFER_REGISTRY") for line in err.splitlines())
    assert body["error"]["code"] == "InvalidSettings"
    assert "Traceback" not in err


def test_pipelines_deploy_and_wait(world: World, run_cli: Cli, monkeypatch: Any) -> None:
    states = iter(["Running", "Succeeded"])

    def deployment(name: str) -> DeploymentState:
        return DeploymentState(name, next(states))

    monkeypatch.setattr(world.arm, "get_deployment", deployment)
    code, body = run_cli.json(
        "pipelines", "deploy", "import",
        "--storage-uri", "https://target.blob.core.windows.net/transfer",
        "--mode", "ManagedIdentity", "--option", "OverwriteTags", "--no-source-trigger", "--wait",
    )  # fmt: skip
    assert code == cli.OK
    assert body["provisioningState"] == "Succeeded"
    assert world.deployments_started() == [body["deployment"]]


def test_pipelines_deploy_rejects_bad_combinations(world: World, run_cli: Cli) -> None:
    uri = "https://source.blob.core.windows.net/transfer"
    code, _, err = run_cli("pipelines", "deploy", "export", "--storage-uri", uri, "--mode", "SasToken")
    assert code == cli.BAD_INPUT
    assert "(keyVault)" in err
    code, _, err = run_cli("pipelines", "deploy", "export", "--storage-uri", uri, "--no-source-trigger")
    assert code == cli.BAD_INPUT
    assert "(--no-source-trigger)" in err
    code, _, err = run_cli(
        "pipelines", "deploy", "export", "--storage-uri", uri, "--key-vault", "kv", "--sas-secret", "s",
        "--option", "OverwriteTags",
    )  # fmt: skip
    assert code == cli.BAD_INPUT
    assert "(options[0])" in err
    assert world.arm_writes() == []


def test_pipelines_show(world: World, run_cli: Cli) -> None:
    code, out, _ = run_cli("pipelines", "show", "import")
    assert code == cli.OK
    assert "sourceTrigger" in out
    assert "ManagedIdentity" in out
    code, body = run_cli.json("pipelines", "show", "export")
    assert body["id"] == world.settings.pipeline_id("export")


def test_help_explains_every_command_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for command in (
        "export",
        "import",
        "runs",
        "show",
        "reconcile",
        "sweep",
        "cleanup",
        "health",
        "pipelines",
    ):
        assert command in text
    assert "exit codes:" in text
    assert "3  not found" in text


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["runs", "--kind", "both"])
    assert done.value.code == 2


def test_an_unexpected_error_exits_70_with_the_traceback(
    world: World, run_cli: Cli, monkeypatch: Any
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(world.state, "list_runs", broken)
    code, _, err = run_cli("runs")
    assert code == cli.INTERNAL
    assert "Traceback" in err
    assert "RuntimeError: bug" in err


def test_blob_prints_the_diagnosis(world: World, run_cli: Cli) -> None:
    world.add_blob("aged", age_days=61)
    code, out, _ = run_cli("blob", "aged")
    assert code == cli.OK
    assert "decision" in out
    assert "refresh" in out
    code, body = run_cli.json("blob", "aged")
    assert body["decision"] == "refresh"
    assert run_cli("blob", "missing")[0] == cli.NOT_FOUND


def test_export_incremental_says_when_nothing_is_new(world: World, run_cli: Cli) -> None:
    world.registry.retag("team/api", "v1.0")
    code, body = run_cli.json("export", "team/*:v1.*", "--incremental")
    assert code == cli.OK
    assert [r["artifacts"] for r in body["runs"]] == [["team/api:v1.0"]]
    run = world.stored_run(body["runs"][0]["id"])
    world.finish(run)
    world.service.reconcile()
    code, out, _ = run_cli("export", "team/*:v1.*", "--incremental", "--wait")
    assert code == cli.OK
    assert "nothing new to export: 1 unchanged" in out
    code, body = run_cli.json("export", "team/*:v1.*", "--incremental")
    assert (body["runs"], body["skipped"]) == ([], ["team/api:v1.0"])
    code, _, err = run_cli("export", "team/*:v9.*")
    assert code == cli.BAD_INPUT
    assert "matches no tag" in err
