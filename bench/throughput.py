"""Throughput: blob events handled by a pool of 8 threads, against Azurite and the emulator.

The target side's blob trigger (function_app.on_target_blob, a BlobClient per event as the host gives it,
one warm worker shared by the 8 threads as the Python worker shares one process) handles EVENTS events
of each kind:
- fresh: blobs as the copy step leaves them (Content-MD5, category metadata): left to the source trigger;
  no ARM write. Baseline: the same pool reading each blob's properties once (the least any handler does).
- manual import: blobs without the category metadata (a copy that lost it): the source trigger can never
  take them, so each event claims the blob and deploys an import run: one ARM write each. Baseline: the
  same pool sending as many bare deployment PUTs of the import-run template (the app's ARM adapter).
Reported: events per second and ARM writes per second, each beside its baseline as a ratio, and the
Table requests per event. The emulator's source trigger is told not to scan on its own (it would list the
container and start runs of its own); its deployment limit is raised for the thousands of deployments.

    .venv/bin/python -m bench.throughput [--events 1000] [--threads 8]      # 2 to 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import Bench, Results, bench_stack, by_service, describe, function_app, header, ms, writes
from demo import stack as demo_stack
from transfer import bootstrap
from transfer.adapters import templates
from transfer.domain import naming
from transfer.domain.arm_views import run_parameters
from transfer.domain.runs import RunKind
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE


def upload(bench: Bench, names: list[str], category: bool) -> None:
    from azure.storage.blob import BlobServiceClient, ContentSettings

    container = BlobServiceClient.from_connection_string(
        bench.stack.connection_string(demo_stack.TARGET_ACCOUNT)
    ).get_container_client(demo_stack.TARGET_CONTAINER)

    def put(name: str) -> None:
        data = f"transfer blob {name}".encode()
        container.upload_blob(
            name,
            data,
            metadata={CATEGORY_KEY: CATEGORY_VALUE} if category else {"owner": "bench"},
            content_settings=ContentSettings(
                content_type="application/json", content_md5=hashlib.md5(data, usedforsecurity=False).digest()
            ),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, names))


def pooled(threads: int, items: list[Any], work: Callable[[Any], None]) -> tuple[float, list[float]]:
    """Wall seconds for the pool to do `work` on every item, and each item's latency."""
    latencies: list[float] = [0.0] * len(items)

    def one(index: int) -> None:
        began = time.perf_counter()
        work(items[index])
        latencies[index] = time.perf_counter() - began

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(len(items))))
    return time.perf_counter() - began, latencies


def spread(latencies: list[float]) -> str:
    tenth = max(1, len(latencies) // 10)
    first, last = statistics.median(latencies[:tenth]), statistics.median(latencies[-tenth:])
    return (
        f"latency median {ms(statistics.median(latencies))}, first tenth {ms(first)}, last tenth {ms(last)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    header(f"throughput: {args.events} blob events of each kind on {args.threads} threads")
    results = Results("throughput")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        bench.admin.configure(
            deployment_limit=10_000, deployment_cleanup_above=9_000, deployment_cleanup_to=8_000
        )
        run(bench, results, args.events, args.threads)
    results.summary()


def run(bench: Bench, results: Results, events: int, threads: int) -> None:
    from azure.storage.blob import BlobClient

    app = function_app()
    target = bench.side("target")
    target.service.pipeline("import")  # a warm worker
    connection = bench.stack.connection_string(demo_stack.TARGET_ACCOUNT)
    fresh = [f"fresh-{i:05d}" for i in range(events)]
    lacking = [f"nocategory-{i:05d}" for i in range(events)]
    upload(bench, fresh, category=True)
    upload(bench, lacking, category=False)
    results.info(f"{2 * events} blobs uploaded (setup)")

    def event(name: str) -> None:
        app.on_target_blob(BlobClient.from_connection_string(connection, demo_stack.TARGET_CONTAINER, name))

    def properties(name: str) -> None:
        BlobClient.from_connection_string(connection, demo_stack.TARGET_CONTAINER, name).get_blob_properties()

    settings = target.service.settings
    template = templates.load(templates.IMPORT_RUN)
    tokens = iter(range(1, 10_000_000))

    def bare_put(name: str) -> None:
        run_id = naming.run_id(RunKind.IMPORT, target.clock(), f"p{next(tokens):05x}")
        parameters = run_parameters(
            "import",
            registry=settings.registry,
            run_name=run_id,
            pipeline_id=settings.pipeline_id("import"),
            force_update_tag=naming.force_update_tag(run_id),
            blob=name,
        )
        target.ports.arm.begin_deployment(naming.deployment_name(run_id), template, parameters)

    with bootstrap.use_service(target.service):
        base_seconds, _ = pooled(threads, fresh, properties)
        with bench.arm.window() as arm, bench.traffic.window() as storage:
            seconds, latencies = pooled(threads, fresh, event)
        leave_rate, base_rate = events / seconds, events / base_seconds
        results.info(
            f"fresh blobs: {leave_rate:.0f} events/s ({seconds:.1f} s), ARM writes {writes(arm)}; "
            f"baseline (properties read) {base_rate:.0f}/s; {spread(latencies)}"
        )
        results.info(
            f"  per event: {by_service(storage, 'table') / events:.2f} Table, "
            f"{by_service(storage, 'blob') / events:.2f} Blob requests ({describe(storage)})"
        )
        results.info(f"RATIO fresh-blob events/s / properties reads/s: x{leave_rate / base_rate:.3f}")

        bare_count = max(100, events // 5)
        bare_seconds, _ = pooled(threads, lacking[:bare_count], bare_put)
        bare_rate = bare_count / bare_seconds
        with bench.arm.window() as arm, bench.traffic.window() as storage:
            seconds, latencies = pooled(threads, lacking, event)
        import_rate, arm_rate = events / seconds, writes(arm) / seconds
        results.info(
            f"manual imports: {import_rate:.0f} events/s ({seconds:.1f} s), {writes(arm)} ARM writes = "
            f"{arm_rate:.0f} ARM writes/s; baseline {bare_count} bare deployment PUTs on the same pool: "
            f"{bare_rate:.0f}/s; {spread(latencies)}"
        )
        results.info(
            f"  per event: {by_service(storage, 'table') / events:.2f} Table, "
            f"{by_service(storage, 'blob') / events:.2f} Blob requests, {len(arm) / events:.2f} ARM "
            f"({describe(storage)})"
        )
        results.info(
            f"RATIO manual-import ARM writes/s / bare deployment PUTs/s: x{arm_rate / bare_rate:.3f}"
        )
        imports = [r for r in target.service.list_runs(kind="import", top=1000) if r.trigger.value == "blob"]
        results.info(
            f"  import runs recorded by the events: {len(imports)}{'+' if len(imports) == 1000 else ''}"
        )


if __name__ == "__main__":
    main()
