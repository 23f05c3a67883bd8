"""`python -m demo`: the whole story, exit 0 when every step did what it should."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from demo import scenario
from emulator.signals import stop_on_signals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="show the app's own logs too")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["run", "serve"],
        default="run",
        help="run: the end-to-end story (default); serve: the stack and both HTTP APIs for curl",
    )
    parser.add_argument("--source-port", type=int, default=7071, help="serve: the source side's port")
    parser.add_argument("--target-port", type=int, default=7072, help="serve: the target side's port")
    parser.add_argument(
        "--settings-dir", type=Path, help="serve: where each side's settings file goes (default: .serve/)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="   | %(name)s: %(message)s"
    )
    # SIGTERM as Ctrl-C: the stack (Azurite included) stops and its files go, whichever signal comes.
    with stop_on_signals():
        try:
            if args.command == "serve":
                from demo import devserver

                devserver.serve(
                    args.source_port, args.target_port, args.settings_dir or devserver.SETTINGS_DIR
                )
                return 0
            scenario.run()
        except scenario.DemoFailure as failure:
            print(f"\nDEMO FAILED: {failure}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as stopped:  # before serving began, or during the story: all stopped by now
            print(f"\nstopped ({stopped or 'SIGINT'})", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
