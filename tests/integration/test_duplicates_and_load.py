"""Duplicates and load against Azurite and the emulator: triggers are at-least-once and workers race, so
every action must happen exactly once, and a burst must not send ARM more than the app's own write limit
(transfer/adapters/arm.py: 10 writes per second per process, sustained, 10 at once), measured where the
app sends them (its limiter's grants, each matched by a write in the emulator's ARM request log).

- two reconciles racing on the same finished exports with the copy step on: one copy of each blob (and of
  its manifest), one import of it (the source trigger's);
- one blob's event delivered twice with two handlers racing: exactly one manual import;
- the app's own refresh firing the trigger again: no second action;
- 200 blob events in a burst, half duplicates, sequentially and on a thread pool of 8: one action per
  blob, nothing unhandled, ARM writes within the limit;
- 200 HTTP exports, 50 Idempotency-Keys each sent 4 times by 8 racing clients: one run per key, one
  deployment PUT per run.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
import pytest

import function_app
from demo import scenario
from demo import stack as demo_stack
from demo.stack import Stack
from tests.integration.polling import wait_for
from tests.integration.reliability_stack import (
    RecordingLimiter,
    arm_requests,
    later,
    next_index,
    side,
    started_stack,
    timed,
    writes,
)
from transfer import bootstrap
from transfer.domain.runs import Run, RunStatus, Trigger
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE, REFRESH_KEY, Outcome

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

RATE, BURST = 10, 10  # transfer/adapters/arm.py's WRITE_LIMITER
REPOSITORIES = {f"load/app{i:02d}": {"v1": None} for i in range(60)}
AGED = later(days=61)  # the app's clock: every blob in the container looks 61 days old


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with started_stack(repositories=REPOSITORIES) as started:
        yield started


@pytest.fixture
def quiet_source_trigger(stack: Stack) -> Iterator[None]:
    """The emulator's source trigger takes nothing: only the app acts on the blobs of the test."""
    stack.emulator.admin.configure(source_trigger_window_days=0)
    yield
    stack.emulator.admin.configure(source_trigger_window_days=60)


def blob_client(stack: Stack, name: str) -> Any:
    from azure.storage.blob import BlobClient

    return BlobClient.from_connection_string(
        stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER, name
    )


def upload(stack: Stack, name: str, category: bool = True) -> Any:
    client = blob_client(stack, name)
    metadata = {CATEGORY_KEY: CATEGORY_VALUE} if category else None
    client.upload_blob(f"transfer blob {name}".encode(), metadata=metadata, overwrite=True)
    return client


def owned_imports(s: scenario.Side, blob: str) -> list[Run]:
    return [r for r in s.service.list_runs(kind="import", top=1000) if r.blob == blob and r.owned]


def deployment_puts(requests: list[dict[str, Any]], group: str) -> Counter[str]:
    """PUTs of the app's run deployments in `group`, by deployment name."""
    marker = f"/resourcegroups/{group}/providers/microsoft.resources/deployments/acrtransfer-"
    return Counter(
        r["path"].rsplit("/", 1)[-1] for r in requests if r["method"] == "PUT" and marker in r["path"].lower()
    )


def write_rate(requests: list[dict[str, Any]], limiter: RecordingLimiter) -> tuple[int, float, int]:
    """The ARM writes the app sent: how many (each one the emulator logged), their sustained rate (past
    the bucket's burst, over their span) and the most of them in any one second; asserts the token
    bucket's bound in every window, on the moments the app sent them."""
    stamps = sorted(limiter.sent)
    assert len(stamps) == len(writes(requests))  # every write passed the limiter, and only those
    if len(stamps) < 2:
        return len(stamps), 0.0, len(stamps)
    peak = 0
    for i, start in enumerate(stamps):
        for window in (1.0, 2.0, 5.0):
            inside = sum(1 for t in stamps[i:] if t < start + window)
            assert inside <= RATE * window + BURST, (window, inside, stamps)
            if window == 1.0:
                peak = max(peak, inside)
    span = stamps[-1] - stamps[0]
    sustained = max(0, len(stamps) - BURST) / span if span > 0 else 0.0
    assert sustained <= RATE * 1.05, sustained
    return len(stamps), sustained, peak


def racing(*work: Callable[[], Any]) -> list[Any]:
    """Run each callable on its own thread, released at the same moment; their results (or errors)."""
    start = threading.Barrier(len(work))

    def go(job: Callable[[], Any]) -> Any:
        start.wait()
        return job()

    with ThreadPoolExecutor(len(work)) as pool:
        return [f.result() for f in [pool.submit(go, job) for job in work]]


# ---- racing reconciles with the copy step --------------------------------------------------------------


