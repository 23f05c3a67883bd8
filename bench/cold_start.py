"""Cold start: what importing function_app costs beyond the Functions libraries it cannot do without.

Fresh interpreters, interleaved (app, baseline, app, baseline, ...), so a busy moment of the machine hits
both alike; the median of each is compared:

    app:      python -c "import function_app"
    baseline: python -c "import azure.functions, azurefunctions.extensions.bindings.blob"

Budget: app <= 1.10 x baseline. Also shows which modules the app adds (none of them may be an Azure SDK
client library: those load on first use, inside the adapters).

    .venv/bin/python -m bench.cold_start [--repeat 15]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.common import ROOT, Results, header, median, ms, python_process

APP = "import function_app"
BASELINE = "import azure.functions, azurefunctions.extensions.bindings.blob"
ADDED = (
    "import sys, azure.functions, azurefunctions.extensions.bindings.blob\n"
    "before = set(sys.modules)\n"
    "import function_app\n"
    "print('\\n'.join(sorted(set(sys.modules) - before)))"
)
BUDGET = 1.10


def heaviest(count: int = 6) -> str:
    """The app's own modules that take longest to import (self time), from one -X importtime run."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", APP], cwd=ROOT, capture_output=True, text=True, check=True
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit() and parts[2].startswith(("transfer", "function_app")):
            rows.append((int(parts[0]), parts[2]))
    rows.sort(reverse=True)
    total = sum(us for us, _ in rows)
    return f"{total / 1000:.1f} ms in all; " + ", ".join(
        f"{name} {us / 1000:.1f} ms" for us, name in rows[:count]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    header("cold start: import function_app vs the Functions libraries alone")
    results = Results("cold_start")
    python_process(APP)  # warm the page cache and the .pyc files once; not counted
    python_process(BASELINE)
    app_samples, base_samples = [], []
    for _ in range(args.repeat):
        app_samples.append(python_process(APP)[0])
        base_samples.append(python_process(BASELINE)[0])
    app, base = median(app_samples), median(base_samples)
    results.info(f"fresh processes: {args.repeat} each, interleaved; medians below")
    results.info(f"baseline ({BASELINE}): {ms(base)}")
    results.info(f"app ({APP}): {ms(app)}  (+{ms(app - base)})")
    added = python_process(ADDED)[1].split()
    sdk = [m for m in added if m.startswith("azure.") and not m.startswith("azure.functions")]
    results.info(f"modules function_app adds: {len(added)}, of which Azure SDK modules: {len(sdk)}")
    results.info("heaviest modules of the app (self time, one process, -X importtime): " + heaviest())
    results.budget("import function_app / import of the Functions libraries", app / base, BUDGET)
    results.budget("Azure SDK modules loaded by importing function_app", len(sdk), 0, unit="")
    results.summary()


if __name__ == "__main__":
    main()
