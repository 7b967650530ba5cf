"""Case KPIs: period counts, closure and handling rates, the open set, overdue, trend, ticker.

Definitions are in docs/kpis.md. The hourly rollups (CaseRollup) are loaded by a full
recompute here; an incremental poller may maintain the same structure instead and pass
it in.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from dashboard.kpis.common import CITY, compare, iso, ratio
from dashboard.periods import (Period, all_periods, check_hour_aligned, floor_hour, hour_key,
                               local_day, parse_hour_key, period)
from datasource import kpi_queries as q

COHORT_FIELDS = ("filed", "closed", "closed_on_time", "handled", "handled_on_time", "reworked",
                 "extended", "handle_seconds", "close_seconds")
# stages of an open case, in lifecycle order (status -> stage)
STAGES = ("filed", "dispatched", "handled", "verified", "rework", "parked")
OVERDUE_EDGES_H = (0, 24, 72, 168, 720)  # <1 d, 1-3 d, 3-7 d, 7-30 d, >30 d
TICKER_LIMIT = 20
NEWLY_OVERDUE_HOURS = 24
SERIES_DAYS = 30


@dataclass
class CaseRollup:
    """Hourly rollups per (district, UTC hour key) from `since` on."""
    since: dt.datetime
    reported: dict = field(default_factory=dict)   # (d, h) -> n
    closed: dict = field(default_factory=dict)     # (d, h) -> n
    filed: dict = field(default_factory=dict)      # (d, h) -> {COHORT_FIELDS}


def window_start(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The rollups cover this year and last year (for "this year" and its comparison)."""
    return period("year", now, tz).prev_start


def load_rollup(engine, since: dt.datetime, until: dt.datetime | None = None) -> CaseRollup:
    roll = CaseRollup(since)
    for r in q.reported_by_hour(engine, since, until):
        roll.reported[(r["district"], r["hour"])] = r["reported"]
    for r in q.closed_by_hour(engine, since, until):
        roll.closed[(r["district"], r["hour"])] = r["closed"]
    for r in q.filed_cohorts_by_hour(engine, since, until):
        roll.filed[(r["district"], r["hour"])] = {f: r[f] or 0 for f in COHORT_FIELDS}
    return roll


def _sum_axis(axis: dict, start: dt.datetime, end: dt.datetime, fields=None) -> dict[str, dict]:
    """Sum an axis over the whole hours in [start, end) per district and for the city.

    Hours are compared as their 'YYYY-MM-DD HH' keys, which sort like the times.
    """
    lo, hi = hour_key(start), hour_key(end)
    out: dict[str, dict] = defaultdict(dict)
    for (d, h), v in axis.items():
        if lo <= h < hi:
            values = v if fields else {"n": v}
            for target in (out[d], out[CITY]):
                for k, x in values.items():
                    target[k] = target.get(k, 0) + x
    return out


def _edge(engine, end: dt.datetime) -> CaseRollup | None:
    """The part-hour [floor(end), end) that whole-hour sums leave out, counted exactly."""
    start = floor_hour(end)
    if start == end:
        return None
    return load_rollup(engine, start, end)


def _merge(a: dict[str, dict], b: dict[str, dict]) -> dict[str, dict]:
    out = {d: dict(v) for d, v in a.items()}
    for d, v in b.items():
        tgt = out.setdefault(d, {})
        for k, x in v.items():
            tgt[k] = tgt.get(k, 0) + x
    return out


def _window(roll: CaseRollup, edge: CaseRollup | None, start, end) -> dict[str, dict[str, dict]]:
    """Counts on each axis for [start, end): whole hours from the rollup plus the edge."""
    axes = {"reported": _sum_axis(roll.reported, start, end),
            "closed": _sum_axis(roll.closed, start, end),
            "filed": _sum_axis(roll.filed, start, end, COHORT_FIELDS)}
    if edge is not None:
        axes["reported"] = _merge(axes["reported"], _sum_axis(edge.reported, floor_hour(end), end + dt.timedelta(hours=1)))
        axes["closed"] = _merge(axes["closed"], _sum_axis(edge.closed, floor_hour(end), end + dt.timedelta(hours=1)))
        axes["filed"] = _merge(axes["filed"], _sum_axis(edge.filed, floor_hour(end), end + dt.timedelta(hours=1), COHORT_FIELDS))
    return axes


def cohort_rates(c: dict) -> dict:
    """Rates of one cohort of filed cases (see docs/kpis.md)."""
    filed = c.get("filed", 0)
    return {
        "filed": filed,
        "closure_rate": ratio(c.get("closed", 0), filed),
        "on_time_closure_rate": ratio(c.get("closed_on_time", 0), filed),
        "handling_rate": ratio(c.get("handled", 0), filed),
        "on_time_handling_rate": ratio(c.get("handled_on_time", 0), filed),
        "rework_rate": ratio(c.get("reworked", 0), filed),
        "extension_rate": ratio(c.get("extended", 0), filed),
        "avg_handle_hours": ratio(c.get("handle_seconds", 0) / 3600, c.get("handled", 0)),
        "avg_close_hours": ratio(c.get("close_seconds", 0) / 3600, c.get("closed", 0)),
    }


RATE_KEYS = tuple(k for k in cohort_rates({}) if k != "filed")


