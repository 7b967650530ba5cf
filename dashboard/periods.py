"""Calendar periods in the dashboard's time zone, and the previous equal period of each.

Pure functions: `now` is always passed in. A period runs from its local start (midnight,
Monday, the 1st, 1 January) to `now`; the previous equal period starts one period
earlier and lasts exactly as long (clamped to that period's end), so "today so far"
compares with "yesterday up to the same time".
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

PERIODS = ("today", "week", "month", "year")
UTC = dt.timezone.utc


@dataclass(frozen=True)
class Period:
    name: str
    start: dt.datetime      # inclusive, aware UTC
    end: dt.datetime        # exclusive, aware UTC
    prev_start: dt.datetime
    prev_end: dt.datetime

    def as_dict(self) -> dict:
        """The period's starts only: its ends move with `now`, and a snapshot's content (and
        so its version) must change with the data, not with the clock."""
        return {"name": self.name, "start": self.start.isoformat(), "prev_start": self.prev_start.isoformat()}


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _local_midnight(d: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def _starts(name: str, today: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """(start of the period, start of the previous one, start of the next one), local dates."""
    if name == "today":
        return today, today - dt.timedelta(days=1), today + dt.timedelta(days=1)
    if name == "week":  # ISO week: Monday
        monday = today - dt.timedelta(days=today.weekday())
        return monday, monday - dt.timedelta(days=7), monday + dt.timedelta(days=7)
    if name == "month":
        first = today.replace(day=1)
        prev = (first - dt.timedelta(days=1)).replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        return first, prev, nxt
    if name == "year":
        first = today.replace(month=1, day=1)
        return first, first.replace(year=first.year - 1), first.replace(year=first.year + 1)
    raise ValueError(f"unknown period {name!r}")


def period(name: str, now: dt.datetime, tz: ZoneInfo) -> Period:
    now = now.astimezone(UTC)
    start_d, prev_d, _ = _starts(name, now.astimezone(tz).date())
    start = _local_midnight(start_d, tz)
    prev_start = _local_midnight(prev_d, tz)
    prev_end = min(prev_start + (now - start), start)
    return Period(name, start, now, prev_start, prev_end)


def all_periods(now: dt.datetime, tz: ZoneInfo) -> dict[str, Period]:
    return {name: period(name, now, tz) for name in PERIODS}


def floor_hour(t: dt.datetime) -> dt.datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


HOUR_US = 3_600_000_000  # an hour in the unit of epoch_us


def epoch_us(t: dt.datetime) -> int:
    """Microseconds since 1970 UTC: the unit of the in-memory time arrays."""
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def hour_key(t: dt.datetime) -> str:
    """The 'YYYY-MM-DD HH' UTC key the rollups use."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H")


def parse_hour_key(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=UTC)


def local_day(t: dt.datetime, tz: ZoneInfo) -> dt.date:
    return t.astimezone(tz).date()


def check_hour_aligned(tz: ZoneInfo, when: dt.datetime) -> None:
    """Hour rollups need local midnights on UTC hour boundaries (true for whole-hour zones)."""
    offset = when.astimezone(tz).utcoffset() or dt.timedelta(0)
    if offset.total_seconds() % 3600:
        raise ValueError(f"time zone {tz.key} is not a whole number of hours from UTC")
