"""What the benchmarks share: the local stack (Azurite + the ARM/ACR emulator, both app sides, as the demo
builds them), counting requests (ARM from the emulator's request log, Storage at the SDK's transport),
medians, fresh processes, the machine, and how a result is printed: a ratio against a baseline measured in
the same run, beside its budget.

Everything talks to 127.0.0.1 only: Azurite and the emulator listen there, and the app's settings point at
them (demo/stack.py).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
_EMULATOR_DIR = str(ROOT / "emulator") + os.sep


# ---- timing -------------------------------------------------------------------------------------------


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def timed(call: Callable[[], Any], repeat: int) -> list[float]:
    """`repeat` wall-clock samples of `call()`, in seconds."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return samples


def once(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# ---- results ------------------------------------------------------------------------------------------


@dataclass
class Results:
    """The figures of one benchmark: each budget line is a measured ratio beside its budget."""

    name: str
    lines: list[str] = field(default_factory=list)
    verdicts: list[tuple[str, bool]] = field(default_factory=list)

    def info(self, text: str) -> None:
        self.lines.append(text)
        print(f"  {text}", flush=True)

    def budget(self, what: str, measured: float, limit: float, *, unit: str = "x", detail: str = "") -> bool:
        """A ratio (unit "x") or a count (unit "") against its upper bound; prints PASS or FAIL."""
        ok = measured <= limit + 1e-9
        shown = (
            f"x{measured:.3f} (budget <= x{limit:.2f})"
            if unit == "x"
            else f"{measured:g} (budget <= {limit:g})"
        )
        line = f"{'PASS' if ok else 'FAIL'}  {what}: {shown}" + (f"  [{detail}]" if detail else "")
        self.lines.append(line)
        self.verdicts.append((what, ok))
        print(f"  {line}", flush=True)
        return ok

    def summary(self) -> None:
        """Print the verdicts; exit status 1 when a budget was missed (make bench goes on: `-` lines)."""
        failed = [what for what, ok in self.verdicts if not ok]
        if not self.verdicts:
            print(f"\n{self.name}: figures only (no budget)", flush=True)
            return
        print(
            f"\n{self.name}: {len(self.verdicts) - len(failed)} of {len(self.verdicts)} budgets met",
            flush=True,
        )
        for what in failed:
            print(f"  missed: {what}", flush=True)
        if failed:
            raise SystemExit(1)


def header(title: str) -> None:
    info = machine()
    print(f"== {title}", flush=True)
    print(f"   machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}", flush=True)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": str(cores), "cpu": cpu, "python": platform.python_version()}


# ---- fresh processes ----------------------------------------------------------------------------------


def python_process(code: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[float, str]:
    """Run `python -c code` in a fresh interpreter from the repository root: (wall seconds, stdout)."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


# ---- counting Storage requests at the SDK's transport -------------------------------------------------


class Traffic:
    """Counts the HTTP requests the app (and the benchmark) send through azure-core's RequestsTransport,
    by service: Azurite has no request log. Requests an in-process emulator sends (its runs and source
    trigger reading Azurite) are told apart by their call stack and not counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._services: dict[int, str] = {}
        self._original: Any = None

    def name_port(self, port: int, service: str) -> None:
        self._services[port] = service

    def ports(self) -> dict[int, str]:
        return dict(self._services)

    def install(self) -> Traffic:
        from azure.core.pipeline.transport import RequestsTransport

        if self._original is not None:
            return self
        original = RequestsTransport.send
        traffic = self

        def send(transport: Any, request: Any, **kwargs: Any) -> Any:
            if not _from_emulator():
                traffic._record(request.method, request.url)
            return original(transport, request, **kwargs)

        self._original = original
        RequestsTransport.send = send  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        from azure.core.pipeline.transport import RequestsTransport

        if self._original is not None:
            RequestsTransport.send = self._original  # type: ignore[method-assign]
            self._original = None

    def _record(self, method: str, url: str) -> None:
        port = urlsplit(url).port or 0
        service = self._services.get(port, f"port {port}")
        with self._lock:
            self._counts[(service, method)] += 1

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._counts)

    @contextmanager
    def window(self) -> Iterator[Counter[tuple[str, str]]]:
        """The requests sent inside the block, filled in when it ends."""
        before = self.snapshot()
        seen: Counter[tuple[str, str]] = Counter()
        try:
            yield seen
        finally:
            seen.update(self.snapshot() - before)


def by_service(counts: Counter[tuple[str, str]], service: str) -> int:
    return sum(n for (s, _), n in counts.items() if s == service)


def describe(counts: Counter[tuple[str, str]]) -> str:
    parts = [f"{service} {method} {n}" for (service, method), n in sorted(counts.items())]
    return ", ".join(parts) or "none"


def _from_emulator() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_EMULATOR_DIR):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


# ---- ARM requests from the emulator's request log ----------------------------------------------------


