"""`python -m emulator`: start the ACR Transfer + ARM emulator (and Azurite if asked), print the settings a
client needs as KEY=VALUE lines a shell can source (or JSON), and serve until SIGTERM or Ctrl-C, which stop
everything it started and remove its temporary folder."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from emulator import azurite
from emulator.runtime import Emulator
from emulator.seed import load_seed
from emulator.signals import stop_on_signals
from emulator.store import Config


def render(settings: dict[str, Any], *, as_json: bool) -> str:
    """One JSON object, or KEY=VALUE lines quoted for sh (a connection string holds `;`) and a last comment
    line: `set -a; . ./emulator.env; set +a` exports them."""
    if as_json:
        return json.dumps(settings, indent=2)
    lines = [f"{key}={shlex.quote(str(value))}" for key, value in settings.items()]
    return "\n".join([*lines, "# serving until SIGTERM or Ctrl-C"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="HTTPS port of the ARM endpoint (0: a free port)")
    parser.add_argument("--state-dir", type=Path, help="where the CA file goes (default: a new temp dir)")
    storage = parser.add_mutually_exclusive_group(required=True)
    storage.add_argument("--azurite-connection-string", help="connection string of a running Azurite")
    storage.add_argument("--with-azurite", action="store_true", help="start Azurite (node_modules) too")
    parser.add_argument("--seed", type=Path, help="JSON file of registries, vaults and identities to create")
    parser.add_argument("--run-seconds", type=float, default=Config.run_seconds, help="duration of a run")
    parser.add_argument("--trigger-interval", type=float, default=Config.trigger_interval)
    parser.add_argument("--subscription-id", default=Config.subscription_id)
    parser.add_argument("--resource-group", default=Config.resource_group, help="default resource group")
    parser.add_argument("--json", action="store_true", help="print the settings as one JSON object")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)

    with stop_on_signals():  # SIGTERM like Ctrl-C: Azurite stopped, the temporary folder removed
        started_azurite = emulator = None
        try:
            if args.with_azurite:
                started_azurite = azurite.start()
                connection_string = started_azurite.connection_string
            else:
                connection_string = args.azurite_connection_string
            config = Config(
                subscription_id=args.subscription_id,
                resource_group=args.resource_group,
                run_seconds=args.run_seconds,
                trigger_interval=args.trigger_interval,
            )
            emulator = Emulator(connection_string, port=args.port, state_dir=args.state_dir, config=config)
            emulator.start()
            if args.seed:
                load_seed(emulator.admin_routes.dispatch, json.loads(args.seed.read_text(encoding="utf-8")))
            print(render(emulator.settings(), as_json=args.json), flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            if emulator is not None:
                emulator.stop()
            if started_azurite is not None:
                azurite.stop(started_azurite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
