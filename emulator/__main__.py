"""`python -m emulator`: start the ACR Transfer + ARM emulator (and Azurite if asked), print the settings a
client needs as KEY=VALUE lines (or JSON), and serve until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from emulator import azurite
from emulator.runtime import Emulator
from emulator.seed import load_seed
from emulator.store import Config


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

    started_azurite = None
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
    try:
        emulator.start()
        if args.seed:
            load_seed(emulator.admin_routes.dispatch, json.loads(args.seed.read_text(encoding="utf-8")))
        settings = emulator.settings()
        if args.json:
            print(json.dumps(settings, indent=2), flush=True)
        else:
            for key, value in settings.items():
                print(f"{key}={value}", flush=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    finally:
        emulator.stop()
        if started_azurite is not None:
            azurite.stop(started_azurite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
