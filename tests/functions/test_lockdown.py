"""A locked-down tenant through the HTTP functions: a start the tenant would fail is 422 PipelineNotReady
naming the cause (nothing written), and health's failing check carries errorCause and hint."""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func
import pytest

import function_app
from tests.conftest import ENV, World, make_world
from tests.faults import instead
from tests.functions.test_http import assert_untouched, call, export
from tests.unit.service.test_readiness import storage_account
from transfer import bootstrap
from transfer.domain.errors import Throttled


def test_an_export_to_a_firewalled_account_is_422_naming_the_cause(world: World) -> None:
    storage_account(world, "exportacct", networkAcls={"defaultAction": "Deny", "bypass": "AzureServices"})
    status, body, _ = export({"artifacts": ["samples/hello:v1"]})
    assert status == 422
    assert body["error"]["code"] == "PipelineNotReady"
    assert body["error"]["target"] == "exportPipeline"
    assert "StorageNetworkRestricted" in body["error"]["message"]
    assert "allow public network access" in body["error"]["message"]
    assert_untouched(world)


def test_health_names_the_cause_and_its_hint(world: World) -> None:
    storage_account(world, "importacct", publicNetworkAccess="Disabled")
    status, body, _ = call(function_app.health, "GET", "health")
    assert status == 503
    found = {c["name"]: c for c in body["checks"]}["importStorageNetwork"]
    assert found["ok"] is False
    assert found["errorCause"] == "StorageNetworkRestricted"
    assert "not a trusted Azure service" in found["hint"]


def test_a_scheduled_export_the_tenant_would_fail_is_refused_with_its_cause_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    storage_account(world, "exportacct", publicNetworkAccess="Disabled")
    with caplog.at_level(logging.INFO):
        function_app.scheduled_export(func.timer.TimerRequest())
    assert world.stored_runs() == []
    assert any(
        r.levelno == logging.ERROR and "StorageNetworkRestricted" in r.getMessage() for r in caplog.records
    )


def test_a_scheduled_export_the_registry_throttles_for_long_is_deferred_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttled = make_world({**ENV, "TRANSFER_EXPORT_ARTIFACTS": '["samples/*:v1"]'})
    throttled.registry.retag("samples/hello", "v1")

    def refuse(*_: Any) -> Any:
        raise Throttled("registry: listing the tags of samples/hello: throttled (429)", retry_after=90)

    throttled.registry.around("tags", instead(refuse))
    with bootstrap.use_service(throttled.service), caplog.at_level(logging.INFO):
        function_app.scheduled_export(func.timer.TimerRequest())
    assert throttled.stored_runs() == []
    [warning] = [r for r in caplog.records if "deferred to the next occurrence" in r.getMessage()]
    assert "429" in warning.getMessage()
    assert "90" in warning.getMessage()
