"""Data-plane throttling of a registry: the published ListReferrers limits (per registry and per identity, in
a window of a minute) and 429s a test injects on any route; both answer with a `Retry-After` that counts
down to the end of the window, as ACR's does.

Time is the real monotonic clock (a Retry-After is real seconds to wait), not the emulator's shifted clock.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# ACR's published data-plane limits (Premium, 2026-06): ListReferrers per registry and per identity.
REFERRERS_PER_REGISTRY = 2000
REFERRERS_PER_IDENTITY = 1000
WINDOW_SECONDS = 60.0


@dataclass
class ReferrerLimits:
    """ListReferrers limits of one registry; None turns one off."""

    per_registry: int | None = REFERRERS_PER_REGISTRY
    per_identity: int | None = REFERRERS_PER_IDENTITY
    window_seconds: float = WINDOW_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {
            "listReferrersPerRegistry": self.per_registry,
            "listReferrersPerIdentity": self.per_identity,
            "windowSeconds": self.window_seconds,
        }


@dataclass
class _Window:
    started: float
    count: int = 0


@dataclass
class ThrottleRule:
    """The next matching requests answer 429 for `seconds` from the first one (at most `count` of them),
    each with Retry-After = the seconds left, rounded up."""

    method: str
    path: re.Pattern[str]
    seconds: float
    count: int | None
    started: float | None = None
    answered: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path.pattern,
            "seconds": self.seconds,
            "count": self.count,
            "answered": self.answered,
        }


@dataclass
class _Registry:
    limits: ReferrerLimits = field(default_factory=ReferrerLimits)
    registry_window: _Window | None = None
    identity_windows: dict[str, _Window] = field(default_factory=dict)
    rules: list[ThrottleRule] = field(default_factory=list)
    throttled: int = 0  # 429s answered, for tests and benchmarks


class Throttles:
    def __init__(self, lock: threading.RLock, now: Callable[[], float] = time.monotonic) -> None:
        self.lock = lock
        self.now = now
        self._registries: dict[str, _Registry] = {}

    def clear(self) -> None:
        with self.lock:
            self._registries.clear()

    def forget(self, registry_key: str) -> None:
        with self.lock:
            self._registries.pop(registry_key, None)

    def _of(self, registry_key: str) -> _Registry:
        return self._registries.setdefault(registry_key, _Registry())

    # --- settings

    def set_limits(self, registry_key: str, values: dict[str, Any]) -> ReferrerLimits:
        """{"listReferrersPerRegistry": n|null, "listReferrersPerIdentity": n|null, "windowSeconds": s}."""
        names = {
            "listReferrersPerRegistry": "per_registry",
            "listReferrersPerIdentity": "per_identity",
            "windowSeconds": "window_seconds",
        }
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(names)}")
        with self.lock:
            limits = self._of(registry_key).limits
            for name, value in values.items():
                if name == "windowSeconds":
                    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                        raise ValueError("windowSeconds must be a positive number")
                    limits.window_seconds = float(value)
                elif value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1
                ):
                    raise ValueError(f"{name} must be a positive integer or null (no limit)")
                else:
                    setattr(limits, names[name], value)
            entry = self._of(registry_key)
            entry.registry_window, entry.identity_windows = None, {}
            return limits

    def limits(self, registry_key: str) -> ReferrerLimits:
        with self.lock:
            return self._of(registry_key).limits

    def add_rule(self, registry_key: str, spec: dict[str, Any]) -> ThrottleRule:
        try:
            pattern = re.compile(str(spec.get("path") or ".*"))
        except re.error as exc:
            raise ValueError(f"'path' is not a valid regular expression: {exc}") from None
        seconds, count = spec.get("seconds", 5), spec.get("count")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError("'seconds' (how long the registry throttles) must be a positive number")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError("'count' must be a positive integer (or absent: every request in the window)")
        rule = ThrottleRule(str(spec.get("method") or "*").upper(), pattern, float(seconds), count)
        with self.lock:
            self._of(registry_key).rules.append(rule)
        return rule

    def clear_rules(self, registry_key: str) -> None:
        with self.lock:
            self._of(registry_key).rules.clear()

    def describe(self, registry_key: str) -> dict[str, Any]:
        with self.lock:
            entry = self._of(registry_key)
            return {
                "limits": entry.limits.as_dict(),
                "rules": [r.describe() for r in entry.rules if not self._spent(r)],
                "throttled": entry.throttled,
            }

    # --- questions asked per request

    def _spent(self, rule: ThrottleRule) -> bool:
        if rule.count is not None and rule.answered >= rule.count:
            return True
        return rule.started is not None and self.now() >= rule.started + rule.seconds

    def injected(self, registry_key: str, method: str, path: str) -> int | None:
        """Retry-After (seconds) when an injected rule throttles this request, else None."""
        with self.lock:
            entry = self._of(registry_key)
            for rule in entry.rules:
                if self._spent(rule) or rule.method not in ("*", method) or not rule.path.search(path):
                    continue
                now = self.now()
                if rule.started is None:
                    rule.started = now
                rule.answered += 1
                entry.throttled += 1
                return _seconds_left(rule.started + rule.seconds, now)
            return None

    def list_referrers(self, registry_key: str, identity: str) -> int | None:
        """Count one ListReferrers call; Retry-After (seconds) when it is over a limit, else None."""
        with self.lock:
            entry = self._of(registry_key)
            limits, now = entry.limits, self.now()
            checks: list[tuple[int | None, Callable[[], _Window]]] = [
                (limits.per_registry, lambda: self._window(entry, None, now)),
                (limits.per_identity, lambda: self._window(entry, identity, now)),
            ]
            windows = [(limit, get()) for limit, get in checks if limit is not None]
            for limit, window in windows:
                if window.count >= limit:
                    entry.throttled += 1
                    return _seconds_left(window.started + limits.window_seconds, now)
            for _, window in windows:
                window.count += 1
            return None

    def _window(self, entry: _Registry, identity: str | None, now: float) -> _Window:
        current = entry.registry_window if identity is None else entry.identity_windows.get(identity)
        if current is None or now >= current.started + entry.limits.window_seconds:
            current = _Window(now)
            if identity is None:
                entry.registry_window = current
            else:
                entry.identity_windows[identity] = current
        return current


def _seconds_left(deadline: float, now: float) -> int:
    return max(1, math.ceil(deadline - now))
