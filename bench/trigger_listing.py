"""Does the source-trigger listing cost more as the registry's pipelineRuns pile up?

Each reconcile tick on an import instance lists the registry's pipelineRuns through ARM to record the runs
the import pipeline's source trigger started (service/source_runs.py). ARM's list of
pipelineRuns takes no `$filter` and no `$top` and promises no order (REST: PipelineRuns_List has only
api-version; azure-mgmt-containerregistry's `pipeline_runs.list(resource_group, registry)` alike), so a
client can only read every page, every time.

On the target side, with no active run: the reconcile timer (function_app.reconcile) timed with FEW (100)
then MANY (5,000) pipelineRuns in the target registry (import runs the benchmark PUTs through ARM, as
other tools and earlier months leave them behind), interleaved with the baseline: the same listing
alone, every page (the ARM adapter's list_pipeline_runs, of another worker: the official SDK's
pipeline_runs.list refuses the API versions the service offers today, below its own 2026-09-01-preview).
Budget: tick MANY / FEW <= 1.2, or the numbers that show why the API makes it impossible; the tick beside
its own listing shows what the app adds to it.

    .venv/bin/python -m bench.trigger_listing [--few 100] [--many 5000] [--repeat 3]   # 2-3 minutes
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import Bench, Results, arm_kinds, bench_stack, describe, function_app, header, median, ms

BUDGET = 1.2


def arm_client(bench: Bench) -> Any:
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    emulator = bench.stack.emulator
    return ResourceManagementClient(
        DefaultAzureCredential(),
        emulator.subscription_id,
        base_url=emulator.arm_endpoint,
        credential_scopes=[emulator.arm_endpoint + "/.default"],
    )


def put_pipeline_runs(bench: Bench, count: int, start: int) -> None:
    """`count` import runs in the target registry, PUT through ARM (each fails at once: no such blob)."""
    settings = bench.target.service.settings
    client = arm_client(bench)
    pipeline_id = settings.pipeline_id("import")

    def put(index: int) -> None:
        body = {
            "properties": {
                "request": {
                    "pipelineResourceId": pipeline_id,
                    "source": {"type": "AzureStorageBlob", "name": f"elsewhere-{index:05d}"},
                },
                "forceUpdateTag": f"bench{index}",
            }
        }
        client.resources.begin_create_or_update_by_id(
            f"{settings.registry_id}/pipelineRuns/benchrun{index:05d}",
            api_version=settings.pipeline_api_version,
            parameters=body,
            polling=False,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(start, start + count)))


def measure(bench: Bench, side: Any, listing: Any, repeat: int) -> dict[str, Any]:
    """Median tick and listing (interleaved) and the ARM and Storage requests of the ticks."""
    app = function_app()
    side.timer(app.reconcile)  # warm
    sum(1 for _ in listing())
    ticks, lists, arm = [], [], []
    with bench.traffic.window() as storage:
        for _ in range(repeat):
            with bench.arm.window() as tick:
                began = time.perf_counter()
                side.timer(app.reconcile)
                ticks.append(time.perf_counter() - began)
            arm += tick
            began = time.perf_counter()
            listed = sum(1 for _ in listing())
            lists.append(time.perf_counter() - began)
    return {
        "tick": median(ticks),
        "list": median(lists),
        "listed": listed,
        "arm per tick": len(arm) / repeat,
        "kinds": arm_kinds(arm),
        "storage": storage,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    header(f"the source-trigger listing: {args.few} vs {args.many} pipelineRuns in the registry")
    results = Results("trigger_listing")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        bench.admin.configure(run_seconds=0)
        target = bench.side("target")
        listing = bench.side("target").ports.arm.list_pipeline_runs  # another worker's adapter

        page_size = int(bench.admin.config()["page_size"])
        put_pipeline_runs(bench, args.few, 0)
        few = measure(bench, target, listing, max(args.repeat, 5))
        began = time.perf_counter()
        put_pipeline_runs(bench, args.many - args.few, args.few)
        results.info(f"{args.many - args.few} more runs PUT in {time.perf_counter() - began:.0f} s (setup)")
        many = measure(bench, target, listing, args.repeat)
        for size, m in ((args.few, few), (args.many, many)):
            pages_of = f"{math.ceil(size / page_size)} pages of {page_size}"
            results.info(
                f"{size} runs ({m['listed']} listed, {pages_of}): tick {ms(m['tick'])}, "
                f"listing alone {ms(m['list'])}: tick / listing x{m['tick'] / m['list']:.2f}"
            )
            results.info(
                f"  ARM per tick {m['arm per tick']:g} (all ticks: {dict(m['kinds'])}); "
                f"Storage (ticks and listings) {describe(m['storage'])}"
            )
        pages = math.ceil(args.many / page_size)
        results.info(
            f"per page at {args.many} runs: {ms(many['list'] / pages)} (at {args.few}: "
            f"{ms(few['list'] / math.ceil(args.few / page_size))}): the emulator filters every resource it "
            "holds for each page, so its pages slow a little as runs grow; ARM's cost per page is unknown"
        )
        results.info(
            f"RATIO bare listing, {args.many} / {args.few} runs: x{many['list'] / few['list']:.2f} "
            "(what any client of this API pays)"
        )
        results.budget(
            f"reconcile tick, {args.many} / {args.few} runs in the registry",
            many["tick"] / few["tick"],
            BUDGET,
        )
        results.budget(
            f"ARM calls per tick, {args.many} / {args.few} runs in the registry",
            many["arm per tick"] / few["arm per tick"],
            BUDGET,
        )
        results.budget(
            f"tick / its bare listing, at {args.many} runs (what the app adds to the API's cost)",
            many["tick"] / many["list"],
            BUDGET,
        )
    results.summary()


if __name__ == "__main__":
    main()