def test_two_reconciles_racing_on_the_same_runs_copy_and_import_each_blob_once(stack: Stack) -> None:
    copies: Counter[str] = Counter()

    def counted(start_copy: Any, source_url: str, name: str) -> Any:
        copies[name] += 1
        return start_copy(source_url, name)

    stack.emulator.admin.configure(source_trigger_run_shape="request-name")  # its runs name their blob
    try:
        source = side(stack, "source")
        runs = [
            source.service.start_export([f"load/app{i:02d}:v1"], Trigger.HTTP, "raced").runs[0]
            for i in range(4)
        ]
        for run in runs:
            wait_for(
                lambda r=run: source.service.deployment(r.deployment_name).provisioning_state == "Succeeded",  # type: ignore[misc]
                f"run {run.id} to finish in ARM",
            )
        first, second = side(stack, "source", faults=True), side(stack, "source", faults=True)  # one table
        for worker in (first, second):
            worker.ports.copier.around("start_copy", counted)

        def settled() -> bool:
            racing(first.service.reconcile, second.service.reconcile)
            latest = [first.service.get_run(r.id) for r in runs]
            return all(
                r.copy_status is not None and r.copy_status.value not in ("queued", "starting", "pending")
                for r in latest
            )

        wait_for(settled, "every copy to settle", timeout=30)
        done = [first.service.get_run(r.id) for r in runs]
        assert {(r.status, r.copy_status.value if r.copy_status else None) for r in done} == {
            (RunStatus.SUCCEEDED, "success")
        }
        blobs = [r.blob for r in done if r.blob]
        assert len(blobs) == 4
        for blob in blobs:
            assert copies[blob] == 1, copies
            assert copies[f"{blob}.manifest.json"] == 1, copies

        target = side(stack, "target")
        for blob in blobs:  # the copied blob's event, delivered to two racing handlers
            outcomes = racing(
                lambda b=blob: target.service.handle_blob(b, Trigger.BLOB),  # type: ignore[misc]
                lambda b=blob: side(stack, "target").service.handle_blob(b, Trigger.BLOB),  # type: ignore[misc]
            )
            assert {o.outcome for o in outcomes} == {Outcome.LEAVE}

        def source_trigger_runs() -> Counter[str]:
            named = Counter()
            for body in target.ports.arm.list_pipeline_runs():
                source_name = (body.get("properties", {}).get("request", {}).get("source") or {}).get("name")
                if source_name in blobs:
                    named[source_name] += 1
            return named

        wait_for(
            lambda: len(source_trigger_runs()) == 4, "the source trigger to import every blob", timeout=30
        )
        stack.emulator.admin.scan_source_trigger()  # and scanning again imports nothing twice
        assert source_trigger_runs() == Counter(dict.fromkeys(blobs, 1))
        assert all(owned_imports(target, blob) == [] for blob in blobs)  # and no manual import
    finally:
        stack.emulator.admin.configure(source_trigger_run_shape="spec")


# ---- one blob, duplicated events ---------------------------------------------------------------------------


def test_one_blobs_event_delivered_twice_to_racing_handlers_starts_one_import(
    stack: Stack, quiet_source_trigger: None
) -> None:
    upload(stack, "dup/one-import.blob")
    first, second = side(stack, "target", AGED), side(stack, "target", AGED)
    since = next_index(stack)
    results = racing(
        lambda: first.service.handle_blob("dup/one-import.blob", Trigger.BLOB),
        lambda: second.service.handle_blob("dup/one-import.blob", Trigger.BLOB),
    )
    assert sorted(r.outcome.value for r in results) == ["import", "nothing"]
    with first.active():  # the host delivers the event a third time, later
        function_app.on_target_blob(blob_client(stack, "dup/one-import.blob"))
    [run] = owned_imports(first, "dup/one-import.blob")
    assert run.trigger is Trigger.BLOB
    puts = deployment_puts(arm_requests(stack, since), demo_stack.TARGET_GROUP)
    assert puts == Counter({run.deployment_name: 1})


def test_the_apps_own_refresh_firing_the_trigger_again_does_nothing_more(
    stack: Stack, quiet_source_trigger: None
) -> None:
    client = upload(stack, "dup/refreshed.blob")
    target = side(stack, "target", AGED, TRANSFER_STALE_BLOB_ACTION="refresh")
    since = next_index(stack)
    assert target.service.handle_blob("dup/refreshed.blob").outcome is Outcome.REFRESH
    refreshed = client.get_blob_properties()
    assert REFRESH_KEY in refreshed.metadata
    # The metadata write raises no BlobCreated (docs/service-facts.md); one delivered anyway, to any worker,
    # finds the blob just written, fresh: left to the source trigger, not refreshed again. (Not to `target`:
    # its clock runs 61 days ahead, so every Last-Modified looks aged to it.)
    for worker in (
        side(stack, "target", TRANSFER_STALE_BLOB_ACTION="refresh"),
        side(stack, "target", TRANSFER_STALE_BLOB_ACTION="refresh"),
    ):
        with worker.active():
            function_app.on_target_blob(client)
        assert worker.service.handle_blob("dup/refreshed.blob").outcome is Outcome.LEAVE
    assert client.get_blob_properties().etag == refreshed.etag  # not refreshed again
    assert owned_imports(target, "dup/refreshed.blob") == []
    assert writes(arm_requests(stack, since)) == []


