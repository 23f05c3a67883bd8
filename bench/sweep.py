"""The sweep: applying the 60-day rule to a container of many blobs, against listing that container.

Azurite's target account gets BLOBS blobs in the watched container, each as the copy step leaves it
(Content-MD5, `category=acr-transfer-blob`) and fresh: none needs an action. The emulator's source
trigger is told to stop scanning on its own, so its listings do not compete. Then, on the target side:

    baseline: the watched container listed with metadata (the app's AzureBlobStore.list_blobs, the
              listing the sweep itself starts with), median of a few;
    sweep:    TransferService.sweep() (the sweep_stale_blobs timer's work), twice: the first after the
              blobs arrived without their events, then the next day's (whatever the first recorded kept).

Budget: sweep <= 1.3 x baseline, with no request per blob that needs no action. Every request the app
sends to Azurite (Blob and Table) and to ARM is counted, by service and method. Last, ACTION blobs that
need action (no category metadata: a manual import each) are added and swept, to show what those cost.

    .venv/bin/python -m bench.sweep [--blobs 10000] [--action 50]   # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
from concurrent.futures import ThreadPoolExecutor

from bench.common import (
    Bench,
    Results,
    arm_kinds,
    bench_stack,
    by_service,
    describe,
    header,
    median,
    ms,
    once,
    timed,
)
from demo import stack as demo_stack
from transfer.adapters.blobs import AzureBlobStore
from transfer.domain.settings import StorageConnection
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE

BUDGET = 1.3


def upload(bench: Bench, count: int, *, category: bool = True, prefix: str = "sweepbench-") -> None:
    from azure.storage.blob import BlobServiceClient, ContentSettings

    container = BlobServiceClient.from_connection_string(
        bench.stack.connection_string(demo_stack.TARGET_ACCOUNT)
    ).get_container_client(demo_stack.TARGET_CONTAINER)

    def put(index: int) -> None:
        data = f"transfer blob {index}".encode()
        container.upload_blob(
            f"{prefix}{index:05d}",
            data,
            metadata={CATEGORY_KEY: CATEGORY_VALUE} if category else {"owner": "bench"},
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
    parser.add_argument("--action", type=int, default=50, help="blobs needing action, added for a last sweep")
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
        for label in ("first sweep", "second sweep (the next day's: whatever the first recorded, kept)"):
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
        if args.action:
            upload(bench, args.action, category=False, prefix="noaction-")
            with bench.arm.window() as arm, bench.traffic.window() as storage:
                seconds, report = once(target.service.sweep)
            beyond = by_service(storage, "table") + by_service(storage, "blob") - per_listing
            results.info(
                f"sweep with {args.action} more blobs lacking the category metadata (a manual import each): "
                f"{seconds:.2f} s, outcomes {dict(report.counts)}; requests {describe(storage)}; "
                f"ARM {dict(arm_kinds(arm))}; about {beyond / args.action:.1f} Table and Blob requests and "
                f"{len(arm) / args.action:g} ARM calls per blob acted on"
            )
    results.summary()


if __name__ == "__main__":
    main()
