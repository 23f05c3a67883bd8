"""Every pass and request is bounded in time whatever a dependency does: Table Storage that stops
answering (a real hang: tests/fault_proxy.py holds the connection open and silent) ends a timer tick with a
report and an HTTP request with 503 and Retry-After, within the clients' timeouts (docs/reliability.md)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator

import azure.functions as func
import pytest

import function_app
from emulator.azurite import Azurite
from tests.conftest import World, make_world
from tests.fault_proxy import FaultProxy, Hang, Reset, storage_error
from tests.integration.conftest import unique
from transfer import bootstrap
from transfer.adapters import retry
from transfer.adapters.state import TableStateStore
from transfer.domain.runs import Trigger
from transfer.domain.settings import StorageConnection

pytestmark = pytest.mark.azurite

READ_TIMEOUT = 1  # seconds, for the test; the app's own (retry.READ_TIMEOUT) is 15
# A call's worst case: the first read and its retries that timed out, with azure-core's backoff between.
WORST_CALL = (1 + retry.READ_RETRIES) * READ_TIMEOUT + 2


@pytest.fixture
def hung(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, FaultProxy]]:
    monkeypatch.setattr(retry, "READ_TIMEOUT", READ_TIMEOUT)
    with FaultProxy(azurite.table_port) as proxy:
        world = make_world()
        through = dataclasses.replace(azurite, table_port=proxy.port)
        state = TableStateStore(
            StorageConnection("TransferState", through.connection_string), prefix=unique("h")
        )
        state.ping()  # the tables exist before the hang begins
        world.ports = dataclasses.replace(world.ports, state=state)
        world.service = world.new_worker()
        world.service.start_export(["samples/hello:v1"], Trigger.HTTP)
        with bootstrap.use_service(world.service):
            yield world, proxy


def test_a_hung_table_storage_ends_the_reconcile_tick_with_a_report_within_its_timeouts(
    hung: tuple[World, FaultProxy], caplog: pytest.LogCaptureFixture
) -> None:
    _, proxy = hung
    proxy.rule = lambda request: Hang()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="transfer.functions"):
        function_app.reconcile(func.timer.TimerRequest(past_due=False))  # held the tick 200+ s, then raised
    elapsed = time.monotonic() - started
    assert elapsed < 3 * WORST_CALL + 2, elapsed  # the push exports' first read, reconcile's, cleanup's
    outages = [r for r in caplog.records if getattr(r, "event", None) == "timer.outage"]
    assert {"reconcile", "cleanup"} <= {r.getMessage().split(":")[0] for r in outages}
    assert proxy.seen["hang"] >= 2


@pytest.mark.parametrize("fault", ["hang", "reset", "503"])
def test_an_http_request_on_unreachable_state_is_503_with_retry_after_within_its_timeouts(
    hung: tuple[World, FaultProxy], fault: str
) -> None:
    _, proxy = hung
    action = {"hang": Hang(), "reset": Reset(), "503": storage_error(503, "ServerBusy")}[fault]
    proxy.rule = lambda request: action
    request = func.HttpRequest("GET", "https://app.azurewebsites.net/api/runs", body=b"")
    started = time.monotonic()
    response = function_app.list_runs(request)
    elapsed = time.monotonic() - started
    assert elapsed < WORST_CALL + 8, elapsed  # Storage's own backoff for a 503: about 7 s
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert json.loads(response.get_body())["error"]["code"] == "Unavailable"


def test_every_sdk_client_the_app_builds_has_its_timeouts() -> None:
    """ARM, Tables, Blob, Key Vault, the registry and the credential: each takes client_timeouts()."""
    import inspect

    from transfer.adapters import arm, blobs, credentials, keyvault, registry, state

    for module in (arm, blobs, credentials, keyvault, registry, state):
        assert "client_timeouts()" in inspect.getsource(module), module.__name__
    assert retry.client_timeouts() == {"connection_timeout": 5, "read_timeout": 15}
