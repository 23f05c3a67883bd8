"""Seeding from a JSON document (the `--seed FILE` of `python -m emulator`):

{
  "registries": [
    {"name": "sourceregistry", "resourceGroup": "rg", "repositories": {"samples/hello": {"v1": null}}}
  ],
  "vaults": [{"name": "sourcevault", "secrets": {"acrexportsas": "sv=...&sig=..."}}],
  "identities": [{"name": "transferidentity"}]
}
"""

from __future__ import annotations

import json
from typing import Any

from emulator.server import Dispatch, Request


def load_seed(admin: Dispatch, document: dict[str, Any]) -> None:
    """Apply the document through the admin API's own handler (`admin`), so it validates the same way."""
    calls = [("registries", r) for r in document.get("registries") or []]
    calls += [("vaults", v) for v in document.get("vaults") or []]
    calls += [("identities", i) for i in document.get("identities") or []]
    for route, body in calls:
        request = Request("POST", f"/_emulator/{route}", {}, {}, json.dumps(body).encode(), 0)
        admin(request)