def period_block(cur: dict, prev: dict, districts: list[str]) -> dict:
    """Counts and rates of one period against its previous equal period."""
    def one(d):
        c_rates = cohort_rates(cur["filed"].get(d, {}))
        p_rates = cohort_rates(prev["filed"].get(d, {}))
        return {
            "reported": compare(cur["reported"].get(d, {}).get("n", 0), prev["reported"].get(d, {}).get("n", 0)),
            "filed": compare(c_rates["filed"], p_rates["filed"]),
            "closed": compare(cur["closed"].get(d, {}).get("n", 0), prev["closed"].get(d, {}).get("n", 0)),
            **{k: compare(c_rates[k], p_rates[k]) for k in RATE_KEYS},
        }
    return {"city": one(CITY), "by_district": {d: one(d) for d in districts}}


def open_block(rows: list[dict], districts: list[str], parents: dict[str, str]) -> dict:
    by_stage = {s: 0 for s in STAGES}
    by_district = {d: {s: 0 for s in STAGES} for d in districts}
    by_category: dict[str, int] = defaultdict(int)
    detail = []
    for r in rows:
        by_stage[r["status"]] += r["n"]
        by_district.setdefault(r["district"], {s: 0 for s in STAGES})[r["status"]] += r["n"]
        by_category[parents.get(r["category"], r["category"])] += r["n"]
        detail.append([r["district"], r["category"], r["status"], r["n"]])
    detail.sort()
    return {"total": sum(by_stage.values()), "by_stage": by_stage,
            "by_district": {d: {"total": sum(v.values()), **v} for d, v in by_district.items()},
            "by_category": dict(sorted(by_category.items())),
            "by_district_category_stage": detail}


def overdue_block(rows: list[dict], districts: list[str]) -> dict:
    buckets = []
    for i, lo in enumerate(OVERDUE_EDGES_H):
        hi = OVERDUE_EDGES_H[i + 1] if i + 1 < len(OVERDUE_EDGES_H) else None
        buckets.append({"min_hours": lo, "max_hours": hi, "n": 0, "by_district": {d: 0 for d in districts}})
    by_district = {d: 0 for d in districts}
    for r in rows:
        b = buckets[r["bucket"]]
        b["n"] += r["n"]
        b["by_district"][r["district"]] = b["by_district"].get(r["district"], 0) + r["n"]
        by_district[r["district"]] = by_district.get(r["district"], 0) + r["n"]
    return {"total": sum(by_district.values()), "by_district": by_district, "ageing": buckets}


def daily_series(roll: CaseRollup, now: dt.datetime, tz: ZoneInfo, days: int = SERIES_DAYS) -> list[dict]:
    """Reported and closed per local day for the last `days` days, today included."""
    today = local_day(now, tz)
    first = today - dt.timedelta(days=days - 1)
    out = {first + dt.timedelta(days=i): {"reported": 0, "closed": 0} for i in range(days)}
    for name, axis in (("reported", roll.reported), ("closed", roll.closed)):
        for (_d, h), n in axis.items():
            day = local_day(parse_hour_key(h), tz)
            if day in out:
                out[day][name] += n
    return [{"date": d.isoformat(), **v} for d, v in sorted(out.items())]


def ticker_row(r: dict) -> dict:
    return {"id": r["id"], "external_id": r["external_id"], "district": r["district"],
            "category": r["category"], "status": r["status"], "source": r["source"],
            "address": r["address"], "reported_at": iso(r["reported_at"]),
            "deadline_at": iso(r["deadline_at"])}


# -- sections -------------------------------------------------------------------------
def compute_cases(engine, now: dt.datetime, tz: ZoneInfo, roll: CaseRollup | None = None) -> dict:
    """The "cases" section of the snapshot."""
    check_hour_aligned(tz, now)
    districts = [d["code"] for d in q.districts(engine)]
    parents = {c["code"]: c["parent_code"] for c in q.categories(engine) if c["parent_code"]}
    if roll is None:
        roll = load_rollup(engine, window_start(now, tz), None)
    periods: dict[str, Period] = all_periods(now, tz)
    blocks = {}
    for name, p in periods.items():
        cur = _window(roll, None, p.start, p.end + dt.timedelta(hours=1))  # the current hour is whole so far
        prev = _window(roll, _edge(engine, p.prev_end), p.prev_start, p.prev_end)
        blocks[name] = period_block(cur, prev, districts)
    open_rows = q.open_by_district_category_status(engine)
    return {
        "districts": districts,
        "periods": {n: p.as_dict() for n, p in periods.items()},
        "periods_kpis": blocks,
        "open": open_block(open_rows, districts, parents),
        "overdue": overdue_block(q.overdue_by_age(engine, now, list(OVERDUE_EDGES_H)), districts),
        "series_30d": daily_series(roll, now, tz),
    }


def compute_ticker(engine, now: dt.datetime, tz: ZoneInfo) -> dict:
    """The newest cases and the newly overdue ones, newest first."""
    since = now - dt.timedelta(hours=NEWLY_OVERDUE_HOURS)
    return {"newest": [ticker_row(r) for r in q.newest_cases(engine, TICKER_LIMIT)],
            "newly_overdue": [ticker_row(r) for r in q.newly_overdue(engine, now, since, TICKER_LIMIT)]}