class ArmLog:
    """The emulator's ARM request log (admin API `requests`), read from a mark on (incrementally: the log
    of a long benchmark holds thousands of requests)."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self._seen = 0

    def mark(self) -> int:
        self._seen += len(self.admin.requests(since=self._seen))
        return self._seen

    def since(self, mark: int) -> list[dict[str, Any]]:
        records = list(self.admin.requests(since=mark))
        self._seen = max(self._seen, mark + len(records))
        return records

    @contextmanager
    def window(self) -> Iterator[list[dict[str, Any]]]:
        start = self.mark()
        seen: list[dict[str, Any]] = []
        try:
            yield seen
        finally:
            seen.extend(self.since(start))


def arm_kinds(requests: Sequence[dict[str, Any]]) -> Counter[str]:
    """ARM requests by what they are: deployment PUT / GET / DELETE, pipelineRun GET / DELETE, pipelineRun
    list pages, pipeline GET, other."""
    kinds: Counter[str] = Counter()
    for r in requests:
        path = r["path"].lower().rstrip("/")
        method = r["method"]
        if "/microsoft.resources/deployments/" in path:
            what = "deployment"
        elif path.endswith("/pipelineruns"):
            what = "pipelineRun list page"
        elif "/pipelineruns/" in path:
            what = "pipelineRun"
        elif "/exportpipelines/" in path or "/importpipelines/" in path:
            what = "pipeline"
        else:
            what = "other"
        kinds[f"{method} {what}"] += 1
    return kinds


def writes(requests: Sequence[dict[str, Any]]) -> int:
    return sum(1 for r in requests if r["method"] in ("PUT", "POST", "PATCH", "DELETE"))


def reads(requests: Sequence[dict[str, Any]]) -> int:
    return sum(1 for r in requests if r["method"] in ("GET", "HEAD"))


# ---- the local stack ----------------------------------------------------------------------------------


class Outcomes(logging.Handler):
    """The outcome of each blob event, as on_target_blob logs it (`outcome` in the record's extras)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[str] = []
        self._lock_seen = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        outcome = getattr(record, "outcome", None)
        if outcome is not None and record.name == "transfer.functions":
            with self._lock_seen:
                self.seen.append(str(outcome))

    def count(self, outcome: str) -> int:
        with self._lock_seen:
            return self.seen.count(outcome)

    def clear(self) -> None:
        with self._lock_seen:
            self.seen.clear()


@dataclass
class Bench:
    """The demo's stack with both app sides (real adapters, real functions), counting on."""

    stack: Any  # demo.stack.Stack
    source: Any  # demo.scenario.Side
    target: Any  # demo.scenario.Side
    traffic: Traffic
    arm: ArmLog
    outcomes: Outcomes = field(default_factory=Outcomes)

    @property
    def admin(self) -> Any:
        return self.stack.emulator.admin

    def side(self, name: str, *, copy: bool = False, **env: str) -> Any:
        """A new app instance of one side (a cold worker: empty caches), with settings overridden; the
        source side copies its exports to the target container only with `copy`."""
        from demo import scenario
        from transfer.domain.settings import load_settings

        base = self.stack.source_env if name == "source" else self.stack.target_env
        if not copy:
            base = {**base, "TRANSFER_COPY_TARGET_URL": "", "TRANSFER_COPY_TARGET_SAS_SECRET_URI": ""}
        settings = load_settings({k: v for k, v in {**base, **env}.items() if v})
        return scenario.Side(name, settings, self.stack.clock)

    def advance_clock(self, **delta: float) -> None:
        self.stack.advance_clock(**delta)

    def quiet_source_trigger(self) -> None:
        """The emulator's source trigger stops scanning on its own (an hour between scans): its listing of
        the watched container would compete with what is measured. Scans still happen on request."""
        self.admin.configure(trigger_interval=3600)


@contextmanager
def bench_stack(run_seconds: float = 0.2, *, prepare: bool = True) -> Iterator[Bench]:
    """Azurite (a source and a target account) + the emulator in a process of its own (as Azure is: in
    this one it would take the app's interpreter lock to answer the app), the pipelines deployed from
    templates/ through the app (demo.scenario.prepare), the app's managed identity served by the emulator."""
    from demo import scenario
    from demo import stack as demo_stack

    print("   starting Azurite and the emulator ...", flush=True)
    stack = demo_stack.start(run_seconds=run_seconds, own_process=True)
    traffic = Traffic()
    try:
        with demo_stack.identity(stack):
            for port, service in (
                (stack.azurite.blob_port, "blob"),
                (stack.azurite.table_port, "table"),
                (stack.azurite.queue_port, "queue"),
                (urlsplit(stack.emulator.arm_endpoint).port or 0, "arm"),
            ):
                traffic.name_port(port, service)
            for name in (demo_stack.SOURCE_REGISTRY, demo_stack.TARGET_REGISTRY):
                traffic.name_port(urlsplit(stack.emulator.registry_endpoint(name)).port or 0, "registry")
            secret = stack.source_env.get("TRANSFER_COPY_TARGET_SAS_SECRET_URI")  # the source side's vault
            if secret:
                traffic.name_port(urlsplit(secret).port or 0, "keyvault")
            traffic.install()
            bench = Bench(stack, None, None, traffic, ArmLog(stack.emulator.admin))
            functions_log = logging.getLogger("transfer.functions")
            functions_log.addHandler(bench.outcomes)
            if functions_log.getEffectiveLevel() > logging.INFO:
                functions_log.setLevel(logging.INFO)
            bench.source, bench.target = bench.side("source"), bench.side("target")
            if prepare:
                scenario.prepare(stack, bench.source, bench.target)
            yield bench
    finally:
        traffic.uninstall()
        stack.stop()


def function_app() -> Any:
    import function_app as app

    return app


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 120, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
