"""ARM calls per unit of work, counted from the emulator's request log (admin API `requests`).

The story of 100 exports, through the app's real functions on both sides (demo/stack.py: Azurite and the
emulator; nothing but 127.0.0.1):
1. 100 `POST /api/exports` (one artifact each): ARM writes per run started (budget 1, the deployment PUT);
2. the reconcile timer on the source side until every run finished and its copy settled: ARM reads per
   active run in each tick (budget 2: the deployment and the pipelineRun; the export pipeline, which the
   copy step and the manifest need, is read at most once per tick, cached 5 minutes);
3. each exported blob copied to the watched container by the app's copy step, and its blob event on the
   target side (all fresh: left to the source trigger): ARM calls per event (budget 0 on a warm worker);
4. the emulator's source trigger imports them; the target's reconcile timer records and follows those
   runs; then ticks with no active run: ARM calls per tick (budget: one paged listing of the registry's
   pipelineRuns, nothing per run), at the emulator's page size and again at a page size of 10;
5. 73 hours later, the reconcile timer's cleanup: ARM calls per run (budget 2: the pipelineRun's and the
   deployment's DELETE).

    .venv/bin/python -m bench.arm_calls [--runs 100]      # about a minute
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from bench.common import (
    Bench,
    Results,
    arm_kinds,
    bench_stack,
    function_app,
    header,
    reads,
    wait_until,
    writes,
)

PER_RUN = {"GET deployment", "GET pipelineRun"}
REPOS = [f"bulk/svc{i:02d}:v1" for i in range(60)] + ["samples/hello-world:v1", "samples/nginx:1.27"]


def kinds_text(requests: list[dict[str, Any]]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(arm_kinds(requests).items())) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    header(f"ARM calls per run, per tick and per blob event ({args.runs} exports)")
    results = Results("arm_calls")
    with bench_stack(run_seconds=0.2) as bench:
        story(bench, results, args.runs)
    results.summary()


def story(bench: Bench, results: Results, count: int) -> None:
    app = function_app()
    source = bench.side("source", copy=True)  # a fresh worker: nothing cached; the copy step on
    admin = bench.admin

    # 1. starting the runs
    def start(i: int) -> list[str]:
        body = {"artifacts": [REPOS[i % len(REPOS)]], "targetName": "armbench"}
        status, answer = source.http(app.start_export, "POST", "exports", body)
        assert status == 202, answer
        return [r["id"] for r in answer["runs"]]

    with bench.arm.window() as first:
        ids = start(0)
    with bench.arm.window() as started:
        for i in range(1, count):
            ids += start(i)
    results.info(
        f"{count} POST /api/exports -> {len(ids)} runs; ARM of the first on a fresh worker: "
        f"{kinds_text(first)} (the pipeline checked before anything is recorded, cached 5 minutes); "
        f"of the other {count - 1}: {kinds_text(started)}"
    )
    results.budget(
        "ARM writes per export run started", (writes(first) + writes(started)) / len(ids), 1, unit=""
    )
    results.budget(
        "ARM reads per export run started (warm worker)", reads(started) / (len(ids) - 1), 0, unit=""
    )
    results.budget("ARM reads of the first export on a fresh worker", reads(first), 1, unit="")

    # 2. reconcile ticks on the source side
    worst, ticks, total_reads, total_active, tick_writes, pipeline_reads = 0.0, 0, 0, 0, 0, 0
    vault_reads = 0
    deadline = time.monotonic() + 180
    while True:
        active = [r for r in source.ports.state.active_runs() if not r.status.terminal]
        following = len(source.ports.state.active_runs())
        with bench.arm.window() as tick, bench.traffic.window() as tick_traffic:
            source.timer(app.reconcile)
        vault_reads = max(vault_reads, tick_traffic[("keyvault", "GET")])
        ticks += 1
        per_run = [r for r in tick if r["method"] == "GET" and arm_kinds([r]).keys() & PER_RUN]
        pipeline_reads = max(pipeline_reads, reads(tick) - len(per_run))
        if active:
            worst = max(worst, len(per_run) / len(active))
            total_reads += len(per_run)
            total_active += len(active)
        if ticks <= 3 or not active:
            results.info(
                f"source tick {ticks}: {len(active)} runs active in ARM, {following} followed (copies too); "
                f"ARM: {kinds_text(tick)}"
            )
        tick_writes += writes(tick)
        if following == 0:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the exports did not finish")
        time.sleep(0.3)
    runs = [source.service.get_run(i) for i in ids]
    succeeded = [r for r in runs if r.status.value == "Succeeded"]
    results.info(
        f"{ticks} ticks until all {len(runs)} runs finished ({len(succeeded)} succeeded) and their copies "
        f"settled; ARM reads of deployments and pipelineRuns per active run and tick: mean "
        f"{total_reads / max(total_active, 1):.2f}, worst {worst:.2f}"
    )
    results.budget("ARM reads per active run per reconcile tick (worst tick)", worst, 2, unit="")
    results.budget(
        "other ARM reads per tick (the export pipeline, for the copy and manifest; cached 5 minutes)",
        pipeline_reads,
        1,
        unit="",
    )
    results.budget("ARM writes of those reconcile ticks (nothing to clean up yet)", tick_writes, 0, unit="")
    results.budget(
        f"Key Vault reads of a tick that copies up to {len(ids)} runs and writes their manifests (worst)",
        vault_reads,
        1,
        unit="",
    )

    # 3. blob events on the target side: every copied blob is fresh, left to the source trigger
    copied = [r.blob for r in succeeded if r.blob and r.copy_status and r.copy_status.value == "success"]
    results.info(f"{len(copied)} exported blobs copied to the watched container by the app's copy step")
    target = bench.side("target")  # a fresh worker
    outcomes = bench.outcomes
    outcomes.clear()
    with bench.arm.window() as first:
        target.blob_event(app, bench.stack, copied[0])
    with bench.arm.window() as warm:
        for name in copied[1:]:
            target.blob_event(app, bench.stack, name)
    left = outcomes.count("leave")
    results.info(
        f"{len(copied)} blob events, {left} left to the source trigger; first event on a fresh worker: "
        f"ARM {kinds_text(first)} (the import pipeline, cached 5 minutes); the other {len(copied) - 1}: "
        f"ARM {kinds_text(warm)}"
    )
    results.budget(
        "ARM calls per blob left to the source trigger (warm worker)",
        len(warm) / (len(copied) - 1),
        0,
        unit="",
    )
    results.budget("ARM calls of the first blob event on a fresh worker", len(first), 1, unit="")

    # 4. the source trigger's runs, recorded and followed by the target's reconcile
    admin.scan_source_trigger()
    adopted: list[Any] = []

    def all_recorded() -> bool:
        target.timer(app.reconcile)
        adopted[:] = [
            r for r in target.service.list_runs(kind="import", top=1000) if r.trigger.value == "source"
        ]
        return len(adopted) >= len(copied) and all(r.status.terminal for r in adopted)

    wait_until(all_recorded, "the source trigger's runs to be recorded and finish", timeout=180, every=0.5)
    results.info(f"target: {len(adopted)} source-trigger runs recorded and finished")
    idle_ticks = []
    for _ in range(3):
        with bench.arm.window() as tick:
            target.timer(app.reconcile)
        idle_ticks.append(tick)
    page_size = int(admin.config()["page_size"])
    in_registry = len(adopted)
    pages = math.ceil(in_registry / page_size)
    worst_idle = max(len(t) for t in idle_ticks)
    non_list = max(
        sum(1 for r in t if not r["path"].lower().rstrip("/").endswith("/pipelineruns")) for t in idle_ticks
    )
    results.info(
        f"target tick, no active run ({in_registry} runs in the registry, page size {page_size}): "
        f"ARM {kinds_text(idle_ticks[-1])}"
    )
    results.budget("ARM calls of a tick with no active run / pages of one listing", worst_idle / pages, 1)
    results.budget("ARM calls per tick that are not listing pages (per-run reads)", non_list, 0, unit="")
    admin.configure(page_size=10)
    try:
        with bench.arm.window() as small_pages:
            target.timer(app.reconcile)
    finally:
        admin.configure(page_size=page_size)
    results.info(
        f"same tick at page size 10: ARM {kinds_text(small_pages)} (ceil({in_registry}/10) = "
        f"{math.ceil(in_registry / 10)} pages)"
    )
    results.budget(
        "ARM calls of an idle tick at page size 10 / pages of one listing",
        len(small_pages) / math.ceil(in_registry / 10),
        1,
    )

    # a new worker of the target: what it recorded is learnt from one index read, not one read per run
    with bench.traffic.window() as warm_storage:
        target.timer(app.reconcile)
    fresh = bench.side("target")
    with bench.traffic.window() as first_storage:  # its tables opened too: POSTs, not counted here
        fresh.timer(app.reconcile)
    warm_gets, fresh_gets = warm_storage[("table", "GET")], first_storage[("table", "GET")]
    results.info(
        f"a new target worker's first tick with {len(adopted)} source-trigger runs recorded: Table GET "
        f"{fresh_gets} (a warm worker's tick: {warm_gets})"
    )
    results.budget(
        f"Table reads a new worker's first tick adds to a warm one's ({len(adopted)} runs recorded)",
        fresh_gets - warm_gets,
        1,
        unit="",
    )

    # 5. cleanup after the retention
    bench.advance_clock(hours=73)
    with bench.arm.window() as cleanup:
        source.timer(app.reconcile)
    owned = [r for r in runs if r.owned]
    deletes = [r for r in cleanup if r["method"] == "DELETE"]
    cleaned = sum(1 for i in ids if source.service.get_run(i).cleaned_up)
    results.info(f"cleanup 73 h later: {cleaned} of {len(owned)} runs cleaned up; ARM {kinds_text(cleanup)}")
    results.budget("ARM deletes per finished run at cleanup", len(deletes) / len(owned), 2, unit="")
    results.budget(
        "ARM calls per finished run at cleanup (its 2 deletes)", len(cleanup) / len(owned), 2, unit=""
    )


if __name__ == "__main__":
    main()
