"""Each required setting missing and each setting malformed, seen where people see it: the worker's
startup (bootstrap builds nothing and raises SettingsError naming it), GET /api/health (503, a failing
`settings` check naming it), and every other HTTP function (500 InvalidSettings, the setting as a detail's
target). Nothing reaches the network: settings are validated before any client is built."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import function_app
from tests.functions.test_http import call, export, health
from tests.unit.domain.test_settings import BOTH_SIDES, SETTING_CASES, changed
from transfer import bootstrap
from transfer.domain.errors import SettingsError

# Every setting load_settings reads: each test starts from an environment holding none of them.
ALL_SETTINGS = (
    *BOTH_SIDES,
    "AZURE_CLIENT_ID",
    "AzureWebJobsStorage",
    *(
        f"{conn}__{kind}"
        for conn in ("TransferStorage", "TransferState", "AzureWebJobsStorage")
        for kind in ("blobServiceUri", "queueServiceUri", "tableServiceUri", "accountName")
    ),
    *(name for name in os.environ if name.startswith("TRANSFER_")),
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def use(changes: dict[str, str | None]) -> None:
        for name in ALL_SETTINGS:
            monkeypatch.delenv(name, raising=False)
        for name, value in changed(changes).items():
            monkeypatch.setenv(name, value)
        bootstrap.reset()

    yield use
    bootstrap.reset()


def test_the_base_environment_starts(environment: Any) -> None:
    environment({})
    settings = bootstrap.settings_from_environment()
    assert (settings.export_pipeline, settings.import_pipeline) == ("exportpipe", "importpipe")


@pytest.mark.parametrize(("setting", "changes"), SETTING_CASES)
def test_startup_names_the_setting(environment: Any, setting: str, changes: dict[str, str | None]) -> None:
    environment(changes)
    with pytest.raises(SettingsError) as caught:
        bootstrap.service_from_environment()
    assert any(setting in problem for problem in caught.value.problems), caught.value.problems
    assert "c2VjcmV0" not in str(caught.value)


@pytest.mark.parametrize(("setting", "changes"), SETTING_CASES)
def test_health_is_503_naming_the_setting(
    environment: Any, setting: str, changes: dict[str, str | None]
) -> None:
    environment(changes)
    status, body, response = health()
    assert status == 503
    assert body["status"] == "unhealthy"
    failing = [c for c in body["checks"] if not c["ok"]]
    assert failing
    assert all(c["name"] == "settings" for c in failing)
    assert any(setting in c["detail"] for c in failing), failing
    assert "c2VjcmV0" not in response.get_body().decode()


@pytest.mark.parametrize(("setting", "changes"), SETTING_CASES)
def test_other_functions_answer_500_with_the_setting_as_target(
    environment: Any, setting: str, changes: dict[str, str | None]
) -> None:
    environment(changes)
    status, body, response = export({"artifacts": ["ok:v1"]})
    assert status == 500
    assert body["error"]["code"] == "InvalidSettings"
    assert setting in {detail["target"] for detail in body["error"]["details"]}, body
    assert "c2VjcmV0" not in response.get_body().decode()


def test_a_timer_with_bad_settings_raises_so_the_host_logs_it(environment: Any) -> None:
    environment({"TRANSFER_REGISTRY": None})
    from azure.functions.timer import TimerRequest

    with pytest.raises(SettingsError, match="TRANSFER_REGISTRY"):
        function_app.reconcile(TimerRequest(past_due=False))
    status, body, _ = call(function_app.list_runs, "GET", "runs")
    assert (status, body["error"]["details"][0]["target"]) == (500, "TRANSFER_REGISTRY")
