"""ISO weeks (Monday to Sunday) in the dashboard's time zone: parsing and bounds."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


class WeekError(ValueError):
    """A --week that is malformed or not over yet; the message says which."""


@dataclass(frozen=True)
class Week:
    year: int
    number: int
    tz: ZoneInfo

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.number, 1)

    @property
    def sunday(self) -> dt.date:
        return self.monday + dt.timedelta(days=6)

    @property
    def start(self) -> dt.datetime:
        """Monday 00:00 local, the week's first instant (aware, in the dashboard's zone)."""
        return dt.datetime.combine(self.monday, dt.time(), self.tz)

    @property
    def end(self) -> dt.datetime:
        """Monday 00:00 local of the next week: the first instant after the week."""
        return dt.datetime.combine(self.monday + dt.timedelta(days=7), dt.time(), self.tz)

    @property
    def previous(self) -> "Week":
        y, w, _ = (self.monday - dt.timedelta(days=7)).isocalendar()
        return Week(y, w, self.tz)

    def days(self) -> list[dt.date]:
        return [self.monday + dt.timedelta(days=i) for i in range(7)]

    def __str__(self) -> str:
        return self.label


def parse_week(raw: str, tz: ZoneInfo) -> Week:
    """'2026-W48' -> Week; anything else is a WeekError naming the value."""
    m = WEEK_RE.match((raw or "").strip())
    if not m:
        raise WeekError(f"--week {raw!r} is not an ISO week: expected YYYY-Www, e.g. 2026-W47")
    year, number = int(m.group(1)), int(m.group(2))
    try:
        dt.date.fromisocalendar(year, number, 1)
    except ValueError:
        raise WeekError(f"--week {raw!r}: {year} has no ISO week {number}") from None
    return Week(year, number, tz)


def week_of(day: dt.date, tz: ZoneInfo) -> Week:
    y, w, _ = day.isocalendar()
    return Week(y, w, tz)


def last_finished(now: dt.datetime, tz: ZoneInfo) -> Week:
    """The newest week whose Sunday is over at `now`."""
    return week_of(now.astimezone(tz).date(), tz).previous


def check_finished(week: Week, now: dt.datetime) -> None:
    if now < week.end:
        raise WeekError(f"--week {week.label} has not ended yet: it ends at "
                        f"{week.end.isoformat()} ({week.tz.key}); the last finished week is "
                        f"{last_finished(now, week.tz).label}")
