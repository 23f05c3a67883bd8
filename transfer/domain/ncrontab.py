"""The next occurrence of an NCRONTAB expression, as the Functions host's timer computes it. Pure.

Six fields, seconds first, in UTC: `second minute hour day month day-of-week`. Each field is `*`, a
number, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a comma list of those; months and days of the
week may be named (`JAN`, `MON`), Sunday is 0 (and 7). As in NCrontab, the library the host uses, a day
must match both the day-of-month and the day-of-week fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
SEARCH_DAYS = 366 * 5  # a schedule that matches no day within five years (Feb 30th) never occurs
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
FIELDS = ("second", "minute", "hour", "day", "month", "day-of-week")
_RANGES = ("0-59", "0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-6 or SUN-SAT")


class ScheduleError(ValueError):
    pass


def _number(text: str, names: tuple[str, ...], first: int) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + first
    if not text.isdigit():
        raise ScheduleError(f"{text!r} is not a number")
    return int(text)


def _part(part: str, low: int, high: int, names: tuple[str, ...], first: int) -> set[int]:
    span, _, step_text = part.partition("/")
    step = _number(step_text, (), 0) if step_text else 1
    if step < 1:
        raise ScheduleError(f"step {step_text!r} must be at least 1")
    if span == "*":
        start, end = low, high
    elif "-" in span:
        a, _, b = span.partition("-")
        start, end = _number(a, names, first), _number(b, names, first)
    else:
        start = _number(span, names, first)
        end = high if step_text else start
    if not (low <= start <= high and low <= end <= high) or start > end:
        raise ScheduleError(f"{part!r} is outside {low}-{high}")
    return set(range(start, end + 1, step))


def _field(text: str, index: int) -> frozenset[int]:
    try:
        values = _values(text, index)
    except ScheduleError as exc:
        raise ScheduleError(f"the {FIELDS[index]} field ({_RANGES[index]}): {exc}") from None
    if index == 5 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def _values(text: str, index: int) -> set[int]:
    low, high = _BOUNDS[index]
    names, first = {4: (MONTHS, 1), 5: (DAYS, 0)}.get(index, ((), 0))
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"empty item in {text!r}")
        values |= _part(part, low, high, names, first)
    return values


@dataclass(frozen=True)
class Schedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        fields = expression.split()
        if len(fields) != 6:
            raise ScheduleError(f"an NCRONTAB expression has 6 fields (seconds first), got {expression!r}")
        return cls(*(_field(text, index) for index, text in enumerate(fields)))

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7  # Python's Monday = 0; NCRONTAB's Sunday = 0
        return day.month in self.months and day.day in self.days and weekday in self.weekdays

    def _first_time(self, day: datetime, after: datetime) -> datetime | None:
        """The first matching time of `day` after `after`, skipping the hours and minutes already past."""
        same_day = day.date() == after.date()
        for hour in sorted(h for h in self.hours if not same_day or h >= after.hour):
            same_hour = same_day and hour == after.hour
            for minute in sorted(m for m in self.minutes if not same_hour or m >= after.minute):
                for second in sorted(self.seconds):
                    moment = day.replace(hour=hour, minute=minute, second=second)
                    if moment > after:
                        return moment
        return None

    def next_after(self, after: datetime) -> datetime | None:
        """The first occurrence strictly after `after` (an aware datetime, compared in its own zone:
        pass UTC); None when none falls within five years."""
        after = after.replace(microsecond=0)
        day = after.replace(hour=0, minute=0, second=0)
        for _ in range(SEARCH_DAYS):
            if self._day_matches(day):
                found = self._first_time(day, after)
                if found is not None:
                    return found
            day += timedelta(days=1)
        return None


def next_occurrence(expression: str, after: datetime) -> datetime | None:
    return Schedule.parse(expression).next_after(after)
