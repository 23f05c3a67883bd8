"""Idempotent requests: an Idempotency-Key (or a schedule tick) claims its run ids before anything else,
so a repeat, a racing retry or a worker that died half-way finds them and starts nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transfer.domain import naming
from transfer.domain.errors import IdempotencyKeyReused
from transfer.domain.ports import RequestRecords, RunStore
from transfer.domain.records import RequestRecord
from transfer.domain.runs import Run, RunKind


@dataclass(frozen=True)
class Accepted:
    request_id: str
    runs: list[Run]
    repeated: bool = False
    skipped: tuple[str, ...] = ()  # an incremental export's tags left out: unchanged since exported
    unmatched: tuple[str, ...] = ()  # the schedule's selectors that matched nothing
    incremental: bool = False


@dataclass(frozen=True)
class Claim:
    request_id: str
    run_ids: list[str]
    repeated: bool  # the key was used before: these are its first request's ids


class IdempotentRequests:
    def __init__(
        self,
        records: RequestRecords,
        runs: RunStore,
        new_id: Callable[[RunKind, datetime], str],
        clock: Callable[[], datetime],
    ) -> None:
        self.records = records
        self.runs = runs
        self.new_id = new_id
        self.clock = clock

    def stored(self, key: str, request: Mapping[str, Any]) -> Accepted | None:
        """The runs of an earlier request with this key, when all are recorded: a repeat must get them even
        after the blob was imported and deleted."""
        stored = self.records.get_request(key)
        if stored is None:
            return None
        _same_request(stored, request)
        runs = [self.runs.get_run(run_id) for run_id in stored.run_ids]
        if any(run is None for run in runs):
            return None
        return Accepted(stored.request_id, [run for run in runs if run is not None], repeated=True)

    def claim(self, key: str | None, request: Mapping[str, Any], count: int) -> Claim:
        """Run ids for a request; with an idempotency key, the ids stored by its first use."""
        now = self.clock()
        kind = RunKind(request["kind"])
        request_id = uuid.uuid4().hex
        run_ids = [self.new_id(kind, now) for _ in range(count)]
        if key is None:
            return Claim(request_id, run_ids, False)
        naming.check_idempotency_key(key)
        fingerprint = naming.fingerprint(request)
        stored = self.records.claim_request(RequestRecord(key, request_id, fingerprint, tuple(run_ids), now))
        _same_request(stored, request)
        return Claim(stored.request_id, list(stored.run_ids), stored.request_id != request_id)


def _same_request(stored: RequestRecord, request: Mapping[str, Any]) -> None:
    if stored.fingerprint != naming.fingerprint(request):
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request", target="Idempotency-Key"
        )
