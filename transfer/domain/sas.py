"""What ACR Transfer requires of the SAS a SasToken pipeline reads from Key Vault (the troubleshooting
guide, docs/service-facts.md), checked before a run is deployed rather than learnt from a failed run. Pure.

Export: read, write, list, add. Import: read, list, and delete with DeleteSourceBlobOnSuccess. HTTPS only
(`spr=https`). Not expired. An account SAS (`ss=`/`srt=`) must cover the blob service and the service,
container and object resource types (`srt=sco`). The token itself never enters a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from transfer.domain.causes import SAS_EXPIRED, SAS_HTTP, SAS_PERMISSIONS, SAS_RESOURCE_TYPES, Cause


@dataclass(frozen=True)
class Shortfall:
    """One thing the SAS lacks, with the failure cause the run would otherwise meet."""

    message: str
    cause: Cause


def fields(token: str) -> dict[str, str]:
    """The SAS query's fields, keys lower-cased, first value kept."""
    found: dict[str, str] = {}
    for key, value in parse_qsl(token.strip().lstrip("?"), keep_blank_values=True):
        found.setdefault(key.lower(), value)
    return found


def required_permissions(kind: str, options: Iterable[str]) -> str:
    if kind == "export":
        return "rwla"
    if kind == "copy":  # the copy step writes the blob into the target container and reads its state
        return "rw"
    return "rld" if "DeleteSourceBlobOnSuccess" in options else "rl"


def shortfalls(
    token: str,
    *,
    kind: str,
    options: Iterable[str],
    expires_at: datetime | None,
    now: datetime,
    https_only: bool = True,
) -> list[Shortfall]:
    """Everything the pipeline's SAS lacks for a run of `kind`; empty when it will do. `https_only` is
    false only for a local emulator's http:// container, for which no HTTPS-only SAS can work."""
    sas = fields(token)
    found = _permissions(sas, kind, options)
    if https_only and sas.get("spr", "").replace(" ", "").lower() != "https":
        found.append(
            Shortfall(
                f"the SAS is not HTTPS-only (spr={sas.get('spr') or 'unset'}; needs spr=https)", SAS_HTTP
            )
        )
    if expires_at is not None and expires_at <= now:
        found.append(Shortfall(f"the SAS expired at {expires_at:%Y-%m-%d %H:%M}Z", SAS_EXPIRED))
    if "srt" in sas or "ss" in sas:  # an account SAS
        found += _account_sas(sas)
    return found


def _permissions(sas: dict[str, str], kind: str, options: Iterable[str]) -> list[Shortfall]:
    permissions = sas.get("sp", "")
    needed = required_permissions(kind, options)
    missing = [p for p in needed if p not in permissions]
    if not missing:
        return []
    names = {"r": "read", "w": "write", "l": "list", "a": "add", "d": "delete"}
    lacks = ", ".join(names[p] for p in missing)
    article = "an" if kind[0] in "aeiou" else "a"
    message = f"the SAS lacks {lacks} (sp={permissions or 'none'}; {article} {kind} needs sp={needed})"
    return [Shortfall(message, SAS_PERMISSIONS)]


def _account_sas(sas: dict[str, str]) -> list[Shortfall]:
    found = []
    lacking = [t for t in "sco" if t not in sas.get("srt", "")]
    if lacking:
        found.append(
            Shortfall(
                f"the account SAS lacks resource types {''.join(lacking)} "
                f"(srt={sas.get('srt') or 'unset'}; needs srt=sco)",
                SAS_RESOURCE_TYPES,
            )
        )
    if "b" not in sas.get("ss", "b"):
        found.append(
            Shortfall(
                f"the account SAS does not cover the blob service (ss={sas.get('ss')})", SAS_PERMISSIONS
            )
        )
    return found
