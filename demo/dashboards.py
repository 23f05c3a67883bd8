"""The end of `make demo`: the dashboard of each side (GET /api/dashboard, through the real function) written
as an HTML file, so a person can open what the story left behind. The folder is git-ignored."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import azure.functions as func

if TYPE_CHECKING:
    from demo.scenario import Side

FOLDER = Path(".demo")


def page(side: Side, app: Any, base: str, params: dict[str, str] | None = None) -> tuple[int, str]:
    """The side's dashboard as the Functions host would answer GET {base}dashboard."""
    request = func.HttpRequest("GET", f"{base}dashboard", params=params or {}, body=b"")
    with side.active():
        response = app.dashboard(request)
    return response.status_code, response.get_body().decode()


def write(sides: Iterable[tuple[Side, str]], app: Any, folder: Path = FOLDER) -> list[Path]:
    """`<folder>/<side>-dashboard.html` for each (side, base URL of its API)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for side, base in sides:
        status, body = page(side, app, base)
        if status != 200:
            raise RuntimeError(
                f"GET /api/dashboard on the {side.name} side answered {status}: "
                + (body if len(body) <= 300 else body[:299] + "…")
            )
        path = folder / f"{side.name}-dashboard.html"
        path.write_text(body, encoding="utf-8")
        written.append(path)
    return written
