"""Memory: does handling the event of a 1 GiB blob cost more memory than the event of a 1 KiB blob?

The blob trigger gets a BlobClient (the SDK-type binding), never the bytes, so it should not. Two blobs
in the watched container (Azurite), both as the copy step leaves them (Content-MD5, category metadata)
and fresh (left to the source trigger); the emulator's source trigger is told not to scan on its own, so
nothing else reads the big one. For each blob, a fresh Python process:
- builds the trigger's argument as the Functions worker does (azurefunctions-extensions-bindings-blob's
  converter decodes the host's model binding data into a BlobClient, from the `TransferStorage` setting),
- calls function_app.on_target_blob(client) (a fresh worker: the service is built on this first event),
- reports its peak RSS (getrusage ru_maxrss), and the Blob requests it sent.
Interleaved, REPEAT processes per blob, medians compared. Budget: peak RSS within 5 MiB of each other.

    .venv/bin/python -m bench.memory [--size-mib 1024] [--repeat 3]      # about a minute
"""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any

from bench.common import Bench, Results, bench_stack, header, median, once, python_process
from demo import stack as demo_stack
from transfer.domain.staleness import CATEGORY_KEY, CATEGORY_VALUE

BUDGET_MIB = 5.0
CHUNK = 4 * 1024 * 1024

CHILD = """
import json, resource
from types import SimpleNamespace

from pathlib import Path

from bench.common import Traffic

traffic = Traffic().install()
for port, service in {ports!r}.items():
    traffic.name_port(port, service)


def rss_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


import azurefunctions.extensions.bindings.blob as blob
from azurefunctions.extensions.base import Datum
from azurefunctions.extensions.bindings.blob.blobClientConverter import BlobClientConverter

import function_app
from transfer import bootstrap

name = {name!r}
content = json.dumps({{"Connection": "TransferStorage", "ContainerName": {container!r}, "BlobName": name}})
data = SimpleNamespace(
    version="1.0", source="AzureStorageBlobs", content_type="application/json", content=content
)
before = rss_kib("VmRSS")
client = BlobClientConverter.decode(
    Datum(data, "model_binding_data"), trigger_metadata={{}}, pytype=blob.BlobClient
)
with traffic.window() as seen:
    function_app.on_target_blob(client)
after = rss_kib("VmRSS")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
records = bootstrap.real_ports(bootstrap.settings_from_environment()).state.blob_records(name)
print(json.dumps({{
    "before_kib": before,
    "peak_kib": peak,
    "after_kib": after,
    "requests": {{f"{{s}} {{m}}": n for (s, m), n in seen.items()}},
    "actions": [r.action.value for r in records],
}}))
"""


class Zeros:
    """A readable stream of `size` zero bytes, never held in memory at once."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int = -1) -> bytes:
        count = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= count
        return bytes(count)


def zeros_md5(size: int) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    block = bytes(CHUNK)
    left = size
    while left:
        step = min(left, CHUNK)
        digest.update(block if step == CHUNK else bytes(step))
        left -= step
    return digest.digest()


def upload(bench: Bench, name: str, size: int) -> None:
    from azure.storage.blob import BlobServiceClient, ContentSettings

    container = BlobServiceClient.from_connection_string(
        bench.stack.connection_string(demo_stack.TARGET_ACCOUNT), max_block_size=CHUNK
    ).get_container_client(demo_stack.TARGET_CONTAINER)
    container.upload_blob(
        name,
        Zeros(size),
        length=size,
        metadata={CATEGORY_KEY: CATEGORY_VALUE},
        content_settings=ContentSettings(
            content_type="application/octet-stream", content_md5=zeros_md5(size)
        ),
        max_concurrency=2,
    )


def child_env(bench: Bench) -> dict[str, str]:
    env = {
        **bench.stack.target_env,
        "TRANSFER_COPY_TARGET_URL": "",
        "TRANSFER_COPY_TARGET_SAS_SECRET_URI": "",
    }
    return {k: v for k, v in env.items() if v}


def measure(bench: Bench, name: str) -> dict[str, Any]:
    code = CHILD.format(name=name, container=demo_stack.TARGET_CONTAINER, ports=bench.traffic.ports())
    _, out = python_process(code, env=child_env(bench))
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="the big blob, MiB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    big_size = args.size_mib * 1024 * 1024
    header(f"memory: the event of a {args.size_mib} MiB blob vs a 1 KiB blob")
    results = Results("memory")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        upload(bench, "small-1kib", 1024)
        seconds, _ = once(lambda: upload(bench, "big-blob", big_size))
        results.info(f"blobs uploaded: 1 KiB and {args.size_mib} MiB ({seconds:.1f} s, setup)")
        small, big = [], []
        for i in range(args.repeat):
            # each blob's first event records it; later processes find the record (same requests otherwise)
            small.append(measure(bench, "small-1kib"))
            big.append(measure(bench, "big-blob"))
            if i == 0:
                results.info(
                    f"1 KiB blob event: requests {small[0]['requests']}, blob records {small[0]['actions']}"
                )
                results.info(
                    f"big blob event:   requests {big[0]['requests']}, blob records {big[0]['actions']}"
                )
        small_peak = median([s["peak_kib"] for s in small]) / 1024
        big_peak = median([b["peak_kib"] for b in big]) / 1024
        small_rise = median([s["after_kib"] - s["before_kib"] for s in small]) / 1024
        big_rise = median([b["after_kib"] - b["before_kib"] for b in big]) / 1024
        results.info(
            f"peak RSS, median of {args.repeat} fresh processes: 1 KiB blob {small_peak:.1f} MiB, "
            f"{args.size_mib} MiB blob {big_peak:.1f} MiB"
        )
        results.info(
            f"RSS growth across the event (service built, SDKs loaded): 1 KiB {small_rise:.1f} MiB, "
            f"{args.size_mib} MiB {big_rise:.1f} MiB"
        )
        results.budget(
            f"peak RSS, {args.size_mib} MiB blob event minus 1 KiB blob event (MiB)",
            round(big_peak - small_peak, 2),
            BUDGET_MIB,
            unit="",
        )
        results.info(
            f"peak RSS ratio, {args.size_mib} MiB blob event / 1 KiB blob event: x{big_peak / small_peak:.3f}"
        )
    results.summary()


if __name__ == "__main__":
    main()
