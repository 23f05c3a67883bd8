"""What an HTTP route is: a function as the host names it, its method and route template, the operation
that answers it and what it answers with. The table itself is http_api.ROUTES: http_api answers by it, the
local dev server routes by it, and the tests check function_app.py's decorators and the contract against
it. A page (text/html) is a row like any other."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
HTML = "text/html"
ROUTE_PREFIX = "/api/"


def _pattern(template: str) -> re.Pattern[str]:
    """The host's route template as a regular expression: `{name}` is one path segment, `{*name}` the rest."""
    parts = []
    for piece in re.split(r"(\{\*?\w+\})", template):
        if piece.startswith("{*"):
            parts.append(f"(?P<{piece[2:-1]}>.+)")
        elif piece.startswith("{"):
            parts.append(f"(?P<{piece[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


@dataclass(frozen=True)
class Route:
    function: str  # the function's name as the host sees it (function_app.py)
    method: str
    template: str  # the route under /api/, as the host's route template: `runs/{run_id}`, `blobs/{*name}`
    operation: Callable[..., Any] = field(compare=False, repr=False)
    media_type: str = JSON  # what it answers

    def match(self, method: str, rest: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        found = _pattern(self.template).fullmatch(rest)
        return found.groupdict() if found else None


def find(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route and its parameters for `path` under /api/, as the host routes it."""
    if not path.startswith(ROUTE_PREFIX):
        return None
    rest = path[len(ROUTE_PREFIX) :].rstrip("/")
    for route in routes:
        params = route.match(method, rest)
        if params is not None:
            return route, params
    return None
