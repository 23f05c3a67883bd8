"""`python -m demo`: the whole story, exit 0 when every step did what it should."""

from __future__ import annotations

import argparse
import logging
import sys

from demo import scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="show the app's own logs too")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="   | %(name)s: %(message)s"
    )
    try:
        scenario.run()
    except scenario.DemoFailure as failure:
        print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
