"""Does a reconcile tick cost more when the state table keeps many finished runs? (It should not.)

Two app instances of the source side (bootstrap.build_service: the real adapters), each with its own
state tables in Azurite (TransferState: the source account, and Azurite's default account), both
following the same 20 active exports (real deployments in the emulator, kept running by a long run
time). One keeps FEW (100) finished, cleaned-up runs, the other MANY (20,000). The reconcile timer
(function_app.reconcile: reconcile + cleanup) is timed on both, interleaved, so a busy moment of the
machine hits both alike. Budget: MANY / FEW <= 1.2, with the same Table and ARM requests per tick.

Beside it, a bare point read of one run in each runs table (TableClient.get_entity), interleaved too:
Azurite's own cost of a point read as its table grows (Azure Table Storage reads by key; Azurite keeps
a table as an in-memory collection), which the app cannot help.

The finished runs are written straight into the runs tables, 4 at a time, as
transfer.adapters.entities.run_entity shapes them (the store's own entity): writing 20,000 through the
app, four requests each, would take longer than a benchmark may.

    .venv/bin/python -m bench.reconcile_history [--few 100] [--many 20000] [--repeat 10]   # 3-4 minutes
"""

from __future__ import annotations

import argparse
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    Bench,
    Results,
    arm_kinds,
    bench_stack,
    by_service,
    describe,
    function_app,
    header,
    median,
    ms,
)
from demo import stack as demo_stack
from transfer.adapters.entities import RUN_ROW, run_entity, run_key
from transfer.domain import naming
from transfer.domain.runs import Run, RunKind, RunStatus, Trigger

BUDGET = 1.2
ACTIVE = 20
_tokens = itertools.count(1)


def finished_run(index: int, now: datetime) -> Run:
    created = now - timedelta(days=30) + timedelta(seconds=index)
    run_id = naming.run_id(RunKind.EXPORT, created, f"{next(_tokens):06x}")
    return Run(
        id=run_id,
        kind=RunKind.EXPORT,
        trigger=Trigger.SCHEDULE,
        status=RunStatus.SUCCEEDED,
        created_at=created,
        updated_at=created + timedelta(minutes=5),
        request_id=f"{index:032x}",
        deployment_name=naming.deployment_name(run_id),
        artifacts=("samples/hello-world:v1",),
        blob=f"old-{run_id}",
        pipeline_run_id=f"/subscriptions/x/resourceGroups/{demo_stack.SOURCE_GROUP}/providers/"
        f"Microsoft.ContainerRegistry/registries/{demo_stack.SOURCE_REGISTRY}/pipelineRuns/{run_id}",
        finished_at=created + timedelta(minutes=5),
        cleaned_up=True,
    )


def runs_table(connection_string: str) -> Any:
    from azure.data.tables import TableClient

    return TableClient.from_connection_string(connection_string, "transferruns")


def add_finished_runs(table: Any, count: int) -> None:
    """`count` finished, cleaned-up runs in a runs table, 4 writes at a time (each run is its own
    partition, so no batch can hold two)."""
    from concurrent.futures import ThreadPoolExecutor

    from azure.core.exceptions import ServiceResponseError

    now = datetime.now(UTC)

    def create(index: int) -> None:
        for attempt in range(3):  # Azurite drops a connection now and then under concurrent writes
            try:
                table.create_entity(run_entity(finished_run(index, now)))
                return
            except ServiceResponseError:
                if attempt == 2:
                    raise

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, range(count)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--few", type=int, default=100)
    parser.add_argument("--many", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    header(f"reconcile with {ACTIVE} active runs: {args.few} vs {args.many} finished runs kept")
    results = Results("reconcile_history")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        bench.admin.configure(run_seconds=3600)  # the active runs stay active while measured
        measure(bench, results, args.few, args.many, args.repeat)
    results.summary()


def measure(bench: Bench, results: Results, few: int, many: int, repeat: int) -> None:
    app = function_app()
    small = bench.side("source")
    large = bench.side("source", TransferState=bench.stack.azurite.connection_string)
    for i in range(ACTIVE):
        body = {"artifacts": [f"bulk/svc{i:02d}:v1"], "targetName": "history"}
        status, answer = small.http(app.start_export, "POST", "exports", body)
        assert status == 202, answer
    active = small.ports.state.active_runs()
    for run in active:  # the same 20 runs, followed by the second instance too
        large.ports.state.add_run(run)
    small_table = runs_table(bench.stack.connection_string(demo_stack.SOURCE_ACCOUNT))
    large_table = runs_table(bench.stack.azurite.connection_string)
    began = time.perf_counter()
    add_finished_runs(small_table, few)
    add_finished_runs(large_table, many)
    results.info(f"{few} + {many} finished runs written in {time.perf_counter() - began:.0f} s (setup)")
    assert len(small.ports.state.active_runs()) == ACTIVE
    assert len(large.ports.state.active_runs()) == ACTIVE

    key = run_key(active[0].id)
    samples: dict[str, list[float]] = {"small": [], "large": [], "read small": [], "read large": []}
    counts = {}
    for name, side in (("small", small), ("large", large)):
        side.timer(app.reconcile)  # warm: clients built, tokens fetched
        with bench.arm.window() as arm, bench.traffic.window() as storage:
            side.timer(app.reconcile)
        counts[name] = (storage, arm)
    for _ in range(repeat):
        for name, side in (("small", small), ("large", large)):
            began = time.perf_counter()
            side.timer(app.reconcile)
            samples[name].append(time.perf_counter() - began)
        for name, table in (("read small", small_table), ("read large", large_table)):
            began = time.perf_counter()
            for _ in range(5):
                table.get_entity(key, RUN_ROW)
            samples[name].append((time.perf_counter() - began) / 5)
    tick_small, tick_large = median(samples["small"]), median(samples["large"])
    read_small, read_large = median(samples["read small"]), median(samples["read large"])
    for name, size, tick in (("small", few, tick_small), ("large", many, tick_large)):
        storage, arm = counts[name]
        results.info(
            f"{ACTIVE} active + {size} finished runs: tick {ms(tick)}; requests {describe(storage)}; "
            f"ARM {dict(arm_kinds(arm))}"
        )
    results.info(
        f"bare point read of a run (Azurite): {ms(read_small)} with {few + ACTIVE} runs, {ms(read_large)} "
        f"with {many + ACTIVE}: x{read_large / read_small:.3f}"
    )
    (small_storage, small_arm), (large_storage, large_arm) = counts["small"], counts["large"]
    tables = by_service(small_storage, "table"), by_service(large_storage, "table")
    extra = tables[1] * (read_large - read_small)
    results.info(
        f"the tick's {tables[1]} Table requests at Azurite's slower point reads: up to {ms(extra)} more "
        f"(less, as 20 of them go 8 at a time), against {ms(tick_large - tick_small)} measured"
    )
    results.budget(f"reconcile tick, {many} finished runs kept / {few}", tick_large / tick_small, BUDGET)
    results.budget(f"Table requests per tick, {many} / {few} finished runs", tables[1] / tables[0], 1.0)
    results.budget(f"ARM calls per tick, {many} / {few} finished runs", len(large_arm) / len(small_arm), 1.0)


if __name__ == "__main__":
    main()
