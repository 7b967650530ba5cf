"""The "day_start" section: the open and overdue cases at 00:00 today (local), per
district and top-level category, so that `/` can say what moved since yesterday.

The snapshot's open set and overdue count are stocks "now" with no previous value; this
section is the value they are compared with. It is counted as the browsing pages count
a period's end (datasource/browse_queries.py `open_at` / `overdue_at`, docs/browsing.md),
so `/browse?period=custom&to=<yesterday>` shows the same stock at the same instant.

The stock at midnight is one aggregate query; the poller's `DayStart` runs it on the
first poll of each local hour and keeps the answer in between (a late import of an old
case, or an old case voided or reopened today, moves it within the hour).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from dashboard.contract import DayStartSection, DistrictStock
from dashboard.periods import period
from datasource import kpi_queries as q


def day_start(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """00:00 today in `tz`, as an aware UTC time."""
    return period("today", now, tz).start


def stock_block(rows: list[dict], districts: list[str], parents: dict[str, str],
                at: dt.datetime) -> DayStartSection:
    """Rows of kpi_queries.stock_at -> the section: totals, per district (each with its
    open cases by top-level category) and open cases by top-level category. Every district
    is listed; zeros are values."""
    by_district: dict[str, DistrictStock] = {d: {"open": 0, "overdue": 0, "by_category": {}} for d in districts}
    by_category: dict[str, int] = defaultdict(int)
    for r in rows:
        d = by_district.setdefault(r["district"], {"open": 0, "overdue": 0, "by_category": {}})
        n_open, n_overdue = int(r["open"] or 0), int(r["overdue"] or 0)
        d["open"] += n_open
        d["overdue"] += n_overdue
        if n_open:
            top = parents.get(r["category"], r["category"])
            d["by_category"][top] = d["by_category"].get(top, 0) + n_open
            by_category[top] += n_open
    for d in by_district.values():
        d["by_category"] = dict(sorted(d["by_category"].items()))
    return {"at": at.isoformat(),
            "open": sum(d["open"] for d in by_district.values()),
            "overdue": sum(d["overdue"] for d in by_district.values()),
            "by_category": dict(sorted(by_category.items())),
            "by_district": by_district}


def compute_day_start(engine, now: dt.datetime, tz: ZoneInfo,
                      reference: tuple[list[str], dict[str, str]] | None = None) -> DayStartSection:
    """The section, straight from the store (`reference`: district codes in display order
    and each subcategory's top level, read from the store when not given)."""
    if reference is None:
        reference = ([d["code"] for d in q.districts(engine)],
                     {c["code"]: c["parent_code"] for c in q.categories(engine) if c["parent_code"]})
    districts, parents = reference
    at = day_start(now, tz)
    return stock_block(q.stock_at(engine, at), districts, parents, at)


class DayStart:
    """Callable section: `compute_day_start` on the first poll of each local hour (and of
    a new day), the kept answer in between."""

    def __init__(self):
        self.key: tuple | None = None
        self.value: DayStartSection | None = None

    def reset(self) -> None:
        self.key, self.value = None, None

    def __call__(self, engine, now: dt.datetime, tz: ZoneInfo) -> DayStartSection:
        local = now.astimezone(tz)
        key = (local.date(), local.hour)
        if key != self.key or self.value is None:
            self.value = compute_day_start(engine, now, tz)
            self.key = key
        return self.value
