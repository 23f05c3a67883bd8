"""What makes a storage connection string usable by the Storage SDKs, checked when settings load. Pure.

The SDKs split it at `;` into `Key=Value` pairs (a value may hold `=`, an account key does), compare keys
case-insensitively, and need an account name with a key or a SAS, and an endpoint per service (given, or
made from the account name and `EndpointSuffix`). A problem names the key, never a value: values are
secrets.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

KEY_NAME = re.compile(r"[A-Za-z]{1,40}")  # anything else may be a piece of a secret: never echoed

ENDPOINTS = ("blobendpoint", "queueendpoint", "tableendpoint", "fileendpoint")
KNOWN = {
    "defaultendpointsprotocol",
    "accountname",
    "accountkey",
    "sharedaccesssignature",
    "endpointsuffix",
    "usedevelopmentstorage",
    "developmentstorageproxyuri",
    *ENDPOINTS,
    *(f"{endpoint[:-8]}secondaryendpoint" for endpoint in ENDPOINTS),
}


def parse(conn: str) -> dict[str, str] | None:
    """Lower-cased keys to values; None when a part is not `Key=Value`."""
    pairs: dict[str, str] = {}
    for part in conn.strip().rstrip(";").split(";"):
        key, sep, value = part.partition("=")
        if not sep or not KEY_NAME.fullmatch(key.strip()):
            return None
        pairs[key.strip().lower()] = value.strip()
    return pairs


def connection_string_problem(conn: str) -> str | None:
    """Why the SDKs would refuse `conn`, in words that name the missing or wrong key; None if usable."""
    pairs = parse(conn)
    if pairs is None:
        return "malformed: it must be Key=Value pairs separated by ';' (quote it in a shell)"
    if pairs.get("usedevelopmentstorage", "").lower() == "true":
        return None
    unknown = sorted(key for key in pairs if key not in KNOWN)
    if unknown:
        return f"unknown key {unknown[0]!r} (known: AccountName, AccountKey, BlobEndpoint, ...)"
    for key in ENDPOINTS:
        url = urlsplit(pairs.get(key) or "https://host")
        if url.scheme not in ("http", "https") or not url.hostname:
            return f"{key!r} must be an http(s) URL"
    missing = _missing(pairs)
    return f"no {missing}" if missing else None


def _missing(pairs: dict[str, str]) -> str | None:
    if pairs.get("sharedaccesssignature"):
        return (
            None
            if any(pairs.get(key) for key in ENDPOINTS) or pairs.get("accountname")
            else ("AccountName or BlobEndpoint/QueueEndpoint/TableEndpoint beside SharedAccessSignature")
        )
    if not pairs.get("accountname"):
        return "AccountName"
    if not pairs.get("accountkey"):
        return "AccountKey (or SharedAccessSignature)"
    return None
