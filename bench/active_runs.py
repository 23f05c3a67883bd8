"""Does finding the active runs cost more when many finished runs are kept? (It should not.)

Against Azurite: a state store with 20 active runs, timed with 0 finished runs and again with FINISHED
finished ones, beside a scan of the whole runs table for non-terminal runs (what a store without the
index would do). Prints ratios measured in this one run; absolute times depend on the machine.

    .venv/bin/python -m bench.active_runs [--finished 3000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from emulator import azurite
from transfer.adapters.state import TableStateStore
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger
from transfer.domain.settings import StorageConnection

START = datetime(2026, 1, 1, tzinfo=UTC)


def make_run(index: int, status: RunStatus) -> Run:
    created = START + timedelta(seconds=index)
    run_id = f"{created:%Y%m%d%H%M%S}000e{index:06x}"
    return Run(
        id=run_id,
        kind=RunKind.EXPORT,
        trigger=Trigger.SCHEDULE,
        status=status,
        created_at=created,
        updated_at=created,
        request_id=uuid.uuid4().hex,
        deployment_name=f"acrtransfer-{run_id}",
        artifacts=("samples/hello-world:v1",),
        finished_at=created if status.terminal else None,
        cleaned_up=status.terminal,
    )


def timed(call, repeat: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def full_scan(connection_string: str) -> list[str]:
    """Non-terminal runs by a filtered query of the runs table: the server reads every run to answer."""
    from azure.data.tables import TableClient

    table = TableClient.from_connection_string(connection_string, "transferruns")
    terminal = " and ".join(f"status ne @s{i}" for i in range(3))
    values = {
        f"s{i}": s.value for i, s in enumerate((RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED))
    }
    return [e["RowKey"] for e in table.query_entities(terminal, parameters=values, select=["RowKey"])]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--finished", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    server = azurite.start()
    try:
        store = TableStateStore(StorageConnection("bench", connection_string=server.connection_string))
        for i in range(20):
            store.add_run(make_run(i, RunStatus.RUNNING))
        small = timed(store.active_runs, args.repeat)
        conn = server.connection_string
        assert len(full_scan(conn)) == 20
        small_scan = timed(lambda: full_scan(conn), args.repeat)
        print(f"finished runs kept: 0      active_runs {small * 1000:7.1f} ms   ", end="")
        print(f"full scan {small_scan * 1000:7.1f} ms")
        for i in range(20, 20 + args.finished):
            added = store.add_run(make_run(i, RunStatus.RUNNING))
            store.update_run(
                replace(added, status=RunStatus.SUCCEEDED, finished_at=added.created_at, cleaned_up=True)
            )
        assert len(store.active_runs()) == 20
        large = timed(store.active_runs, args.repeat)
        assert len(full_scan(conn)) == 20
        large_scan = timed(lambda: full_scan(conn), max(3, args.repeat // 4))
        print(
            f"finished runs kept: {args.finished:<6} active_runs {large * 1000:7.1f} ms   "
            f"full scan {large_scan * 1000:7.1f} ms"
        )
        print(f"active_runs, {args.finished} finished vs 0 finished: x{large / small:.2f}")
        print(f"full scan,   {args.finished} finished vs 0 finished: x{large_scan / small_scan:.2f}")
    finally:
        azurite.stop(server)


if __name__ == "__main__":
    main()
