"""The app as the Functions host's own Python worker indexes it (azure-functions-runtime, Python 3.13).

tests/functions reads `app.get_functions()` of azure-functions 1.x in this venv; here the worker's loader
imports function_app.py in .venv-host (made by `make`, requirements-host.txt) and validates every function
against its annotations, as the host does at startup. index_app.py runs there in a subprocess, once.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.design_contract import BLOB_TRIGGER, EVENT_GRID, HTTP, TIMERS, UNMONITORED, http_bindings

ROOT = Path(__file__).resolve().parents[2]
HOST_PY = ROOT / ".venv-host" / "bin" / "python"
SCRIPT = Path(__file__).with_name("index_app.py")

BLOB_CLIENT = "azurefunctions.extensions.bindings.blob.blobClient.BlobClient"
TIMER_REQUEST = "azure.functions._timer.TimerRequest"


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not HOST_PY.exists():
        pytest.fail(f"{HOST_PY} is missing: `make pytest` (or `make deps`) creates it", pytrace=False)
    tmp = tmp_path_factory.mktemp("worker")
    out = tmp / "indexed.json"
    # No app settings: the %...% placeholders are resolved by the host, never by the worker. -I keeps this
    # venv's PYTHONPATH and user site out; the script puts the repo on sys.path as the host does.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    done = subprocess.run(
        [str(HOST_PY), "-I", str(SCRIPT), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    assert done.returncode == 0, report.get("traceback") or done.stderr
    return report


def test_runs_on_the_worker_for_python_313_with_azure_functions_2(worker: dict[str, Any]) -> None:
    assert worker["python"].startswith("3.13.")
    assert worker["azure_functions"].startswith("2.")
    assert "error" not in worker


def test_importing_the_app_uses_no_network_and_no_management_sdk(worker: dict[str, Any]) -> None:
    assert worker["network"] == []
    assert worker["management_sdks_loaded"] == []


def test_exactly_the_functions_of_the_design(worker: dict[str, Any]) -> None:
    functions = worker["functions"]
    assert sorted(functions) == sorted([*TIMERS, "on_target_blob", *EVENT_GRID, *HTTP])
    for name, fn in functions.items():
        assert (fn["script_file"], fn["entry_point"], fn["language"]) == ("function_app.py", name, "python")
        assert Path(fn["directory"]) == ROOT
        assert fn["properties"] == {"worker_indexed": "True"}


@pytest.mark.parametrize(("name", "schedule"), TIMERS.items())
def test_timers(worker: dict[str, Any], name: str, schedule: str) -> None:
    fn = worker["functions"][name]
    assert fn["raw_bindings"] == [
        {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": schedule,
            "useMonitor": name not in UNMONITORED,
        }
    ]
    assert fn["input_types"] == {
        "timer": {"binding": "timerTrigger", "pytype": TIMER_REQUEST, "deferred": False}
    }
    assert fn["deferred_bindings_enabled"] is False


@pytest.mark.parametrize(("name", "route"), HTTP.items())
def test_http_functions(worker: dict[str, Any], name: str, route: tuple[str, str]) -> None:
    fn = worker["functions"][name]
    assert fn["raw_bindings"] == http_bindings(*route)
    assert fn["is_http_func"] is True
    assert fn["input_types"]["req"]["pytype"] == "azure.functions._http.HttpRequest"


def test_blob_trigger_is_event_grid_on_the_target_container_and_an_sdk_type(worker: dict[str, Any]) -> None:
    fn = worker["functions"]["on_target_blob"]
    # The raw binding from the base extension: SupportsDeferredBinding makes the host send a reference to
    # the blob, not its content.
    assert fn["raw_bindings"] == [{**BLOB_TRIGGER, "properties": {"SupportsDeferredBinding": True}}]
    assert fn["input_types"] == {
        "client": {"binding": "blobTrigger", "pytype": BLOB_CLIENT, "deferred": True},
    }
    assert fn["deferred_bindings_enabled"] is True
    assert fn["binding_summary"] == [["blobTrigger", "client", {f"<class '{BLOB_CLIENT}'>": "True"}]]
    assert worker["app_deferred_bindings_enabled"] is True


def test_the_push_function_is_an_event_grid_trigger_the_worker_indexes(worker: dict[str, Any]) -> None:
    fn = worker["functions"]["on_image_pushed"]
    assert fn["raw_bindings"] == [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}]
    assert fn["input_types"]["event"]["binding"] == "eventGridTrigger"
    assert fn["input_types"]["event"]["pytype"] == "azure.functions._eventgrid.EventGridEvent"
