"""Where the CLI finds its settings: a Functions `local.settings.json` (the one in the current folder, or
the file `--settings` names), then the environment.

As Core Tools' `func start` does with the same file, a setting already in the environment wins over the
file's value (so `TRANSFER_REGISTRY=other transfer runs` overrides one setting for one command). The file's
`Values` become environment variables of the process, because some of them are read by the SDKs from the
environment rather than by the app (`IDENTITY_ENDPOINT`, `REQUESTS_CA_BUNDLE`, `AZURE_CLIENT_ID`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from transfer import bootstrap
from transfer.domain.errors import SettingsError

DEFAULT_FILE = "local.settings.json"


def read_values(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, as strings; SettingsError naming the file otherwise."""
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SettingsError([f"--settings {path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError([f"--settings {path}: cannot be read ({type(exc).__name__})"]) from None
    except json.JSONDecodeError as exc:
        raise SettingsError(
            [f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("Values", {}), dict):
        raise SettingsError([f'{path}: must be {{"IsEncrypted": false, "Values": {{"NAME": "value", ...}}}}'])
    if document.get("IsEncrypted") is True:
        raise SettingsError([f"{path}: IsEncrypted is true; decrypt it first (`func settings decrypt`)"])
    values: dict[str, str] = {}
    for name, value in document.get("Values", {}).items():
        if isinstance(value, bool):
            values[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[name] = str(value)
        else:
            raise SettingsError([f"{path}: Values.{name} must be a string"])
    return values


def settings_path(given: str | None, cwd: Path) -> Path | None:
    if given:
        return Path(given)
    found = cwd / DEFAULT_FILE
    return found if found.is_file() else None


@contextmanager
def applied(
    given: str | None, environ: MutableMapping[str, str] = os.environ, cwd: Path | None = None
) -> Iterator[Path | None]:
    """The file's values in `environ` (those not set there already) for the block, then as before."""
    path = settings_path(given, cwd or Path.cwd())
    if path is None:
        yield None
        return
    values = read_values(path)
    added = {name: value for name, value in values.items() if not environ.get(name)}
    previous = {name: environ[name] for name in added if name in environ}
    environ.update(added)
    bootstrap.reset()
    try:
        yield path
    finally:
        for name in added:
            environ.pop(name, None)
        environ.update(previous)
        bootstrap.reset()
