"""The next occurrence of an NCRONTAB schedule as the Functions host fires it (UTC, seconds first)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from transfer.domain.ncrontab import ScheduleError, next_occurrence

AT = datetime(2026, 12, 6, 15, 30, 10, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 0 2 * * *", datetime(2026, 12, 7, 2, 0, 0, tzinfo=UTC)),  # the export's default: tomorrow
        ("0 */5 * * * *", datetime(2026, 12, 6, 15, 35, 0, tzinfo=UTC)),  # reconcile's default
        ("0 30 3 * * *", datetime(2026, 12, 7, 3, 30, 0, tzinfo=UTC)),  # the sweep's default
        ("* * * * * *", datetime(2026, 12, 6, 15, 30, 11, tzinfo=UTC)),  # strictly after
        ("10 30 15 * * *", datetime(2026, 12, 7, 15, 30, 10, tzinfo=UTC)),  # now itself is not next
        ("0 0 9 * * MON-FRI", datetime(2026, 12, 7, 9, 0, 0, tzinfo=UTC)),
        ("0 0 9 * * 0", datetime(2026, 12, 13, 9, 0, 0, tzinfo=UTC)),  # Sunday is 0 (and 7)
        ("0 0 9 * * 7", datetime(2026, 12, 13, 9, 0, 0, tzinfo=UTC)),
        ("0 0 0 1 JAN *", datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC)),
        ("0 15,45 8-10/2 * * *", datetime(2026, 12, 7, 8, 15, 0, tzinfo=UTC)),
        ("0 0 0 29 2 *", datetime(2028, 2, 29, 0, 0, 0, tzinfo=UTC)),  # the next leap day
        ("0 0 12 13 * FRI", datetime(2027, 8, 13, 12, 0, 0, tzinfo=UTC)),  # both day fields must match
    ],
)
def test_next_occurrence(expression: str, expected: datetime) -> None:
    assert next_occurrence(expression, AT) == expected


def test_a_schedule_that_never_fires_has_no_next_occurrence() -> None:
    assert next_occurrence("0 0 0 30 2 *", AT) is None


@pytest.mark.parametrize(
    "expression", ["0 0 2 * *", "0 60 * * * *", "0 0 25 * * *", "0 */0 * * * *", "x * * * * *"]
)
def test_a_bad_expression_says_what_is_wrong(expression: str) -> None:
    with pytest.raises(ScheduleError):
        next_occurrence(expression, AT)
