"""`python -m transfer` and the `transfer` command (pyproject.toml): the CLI of transfer/entrypoints/cli/."""

import sys


def main() -> int:
    """The CLI's exit code; a console script's wrapper exits with it."""
    from transfer.entrypoints.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
