"""A locked-down tenant through the HTTP functions: a start the tenant would fail is 422 PipelineNotReady
naming the cause (nothing written), and health's failing check carries errorCause and hint."""

from __future__ import annotations

import function_app
from tests.conftest import World
from tests.functions.test_http import assert_untouched, call, export
from tests.unit.service.test_readiness import storage_account


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
