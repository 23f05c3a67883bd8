"""Names the app generates for ARM and Storage; never taken from input unchecked. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from transfer.domain.errors import InvalidInput
from transfer.domain.runs import RunKind

RUN_ID = re.compile(r"^[a-zA-Z0-9]{5,50}$")  # what the app names its runs (the service's rule for a PUT)
# What a run may be named by the service itself: the source trigger's runs may hold hyphens
# (docs/service-facts.md), and nothing public fixes their format. Safe in a URL path and a Table key; the
# app never generates these.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEPLOYMENT_PREFIX = "acrtransfer-"
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9_.()-]{1,64}$")
_BLOB_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_BLOB_NAME_MAX = 1024
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_TOKEN = re.compile(r"^[a-z0-9]{6}$")


def run_id(kind: RunKind, now: datetime, token: str) -> str:
    """`20261126T233000123e4f9a2b`-like, lower-case: sortable by creation time, 5-50 alphanumerics as ACR
    requires, and unique through `token` (6 random lower-case hex or base36 characters)."""
    if not _TOKEN.fullmatch(token):
        raise ValueError("token must be 6 lower-case letters or digits")
    stamp = now.astimezone(UTC)
    return f"{stamp:%Y%m%d%H%M%S}{stamp.microsecond // 1000:03d}{kind.value[0]}{token}"


def check_run_id(value: object, target: str = "run_id") -> str:
    """A run's id as users and the state store see it: the app's own, or a name the service gave."""
    if not isinstance(value, str) or not RUN_NAME.fullmatch(value):
        raise InvalidInput("is not a run id (letters and digits, 5-50 for the app's own runs)", target=target)
    return value


def deployment_name(run: str) -> str:
    name = f"{DEPLOYMENT_PREFIX}{run}"
    assert _DEPLOYMENT.fullmatch(name)
    return name


def is_ours(deployment: str) -> bool:
    return deployment.startswith(DEPLOYMENT_PREFIX) and bool(_DEPLOYMENT.fullmatch(deployment))


def check_target_name(prefix: Any) -> str:
    """The caller's blob name prefix for exports, or the default."""
    if prefix is None:
        return "export"
    if not isinstance(prefix, str) or not _BLOB_PREFIX.fullmatch(prefix):
        raise InvalidInput(
            "must be 1-100 of letters, digits, '.', '_', '-', starting with a letter or digit",
            target="targetName",
        )
    return prefix


def export_blob_name(prefix: str | None, run: str) -> str:
    """The export's blob: the caller's prefix and the run id, so runs never overwrite each other."""
    return f"{check_target_name(prefix)}-{run}"


def check_blob_name(name: Any, target: str = "blob") -> str:
    """A blob's name in the watched container, as a caller gives it: refused before Storage sees it (where
    `../x` is OutOfRangeInput) or a Table key is made of it. Paths and unicode are fine; a URL, a path
    that climbs (`.` or `..` segments) or starts with '/', and characters no URL carries are not."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("must be a non-empty blob name", target=target)
    if len(name) > _BLOB_NAME_MAX:
        raise InvalidInput(f"blob names are at most {_BLOB_NAME_MAX} characters", target=target)
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF for ch in name):
        raise InvalidInput("contains control characters or invalid unicode", target=target)
    if "\\" in name:
        raise InvalidInput("contains a backslash; blob paths use '/'", target=target)
    if _URL.match(name):
        raise InvalidInput("give the blob's name in the container, not its URL", target=target)
    if name.startswith("/"):
        raise InvalidInput("must not start with '/' (names are relative to the container)", target=target)
    if any(segment in (".", "..") for segment in name.split("/")):
        raise InvalidInput("must not hold '.' or '..' path segments", target=target)
    if name.endswith((".", "/")):
        raise InvalidInput("must not end with '.' or '/'", target=target)
    return name


def check_idempotency_key(key: str) -> str:
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput(
            "must be 1-200 printable ASCII characters without spaces", target="Idempotency-Key"
        )
    return key


def force_update_tag(run: str) -> str:
    """Unique per run, and stable for it: redeploying the same run after a crash starts nothing new."""
    return run


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
