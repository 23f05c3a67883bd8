"""The 60-day rule: what to do with a blob in the watched container. Pure; the clock is passed in.

The import pipeline's source trigger imports a blob only while its Last-Modified is within the window
(60 days), it has a Content-MD5, and its metadata says category=acr-transfer-blob. Writing metadata moves
Last-Modified to now, which is the documented way to make an aged blob eligible again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from transfer.domain.manifests import is_manifest
from transfer.domain.records import BlobAction, BlobInfo, BlobRecord
from transfer.domain.settings import StaleAction

CATEGORY_KEY = "category"
CATEGORY_VALUE = "acr-transfer-blob"
REFRESH_KEY = "acrtransferrefreshedat"
RETRY_BACKOFF = timedelta(minutes=30)
ON_ARRIVAL_REASON = "imported on arrival (TRANSFER_IMPORT_ON_ARRIVAL)"
MANIFEST_REASON = "a manifest beside a transfer blob (read to verify its import), never imported itself"


class Outcome(StrEnum):
    LEAVE = "leave"  # eligible: the source trigger imports it
    REFRESH = "refresh"
    IMPORT = "import"
    NOTHING = "nothing"  # already imported or being imported
    WAITING = "waiting"  # its manual imports failed TRANSFER_IMPORT_MAX_ATTEMPTS times: a person decides


@dataclass(frozen=True)
class Policy:
    window: timedelta
    margin: timedelta
    stale_action: StaleAction

    @classmethod
    def of(cls, window_days: int, margin_hours: int, stale_action: StaleAction) -> Policy:
        return cls(timedelta(days=window_days), timedelta(hours=margin_hours), stale_action)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    lock_key: str  # the blob record key that makes this action happen once

    def record(
        self, blob: BlobInfo, action: BlobAction, now: datetime, run_id: str | None = None
    ) -> BlobRecord:
        """The blob record that claims this decision's action for this version of the blob."""
        return BlobRecord(
            name=blob.name,
            key=self.lock_key,
            action=action,
            decided_at=now,
            last_modified=blob.last_modified,
            run_id=run_id,
            reason=self.reason,
        )


@dataclass(frozen=True)
class SourceTriggerRun:
    """A run the import pipeline's source trigger started: when, and its blob where ARM names one (the
    spec promises only the time, docs/service-facts.md)."""

    started_at: datetime
    blob: str | None
    failed: bool = False


@dataclass(frozen=True)
class ImportAttempt:
    """A manual import run the app started for one version of the blob, as its record says now."""

    attempt: int
    failed: bool
    finished_at: datetime | None
    error: str | None = None


def retry_backoff(failures: int) -> timedelta:
    """How long after its n-th failed manual import a blob version is tried again: 30 min, 1 h, 2 h..."""
    return RETRY_BACKOFF * int(2 ** max(0, failures - 1))


def _attempts_decision(
    version: str, attempts: Sequence[ImportAttempt], max_attempts: int, now: datetime
) -> Decision | None:
    """What earlier manual imports of this version leave to do: None when there were none."""
    if not attempts:
        return None
    if any(not a.failed for a in attempts):
        return Decision(Outcome.NOTHING, "an import of this blob version is already recorded", "")
    failures = max(a.attempt for a in attempts)
    last = max(attempts, key=lambda a: a.attempt)
    because = f" (last: {last.error})" if last.error else ""
    if failures >= max_attempts:
        return Decision(
            Outcome.WAITING,
            f"{failures} manual imports of this blob version failed{because}: it waits for a person "
            "(fix the cause, then POST /api/imports or upload the blob again)",
            "",
        )
    due = (last.finished_at or now) + retry_backoff(failures)
    if now < due:
        return Decision(
            Outcome.NOTHING,
            f"manual import {failures} of {max_attempts} failed{because}; the next try is due at "
            f"{due:%Y-%m-%d %H:%M}Z",
            "",
        )
    return Decision(
        Outcome.IMPORT,
        f"retry {failures + 1} of {max_attempts} after a failed manual import{because}",
        f"import-{version}-{failures + 1}",
    )


def _possible_taker(blob: BlobInfo, runs: Sequence[SourceTriggerRun]) -> SourceTriggerRun | None:
    """A source-trigger run that may have imported this version of the blob: it started after the blob's
    last write, did not fail, and names this blob or none. A run naming another blob is not evidence."""
    candidates = [
        run
        for run in runs
        if run.started_at >= blob.last_modified and not run.failed and run.blob in (None, blob.name)
    ]
    return max(candidates, key=lambda run: run.started_at, default=None)


def content_version(blob: BlobInfo) -> str:
    """The blob's content identity: Content-MD5 when present (a metadata refresh keeps it), else ETag."""
    if blob.content_md5:
        return "md5-" + hashlib.sha256(blob.content_md5).hexdigest()[:32]
    return "etag-" + hashlib.sha256(blob.etag.encode()).hexdigest()[:32]


