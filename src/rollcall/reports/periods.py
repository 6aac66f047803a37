"""Periods of local dates in a time zone, as the quarter hours (UTC) the kept figures are counted
in, and how a quarter maps to local time there.

A period's offsets from UTC are piecewise constant: `spans` says from which quarter on each
holds (found by looking at every UTC midnight and searching the day where the offset changed), and
`local_seconds` turns a quarter into local seconds since 1970 in SQL with them, so that days,
hours and weekdays are grouped by the database, exactly, in any zone: whole hours, :30 or :45 off
UTC, with daylight saving time either way (a local hour that happens twice is two rows).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from rollcall.reports.models import QUARTER

DAY = 86_400
HOUR = 3_600
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _offset(quarter: int, tz: zoneinfo.ZoneInfo) -> int:
    moment = dt.datetime.fromtimestamp(quarter * QUARTER, tz)
    offset = moment.utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


@dataclass(frozen=True)
class Period:
    """Local dates `first` to `last` (inclusive) in `tz`: quarters `start` (inclusive) to `end`
    (exclusive), and the offsets that hold in it (`spans`: from which quarter on, seconds east)."""

    tz: zoneinfo.ZoneInfo
    first: dt.date
    last: dt.date
    start: int
    end: int
    spans: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, first: dt.date, last: dt.date, tz: zoneinfo.ZoneInfo) -> Period:
        start = _quarter_at(first, tz)
        end = _quarter_at(last + dt.timedelta(days=1), tz)
        return cls(tz, first, last, start, end, _spans(start, end, tz))

    @staticmethod
    def date_of(quarter: int, tz: zoneinfo.ZoneInfo) -> dt.date:
        """The local date a quarter begins on."""
        return dt.datetime.fromtimestamp(quarter * QUARTER, tz).date()

    @property
    def name(self) -> str:
        return str(self.tz.key)

    def offset_at(self, quarter: int) -> int:
        found = self.spans[0][1]
        for since, offset in self.spans:
            if quarter < since:
                break
            found = offset
        return found

    def local_seconds(self, quarter: Any) -> Any:
        """SQL: a quarter column as local seconds since 1970 in this period's zone."""
        return quarter * QUARTER + self.offset(quarter)

    def offset(self, quarter: Any) -> Any:
        """SQL: the offset (seconds east of UTC) that holds at a quarter column."""
        if len(self.spans) == 1:
            return sa.literal(self.spans[0][1])
        whens = [
            (quarter < since, previous) for (_, previous), (since, _) in zip(self.spans, self.spans[1:], strict=False)
        ]
        return sa.case(*whens, else_=sa.literal(self.spans[-1][1]))

    def hours(self) -> list[tuple[int, int]]:
        """Every local hour of the period, in time order: (local hour since 1970, offset). Within
        a span of one offset local time runs on, so its hours are those from its first quarter's
        to its last's (a local hour a change repeats is in two spans, with two offsets: no two
        spans in a row have one offset, so no hour is listed twice)."""
        found: list[tuple[int, int]] = []
        for index, (since, offset) in enumerate(self.spans):
            begin = max(since, self.start)
            until = self.spans[index + 1][0] if index + 1 < len(self.spans) else self.end
            if begin >= until:
                continue
            first, last = ((quarter * QUARTER + offset) // HOUR for quarter in (begin, until - 1))
            found.extend((hour, offset) for hour in range(first, last + 1))
        return found

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def _quarter_at(day: dt.date, tz: zoneinfo.ZoneInfo) -> int:
    """The quarter a local day begins in (midnight, or the first moment after it that exists)."""
    moment = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    seconds = int((moment.astimezone(dt.UTC) - _EPOCH).total_seconds())
    return -(-seconds // QUARTER)


def _spans(start: int, end: int, tz: zoneinfo.ZoneInfo) -> tuple[tuple[int, int], ...]:
    step = DAY // QUARTER
    spans = [(start, _offset(start, tz))]
    for quarter in range(start + step, end + step, step):
        quarter = min(quarter, end)
        offset = _offset(quarter, tz)
        if offset != spans[-1][1]:
            low, high = max(spans[-1][0], quarter - step), quarter  # it changed in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(middle, tz) == spans[-1][1]:
                    low = middle
                else:
                    high = middle
            spans.append((high, offset))
        if quarter == end:
            break
    return tuple(spans)


@functools.lru_cache(maxsize=1 << 18)
def hour_of(zone: str, quarter: int) -> tuple[tuple[int, int], int]:
    """A quarter's local hour in a zone, as the report by hour keys it (local hours since 1970 and
    the offset: the hour that occurs twice when the clocks go back is two), and its weekday-hour
    (Monday 0 * 24 + hour), as the report by weekday-hour keys it: what the importer keeps
    `report_week_repeats` by, in Python, where a period groups in SQL."""
    offset = _offset(quarter, zoneinfo.ZoneInfo(zone))
    local = quarter * QUARTER + offset
    weekday = (local // DAY + 3) % 7  # (1970-01-01 was a Thursday: Monday is 0)
    return (local // HOUR, offset), weekday * 24 + local % DAY // HOUR


def local_date(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day_number)


def hour_text(hour_number: int, offset: int) -> str:
    """A local hour as ISO-8601 with its offset: `2026-11-01T01:00-04:00` (a year of hours is
    8,760 of them: each day's date and each offset are written once)."""
    day, hour = divmod(hour_number, 24)
    return f"{_date_text(day)}T{hour:02d}:00{_offset_text(offset)}"


@functools.lru_cache(maxsize=1024)
def _date_text(day_number: int) -> str:
    return local_date(day_number).isoformat()


@functools.lru_cache(maxsize=64)
def _offset_text(offset: int) -> str:
    sign = "+" if offset >= 0 else "-"
    minutes = abs(offset) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def today_in(tz: zoneinfo.ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
