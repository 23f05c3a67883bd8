"""The sweep: applying the 60-day rule to a container of many blobs, against listing that container.

Azurite's target account gets BLOBS blobs in the watched container, each as the copy step leaves it
(Content-MD5, `category=acr-transfer-blob`) and fresh: none needs an action. The emulator's source
trigger is told to stop scanning on its own, so its listings do not compete. Then, on the target side:

    baseline: the watched container listed with metadata (the app's AzureBlobStore.list_blobs, the
              listing the sweep itself starts with), median of a few;
    sweep:    TransferService.sweep() (the sweep_stale_blobs timer's work) with no blob records yet (the
              first sweep after the blobs arrived without their events), and with --second once more
              (every later day: the records of the first kept).

Budget: sweep <= 1.3 x baseline, with no request per blob that needs no action. Every request the app
sends to Azurite (Blob and Table) and to ARM is counted, by service and method.

    .venv/bin/python -m bench.sweep [--blobs 10000] [--second]   # 5 minutes on 2 cores, 8 with --second
"""

from __future__ import annotations

import argparse
import hashlib
from concurrent.futures import ThreadPoolExecutor

from bench.common import Bench, Results, bench_stack, by_service, describe, header, median, ms, once, timed
from demo import stack as demo_stack
from transfer.blobs import AzureBlobStore
from transfer.config import StorageConnection
from transfer.staleness import CATEGORY_KEY, CATEGORY_VALUE

BUDGET = 1.3


def upload(bench: Bench, count: int) -> None:
    from azure.storage.blob import BlobServiceClient, ContentSettings

    container = BlobServiceClient.from_connection_string(
        bench.stack.connection_string(demo_stack.TARGET_ACCOUNT)
    ).get_container_client(demo_stack.TARGET_CONTAINER)

    def put(index: int) -> None:
        data = f"transfer blob {index}".encode()
        container.upload_blob(
            f"sweepbench-{index:05d}",
            data,
            metadata={CATEGORY_KEY: CATEGORY_VALUE},
            content_settings=ContentSettings(
                content_type="application/json", content_md5=hashlib.md5(data, usedforsecurity=False).digest()
            ),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(count)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="listings timed for the baseline")
    parser.add_argument(
        "--second", action="store_true", help="sweep once more, with the records of the first (twice as long)"
    )
    args = parser.parse_args()
    header(f"sweep of {args.blobs} blobs vs listing them with metadata")
    results = Results("sweep")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        seconds, _ = once(lambda: upload(bench, args.blobs))
        results.info(f"{args.blobs} fresh blobs uploaded in {seconds:.1f} s (setup, not measured)")
        store = AzureBlobStore(
            StorageConnection(
                "TransferStorage", connection_string=bench.stack.connection_string(demo_stack.TARGET_ACCOUNT)
            ),
            demo_stack.TARGET_CONTAINER,
        )
        listed = sum(1 for _ in store.list_blobs())
        assert listed == args.blobs, listed
        with bench.traffic.window() as listing_requests:
            listing = median(timed(lambda: sum(1 for _ in store.list_blobs()), args.repeat))
        per_listing = sum(listing_requests.values()) / args.repeat
        results.info(f"baseline, one listing with metadata: {ms(listing)} ({per_listing:g} requests: pages)")

        target = bench.side("target")
        target.service.pipeline("import")  # a warm worker: the pipeline cached, as after any event
        labels = ["first sweep (no blob records yet)"] + (
            ["second sweep (records kept)"] if args.second else []
        )
        for label in labels:
            with bench.arm.window() as arm, bench.traffic.window() as storage:
                seconds, report = once(target.service.sweep)
            table, blob = by_service(storage, "table"), by_service(storage, "blob")
            results.info(
                f"{label}: {seconds:.2f} s, outcomes {dict(report.counts)}, errors {len(report.errors)}; "
                f"requests: {describe(storage)}; ARM {len(arm)}"
            )
            results.info(
                f"  per blob: {table / args.blobs:.2f} Table requests, "
                f"{(blob - per_listing) / args.blobs:.2f} Blob requests beyond the listing's pages"
            )
            results.budget(f"{label} / listing", seconds / listing, BUDGET)
            results.budget(
                f"{label}: requests per blob needing no action (beyond the listing)",
                (table + blob - per_listing + len(arm)) / args.blobs,
                0,
                unit="",
            )
    results.summary()


if __name__ == "__main__":
    main()
