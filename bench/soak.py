"""The randomized fault soak at a large size (tests/soak.py; tests/integration/test_soak.py runs it small):
exports and their imports through the real adapters against Azurite and the ARM/ACR emulator, two workers a
side, faults injected at random into ARM, Table, Blob, Key Vault and the registry, then every fault cleared
and the timers ticked until everything settles. Prints the figures; exits 1 when an invariant is broken.

    .venv/bin/python -m bench.soak [--exports 1000] [--rate 0.1] [--seed 20] [--ticks 40]
"""

from __future__ import annotations

import argparse
import sys

from tests.integration.reliability_stack import started_stack
from tests.soak import repositories, soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=1000, help="export requests (each one more import)")
    parser.add_argument("--rate", type=float, default=0.1, help="share of calls faulted")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=40, help="timer rounds while the exports start")
    args = parser.parse_args(argv)
    if not 1 <= args.exports <= 1000:
        parser.error("--exports is 1 to 1000 (the runs list of one kind reads at most 1,000)")
    with started_stack(repositories=repositories(args.exports)) as stack:
        figures = soak(
            stack,
            seed=args.seed,
            exports=args.exports,
            rate=args.rate,
            ticks=args.ticks,
            report=lambda line: print(line, file=sys.stderr, flush=True),
        )
    print("\n".join(figures.lines()))
    ok = not figures.problems
    verdict = "PASS" if ok else "FAIL"
    print(f"soak: {verdict} (lost {figures.lost}, duplicated {figures.duplicated}, stuck {figures.stuck})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