# ---- a burst of blob events --------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 8], ids=["sequential", "thread-pool-of-8"])
def test_200_blob_events_half_duplicates_one_action_per_blob_and_arm_writes_within_the_limit(
    stack: Stack, quiet_source_trigger: None, threads: int
) -> None:
    prefix = f"burst{threads}"
    refresh = [f"{prefix}/fresh-copy-{i:03d}.blob" for i in range(50)]  # category: refreshed
    imports = [f"{prefix}/no-category-{i:03d}.blob" for i in range(50)]  # no category: imported
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: upload(stack, n, category=n in refresh), refresh + imports))
    events = [blob_client(stack, name) for name in (refresh + imports) * 2]
    random.Random(threads).shuffle(events)
    assert len(events) == 200
    limiter = RecordingLimiter()
    target = side(stack, "target", AGED, write_limiter=limiter, TRANSFER_STALE_BLOB_ACTION="refresh")
    since = next_index(stack)
    failures: list[BaseException] = []

    def deliver(client: Any) -> None:
        try:
            function_app.on_target_blob(client)
        except BaseException as exc:  # what the host would retry, or poison
            failures.append(exc)
            raise

    with target.active(), ThreadPoolExecutor(threads) as pool:
        elapsed, _ = timed(lambda: list(pool.map(deliver, events)))
    assert failures == []
    requests = arm_requests(stack, since)
    for name in refresh:
        assert REFRESH_KEY in blob_client(stack, name).get_blob_properties().metadata, name
        assert owned_imports(target, name) == []
    runs = {name: owned_imports(target, name) for name in imports}
    assert {name: len(found) for name, found in runs.items()} == dict.fromkeys(imports, 1)
    puts = deployment_puts(requests, demo_stack.TARGET_GROUP)
    assert puts == Counter({found[0].deployment_name: 1 for found in runs.values()})
    assert all(
        record.run_id for name in imports for record in target.ports.state.blob_records(name)
    )  # no claim left without its run
    count, sustained, peak = write_rate(requests, limiter)
    assert count == 50
    print(
        f"\n{threads} thread(s): 200 events in {elapsed:.1f} s; {count} ARM writes, "
        f"{sustained:.1f}/s sustained, at most {peak} in one second"
    )


# ---- a burst of HTTP exports ------------------------------------------------------------------------


def test_200_http_exports_with_repeated_keys_make_one_run_per_key_and_one_put_per_run(stack: Stack) -> None:
    limiter = RecordingLimiter()
    source = side(stack, "source", write_limiter=limiter)
    keys = [f"load-{i:02d}" for i in range(50)]
    calls = [(key, f"load/app{i:02d}:v1") for i, key in enumerate(keys)] * 4
    random.Random(4).shuffle(calls)
    since = next_index(stack)

    def post(call: tuple[str, str]) -> tuple[str, int, Any]:
        key, artifact = call
        request = func.HttpRequest(
            "POST",
            "http://localhost:7071/api/exports",
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
            body=json.dumps({"artifacts": [artifact], "targetName": "keyed"}).encode(),
        )
        response = function_app.start_export(request)  # one worker, 8 concurrent invocations
        return key, response.status_code, json.loads(response.get_body())

    with bootstrap.use_service(source.service), ThreadPoolExecutor(8) as pool:
        elapsed, answers = timed(lambda: list(pool.map(post, calls)))
    assert {status for _, status, _ in answers} == {202}, [a for a in answers if a[1] != 202][:3]
    per_key: dict[str, set[tuple[str, ...]]] = {}
    for key, _, body in answers:
        per_key.setdefault(key, set()).add(tuple(run["id"] for run in body["runs"]))
    assert all(len(ids) == 1 for ids in per_key.values()), per_key  # every repeat got the same run
    run_ids = [next(iter(ids))[0] for ids in per_key.values()]
    assert len(set(run_ids)) == 50
    requests = arm_requests(stack, since)
    puts = deployment_puts(requests, demo_stack.SOURCE_GROUP)
    assert puts == Counter({f"acrtransfer-{run_id}": 1 for run_id in run_ids})
    keyed = [
        r for r in source.service.list_runs(kind="export", top=1000) if r.blob and r.blob.startswith("keyed-")
    ]
    assert sorted(r.id for r in keyed) == sorted(run_ids)  # nothing recorded twice
    count, sustained, peak = write_rate(requests, limiter)
    print(
        f"\n200 exports in {elapsed:.1f} s; {count} ARM writes, {sustained:.1f}/s sustained, "
        f"at most {peak} in one second"
    )
