"""A randomized fault soak (issue 20): a seed drives N exports and their imports through the real adapters
against Azurite and the ARM/ACR emulator, two workers a side, while faults are injected at random into ARM,
Table, Blob, Key Vault and the registry; then every fault is cleared and the timers tick until everything
settles. tests/integration/test_soak.py runs it small, bench/soak.py large; both print `Figures`.

Faults, each drawn at random for a call with probability `rate`:
- on the app's ports (tests/faults.py hooks on the real adapters, raising what transfer/adapters/sdk_errors.py
  makes of the service's answer): 5xx, 429 with Retry-After, a timeout, a 404 that heals (a read that does
  not see the resource yet), a 409 / 412 race (a claim or a conditional write lost), and crashes (the
  worker dies before or after the call: after recording a run and before deploying it, after deploying and
  before recording that, after claiming a blob and before recording its run);
- in the emulator itself (its admin API): ARM answers 500, 503 or 429 with Retry-After, or answers late;
- events: every blob's event is delivered once or twice, shuffled, to either worker, and the sweep runs too.

Invariants checked at the end (`check`): every run terminal (Succeeded); each exported blob imported
exactly once (one owned import run, one pipelineRun naming it); one deployment per run; no pass over its
budget; no secret in any log; all of it within a bounded number of ticks once the faults are cleared.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from demo import scenario
from demo import stack as demo_stack
from demo.stack import DemoClock, Stack
from tests.faults import Faulty
from transfer import bootstrap
from transfer.domain.errors import PreconditionFailed, Throttled, TransferError, Unavailable
from transfer.domain.runs import Run, RunStatus, Trigger
from transfer.domain.settings import load_settings
from transfer.service.passes import PASS_BUDGET

REPOSITORY = "soak/app{:04d}"
MAX_TICKS = 40  # ticks after the faults are cleared
FAULTY_TICKS = 12  # at most, with faults on after the last export was asked, until every blob arrived
TICK = timedelta(minutes=10)  # the app's clock per settling tick: past every grace period and backoff
CALL_WORST = 2 * 15 + 10  # seconds: a call whose reads time out (transfer/adapters/retry.py) and its retries


class Crash(BaseException):
    """The worker dies here (a BaseException: nothing in the app catches it, as nothing survives a kill)."""


def _raise(error: BaseException) -> Callable[..., Any]:
    def fault(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise error

    return fault


def _after(error: BaseException) -> Callable[..., Any]:
    def fault(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        call(*args, **kwargs)
        raise error

    return fault


def _returns(value: Any) -> Callable[..., Any]:
    return lambda call, *args, **kwargs: value


TRANSIENT = {
    "5xx": lambda what: _raise(Unavailable(f"{what}: the service failed (503) (ServerBusy)")),
    "429": lambda what: _raise(Throttled(f"{what}: throttled (429)", retry_after=1)),
    "timeout": lambda what: _raise(Unavailable(f"{what}: the service could not be reached (ReadTimeout)")),
}
# method -> the faults beyond the transient ones that fit it
SPECIFIC: dict[str, dict[str, Callable[[str], Callable[..., Any]]]] = {
    "add_run": {"crash-after-record": lambda what: _after(Crash(what))},
    "begin_deployment": {"crash-after-deploy": lambda what: _after(Crash(what))},
    "claim_blob": {
        "crash-after-claim": lambda what: _after(Crash(what)),
        "409-race": lambda what: _returns(False),
    },
    "update_run": {"412-race": lambda what: _raise(PreconditionFailed(f"{what}: changed meanwhile"))},
    "get_deployment": {"404-heals": lambda what: _returns(None)},
    "get_resource": {"404-heals": lambda what: _returns(None)},
    "merge_metadata": {"412-race": lambda what: _raise(PreconditionFailed(f"{what}: changed meanwhile"))},
    "start_copy": {"crash-before": lambda what: _raise(Crash(what))},
}
HOOKED = {
    "arm": ("begin_deployment", "get_deployment", "get_resource", "list_pipeline_runs"),
    "state": ("add_run", "update_run", "get_run", "active_runs", "claim_blob", "blob_records", "list_runs"),
    "blobs": ("get_properties", "merge_metadata", "list_blobs", "read_blob"),
    "copier": ("start_copy", "copy_state"),
    "secrets": ("read_sas",),
    "registry": ("digest", "tags"),
}


@dataclass
class Figures:
    seed: int
    exports: int
    rate: float
    runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)  # hooked calls while faults were on, by port
    crashes: int = 0
    events: int = 0
    ticks_to_converge: int = 0
    longest_pass: float = 0.0
    seconds: float = 0.0
    lost: int = 0  # exported blobs never imported
    duplicated: int = 0  # exported blobs imported more than once
    stuck: int = 0  # runs not terminal at the end
    log_records: int = 0  # log records searched for secrets
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        return [
            f"soak seed {self.seed}: {self.exports} exports, {self.runs} runs, "
            f"{self.rate:.0%} of calls faulted",
            f"faults injected ({sum(self.faults.values())}) in {sum(self.calls.values())} calls "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.calls.items()))}): {kinds}",
            f"worker crashes {self.crashes}, blob events {self.events}, "
            f"log records searched for secrets {self.log_records}",
            f"lost {self.lost}, duplicated {self.duplicated}, stuck {self.stuck}",
            f"ticks to converge after the faults were cleared: {self.ticks_to_converge} "
            f"(at most {MAX_TICKS})",
            f"longest pass {self.longest_pass:.1f} s (budget {PASS_BUDGET.total_seconds():.0f} s); "
            f"{self.seconds:.0f} s in all",
            f"problems: {len(self.problems)}" + "".join(f"\n  {p}" for p in self.problems[:20]),
        ]


class Injector:
    """Draws the faults: one random stream, so a seed replays the same soak (as far as timing allows)."""

    def __init__(self, rng: random.Random, rate: float, figures: Figures) -> None:
        self.rng = rng
        self.rate = rate
        self.figures = figures
        self.on = True
        self.lock = threading.Lock()

    def hook(self, port: str, method: str) -> Callable[..., Any]:
        kinds = {**TRANSIENT, **SPECIFIC.get(method, {})}

        def hook(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                if self.on:
                    self.figures.calls[port] += 1
                drawn = self.on and self.rng.random() < self.rate
                # a 429 ends a pass's ARM work (and its copies): drawn less often, so passes progress
                names = sorted(kinds)
                weights = [1 if name == "429" else 3 for name in names]
                kind = self.rng.choices(names, weights)[0] if drawn else ""
            if not drawn:
                return call(*args, **kwargs)
            self.figures.faults[f"{port}:{kind}"] += 1
            return kinds[kind](f"{port} {method}")(call, *args, **kwargs)

        return hook


class Worker:
    """One app instance over faulty real adapters; a crash replaces it with a fresh one (new memory)."""

    def __init__(self, side: scenario.Side) -> None:
        self.side = side

    @property
    def service(self) -> Any:
        return self.side.service

    def restart(self) -> None:
        self.side.service = bootstrap.assemble(self.side.settings, self.side.ports, self.side.clock)


def faulty_side(stack: Stack, name: str, clock: DemoClock, injector: Injector, **env: str) -> scenario.Side:
    base = stack.source_env if name == "source" else stack.target_env
    settings = load_settings({k: v for k, v in {**base, **env}.items() if v})
    ports = bootstrap.real_ports(settings)
    wrapped: dict[str, Any] = {}
    for port, methods in HOOKED.items():
        adapter = getattr(ports, port)
        if adapter is None:
            continue
        faulty = Faulty(adapter)
        for method in methods:
            if callable(getattr(adapter, method, None)):
                faulty.around(method, injector.hook(port, method))
        wrapped[port] = faulty
    return scenario.Side(name, settings, clock, replace(ports, **wrapped))


class Soak:
    def __init__(
        self,
        stack: Stack,
        seed: int,
        exports: int,
        rate: float,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.stack = stack
        self.report = report
        self.started = time.monotonic()
        self.rng = random.Random(seed)
        self.figures = Figures(seed, exports, rate)
        self.injector = Injector(random.Random(seed + 1), rate, self.figures)
        self.source_clock = DemoClock()
        self.target_clock = DemoClock(timedelta(days=61))  # every blob is too old for the source trigger
        self.sources = [Worker(faulty_side(stack, "source", self.source_clock, self.injector)) for _ in "ab"]
        self.targets = [
            Worker(
                faulty_side(
                    stack, "target", self.target_clock, self.injector, TRANSFER_STALE_BLOB_ACTION="import"
                )
            )
            for _ in "ab"
        ]
        self.requests: dict[str, list[str]] = {}  # Idempotency-Key -> artifacts
        self.accepted: set[str] = set()  # the keys whose request was answered
        self.export_ids: set[str] = set()
        self.seen_blobs: set[str] = set()

    # ---- driving ----

    def guarded(self, worker: Worker, work: Callable[[], Any]) -> Any:
        """`work()` on a worker; a crash restarts it, a transient error is the caller's to retry."""
        try:
            return work()
        except Crash:
            self.figures.crashes += 1
            worker.restart()
        except TransferError as exc:
            logging.getLogger("soak").info("%s", exc.message)
        return None

    def timed_pass(self, worker: Worker, work: Callable[[], Any]) -> Any:
        started = time.monotonic()
        result = self.guarded(worker, work)
        self.figures.longest_pass = max(self.figures.longest_pass, time.monotonic() - started)
        return result

    def start_exports(self, count: int) -> None:
        for _ in range(count):
            index = len(self.requests)
            key = f"soak-{self.figures.seed}-{index}"
            self.requests[key] = [f"{REPOSITORY.format(index)}:v1"]
            self.export(key)

    def export(self, key: str) -> None:
        worker = self.rng.choice(self.sources)
        accepted = self.guarded(
            worker, lambda: worker.service.start_export(self.requests[key], Trigger.HTTP, None, key)
        )
        if accepted is not None:
            self.accepted.add(key)
            self.export_ids.update(run.id for run in accepted.runs)

    def emulator_fault(self) -> None:
        """Now and then ARM itself misbehaves for a few requests: 500, 503, 429 with Retry-After, or late."""
        if self.rng.random() >= self.injector.rate * 3:
            return
        status = self.rng.choice([500, 503, 429, None])
        kind = f"emulator:{status or 'delay'}"
        self.figures.faults[kind] += 1
        self.stack.emulator.admin.inject_fault(
            status=status,
            path="/deployments/|/pipelineRuns/",
            method="*",
            count=self.rng.randint(1, 3),
            retry_after="1" if status == 429 else None,
            delay_seconds=0.5 if status is None else 0,
        )

    def tick(self) -> None:
        """One round of the timers and events on random workers: reconcile both sides, deliver the new
        blobs' events (some twice, shuffled), and sweep now and then."""
        for workers in (self.sources, self.targets):
            worker = self.rng.choice(workers)
            self.timed_pass(worker, worker.service.reconcile)
            self.timed_pass(worker, worker.service.cleanup)
        self.deliver_events()
        if self.rng.random() < 0.3:
            worker = self.rng.choice(self.targets)
            self.timed_pass(worker, worker.service.sweep)

    def deliver_events(self) -> None:
        names = [b.name for b in _target_blobs(self.stack) if not b.name.endswith(".manifest.json")]
        new = [n for n in names if n not in self.seen_blobs]
        events = new + [n for n in new if self.rng.random() < 0.5]  # duplicates
        self.rng.shuffle(events)  # reordered
        for name in events:
            worker = self.rng.choice(self.targets)
            self.figures.events += 1
            if self.guarded(worker, lambda n=name, w=worker: w.service.handle_blob(n, Trigger.BLOB)):
                self.seen_blobs.add(name)

    def run(self, ticks: int) -> Figures:
        started = self.started = time.monotonic()
        per_tick = max(1, self.figures.exports // ticks)
        while len(self.requests) < self.figures.exports:
            self.start_exports(min(per_tick, self.figures.exports - len(self.requests)))
            self.emulator_fault()
            self.tick()
            self.progress(f"{len(self.requests)} exports asked")
        for tick in range(FAULTY_TICKS):  # the copies, blob events and imports meet the faults too
            if len(self.seen_blobs) >= self.figures.exports:
                break
            self.source_clock.offset += TICK
            self.target_clock.offset += TICK
            self.emulator_fault()
            self.tick()
            self.progress(f"faulty tick {tick + 1} after the exports")
        self.injector.on = False
        self.stack.emulator.admin.clear_faults()
        self.figures.ticks_to_converge = self.settle()
        self.figures.seconds = time.monotonic() - started
        self.figures.problems += self.check()
        return self.figures

    def settle(self) -> int:
        """Faults cleared: clients retry what was refused, the timers tick (the app's clocks moving a tick
        each), until every run ended and every exported blob is imported; how many ticks it took."""
        for tick in range(1, MAX_TICKS + 1):
            for key in [k for k in self.requests if k not in self.accepted]:
                self.export(key)  # a client retrying its request: the Idempotency-Key makes it a repeat
            self.source_clock.offset += TICK
            self.target_clock.offset += TICK
            self.tick()
            for worker in self.targets:
                self.timed_pass(worker, worker.service.sweep)
            self.progress(f"settling tick {tick}")
            if self.converged():
                return tick
        return MAX_TICKS + 1

    def progress(self, what: str) -> None:
        if self.report is not None:
            self.report(f"{time.monotonic() - self.started:.0f} s: {what}")

    # ---- what must hold ----

    def runs(self) -> tuple[list[Run], list[Run]]:
        exports = self.sources[0].service.list_runs(kind="export", top=1000)
        imports = self.targets[0].service.list_runs(kind="import", top=1000)
        return exports, imports

    def converged(self) -> bool:
        exports, imports = self.runs()
        blobs = {run.blob for run in exports}
        imported = {run.blob for run in imports if run.status is RunStatus.SUCCEEDED}
        return (
            len(exports) >= self.figures.exports
            and all(run.status.terminal and not run.awaits_copy for run in [*exports, *imports])
            and blobs <= imported
        )

    def check(self) -> list[str]:
        problems: list[str] = []
        exports, imports = self.runs()
        self.figures.runs = len(exports) + len(imports)
        if len(exports) != self.figures.exports:
            problems.append(f"{len(exports)} export runs for {self.figures.exports} requests")
        for run in [*exports, *imports]:
            if run.status is not RunStatus.SUCCEEDED:
                problems.append(f"run {run.id} {run.status.value}: {run.error or run.warning}")
        for run in exports:
            if run.copy_status is None or run.copy_status.value != "success":
                problems.append(f"export {run.id}: copy {run.copy_status}")
        owned = Counter(run.blob for run in imports if run.owned and run.status is RunStatus.SUCCEEDED)
        named = Counter(_blob_of(r) for r in _arm(self.targets).list_pipeline_runs())
        self.figures.lost = sum(1 for run in exports if owned[run.blob] == 0)
        self.figures.duplicated = sum(1 for run in exports if max(owned[run.blob], named[run.blob]) > 1)
        self.figures.stuck = sum(1 for run in [*exports, *imports] if not run.status.terminal)
        for run in exports:
            if owned[run.blob] != 1 or named[run.blob] != 1:
                problems.append(
                    f"blob {run.blob}: {owned[run.blob]} succeeded imports, {named[run.blob]} pipelineRuns"
                )
        deployments = Counter(run.deployment_name for run in [*exports, *imports] if run.owned)
        problems += [f"deployment {d} for {n} runs" for d, n in deployments.items() if n != 1]
        pipeline_runs = Counter(
            r["name"]
            for side in (self.sources, self.targets)
            for r in side[0].side.ports.arm.list_pipeline_runs()
        )
        problems += [f"pipelineRun {name} {n} times" for name, n in pipeline_runs.items() if n != 1]
        if self.figures.longest_pass > PASS_BUDGET.total_seconds() + CALL_WORST:
            problems.append(f"a pass took {self.figures.longest_pass:.0f} s")
        if self.figures.ticks_to_converge > MAX_TICKS:
            problems.append(f"not converged within {MAX_TICKS} ticks after the faults were cleared")
        return problems


def _arm(workers: list[Worker]) -> Any:
    return workers[0].side.ports.arm


def _target_blobs(stack: Stack) -> list[Any]:
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(
        stack.connection_string(demo_stack.TARGET_ACCOUNT), demo_stack.TARGET_CONTAINER
    )
    return list(container.list_blobs())


def _blob_of(pipeline_run: dict[str, Any]) -> str | None:
    source = ((pipeline_run.get("properties") or {}).get("request") or {}).get("source") or {}
    name = source.get("name")
    return str(name) if name else None


def repositories(exports: int) -> dict[str, Any]:
    return {REPOSITORY.format(i): {"v1": None} for i in range(exports)}


class LeakScanner(logging.Handler):
    """Every log record of the soak, at DEBUG, searched as it is emitted for the stack's secrets (by value)
    and for the shapes of any secret (tests/integration/test_secrets_in_logs.py); keeps only what leaks."""

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__(logging.DEBUG)
        from tests.integration.test_secrets_in_logs import STANDARD

        self.secrets = secrets
        self.standard = STANDARD
        self.records = 0
        self.leaks: list[str] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        from tests.integration.test_secrets_in_logs import leaks

        self.records += 1
        extras = {k: v for k, v in vars(record).items() if k not in self.standard}
        text = f"{self.formatter.format(record)} {extras!r} {record.args!r}"
        self.leaks += leaks([(record.name, text)], self.secrets)[:1]


def scanning_logs(scanner: LeakScanner) -> Callable[[], None]:
    """DEBUG for every logger, the scanner on the root; returns what restores them."""
    root = logging.getLogger()
    loggers = [
        root,
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(scanner)

    def restore() -> None:
        root.removeHandler(scanner)
        for logger, level in levels.items():
            logger.setLevel(level)

    return restore


def soak(
    stack: Stack,
    *,
    seed: int,
    exports: int,
    rate: float,
    ticks: int,
    report: Callable[[str], None] | None = None,
) -> Figures:
    """The whole soak on a started stack (tests/integration/reliability_stack.started_stack with
    `repositories(exports)`): the source trigger kept quiet, every log scanned for secrets."""
    from tests.integration.test_secrets_in_logs import known_secrets

    scanner = LeakScanner(known_secrets(stack))
    stack.emulator.admin.configure(source_trigger_window_days=0)  # only the app imports
    restore = scanning_logs(scanner)
    try:
        figures = Soak(stack, seed, exports, rate, report).run(ticks)
    finally:
        restore()
        stack.emulator.admin.configure(source_trigger_window_days=60)
        stack.emulator.admin.clear_faults()
    figures.log_records = scanner.records
    figures.problems += [f"secret in a log: {leak}" for leak in scanner.leaks[:10]]
    return figures
