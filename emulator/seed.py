"""Seeding from a JSON document (the `--seed FILE` of `python -m emulator`):

{
  "registries": [
    {"name": "sourceregistry", "resourceGroup": "rg", "repositories": {"samples/hello": {"v1": null}},
     "exportPolicy": "disabled", "publicNetworkAccess": "Disabled"}
  ],
  "vaults": [{"name": "sourcevault", "secrets": {"acrexportsas": "sv=...&sig=..."},
              "enableRbacAuthorization": true}],
  "identities": [{"name": "transferidentity"}],
  "storageAccounts": [{"name": "sourcestore", "key": "...", "networkDefaultAction": "Deny"}],
  "roleAssignments": [{"principalId": "...", "role": "Storage Blob Data Contributor",
                       "scope": "/subscriptions/..."}],
  "armAccess": [{"principal": "<object id>", "restricted": true}]
}

Each entry is the body of the admin API's POST of the same name (registries, vaults, identities,
storage-accounts, role-assignments, arm-access).
"""

from __future__ import annotations

import json
from typing import Any

from emulator.server import Dispatch, Request

ROUTES = (
    ("registries", "registries"),
    ("vaults", "vaults"),
    ("identities", "identities"),
    ("storageAccounts", "storage-accounts"),
    ("roleAssignments", "role-assignments"),
    ("armAccess", "arm-access"),
)


def load_seed(admin: Dispatch, document: dict[str, Any]) -> None:
    """Apply the document through the admin API's own handler (`admin`), so it validates the same way."""
    for key, route in ROUTES:
        for body in document.get(key) or []:
            request = Request("POST", f"/_emulator/{route}", {}, {}, json.dumps(body).encode(), 0)
            admin(request)
