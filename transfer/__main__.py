"""`python -m transfer`: see transfer/cli.py."""

import sys

from transfer.cli import main

sys.exit(main())
