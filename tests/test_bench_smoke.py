"""Every benchmark runs from this checkout, at sizes too small for its ratios to mean anything: the scripts
`make bench` runs must not rot between two measurements. Their budgets are judged by `make bench` alone
(docs/performance.md); here only that each one starts what it needs, measures, and prints its summary."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]
ROOT = Path(__file__).resolve().parent.parent

TINY = {
    "cold_start": ["--repeat", "1"],
    "arm_calls": ["--runs", "3"],
    "incremental": ["--repos", "2", "--tags", "3", "--repeat", "1"],
    "trigger_listing": ["--few", "2", "--many", "4", "--repeat", "1"],
    "reconcile_history": ["--few", "2", "--many", "5", "--repeat", "1"],
    "sweep": ["--blobs", "20", "--action", "2", "--repeat", "1"],
    "memory": ["--size-mib", "2", "--repeat", "1"],
    "http_export": ["--repeat", "2"],
    "throughput": ["--events", "10", "--threads", "2"],
    "active_runs": ["--finished", "5", "--repeat", "1"],
    "push_latency": ["--bursts", "1,2", "--window", "1"],
    "dashboard": ["--runs", "30", "--blobs", "20", "--repeat", "1"],
}


def test_every_benchmark_of_make_bench_is_run_here() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    listed = {line.split("bench.", 1)[1].split()[0] for line in makefile.splitlines() if "-m bench." in line}
    assert listed == set(TINY)


def run(name: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    command = [sys.executable, "-m", f"bench.{name}", *TINY[name]]
    return name, subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_each_benchmark_runs_to_its_summary_at_tiny_sizes() -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(pool.map(run, TINY))
    for name, result in done.items():
        output = result.stdout + result.stderr
        assert "Traceback" not in output, f"bench.{name}:\n{output[-3000:]}"
        assert result.returncode in (0, 1), f"bench.{name} exited {result.returncode}:\n{output[-3000:]}"
        if name != "active_runs":  # figures only, no budget lines
            assert f"\n{name}: " in result.stdout, f"bench.{name} printed no summary:\n{output[-3000:]}"