def has_category(blob: BlobInfo) -> bool:
    return any(k.lower() == CATEGORY_KEY and v == CATEGORY_VALUE for k, v in blob.metadata.items())


def _import_recorded(version: str, records: list[BlobRecord]) -> bool:
    """A manual import claimed for this version, or a source-trigger run that reconcile tied to it."""
    return any(r.key.endswith(version) and (r.action is BlobAction.IMPORT or r.run_id) for r in records)


def import_records(blob: BlobInfo, records: Sequence[BlobRecord]) -> list[BlobRecord]:
    """The manual import claims of this version of the blob (one per attempt)."""
    version = content_version(blob)
    return [r for r in records if r.action is BlobAction.IMPORT and r.run_id and version in r.key]


def decide(
    blob: BlobInfo,
    *,
    trigger_enabled: bool,
    policy: Policy,
    now: datetime,
    records: list[BlobRecord],
    source_trigger_runs: Sequence[SourceTriggerRun] = (),
    import_attempts: Sequence[ImportAttempt] | None = None,
    max_attempts: int = 3,
    on_arrival: bool = False,
) -> Decision:
    """One of: leave it to the source trigger, refresh its Last-Modified, start a manual import, or nothing.

    A blob a refresh cannot make eligible (no Content-MD5, no category metadata, trigger disabled) is
    imported manually. `records` are what the app decided for this blob before; an import recorded for
    this content version (manual, or the source trigger's run observed by reconcile) means nothing to do.
    An aged blob that a source-trigger run may already have taken (`source_trigger_runs`) is left alone:
    refreshing it would make the trigger import it again, and a manual import would duplicate it. A
    manifest beside a transfer blob (`<blob>.manifest.json`) is never one itself: nothing.
    `import_attempts`, when given, are the manual imports of this version so far: a failed one is tried
    again after a backoff, up to `max_attempts`; after that the blob waits for a person.
    `on_arrival` (TRANSFER_IMPORT_ON_ARRIVAL, for a blob's own event): a manual import now, whatever its age.
    """
    if is_manifest(blob.name):
        return Decision(Outcome.NOTHING, MANIFEST_REASON, "")
    version = content_version(blob)
    if import_attempts is not None:
        earlier = _attempts_decision(version, import_attempts, max_attempts, now)
        if earlier is not None:
            return earlier
        records = [r for r in records if r.action is not BlobAction.IMPORT]
    if _import_recorded(version, records):
        return Decision(Outcome.NOTHING, "an import of this blob version is already recorded", "")
    if on_arrival:
        return Decision(Outcome.IMPORT, ON_ARRIVAL_REASON, f"import-{version}")
    missing = _unreachable(blob, trigger_enabled)
    if missing:
        return Decision(Outcome.IMPORT, "; ".join(missing), f"import-{version}")
    return _by_age(blob, version, policy, now, source_trigger_runs)


def _unreachable(blob: BlobInfo, trigger_enabled: bool) -> list[str]:
    """Why the source trigger cannot import the blob whatever its age (a refresh cannot help)."""
    return [
        why
        for why, ok in (
            ("the import pipeline's source trigger is disabled", trigger_enabled),
            ("the blob has no Content-MD5", blob.content_md5 is not None),
            (f"the blob lacks metadata {CATEGORY_KEY}={CATEGORY_VALUE}", has_category(blob)),
        )
        if not ok
    ]


def _by_age(
    blob: BlobInfo,
    version: str,
    policy: Policy,
    now: datetime,
    source_trigger_runs: Sequence[SourceTriggerRun],
) -> Decision:
    """The decision for a blob the source trigger could import: by its age, and what it may have taken."""
    age = now - blob.last_modified
    if age < policy.window - policy.margin:
        remaining = policy.window - age
        return Decision(
            Outcome.LEAVE, f"eligible for the source trigger for {_days(remaining)} more", f"leave-{version}"
        )
    aged = f"last modified {_days(age)} ago (window {_days(policy.window)}, margin {_days(policy.margin)})"
    taker = _possible_taker(blob, source_trigger_runs)
    if taker is not None:
        named = "named it" if taker.blob else "named no blob"
        return Decision(
            Outcome.NOTHING,
            f"{aged}, but a source-trigger run started {taker.started_at:%Y-%m-%d %H:%M}Z after its last "
            f"write and {named}: it may have imported it",
            "",
        )
    if policy.stale_action is StaleAction.REFRESH:
        stamp = int(blob.last_modified.timestamp())
        return Decision(Outcome.REFRESH, aged, f"refresh-{stamp}-{version}")
    return Decision(Outcome.IMPORT, aged, f"import-{version}")


def refresh_metadata(now: datetime) -> dict[str, str]:
    """The key merged into the blob's metadata to move its Last-Modified to now (other keys are kept)."""
    return {REFRESH_KEY: now.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _days(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if abs(hours) >= 48 else f"{hours:.1f} hours"
