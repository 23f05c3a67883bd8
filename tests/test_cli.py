"""The CLI in-process: `cli.main(argv)` against the service on fakes (bootstrap.use_service)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.conftest import World
from tests.faults import instead
from transfer import bootstrap
from transfer.domain.arm_views import DeploymentState
from transfer.domain.errors import Unavailable
from transfer.domain.runs import Trigger
from transfer.entrypoints import cli


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
    polls = []

    def finishing_on_the_second_poll(read: Any, name: str) -> Any:  # ARM as each poll reads it
        polls.append(name)
        if len(polls) == 2:
            for run in world.stored_runs():
                world.finish(run)
        return read(name)

    world.arm.around("get_deployment", finishing_on_the_second_poll)
    code, out, err = run_cli("export", "samples/hello:v1", "--wait", "--interval", "5")
    assert code == cli.OK
    assert "Succeeded" in out
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]  # health's unknowns
    assert "Deploying" in lines[0]
    assert "Succeeded 100%" in lines[-1]
    assert run_cli.sleeps == [0.5, 1.0]  # soon after the start, then backing off


def test_wait_exits_1_when_a_run_fails_and_shows_its_error(
    world: World, run_cli: Cli, monkeypatch: Any
) -> None:
    def failing_when_polled(read: Any, name: str) -> Any:
        for run in world.stored_runs():
            world.finish(run, "Failed", error="blob already exists")
        return read(name)

    world.arm.around("get_deployment", failing_when_polled)
    code, body = run_cli.json("export", "samples/hello:v1", "--wait")
    assert code == cli.FAILED
    assert body["runs"][0]["status"] == "Failed"
    assert body["runs"][0]["error"] == "blob already exists"


def test_wait_times_out_with_exit_5(world: World, run_cli: Cli) -> None:
    code, _, err = run_cli("export", "samples/hello:v1", "--wait", "--timeout", "30", "--interval", "10")
    assert code == cli.EXIT_TRANSIENT
    assert "timed out" in err
    assert sum(run_cli.sleeps) == 30
    assert run_cli.sleeps[:6] == [0.5, 1, 2, 4, 8, 10]  # up to --interval, the last one cut at the timeout


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

    world.arm.around("get_deployment", instead(down))
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

    world.state.around("ping", instead(down))
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

    world.arm.around("get_deployment", instead(deployment))
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
        "blob",
        "delete",
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

    world.state.around("list_runs", instead(broken))
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


# ---- the registry's resources, whoever made them ------------------------------------------------------

PRINCIPAL = "11111111-2222-3333-4444-555555555555"
STORAGE_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def stranger_pipeline(world: World, kind: str = "export", name: str = "oldexport1") -> dict[str, Any]:
    """A pipeline someone else deployed: SasToken, a system identity."""
    return world.arm.put_resource(
        {
            "id": f"{world.settings.registry_id}/{kind}Pipelines/{name}",
            "name": name,
            "identity": {"type": "systemAssigned", "principalId": PRINCIPAL},
            "properties": {
                "provisioningState": "Succeeded",
                "target" if kind == "export" else "source": {
                    "type": "AzureStorageBlobContainer",
                    "uri": "https://oldacct.blob.core.windows.net/exports",
                    "keyVaultUri": "https://oldvault.vault.azure.net/secrets/oldsas",
                },
            },
        }
    )


def test_pipelines_list_shows_every_pipeline_of_the_registry(world: World, run_cli: Cli) -> None:
    stranger_pipeline(world)
    code, out, _ = run_cli("pipelines", "list")
    assert code == cli.OK
    lines = out.splitlines()
    assert lines[0].split() == [
        "KIND", "NAME", "CONFIGURED", "STORAGE", "ACCESS", "STORAGE", "URI", "SOURCE", "TRIGGER", "STATE",
        "PRINCIPAL", "ID",
    ]  # fmt: skip
    assert [line.split()[:2] for line in lines[1:]] == [
        ["export", "exportpipeline"],
        ["export", "oldexport1"],
        ["import", "importpipeline"],
    ]
    assert "yes" in lines[1]
    assert "yes" not in lines[2]
    assert PRINCIPAL in lines[2]
    code, body = run_cli.json("pipelines", "list")
    by_name = {p["name"]: p for p in body["pipelines"]}
    assert by_name["oldexport1"] == {
        "kind": "export",
        "name": "oldexport1",
        "id": f"{world.settings.registry_id}/exportPipelines/oldexport1",
        "provisioningState": "Succeeded",
        "storageAccessMode": "SasToken",
        "storageUri": "https://oldacct.blob.core.windows.net/exports",
        "keyVaultUri": "https://oldvault.vault.azure.net/secrets/oldsas",
        "options": [],
        "sourceTrigger": None,
        "identityType": "systemAssigned",
        "principalId": PRINCIPAL,
        "configured": False,
    }
    assert (by_name["importpipeline"]["configured"], by_name["importpipeline"]["sourceTrigger"]) == (
        True,
        "Enabled",
    )
    assert world.arm_writes() == []


def test_pipelines_delete_refuses_the_configured_pipeline_unless_forced(world: World, run_cli: Cli) -> None:
    stranger = stranger_pipeline(world)
    code, _, err = run_cli("pipelines", "delete", "export", "exportpipeline")
    assert code == cli.CONFLICT
    assert "--force" in err
    assert "TRANSFER_EXPORT_PIPELINE" in err
    assert world.arm.deleted_resources == []
    code, body = run_cli.json("pipelines", "delete", "export", "oldexport1")
    assert code == cli.OK
    assert body == {"kind": "export", "name": "oldexport1", "id": stranger["id"], "status": "deleted"}
    assert world.arm.deleted_resources == [stranger["id"]]
    assert run_cli("pipelines", "delete", "export", "oldexport1")[0] == cli.NOT_FOUND
    assert run_cli("pipelines", "delete", "import", "bad-name")[0] == cli.BAD_INPUT
    code, out, _ = run_cli("pipelines", "delete", "import", "importpipeline", "--force")
    assert code == cli.OK
    assert out == "import pipeline importpipeline: deleted\n"
    code, _, err = run_cli("health")
    assert code == cli.FAILED  # the configured pipeline is gone, and health says so at once


def test_pipelines_delete_that_arm_finishes_later_says_so(
    world: World, run_cli: Cli, monkeypatch: Any
) -> None:
    stranger_pipeline(world)
    world.arm.around("delete_resource", instead(lambda resource_id: None))  # accepted, not done yet
    code, body = run_cli.json("pipelines", "delete", "export", "oldexport1")
    assert (code, body["status"]) == (cli.OK, "deleting")


def test_delete_run_is_the_twin_of_the_http_delete(world: World, run_cli: Cli, monkeypatch: Any) -> None:
    [run] = world.service.start_export(["a:v1"], Trigger.HTTP).runs
    code, _, err = run_cli("delete", run.id)
    assert code == cli.CONFLICT  # still running
    assert "finished" in err
    world.finish(run)
    world.service.reconcile()
    writes = len(world.arm_writes())
    code, body = run_cli.json("delete", run.id)
    assert code == cli.OK
    assert (body["id"], body["cleanedUp"]) == (run.id, True)  # the fake deletes at once; ARM confirmed it
    assert "url" not in body
    assert len(world.arm_writes()) == writes + 2  # the pipelineRun and the deployment
    code, out, _ = run_cli("delete", run.id)
    assert (code, out) == (cli.OK, f"run {run.id}: already cleaned up\n")
    assert run_cli("delete", "20261126120000000e999999")[0] == cli.NOT_FOUND
    assert run_cli("delete", "not a run!")[0] == cli.BAD_INPUT


def test_delete_run_whose_deletes_arm_has_not_finished(world: World, run_cli: Cli, monkeypatch: Any) -> None:
    [run] = world.service.start_export(["a:v1"], Trigger.HTTP).runs
    world.finish(run)
    world.service.reconcile()
    world.arm.around("delete_resource", instead(lambda resource_id: None))
    world.arm.around("delete_deployment", instead(lambda name: None))
    code, out, _ = run_cli("delete", run.id)
    assert code == cli.OK
    assert "ARM deletes started; the next cleanup confirms them" in out
    assert not world.stored_run(run.id).cleaned_up


def test_runs_all_lists_every_pipeline_run_beside_the_app_record(world: World, run_cli: Cli) -> None:
    settings = world.settings
    [ours] = world.service.start_export(["a:v1"], Trigger.HTTP, "nightly").runs
    world.finish(ours, "Failed", error="BlobAlreadyExists: The specified blob already exists.")
    world.arm.put_pipeline_run(
        "sourcetriggered1",
        status="Succeeded",
        provisioning_state="Succeeded",
        request={"pipelineResourceId": settings.pipeline_id("import")},
        source_trigger=True,
        source_trigger_at="2026-11-26T11:30:00Z",
    )
    world.arm.put_pipeline_run(
        "byhand1", request={"pipelineResourceId": f"{settings.registry_id}/exportPipelines/oldexport1"}
    )
    world.service.reconcile()  # records our failure and adopts the source trigger's run
    code, body = run_cli.json("runs", "--all")
    assert code == cli.OK
    by_name = {r["name"]: r for r in body["pipelineRuns"]}
    assert set(by_name) == {ours.id, "sourcetriggered1", "byhand1"}
    assert by_name[ours.id] == {
        "name": ours.id,
        "id": world.arm.pipeline_run_id(ours.id),
        "pipeline": "exportpipeline",
        "kind": "export",
        "status": "Failed",
        "provisioningState": "Failed",
        "startedAt": by_name[ours.id]["startedAt"],
        "finishedAt": None,
        "sourceTrigger": False,
        "owned": True,
        "recorded": True,
        "appStatus": "Failed",
        "blob": f"nightly-{ours.id}",
        "errorCause": "BlobExists",
    }
    assert by_name[ours.id]["startedAt"] is not None  # the app's record, where ARM names no startTime
    trigger_run = by_name["sourcetriggered1"]
    assert [trigger_run[k] for k in ("owned", "recorded", "sourceTrigger")] == [False, True, True]
    assert trigger_run["pipeline"] == "importpipeline"
    assert trigger_run["startedAt"] == "2026-11-26T11:30:00.000Z"  # the source trigger's timestamp
    stranger = by_name["byhand1"]
    assert (stranger["owned"], stranger["recorded"], stranger["appStatus"]) == (False, False, None)
    code, out, _ = run_cli("runs", "--all")
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME", "PIPELINE", "STATUS", "STARTED", "OWNED", "APP", "STATUS", "BLOB", "ERROR", "CAUSE",
    ]  # fmt: skip
    assert any(line.startswith(ours.id) and "BlobExists" in line for line in lines)
    assert any(line.startswith("sourcetriggered1") and "source trigger" in line for line in lines)
    assert any(line.startswith("byhand1") and line.split()[-1] == "-" for line in lines)
    assert run_cli("runs", "--all", "--kind", "export")[0] == cli.BAD_INPUT


def test_runs_all_on_an_empty_registry(world: World, run_cli: Cli) -> None:
    assert run_cli("runs", "--all") == (cli.OK, "the registry has no pipelineRuns\n", "")


def deployed(world: World, monkeypatch: Any, kind: str, **storage: Any) -> None:
    """The pipeline deployment succeeds and ARM then shows the pipeline with a system identity."""
    from tests.conftest import pipeline_resource

    def deployment(name: str) -> DeploymentState:
        resource = pipeline_resource(world.settings, kind, **storage)
        resource["identity"] = {"type": "systemAssigned", "principalId": PRINCIPAL}
        world.arm.put_resource(resource)
        return DeploymentState(name, "Succeeded")

    world.arm.around("get_deployment", instead(deployment))


def test_pipelines_deploy_wait_prints_the_identity_and_the_roles_still_to_grant(
    world: World, run_cli: Cli, monkeypatch: Any
) -> None:
    deployed(world, monkeypatch, "import", uri="https://target.blob.core.windows.net/transfer")
    argv = (
        "pipelines", "deploy", "import", "--storage-uri", "https://target.blob.core.windows.net/transfer",
        "--mode", "ManagedIdentity", "--wait",
    )  # fmt: skip
    code, body = run_cli.json(*argv)
    assert code == cli.OK
    identity = body["identity"]
    assert (identity["principalId"], identity["storageAccessMode"]) == (PRINCIPAL, "ManagedIdentity")
    [grant] = identity["rolesToGrant"]
    assert (grant["role"], grant["scope"]) == ("Storage Blob Data Contributor", "storage account target")
    assert f"--assignee-object-id {PRINCIPAL}" in grant["command"]
    assert "az storage account show -n target" in grant["command"]
    code, out, _ = run_cli(*argv)
    assert f"pipeline identity: {PRINCIPAL} (systemAssigned)" in out
    assert "still to grant:" in out
    assert "Storage Blob Data Contributor on storage account target:" in out

    account = "/subscriptions/s/resourceGroups/data-rg/providers/Microsoft.Storage/storageAccounts/target"
    world.arm.assign_role(PRINCIPAL, STORAGE_DATA_CONTRIBUTOR, account)
    code, body = run_cli.json(*argv)
    assert body["identity"]["rolesToGrant"] == []
    [note] = body["identity"]["notes"]
    assert note == "granted: Storage Blob Data Contributor at the account scope (target)"
    assert "nothing left to grant" in run_cli(*argv)[1]


def test_pipelines_deploy_in_sas_mode_names_the_key_vault_secret_get(
    world: World, run_cli: Cli, monkeypatch: Any
) -> None:
    vault_uri = "https://srcvault.vault.azure.net/secrets/acrexportsas"
    deployed(world, monkeypatch, "export", storageAccessMode="SasToken", keyVaultUri=vault_uri)
    code, body = run_cli.json(
        "pipelines", "deploy", "export", "--storage-uri", "https://src.blob.core.windows.net/transfer",
        "--key-vault", "srcvault", "--sas-secret", "acrexportsas", "--wait",
    )  # fmt: skip
    assert code == cli.OK
    [grant] = body["identity"]["rolesToGrant"]
    assert grant["role"] == "Key Vault secret get"
    assert grant["scope"] == "Key Vault srcvault (secret acrexportsas)"
    assert grant["command"] == (
        f"az keyvault set-policy --name srcvault --object-id {PRINCIPAL} --secret-permissions get"
    )
    assert "Key Vault Secrets User" in grant["note"]


@pytest.mark.parametrize(
    ("vault_uri", "scope", "name"),
    [
        (
            "https://govvault.vault.usgovcloudapi.net/secrets/sas/0123",
            "Key Vault govvault (secret sas)",
            "govvault",
        ),
        (
            "https://127.0.0.1:8443/secrets/sas",
            "the Key Vault at https://127.0.0.1:8443 (secret sas)",
            "<vault name>",
        ),
        (
            "https://vault.example.com/secrets/sas",
            "the Key Vault at https://vault.example.com (secret sas)",
            "<vault name>",
        ),
    ],
)
def test_the_key_vault_grant_names_a_vault_only_from_a_vault_host(
    world: World, run_cli: Cli, monkeypatch: Any, vault_uri: str, scope: str, name: str
) -> None:
    deployed(world, monkeypatch, "export", storageAccessMode="SasToken", keyVaultUri=vault_uri)
    code, body = run_cli.json(
        "pipelines", "deploy", "export", "--storage-uri", "https://src.blob.core.windows.net/transfer",
        "--key-vault", "srcvault", "--sas-secret", "sas", "--wait",
    )  # fmt: skip
    assert code == cli.OK
    [grant] = body["identity"]["rolesToGrant"]
    assert grant["scope"] == scope
    assert grant["command"].startswith(f"az keyvault set-policy --name {name} ")


def test_pipelines_deploy_without_wait_says_where_the_identity_is(world: World, run_cli: Cli) -> None:
    code, out, _ = run_cli(
        "pipelines", "deploy", "import", "--storage-uri", "https://target.blob.core.windows.net/transfer",
        "--mode", "ManagedIdentity",
    )  # fmt: skip
    assert code == cli.OK
    assert out.splitlines()[-1].startswith("with --wait: the pipeline identity's principal id")


def test_every_error_carries_its_exit_code() -> None:
    from transfer.domain import errors

    cases = [
        (errors.InvalidInput("x"), cli.BAD_INPUT),
        (errors.SettingsError(["x"]), cli.BAD_INPUT),
        (errors.NotConfigured("x"), cli.BAD_INPUT),
        (errors.AccessDenied("x"), cli.BAD_INPUT),
        (errors.PipelineNotReady("x"), cli.BAD_INPUT),
        (errors.NotFound("x"), cli.NOT_FOUND),
        (errors.Conflict("x"), cli.CONFLICT),
        (errors.PreconditionFailed("x"), cli.CONFLICT),
        (errors.IdempotencyKeyReused("x"), cli.CONFLICT),
        (errors.Throttled("x"), cli.EXIT_TRANSIENT),
        (errors.Unavailable("x"), cli.EXIT_TRANSIENT),
        (errors.TransferError("x"), cli.FAILED),
    ]
    assert [exc.exit_code for exc, _ in cases] == [code for _, code in cases]


# ---- --wait: soon after the start, backing off; a live line on a terminal; each change once --------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_deployment_finishing_in_0_3_s_is_seen_after_the_first_half_second(
    world: World, run_cli: Cli
) -> None:
    def deployment(name: str) -> DeploymentState:
        return DeploymentState(name, "Succeeded" if run_cli.now >= 0.3 else "Running")

    world.arm.around("get_deployment", instead(deployment))
    code, _, err = run_cli(
        "pipelines", "deploy", "import", "--storage-uri", "https://target.blob.core.windows.net/transfer",
        "--mode", "ManagedIdentity", "--wait",
    )  # fmt: skip
    assert code == cli.OK
    assert run_cli.sleeps == [0.5]
    assert err.splitlines()[-1].endswith(": Succeeded")


def test_wait_on_a_terminal_keeps_a_live_status_line_and_logs_each_change_once(
    world: World, run_cli: Cli
) -> None:
    polls = 0

    def progressing(read: Any, name: str) -> Any:
        nonlocal polls
        polls += 1
        if polls == 4:
            for run in world.stored_runs():
                world.finish(run, "Failed", error="blob already exists")
        return read(name)

    world.arm.around("get_deployment", progressing)
    out, err = io.StringIO(), Terminal()
    code = cli.main(
        ["export", "samples/hello:v1", "--wait"],
        out=out, err=err, sleep=run_cli.sleep, monotonic=lambda: run_cli.now,
    )  # fmt: skip
    assert code == cli.FAILED
    text = err.getvalue()
    (run,) = world.stored_runs()
    parts = text.split("\r\x1b[K")
    live = [part.rsplit("\n", 1)[-1] for part in parts if part and not part.endswith("\n")]
    assert live, text  # the live line, rewritten between the changes: elapsed time, run, state
    assert all(part.startswith("[") and run.id in part for part in live)
    assert any("s] " in part and "Deploying" in part for part in live)
    assert text.count("blob already exists") == 1  # the status line, and no log warning repeating it
    assert not text.endswith(live[-1])  # cleared at the end


def test_wait_elsewhere_prints_only_the_changes(world: World, run_cli: Cli) -> None:
    polls = 0

    def finishing_on_the_fourth_poll(read: Any, name: str) -> Any:
        nonlocal polls
        polls += 1
        if polls == 4:
            for run in world.stored_runs():
                world.finish(run)
        return read(name)

    world.arm.around("get_deployment", finishing_on_the_fourth_poll)
    _, _, err = run_cli("export", "samples/hello:v1", "--wait")
    assert "\r" not in err
    assert "\x1b" not in err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    # one line per change (Deploying, Running, Succeeded), nothing while nothing changed
    assert [line.split()[-1] for line in lines[:2]] == ["Deploying", "Running"]
    assert lines[2].endswith("Succeeded 100%")
    assert len(lines) == 3, lines
    assert lines[0].startswith("[    0s]")
