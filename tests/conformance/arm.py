"""Raw ARM requests to the emulator, as a user (a token naming them) would send them."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from emulator.testing import RunningEmulator


def user_token(upn: str) -> str:
    """A bearer token naming a user, as Entra's tokens do (`upn`); the emulator reads, never verifies."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'upn': upn, 'idtyp': 'user'})}.sig"


def send(
    emulator: RunningEmulator, method: str, path: str, api_version: str, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310 (the emulator's own HTTPS endpoint)
        f"{emulator.arm_endpoint}{path}?api-version={api_version}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer " + user_token("test@example.com"),
        },
    )
    context = ssl.create_default_context(cafile=emulator.ca_file)
    try:
        with urllib.request.urlopen(request, context=context) as answer:  # noqa: S310
            raw = answer.read()
            status, headers = answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as exc:
        raw, status, headers = exc.read(), exc.code, {k.lower(): v for k, v in exc.headers.items()}
    return status, headers, json.loads(raw) if raw else None
