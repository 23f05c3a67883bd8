"""The export ledger's Table entities (transfer/adapters/ledger_table.py; the fake shares them): PartitionKey
"ledger", RowKey `ledger_row(repository, bucket)` (see transfer/adapters/entities.py's module text)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from transfer.adapters.entities import LIST_CHARS, _dt, utc
from transfer.domain.records import LedgerEntry

# ---- the export ledger ----------------------------------------------------------------------------------


LEDGER_PARTITION = "ledger"
LEDGER_BUCKETS = 16
LEDGER_PART = LIST_CHARS  # characters per property (ASCII-escaped JSON: under the 64 KiB a property)
LEDGER_PARTS = 30  # properties per bucket: its entity stays well under the 1 MiB limit


_LEDGER_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_LEDGER_SEPARATOR = "|"  # never in an encoded repository, so one repository's rows are a range of their own
_MAX_LEDGER_KEY = 1000


def _ledger_repository_key(repository: str) -> str:
    """The repository character by character: a registry's own characters kept, '/' as ':', any other as
    '~' and 6 hex digits. Injective and prefix-keeping: names under a prefix have keys under its key."""
    key = "".join(c if c in _LEDGER_KEPT else ":" if c == "/" else f"~{ord(c):06x}" for c in repository)
    if len(key) > _MAX_LEDGER_KEY:
        raise ValueError(f"the repository name is too long for the export ledger ({len(repository)})")
    return key


def ledger_row(repository: str, bucket: str) -> str:
    return f"{_ledger_repository_key(repository)}{_LEDGER_SEPARATOR}{bucket}"


def ledger_range(repository: str) -> tuple[str, str]:
    """[low, high) of the RowKeys of one repository's ledger."""
    key = _ledger_repository_key(repository) + _LEDGER_SEPARATOR
    return key, _after(key)


def ledger_prefix_range(prefix: str) -> tuple[str, str] | None:
    """[low, high) of the RowKeys of every repository whose name starts with `prefix`; None: all of them."""
    key = _ledger_repository_key(prefix)
    return (key, _after(key)) if key else None


def _after(key: str) -> str:
    """The least string above every string that starts with `key` (its last character moved up one)."""
    return key[:-1] + chr(ord(key[-1]) + 1)


def ledger_bucket(reference: str) -> str:
    """The bucket (RowKey) of a tag or digest reference in its repository's ledger."""
    number = int(hashlib.sha256(reference.encode("utf-8")).hexdigest()[:8], 16) % LEDGER_BUCKETS
    return f"{number:02d}"


def ledger_entity(repository: str, bucket: str, entries: Mapping[str, LedgerEntry]) -> dict[str, Any]:
    """One bucket of a repository's ledger as an entity; raises ValueError past LEDGER_PARTS properties."""
    rows = sorted([e.reference, e.digest, e.run_id, utc(e.read_at).isoformat()] for e in entries.values())
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    parts = [text[i : i + LEDGER_PART] for i in range(0, len(text), LEDGER_PART)] or ["[]"]
    if len(parts) > LEDGER_PARTS:
        raise ValueError(f"the export ledger of {repository} holds too many tags for one bucket")
    entity: dict[str, Any] = {
        "PartitionKey": LEDGER_PARTITION,
        "RowKey": ledger_row(repository, bucket),
        "repository": repository,
        "parts": len(parts),
    }
    entity.update({f"p{index}": part for index, part in enumerate(parts)})
    return entity


def ledger_from_entity(entity: Mapping[str, Any]) -> dict[str, LedgerEntry]:
    """A bucket's entries by reference."""
    text = "".join(str(entity[f"p{index}"]) for index in range(int(entity["parts"])))
    repository = str(entity["repository"])
    return {
        str(reference): LedgerEntry(repository, str(reference), str(digest), str(run_id), _dt(read_at))
        for reference, digest, run_id, read_at in json.loads(text)
    }


def stored_ledger_entry(entry: LedgerEntry) -> LedgerEntry:
    """The entry as the store keeps it (datetimes in UTC, to the second's fraction ISO keeps)."""
    bucket = ledger_bucket(entry.reference)
    return ledger_from_entity(ledger_entity(entry.repository, bucket, {entry.reference: entry}))[
        entry.reference
    ]


def ledger_supersedes(new: LedgerEntry, stored: LedgerEntry | None) -> bool:
    """Whether `new` may replace the stored row: it was read at least as late (ties: the newer write)."""
    return stored is None or utc(new.read_at) >= utc(stored.read_at)
