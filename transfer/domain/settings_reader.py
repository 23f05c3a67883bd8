"""How one setting is read: trimmed, defaulted, and checked by its kind (a name, a number, a URL, a storage
connection...), every problem recorded with the setting's name, none raised: one error lists them all."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from transfer.domain.connection_strings import connection_string_problem
from transfer.domain.ncrontab import Schedule, ScheduleError
from transfer.domain.settings_values import StorageConnection, is_loopback_http


class Reader:
    """Reads settings from an environment mapping, collecting every problem so one error lists them all."""

    def __init__(self, env: Mapping[str, str], defaults: Mapping[str, str]) -> None:
        self.env = env
        self.defaults = defaults
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        value = self.env.get(name, self.defaults.get(name))
        value = value.strip() if value is not None else None
        return value or self.defaults.get(name) or None

    def required(self, name: str, why: str = "") -> str:
        value = self.get(name)
        if value is None:
            self.problems.append(f"{name} is required{why}")
            return ""
        return value

    def matching(
        self, name: str, pattern: re.Pattern[str], rule: str, *, required: bool = False
    ) -> str | None:
        value = self.required(name) if required else self.get(name)
        if value and not pattern.fullmatch(value):
            self.problems.append(f"{name} must be {rule}")
        return value or None

    def integer(self, name: str, low: int, high: int) -> int:
        raw = self.get(name) or ""
        try:
            number = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return int(self.defaults[name])
        if not low <= number <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {number}")
        return number

    def boolean(self, name: str) -> bool:
        raw = (self.get(name) or "").lower()
        if raw in ("true", "1", "yes"):
            return True
        if raw in ("false", "0", "no"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return self.defaults[name] == "true"

    def schedule(self, name: str) -> str:
        """Checked field by field with the parser the dashboard's next occurrence uses."""
        value = self.get(name) or ""
        try:
            Schedule.parse(value)
        except ScheduleError as exc:
            self.problems.append(f"{name} is not a valid NCRONTAB schedule: {exc}")
        return value

    def url(self, name: str, *, https_only: bool = True) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.query:
            self.problems.append(f"{name} must not carry a query string (no SAS in settings)")
        elif not parts.hostname or (
            parts.scheme != "https" and not (not https_only and is_loopback_http(value))
        ):
            self.problems.append(f"{name} must be an https:// URL")
        return value.rstrip("/")

    def storage(self, name: str) -> StorageConnection | None:
        """A connection string, or service URIs (given, or made from `__accountName`) for identity."""
        conn = self.get(name)
        if conn:
            problem = connection_string_problem(conn)
            if problem:
                self.problems.append(f"{name} is not a usable storage connection string: {problem}")
            return StorageConnection(name, connection_string=conn)
        uris = {kind: self.get(f"{name}__{kind}ServiceUri") for kind in ("blob", "queue", "table")}
        account = self.get(f"{name}__accountName")
        if account and not any(uris.values()):
            uris = {kind: f"https://{account}.{kind}.{{suffix}}" for kind in uris}
        if not any(uris.values()):
            return None
        for kind, uri in uris.items():
            if uri and not uri.startswith("https://") and not is_loopback_http(uri):
                self.problems.append(f"{name}__{kind}ServiceUri must be an https:// URL")
        return StorageConnection(
            name,
            blob_service_uri=uris["blob"],
            queue_service_uri=uris["queue"],
            table_service_uri=uris["table"],
        )

    def choice(self, name: str, allowed: Mapping[str, Any], rule: str) -> Any:
        raw = self.get(name) or ""
        if raw not in allowed:
            self.problems.append(f"{name} must be {rule}, got {raw!r}")
            return allowed[self.defaults[name]]
        return allowed[raw]
