from datetime import UTC, datetime, timedelta

import pytest

from transfer.domain.records import BlobAction, BlobInfo, BlobRecord
from transfer.domain.settings import StaleAction
from transfer.domain.staleness import (
    REFRESH_KEY,
    Outcome,
    Policy,
    content_version,
    decide,
    refresh_metadata,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MD5 = b"\x01" * 16
REFRESH = Policy.of(60, 24, StaleAction.REFRESH)
IMPORT = Policy.of(60, 24, StaleAction.IMPORT)


def blob(age: timedelta, *, md5: bytes | None = MD5, category: bool = True, etag: str = '"0x1"') -> BlobInfo:
    metadata = {"category": "acr-transfer-blob", "owner": "team"} if category else {"owner": "team"}
    return BlobInfo("exports/run1", etag, NOW - age, md5, metadata, 10)


def run_decide(b: BlobInfo, policy: Policy = REFRESH, *, enabled: bool = True, records=()):  # type: ignore[no-untyped-def]
    return decide(b, trigger_enabled=enabled, policy=policy, now=NOW, records=list(records))


EDGE = timedelta(days=59)  # window 60 days minus margin 24 hours
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("age", "policy", "outcome"),
    [
        (timedelta(0), REFRESH, Outcome.LEAVE),
        (EDGE - SECOND, REFRESH, Outcome.LEAVE),
        (EDGE, REFRESH, Outcome.REFRESH),
        (EDGE, IMPORT, Outcome.IMPORT),
        (timedelta(days=60), REFRESH, Outcome.REFRESH),
        (timedelta(days=61), REFRESH, Outcome.REFRESH),
        (timedelta(days=61), IMPORT, Outcome.IMPORT),
        (timedelta(days=3650), IMPORT, Outcome.IMPORT),
        (-timedelta(minutes=5), REFRESH, Outcome.LEAVE),  # clock skew: Last-Modified slightly ahead
    ],
)
def test_age_boundaries(age: timedelta, policy: Policy, outcome: Outcome) -> None:
    assert run_decide(blob(age), policy).outcome is outcome


def test_zero_margin_acts_exactly_at_the_window() -> None:
    policy = Policy.of(60, 0, StaleAction.REFRESH)
    assert run_decide(blob(timedelta(days=60) - SECOND), policy).outcome is Outcome.LEAVE
    assert run_decide(blob(timedelta(days=60)), policy).outcome is Outcome.REFRESH


@pytest.mark.parametrize(
    ("kwargs", "enabled", "reason"),
    [
        ({"md5": None}, True, "no Content-MD5"),
        ({"category": False}, True, "category=acr-transfer-blob"),
        ({}, False, "source trigger is disabled"),
    ],
)
@pytest.mark.parametrize("age", [timedelta(0), timedelta(days=90)])
@pytest.mark.parametrize("policy", [REFRESH, IMPORT])
def test_blobs_a_refresh_cannot_fix_are_imported(
    kwargs: dict, enabled: bool, reason: str, age: timedelta, policy: Policy
) -> None:
    decision = run_decide(blob(age, **kwargs), policy, enabled=enabled)
    assert decision.outcome is Outcome.IMPORT
    assert reason in decision.reason


def test_category_key_is_case_insensitive_but_value_exact() -> None:
    b = blob(timedelta(0), category=False)
    assert run_decide(
        BlobInfo(b.name, b.etag, b.last_modified, MD5, {"Category": "acr-transfer-blob"})
    ).outcome is (Outcome.LEAVE)
    assert (
        run_decide(BlobInfo(b.name, b.etag, b.last_modified, MD5, {"category": "other"})).outcome
        is Outcome.IMPORT
    )


def record(key: str, action: BlobAction, run_id: str | None = None) -> BlobRecord:
    return BlobRecord("exports/run1", key, action, NOW, NOW, run_id)


def test_recorded_import_of_this_version_means_nothing_to_do() -> None:
    b = blob(timedelta(days=90))
    first = run_decide(b, IMPORT)
    assert first.outcome is Outcome.IMPORT
    again = run_decide(b, IMPORT, records=[record(first.lock_key, BlobAction.IMPORT, "r1")])
    assert again.outcome is Outcome.NOTHING


def test_source_trigger_run_tied_by_reconcile_means_nothing_to_do() -> None:
    b = blob(timedelta(days=90))
    leave_key = f"leave-{content_version(b)}"
    assert run_decide(b, records=[record(leave_key, BlobAction.SOURCE_TRIGGER)]).outcome is Outcome.REFRESH
    tied = record(leave_key, BlobAction.SOURCE_TRIGGER, run_id="srcrun1")
    assert run_decide(b, records=[tied]).outcome is Outcome.NOTHING


def test_import_of_other_content_does_not_count() -> None:
    old = blob(timedelta(days=90), md5=b"\x02" * 16)
    old_key = run_decide(old, IMPORT).lock_key
    assert run_decide(
        blob(timedelta(days=90)), IMPORT, records=[record(old_key, BlobAction.IMPORT, "r")]
    ).outcome is (Outcome.IMPORT)


def test_refresh_keeps_the_content_version_so_the_next_event_is_a_no_op() -> None:
    stale = blob(timedelta(days=61))
    refreshed = BlobInfo(stale.name, '"0x2"', NOW, MD5, {**stale.metadata, **refresh_metadata(NOW)})
    assert content_version(stale) == content_version(refreshed)
    assert run_decide(refreshed).outcome is Outcome.LEAVE


def test_lock_keys_identify_the_action_and_version() -> None:
    b = blob(timedelta(days=61))
    refresh = run_decide(b).lock_key
    assert refresh.startswith("refresh-")
    assert refresh == run_decide(b).lock_key
    assert run_decide(b, IMPORT).lock_key.startswith("import-md5-")
    no_md5 = blob(timedelta(days=1), md5=None)
    assert run_decide(no_md5).lock_key.startswith("import-etag-")
    assert run_decide(blob(timedelta(days=1), md5=None, etag='"0x9"')).lock_key != run_decide(no_md5).lock_key


def test_refresh_metadata_is_one_key_with_the_time() -> None:
    assert refresh_metadata(NOW) == {REFRESH_KEY: "2026-11-26T12:00:00Z"}
    assert REFRESH_KEY.isalnum()
    assert REFRESH_KEY.islower()


def test_reasons_are_readable() -> None:
    assert "more" in run_decide(blob(timedelta(days=1))).reason
    assert "61.0 days ago" in run_decide(blob(timedelta(days=61))).reason
