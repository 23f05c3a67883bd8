"""From a push to its verified import: the time the app adds, on the local stack with the emulator's own
service times at zero (its pipeline runs finish as soon as they start; copies and imports take what Azurite
takes).

Two app sides as the demo builds them: the source side exports on push (`lat<burst>/*:*`, window
`--window` s) and copies each export to the target container; the target side imports on arrival. The
emulator's source registry posts its ImagePushed events to the Functions host's Event Grid webhook
(demo/on_push.py: one call of `on_image_pushed` per event); a host loop plays the timers: `follow_runs` on
both sides at TRANSFER_FOLLOW_SCHEDULE's interval, aligned to the clock as the host's timers are, and a
BlobCreated event for each blob that lands in the target container (polled every 0.5 s: Event Grid
delivers within about a second). One invocation at a time, as on a single worker.

For each burst (1, 50, 500 pushes by default, `--bursts`), timed from the last push of the burst: the last
export run started (its record), exported and copied (its blob's event in the target container), its
import started, and the last import verified. Budgets: the last verified import within the
window + 30 s of the last push; export and import deployment writes each at most ceil(n / 50).

    .venv/bin/python -m bench.push_latency [--bursts 1,50,500] [--window 5]     # about 3 minutes
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import Bench, Results, bench_stack, function_app, header, wait_until
from demo import on_push

FOLLOW_BUDGET = 30.0  # seconds the app may add beyond the gathering window


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bursts", default="1,50,500", help="pushes per burst, comma-separated")
    parser.add_argument("--window", type=int, default=5, help="TRANSFER_PUSH_WINDOW_SECONDS for the run")
    args = parser.parse_args()
    bursts = [int(n) for n in args.bursts.split(",") if n.strip()]
    header("push -> export -> copy -> import -> verified, the emulator's service times at zero")
    results = Results("push_latency")
    with bench_stack(run_seconds=0.0) as bench:
        bench.quiet_source_trigger()  # imports are the app's own, on arrival
        measure(bench, results, bursts, args.window)
    results.summary()


class Host:
    """The Functions host's part: the follow timers on both sides at their schedule's interval, aligned to
    the clock, and a blob event for each blob that lands in the target container."""

    def __init__(self, bench: Bench, source: Any, target: Any, lock: threading.Lock) -> None:
        self.app = function_app()
        self.bench, self.source, self.target, self.lock = bench, source, target, lock
        self.interval = _every_seconds(source.settings.follow_schedule)
        self.watcher = on_push.ArrivalWatcher(bench.stack)
        self.landed: dict[str, float] = {}  # blob -> when its event was delivered
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._timers), threading.Thread(target=self._blobs)]

    def __enter__(self) -> Host:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _timers(self) -> None:
        while not self.stop.wait(self.interval - time.time() % self.interval):
            for side in (self.source, self.target):
                with self.lock:
                    side.timer(self.app.follow_runs)

    def _blobs(self) -> None:
        while not self.stop.wait(0.5):
            for name in self.watcher.new_blobs():
                self.landed.setdefault(name, time.time())
                with self.lock:
                    self.target.blob_event(self.app, self.bench.stack, name)


def measure(bench: Bench, results: Results, bursts: list[int], window: int) -> None:
    lock = threading.Lock()
    source = bench.side(
        "source",
        copy=True,
        TRANSFER_EXPORT_ARTIFACTS="lat*/*:*",
        TRANSFER_EXPORT_ON_PUSH="true",
        TRANSFER_PUSH_WINDOW_SECONDS=str(window),
    )
    target = bench.side("target", TRANSFER_IMPORT_ON_ARRIVAL="true")
    results.info(
        f"window {window} s (TRANSFER_PUSH_WINDOW_SECONDS, short for this run), follow_runs every "
        f"{_every_seconds(source.settings.follow_schedule):g} s (TRANSFER_FOLLOW_SCHEDULE's default)"
    )
    with (
        on_push.EventGridWebhook(source, function_app(), lock) as webhook,
        Host(bench, source, target, lock) as host,
    ):
        on_push.subscribe(bench.stack, webhook)
        for n in bursts:
            burst(bench, results, source, target, host, n, window)


def burst(bench: Bench, results: Results, source: Any, target: Any, host: Host, n: int, window: int) -> None:
    admin = bench.admin
    repository = f"lat{n}/app"
    mark = bench.arm.mark()
    for i in range(n):
        admin.add_image(_registry(), repository, f"v{i}", [256])
    last_push = time.time()
    runs = math.ceil(n / 50)
    exports: list[Any] = []

    def exported() -> bool:
        exports[:] = [
            r for r in _runs(source, "export") if r.artifacts[:1] and r.artifacts[0].startswith(repository)
        ]
        return sum(len(r.artifacts) for r in exports) >= n

    wait_until(exported, f"the exports of {n} pushes", timeout=window + 300)
    blobs = {r.blob for r in exports}
    imports: list[Any] = []

    def verified() -> bool:
        imports[:] = [r for r in _runs(target, "import") if r.blob in blobs and r.verification != "pending"]
        return len(imports) == len(blobs) and all(r.status.terminal for r in imports)

    wait_until(verified, f"the verified imports of {n} pushes", timeout=window + 300)
    arm = bench.arm.since(mark)
    steps = _steps(last_push, exports, imports, host)
    results.info(f"burst of {n}: " + ", ".join(f"{name} +{secs:.1f} s" for name, secs in steps.items()))
    for run in imports:
        if run.verification != "passed":
            results.info(f"  import {run.id}: verification {run.verification}: {run.verification_detail}")
    puts = [r["path"].lower() for r in arm if r["method"] == "PUT" and "/deployments/" in r["path"].lower()]
    results.budget(
        f"{n} pushes: last push -> verified import (s)",
        round(steps["verified"], 1),
        window + FOLLOW_BUDGET,
        unit="",
    )
    results.budget(f"{n} pushes: export deployment writes", _owned(puts, exports), runs, unit="")
    results.budget(f"{n} pushes: import deployment writes", _owned(puts, imports), runs, unit="")
    failed = sum(r.verification != "passed" for r in imports)
    results.budget(f"{n} pushes: imports not verified passed", failed, 0, unit="")


def _owned(puts: list[str], runs: list[Any]) -> int:
    names = {f"/deployments/{run.deployment_name}".lower() for run in runs}
    return sum(1 for path in puts if any(path.endswith(name) for name in names))


def _steps(last_push: float, exports: list[Any], imports: list[Any], host: Host) -> dict[str, float]:
    """Seconds from the last push to each step of the last of the burst's runs."""

    def at(when: datetime | None) -> float:
        return (when or datetime.now(UTC)).timestamp() - last_push

    landed = [host.landed[r.blob] for r in exports if r.blob in host.landed]
    return {
        "export started": max(at(r.created_at) for r in exports),
        "exported and copied (blob event)": max(landed, default=time.time()) - last_push,
        "import started": max(at(r.created_at) for r in imports),
        "verified": max(at(r.updated_at) for r in imports),
    }


def _runs(side: Any, kind: str) -> list[Any]:
    return side.service.list_runs(kind=kind, top=1000)  # type: ignore[no-any-return]


def _registry() -> str:
    from demo import stack as demo_stack

    return demo_stack.SOURCE_REGISTRY


def _every_seconds(schedule: str) -> float:
    """The interval of a `*/N * * * * *` NCRONTAB (the follow timer's shape); 60 otherwise."""
    seconds = schedule.split()[0]
    return float(seconds[2:]) if seconds.startswith("*/") else 60.0


if __name__ == "__main__":
    main()
