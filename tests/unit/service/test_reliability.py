"""The pieces docs/reliability.md relies on, on their own: the ARM write limiter (a token bucket per
process), Storage's retry waits, a deployment quota that defers, and a throttled deployment that ends the
pass's ARM work."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from transfer.adapters.arm import WRITE_LIMITER, WriteLimiter
from transfer.adapters.retry import storage_retry_policy
from transfer.domain.errors import Throttled, Unavailable
from transfer.domain.runs import RunStatus, Trigger


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(time: FakeTime, **kwargs: Any) -> WriteLimiter:
    return WriteLimiter(clock=time.clock, sleep=time.sleep, **kwargs)


def test_the_limiter_lets_a_burst_of_10_through_then_10_per_second() -> None:
    time = FakeTime()
    writes = limiter(time)
    waits = [writes.acquire("ARM: w") for _ in range(30)]
    assert waits[:10] == [0.0] * 10
    assert all(w == pytest.approx(0.1) for w in waits[10:])
    assert time.now == pytest.approx(2.0)  # 30 writes: 10 at once, 20 at 10 per second


def test_the_limiter_bound_holds_in_every_window() -> None:
    time = FakeTime()
    writes = limiter(time)
    stamps = []
    for step in range(200):
        time.now += 0.013 * (step % 7)  # writers arriving unevenly, often faster than 10 per second
        writes.acquire("ARM: w")
        stamps.append(time.now)
    for i, start in enumerate(stamps):
        for length in (1.0, 3.0, 10.0):
            inside = sum(1 for t in stamps[i:] if t < start + length)
            assert inside <= 10 * length + 10 + 1e-9, (start, length, inside)


def test_the_limiter_refills_while_idle_but_never_above_its_burst() -> None:
    time = FakeTime()
    writes = limiter(time)
    for _ in range(10):
        writes.acquire("ARM: w")
    time.now += 60
    assert [writes.acquire("ARM: w") for _ in range(11)][-1] == pytest.approx(0.1)


def test_a_write_that_would_wait_past_its_limit_is_throttled_not_slept() -> None:
    time = FakeTime()
    slept: list[float] = []
    writes = WriteLimiter(max_wait=0.5, clock=time.clock, sleep=slept.append)  # writers still waiting
    for _ in range(15):
        writes.acquire("ARM: w")  # 10 at once, then 5 reserved: 0.1 ... 0.5 s ahead
    assert slept == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(Throttled) as caught:
        writes.acquire("ARM: starting deployment d")
    assert caught.value.retry_after == pytest.approx(0.6)
    assert "limited to 10 per second" in caught.value.message
    time.now += 0.6
    assert writes.acquire("ARM: w") == pytest.approx(0.0)  # the refused write took no token


def test_every_arm_adapter_of_the_process_shares_one_limiter() -> None:
    from tests.conftest import ENV
    from transfer.adapters.arm import ArmResourceManager
    from transfer.domain.settings import load_settings

    settings = load_settings(ENV)
    first, second = (
        ArmResourceManager(settings, credential=None),
        ArmResourceManager(settings, credential=None),
    )  # type: ignore[arg-type]
    assert first._writes is second._writes is WRITE_LIMITER
    own = WriteLimiter()
    assert ArmResourceManager(settings, credential=None, write_limiter=own)._writes is own  # type: ignore[arg-type]


def test_storage_retries_fit_an_invocation() -> None:
    policy = storage_retry_policy()
    total = sum(policy.get_backoff_time({"count": n}) for n in (1, 2, 3))  # the waits of its 3 retries
    assert total <= 8.7  # the SDK's default would wait about 84 s
    assert policy.total_retries == 3


# ---- the service ---------------------------------------------------------------------------------------


def test_a_full_deployment_history_defers_the_run_instead_of_failing_it(world: World) -> None:
    full = Unavailable("ARM: starting deployment d: failed (409) (DeploymentQuotaExceeded): ...")
    world.arm.fail("begin_deployment", full)
    [run] = world.service.start_export(["repo:v1"], Trigger.HTTP).runs
    assert run.status is RunStatus.ACCEPTED
    assert "DeploymentQuotaExceeded" in (run.warning or "")
    world.clock.advance(minutes=2)
    world.service.reconcile()  # room again: reconcile deploys it
    assert world.stored_run(run.id).status is RunStatus.DEPLOYING


def test_a_throttled_redeploy_ends_the_passes_arm_work(world: World) -> None:
    for artifact in ("a:v1", "b:v1", "c:v1"):
        world.arm.fail("begin_deployment", Throttled("ARM: throttled (429)", retry_after=30))
        world.service.start_export([artifact], Trigger.HTTP)
    assert {r.status for r in world.stored_runs()} == {RunStatus.ACCEPTED}
    world.clock.advance(minutes=2)
    world.arm.fail("begin_deployment", Throttled("ARM: throttled (429)", retry_after=600))
    puts = world.arm.calls["begin_deployment"]
    report = world.service.reconcile()
    assert world.arm.calls["begin_deployment"] == puts + 1  # one try, then the pass leaves ARM alone
    assert report.counts["not-reached"] == 2
    world.clock.advance(minutes=5)
    world.service.reconcile()
    assert world.arm.calls["begin_deployment"] == puts + 1  # still within the Retry-After
    world.clock.advance(minutes=6)
    world.service.reconcile()
    assert {r.status for r in world.stored_runs()} == {RunStatus.DEPLOYING}
