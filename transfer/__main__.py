"""`python -m transfer` and the `transfer` command (pyproject.toml): see transfer/cli.py."""

import sys

from transfer.cli import main

if __name__ == "__main__":
    sys.exit(main())
