"""Incremental export: expanding a selector over a registry of 2,000 tags, against listing those tags.

The source registry gets REPOS repositories `bench/svcNN` of TAGS tags each (2,000 tags), beside the
demo's 62 repositories. The selector `bench/*:*` matches all 2,000. On the source side
(TRANSFER_EXPORT_MAX_ARTIFACTS raised to fit):

    baseline: the same tags listed through the data plane with azure-containerregistry's
              ContainerRegistryClient against the emulator's registry endpoint
              (RunningEmulator.registry_endpoint): the catalog, then every matching repository's tags, at
              the app's page size.
    1st run:  POST /api/exports {"artifacts": ["bench/*:*"], "incremental": true} (function_app): 40 runs
              of 50; the reconcile timer until they succeed (the export ledger is written on success).
    2nd run:  the same request with nothing changed: budget, no run started, and its time (the selector
              expanded, the ledger read) <= 1.2 x the baseline.
    retag:    one tag gets a new image (admin retag); the next request exports that tag alone.
Beside them, the expansion alone (the service's selector expansion, called inside the service: no
public entry point does only that), so the ledger's share shows. Baseline, 2nd run and expansion are
timed interleaved, REPEAT each, medians compared; data-plane, Table and ARM requests are counted.

    .venv/bin/python -m bench.incremental [--repos 20] [--tags 100] [--repeat 5]   # about a minute
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import (
    Bench,
    Results,
    bench_stack,
    by_service,
    describe,
    function_app,
    header,
    median,
    ms,
    timed,
    wait_until,
)
from demo import stack as demo_stack

BUDGET = 1.2
SELECTOR = "bench/*:*"


def registry_client(bench: Bench) -> Any:
    from azure.containerregistry import ContainerRegistryClient
    from azure.identity import DefaultAzureCredential

    settings = bench.source.service.settings
    return ContainerRegistryClient(
        bench.stack.emulator.registry_endpoint(demo_stack.SOURCE_REGISTRY),
        DefaultAzureCredential(),
        audience=settings.cloud.registry_audience,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--tags", type=int, default=100, help="tags per repository")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    total = args.repos * args.tags
    header(f"incremental export: selector {SELECTOR} over {total} tags vs listing them")
    results = Results("incremental")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        measure(bench, results, args.repos, args.tags, args.repeat)
    results.summary()


def measure(bench: Bench, results: Results, repos: int, tags: int, repeat: int) -> None:
    from transfer.adapters.registry import PAGE_SIZE
    from transfer.domain.artifacts import parse_artifacts
    from transfer.service.selecting import Selecting

    app = function_app()
    total = repos * tags
    content = {f"bench/svc{r:02d}": {f"v{t:04d}": None for t in range(tags)} for r in range(repos)}
    bench.admin.add_repositories(demo_stack.SOURCE_REGISTRY, content)
    # Referrers are left out here: their discovery (one ListReferrers call per image, also per skipped
    # image) is measured on its own by bench.referrers; this one measures the expansion and the ledger.
    source = bench.side(
        "source", TRANSFER_EXPORT_MAX_ARTIFACTS=str(max(total, 500)), TRANSFER_EXPORT_REFERRERS="none"
    )
    if not hasattr(source.service, "start_export") or source.ports.registry is None:
        results.info("the app side is missing: no registry adapter in the service (issue 12)")
    client = registry_client(bench)

    def listing() -> int:
        names = [
            n for n in client.list_repository_names(results_per_page=PAGE_SIZE) if n.startswith("bench/")
        ]
        return sum(1 for name in names for _ in client.list_tag_properties(name, results_per_page=PAGE_SIZE))

    assert listing() == total  # warm: the token exchange done once

    body = {"artifacts": [SELECTOR], "incremental": True, "targetName": "incr"}

    def export() -> tuple[int, Any]:
        return source.http(app.start_export, "POST", "exports", body)

    with bench.arm.window() as arm, bench.traffic.window() as storage:
        began = time.perf_counter()
        status, first = export()
        seconds = time.perf_counter() - began
    assert status == 202, first
    runs = first["runs"]
    results.info(
        f"1st run: {status}, {len(runs)} runs of {sum(len(r['artifacts']) for r in runs)} artifacts in "
        f"{ms(seconds)}; requests {describe(storage)}; ARM {len(arm)}"
    )
    ids = [r["id"] for r in runs]

    def all_succeeded() -> bool:
        source.timer(app.reconcile)
        return all(source.service.get_run(i).status.value == "Succeeded" for i in ids)

    wait_until(all_succeeded, "the first export's runs to succeed", timeout=180, every=0.5)
    warnings = {source.service.get_run(i).warning for i in ids} - {None}
    results.info(f"1st run's {len(ids)} runs succeeded; warnings: {sorted(warnings) or 'none'}")

    second: list[Any] = []

    def again() -> None:
        status, answer = export()
        second.append((status, answer))

    # the expansion alone (no public entry point does it), over the side's own adapters
    selecting = Selecting(source.settings, source.ports.registry, source.ports.state)
    items = parse_artifacts([SELECTOR], selectors=True)

    def expand() -> None:
        selecting.select(items, incremental=False, strict=True)

    again()  # warm
    expand()
    samples: dict[str, list[float]] = {"listing": [], "again": [], "expand": []}
    counts: dict[str, Any] = {}
    for _ in range(repeat):  # interleaved: a busy moment of the machine hits all three alike
        for name, call in (("listing", listing), ("again", again), ("expand", expand)):
            with bench.arm.window() as arm, bench.traffic.window() as storage:
                samples[name] += timed(call, 1)
            counts[name] = (storage, arm)
    baseline, incremental, expansion = (median(samples[k]) for k in ("listing", "again", "expand"))
    results.info(
        f"baseline: {total} tags listed through the data plane in {ms(baseline)}; "
        f"requests {describe(counts['listing'][0])}"
    )
    statuses = {s for s, _ in second}
    started = max(len(a["runs"]) for _, a in second)
    skipped = min(len(a.get("skipped", [])) for _, a in second)
    storage, arm = counts["again"]
    results.info(
        f"2nd run, nothing changed: {sorted(statuses)}, {started} runs, {skipped} skipped, "
        f"in {ms(incremental)}; requests {describe(storage)}; ARM {len(arm)}"
    )
    results.info(f"expansion alone: {ms(expansion)}; requests {describe(counts['expand'][0])}")
    results.info(
        f"the ledger's share of the 2nd run: {ms(incremental - expansion)}, "
        f"{by_service(storage, 'table')} Table request(s) for {repos} repositories, read during the listing"
    )

    bench.admin.retag(demo_stack.SOURCE_REGISTRY, "bench/svc07", "v0042")
    status, third = export()
    results.info(
        f"after a retag of bench/svc07:v0042: {status}, {len(third['runs'])} run(s) of "
        f"{[a for r in third['runs'] for a in r['artifacts']]}, {len(third.get('skipped', []))} skipped"
    )

    results.budget("2nd incremental run, nothing changed: runs started", started, 0, unit="")
    results.budget(
        "2nd incremental run (expansion + ledger) / data-plane listing", incremental / baseline, BUDGET
    )
    results.budget("selector expansion alone / data-plane listing", expansion / baseline, BUDGET)
    results.budget("runs started after one tag moved", len(third["runs"]), 1, unit="")


if __name__ == "__main__":
    main()
