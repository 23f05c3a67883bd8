"""The capped retry policy: a short Retry-After is obeyed, a long one is not waited for at all, and all
retries fit a time budget.

Nothing sleeps for real: the policy's sleep and clock are injected and a scripted transport answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from transfer.adapters.retry import capped_retry_policy, fits_budget, retry_delay


def test_retry_after_is_capped() -> None:
    assert retry_delay(600, 0.8) == 5
    assert retry_delay(600, 0.8, max_sleep=2) == 2
    assert retry_delay(3, 0.8) == 3
    assert retry_delay(0, 0.8) == 0  # the server said "now"
    assert retry_delay(-4, 0.8) == 0


def test_without_retry_after_the_backoff_applies_capped() -> None:
    assert retry_delay(None, 1.6) == 1.6
    assert retry_delay(None, 120) == 5


def test_budget() -> None:
    assert fits_budget(40, 20, 60)
    assert not fits_budget(41, 20, 60)


class Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}
        self.reason = "scripted"

    def read(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


class Transport:
    """Answers from a script: a status (with optional Retry-After) or an exception to raise."""

    def __init__(self, script: list[Any]) -> None:
        self.script: Iterator[Any] = iter(script)
        self.sent = 0

    def send(self, request: Any, **kwargs: Any) -> Response:
        self.sent += 1
        step = next(self.script)
        if isinstance(step, Exception):
            raise step
        status, retry_after = step if isinstance(step, tuple) else (step, None)
        return Response(status, {"Retry-After": str(retry_after)} if retry_after is not None else {})

    def sleep(self, seconds: float) -> None:
        raise AssertionError("the transport must not sleep: the injected sleep is used")

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *args: Any) -> None:
        pass


class Timeline:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(script: list[Any], method: str = "GET", **options: Any) -> tuple[int, Transport, Timeline]:
    from azure.core.pipeline import Pipeline
    from azure.core.rest import HttpRequest

    timeline = Timeline()
    transport = Transport(script)
    policy = capped_retry_policy(sleep=timeline.sleep, clock=timeline.clock, **options)
    pipeline = Pipeline(transport=transport, policies=[policy])  # type: ignore[arg-type]
    response = pipeline.run(HttpRequest(method, "https://management.example/x"))
    return response.http_response.status_code, transport, timeline


def test_a_600_second_retry_after_is_not_waited_for() -> None:
    status, transport, timeline = run([(429, 600), 200])
    assert status == 429  # handed back at once: the caller defers the work to a later tick
    assert transport.sent == 1
    assert timeline.sleeps == []


def test_a_short_retry_after_is_obeyed() -> None:
    status, transport, timeline = run([(429, 5), (429, 5), 200])
    assert status == 200
    assert transport.sent == 3
    assert timeline.sleeps == [5, 5]


def test_retries_stop_when_the_budget_would_be_exceeded() -> None:
    status, transport, timeline = run([(429, 5)] * 10, budget=12)
    assert status == 429  # handed back to the caller, who maps it to Throttled
    assert timeline.sleeps == [5, 5]  # a third 5 s wait would end after 15 s
    assert transport.sent == 3


def test_a_few_attempts_at_most() -> None:
    status, transport, timeline = run([(503, 1)] * 10)
    assert status == 503
    assert transport.sent == 4  # the first try and three retries
    assert timeline.sleeps == [1, 1, 1]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    code, transport, _ = run([status, 200])
    assert code == 200
    assert transport.sent == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 412])
def test_other_statuses_are_not_retried_even_with_retry_after(status: int) -> None:
    code, transport, timeline = run([(status, 5), 200])
    assert code == status
    assert transport.sent == 1
    assert timeline.sleeps == []


def test_puts_are_retried_too() -> None:
    code, transport, _ = run([(429, 2), 201], method="PUT")
    assert code == 201
    assert transport.sent == 2


def test_connection_errors_are_retried_with_backoff() -> None:
    from azure.core.exceptions import ServiceRequestError

    status, transport, timeline = run(
        [ServiceRequestError("refused"), ServiceRequestError("refused"), 200], backoff=0.5
    )
    assert status == 200
    assert transport.sent == 3
    assert timeline.sleeps == [1.0]  # no wait after the first error, then the exponential backoff


def test_connection_errors_that_persist_are_raised() -> None:
    from azure.core.exceptions import ServiceRequestError

    with pytest.raises(ServiceRequestError):
        run([ServiceRequestError("refused")] * 10)


def test_each_call_builds_its_own_policy() -> None:
    assert capped_retry_policy() is not capped_retry_policy()
