"""The dashboard page against the API reads it needs, on a target side with many runs and blobs.

The target side's state table gets RUNS run records (exports and imports over 40 days, every status, some
failed with a cause and hint, imports with each verification) and its watched container BLOBS blobs as the
copy step leaves them; the app's clock then runs 59.5 days ahead, so every blob is past the margin and the
page's blobs each cost their decision's reads (blob records, source-trigger evidence), the dearest case.

    page:     GET /api/dashboard through function_app (a warm worker), the HTML rendered;
    baseline: what the page reads, through the API's own use cases: GET /api/health, GET /api/runs?top=1000
              (the counts' read), GET /api/runs?top=51 (the page of runs), one page of the container
              listing (50 blobs with metadata) and GET /api/blobs/{name} for each blob on it.

Interleaved, medians of REPEAT. Budget: page <= 2 x baseline. Storage requests of each are counted: the
page's must not grow with RUNS or BLOBS (it pages).

    .venv/bin/python -m bench.dashboard [--runs 20000] [--blobs 10000] [--repeat 5]   # about 5 minutes
"""

from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import azure.functions as func

from bench.common import Bench, Results, bench_stack, describe, function_app, header, median, ms, once
from bench.sweep import upload
from transfer.domain import naming
from transfer.domain.causes import ARTIFACT_MISSING, SAS_EXPIRED
from transfer.domain.manifests import Verification
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.entrypoints import http_api
from transfer.service.dashboard import RUNS_PAGE, TALLY_RUNS
from transfer.service.dashboard_blobs import BLOBS_PAGE

BUDGET = 2.0
STATUSES = [RunStatus.SUCCEEDED] * 8 + [RunStatus.FAILED, RunStatus.CANCELED]


def a_run(index: int, now: Any, rng: random.Random) -> Run:
    created = now - timedelta(days=40) * rng.random()
    kind = RunKind.IMPORT if index % 2 else RunKind.EXPORT
    status = STATUSES[index % len(STATUSES)]
    run_id = naming.run_id(kind, created, f"{index:06x}")
    cause = (SAS_EXPIRED if index % 3 else ARTIFACT_MISSING) if status is RunStatus.FAILED else None
    verification = None
    if kind is RunKind.IMPORT and status is RunStatus.SUCCEEDED:
        verification = list(Verification)[index % 4]
    return Run(
        id=run_id,
        kind=kind,
        trigger=Trigger.HTTP,
        status=status,
        created_at=created,
        updated_at=created,
        request_id=f"bench{index}",
        deployment_name=naming.deployment_name(run_id),
        artifacts=(f"team/app{index % 50}:v{index}",) if kind is RunKind.EXPORT else (),
        blob=f"dashbench-{index % 10_000:05d}" if kind is RunKind.IMPORT else None,
        error=f"run failed: {cause.code}" if cause else None,
        error_cause=cause.code if cause else None,
        hint=cause.hint if cause else None,
        verification=verification,
        verification_detail="not imported: team/app:v1" if verification is Verification.FAILED else None,
        finished_at=created,
        cleaned_up=True,  # terminal and cleaned up: no index row, one write each
    )


def record_runs(bench: Bench, count: int) -> None:
    state, now, rng = bench.target.ports.state, bench.stack.clock(), random.Random(25)
    runs = [a_run(index, now, rng) for index in range(count)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(state.add_run, runs))


def page(side: Any) -> str:
    request = func.HttpRequest("GET", "http://localhost:7072/api/dashboard", params={}, body=b"")
    with side.active():
        response = function_app().dashboard(request)
    assert response.status_code == 200, response.get_body()[:500]
    return str(response.get_body().decode())


def api_reads(side: Any) -> None:
    """The reads the page needs, each through the API as a script would call it."""

    def get(route: str, params: dict[str, str] | None = None, **route_params: str) -> Any:
        request = http_api.ApiRequest(
            "GET", f"http://localhost:7072/api/{route}", {}, params or {}, route_params
        )
        function = http_api.route("GET", f"/api/{route}")
        assert function is not None
        answer = http_api.serve(function[0], request, lambda: side.service)
        assert answer.status in (200, 503), answer.body
        return answer.body

    get("health")
    get("runs", {"top": str(TALLY_RUNS)})
    get("runs", {"top": str(RUNS_PAGE + 1)})
    listed, _ = side.ports.blobs.blob_page(None, BLOBS_PAGE)
    for blob in listed:
        get(f"blobs/{blob.name}", name=blob.name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--blobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    header(f"the dashboard page vs the API reads it needs: {args.runs} runs, {args.blobs} blobs")
    results = Results("dashboard")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        seconds, _ = once(
            lambda: (record_runs(bench, args.runs), upload(bench, args.blobs, prefix="dashbench-"))
        )
        results.info(f"{args.runs} runs recorded, {args.blobs} blobs uploaded in {seconds:.0f} s (setup)")
        bench.advance_clock(days=59, hours=12)  # every blob past the margin: each decision reads state
        target = bench.target
        size = len(page(target))  # warm: the pipeline cached, as on any worker that served a request
        api_reads(target)
        pages, reads = [], []
        with bench.traffic.window() as page_requests:
            for _ in range(args.repeat):
                began = time.perf_counter()
                page(target)
                pages.append(time.perf_counter() - began)
        with bench.traffic.window() as read_requests:
            for _ in range(args.repeat):
                began = time.perf_counter()
                api_reads(target)
                reads.append(time.perf_counter() - began)
        for _ in range(args.repeat):  # interleaved too, so a stall of the machine falls on both
            began = time.perf_counter()
            page(target)
            pages.append(time.perf_counter() - began)
            began = time.perf_counter()
            api_reads(target)
            reads.append(time.perf_counter() - began)
        results.info(f"page: {size // 1024} KiB of HTML, median {ms(median(pages))}")
        results.info(f"  its requests per page: {describe(page_requests)} / {args.repeat}")
        results.info(f"API reads: median {ms(median(reads))}")
        results.info(f"  their requests per set: {describe(read_requests)} / {args.repeat}")
        results.budget("page / the API reads it needs", median(pages) / median(reads), BUDGET)
    results.summary()


if __name__ == "__main__":
    main()
