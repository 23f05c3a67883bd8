"""The metadata the Functions host indexes, read once from `app.get_functions()` (a second call fails)."""

from __future__ import annotations

import json
import subprocess
import sys
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
from azurefunctions.extensions.base import meta as extension_meta

from tests.design_contract import BLOB_TRIGGER, EVENT_GRID, HTTP, TIMERS, UNMONITORED, http_bindings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def indexed() -> dict[str, Any]:
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


def bindings(fn: Any) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in fn.get_raw_bindings()]


def test_exactly_the_functions_of_the_design(indexed: dict[str, Any]) -> None:
    assert sorted(indexed) == sorted([*TIMERS, "on_target_blob", *EVENT_GRID, *HTTP])


@pytest.mark.parametrize(("name", "schedule"), TIMERS.items())
def test_timers_read_their_schedule_setting_and_use_the_monitor(
    indexed: dict[str, Any], name: str, schedule: str
) -> None:
    (binding,) = bindings(indexed[name])
    assert binding == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": schedule,
        "useMonitor": name not in UNMONITORED,
    }


@pytest.mark.parametrize(("name", "route"), HTTP.items())
def test_http_functions_route_method_and_function_auth(
    indexed: dict[str, Any], name: str, route: tuple[str, str]
) -> None:
    assert bindings(indexed[name]) == http_bindings(*route)


def test_blob_trigger_watches_the_target_container_through_event_grid(indexed: dict[str, Any]) -> None:
    (binding,) = bindings(indexed["on_target_blob"])
    assert binding == BLOB_TRIGGER


def test_blob_trigger_binding_is_the_sdk_type_so_bytes_never_enter_the_function(
    indexed: dict[str, Any],
) -> None:
    # What the worker does at indexing: resolve the annotation, then ask the extension registry for
    # the binding JSON; SupportsDeferredBinding tells the host to send a reference, not the content.
    fn = indexed["on_target_blob"]
    hints = typing.get_type_hints(fn.get_user_function())
    import azurefunctions.extensions.bindings.blob as blob

    assert hints["client"] is blob.BlobClient
    raw, info = extension_meta._ConverterMeta.get_raw_bindings(
        fn, {"client": SimpleNamespace(pytype=hints["client"])}
    )
    (binding,) = [json.loads(r) for r in raw]
    assert binding["properties"] == {"SupportsDeferredBinding": True}
    assert info == {"client": {blob.BlobClient: "True"}}


def test_the_app_uses_function_auth_by_default() -> None:
    import function_app

    assert function_app.app.auth_level is func.AuthLevel.FUNCTION


ADAPTERS = {
    "transfer.adapters.arm",
    "transfer.adapters.state",
    "transfer.adapters.blobs",
    "transfer.adapters.keyvault",
    "transfer.adapters.credentials",
}
IMPORT_CHECK = f"""
import socket, sys

class NoNetwork(socket.socket):
    def connect(self, *args):
        raise AssertionError("network use while importing function_app")

    connect_ex = connect

socket.socket = NoNetwork
# The SDK-type binding extension itself brings azure.storage.blob and azure.identity.
import azurefunctions.extensions.bindings.blob
before = set(sys.modules)
import function_app
added = set(sys.modules) - before
assert not [m for m in sys.modules if m.startswith(("azure.mgmt", "azure.data", "azure.keyvault"))]
assert not [m for m in added if m.startswith("azure.") and not m.startswith("azure.functions")], added
assert not added & set({sorted(ADAPTERS)!r}), added
"""


def test_importing_function_app_does_no_io_and_loads_no_management_sdk(tmp_path: Path) -> None:
    # No settings in the environment: an import that tried to build the service would fail.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_push_function_is_event_grid_triggered(indexed: dict[str, Any]) -> None:
    (binding,) = bindings(indexed["on_image_pushed"])
    assert binding == {"direction": "IN", "type": "eventGridTrigger", "name": "event"}
