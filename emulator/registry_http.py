"""The registry data plane's answers: ACR's error shape `{"errors": [{"code", "message", "detail"}]}` and the
headers every answer carries."""

from __future__ import annotations

from typing import Any

from emulator.server import Response

COMMON_HEADERS = {"Docker-Distribution-Api-Version": "registry/2.0"}
THROTTLED_MESSAGE = (
    "Too many requests. Please visit https://aka.ms/acr/skus#sku-feature-matrix to view limits of all "
    "service tiers."
)


def error(
    status: int,
    code: str,
    message: str,
    detail: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return Response(status, {"errors": [entry]}, {**COMMON_HEADERS, **(headers or {})})


def throttled(retry_after: int) -> Response:
    """ACR's 429: TOOMANYREQUESTS with a Retry-After in seconds."""
    return error(429, "TOOMANYREQUESTS", THROTTLED_MESSAGE, None, {"Retry-After": str(retry_after)})
