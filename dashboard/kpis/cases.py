"""Case KPIs: period counts, closure and handling rates, the open set, overdue, trend, ticker.

Definitions are in docs/kpis.md. The hourly rollups (CaseRollup) are loaded by a full
recompute here; an incremental poller may maintain the same structure instead and pass
it in.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from dashboard.kpis.common import CITY, compare, iso, ratio
from dashboard.periods import (HOUR_US, UTC, Period, all_periods, check_hour_aligned, epoch_us, floor_hour,
                               local_day, parse_hour_key, period)
from datasource import kpi_queries as q
from datasource.stages import INPUTS, recorded_inputs

# an hour key is parsed for every changed case, and strptime is slow: the same few keys recur
hour_of = lru_cache(maxsize=1 << 15)(parse_hour_key)


def hours_of(keys: list[str]) -> np.ndarray:
    """Hour keys ('YYYY-MM-DD HH', UTC) as numpy datetime64[h], all at once."""
    return np.array([k[:10] + "T" + k[11:] for k in keys], dtype="datetime64[h]")


def _cells_at(hours: np.ndarray, districts: list[str], since: dt.datetime,
              index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(hour index from `since`, district index or -1) of many cells."""
    h = (hours - np.datetime64(since.replace(tzinfo=None), "h")).astype(np.int64)
    return h, np.array([index.get(d, -1) for d in districts], dtype=np.int64)

COHORT_FIELDS = ("filed", "closed", "closed_on_time", "handled", "handled_on_time", "reworked",
                 "extended", "handle_seconds", "close_seconds", "with_deadline")
ALL_INPUTS = frozenset(INPUTS)
# what each figure needs (datasource/stages.py, INPUTS: the lifecycle stages with a time,
# and deadlines): when no case of the city has one of them, the figure is "not recorded"
# (docs/kpis.md, "Not recorded")
NEEDS = {
    "filed": {"filed"}, "closed": {"closed"},
    "closure_rate": {"filed", "closed"}, "on_time_closure_rate": {"filed", "closed", "deadline"},
    "handling_rate": {"filed", "handled"}, "on_time_handling_rate": {"filed", "handled", "deadline"},
    "rework_rate": {"filed"}, "extension_rate": {"filed"},
    "avg_handle_hours": {"filed", "handled"}, "avg_close_hours": {"filed", "closed"},
}
STOCK_NEEDS = {"open": set(), "overdue": {"deadline"}}  # the stocks: open now, overdue now
ON_TIME = ("on_time_closure_rate", "on_time_handling_rate")  # they also need deadlines
# stages of an open case, in lifecycle order (status -> stage)
STAGES = ("filed", "dispatched", "handled", "verified", "rework", "parked")
OVERDUE_EDGES_H = (0, 24, 72, 168, 720)  # <1 d, 1-3 d, 3-7 d, 7-30 d, >30 d
EDGES_US = np.array(OVERDUE_EDGES_H, dtype=np.int64) * HOUR_US
TICKER_LIMIT = 20
NEWLY_OVERDUE_HOURS = 24
SERIES_DAYS = 30


class CaseRollup:
    """Hourly rollups per district from `since` (a UTC hour) on, as numpy arrays.

    reported[h, d] and closed[h, d] count cases by the hour of that step; cohort[h, d, f]
    holds COHORT_FIELDS for the cases filed in hour h. Range sums are array slices, so a
    year of hours costs microseconds whatever the number of cases behind it.
    """

    def __init__(self, since: dt.datetime, districts: list[str], hours: int = 24):
        self.since = floor_hour(since)
        self.districts = list(districts)
        self.index = {d: i for i, d in enumerate(self.districts)}
        n = len(self.districts)
        self.reported = np.zeros((hours, n))
        self.closed = np.zeros((hours, n))
        self.cohort = np.zeros((hours, n, len(COHORT_FIELDS)))

    def hour_index(self, key: str) -> int:
        return int((hour_of(key) - self.since) // dt.timedelta(hours=1))

    def _grow(self, h: int) -> None:
        if h >= len(self.reported):
            extra = max(h + 1, 2 * len(self.reported)) - len(self.reported)
            self.reported = np.concatenate([self.reported, np.zeros((extra,) + self.reported.shape[1:])])
            self.closed = np.concatenate([self.closed, np.zeros((extra,) + self.closed.shape[1:])])
            self.cohort = np.concatenate([self.cohort, np.zeros((extra,) + self.cohort.shape[1:])])

    def add(self, axis: str, district: str, hour: str, value, sign: int = 1) -> None:
        """Add (or with sign=-1 remove) one row of an axis; hours before `since` are ignored."""
        h = self.hour_index(hour)
        d = self.index.get(district)
        if h < 0 or d is None:
            return
        self._grow(h)
        if axis == "cohort":
            self.cohort[h, d] += sign * np.asarray([value[f] or 0 for f in COHORT_FIELDS], dtype=float)
        else:
            getattr(self, axis)[h, d] += sign * value

    def load(self, districts: list[str], hours: np.ndarray, reported: np.ndarray, closed: np.ndarray,
             cohort: np.ndarray) -> None:
        """Add many (district, hour) cells at once, like `add` (hours as datetime64[h];
        cohort rows in COHORT_FIELDS order)."""
        h, d = _cells_at(hours, districts, self.since, self.index)
        keep = (h >= 0) & (d >= 0)
        if not keep.any():
            return
        h, d = h[keep], d[keep]
        self._grow(int(h.max()))
        np.add.at(self.reported, (h, d), reported[keep])
        np.add.at(self.closed, (h, d), closed[keep])
        np.add.at(self.cohort, (h, d), cohort[keep])

    def window(self, start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, dict]]:
        """Counts on each axis over the whole hours in [start, end), per district and city."""
        lo = max(0, int((floor_hour(start) - self.since) // dt.timedelta(hours=1)))
        hi = max(lo, int((floor_hour(end) - self.since) // dt.timedelta(hours=1)))
        rep, clo, coh = (self.reported[lo:hi].sum(axis=0), self.closed[lo:hi].sum(axis=0),
                         self.cohort[lo:hi].sum(axis=0))
        out: dict[str, dict] = {"reported": {}, "closed": {}, "filed": {}}
        for key, sel in [(d, i) for d, i in self.index.items()] + [(CITY, slice(None))]:
            out["reported"][key] = {"n": int(rep[sel].sum())}
            out["closed"][key] = {"n": int(clo[sel].sum())}
            c = coh[sel] if key != CITY else coh.sum(axis=0)
            out["filed"][key] = {f: (int(round(c[i])) if not f.endswith("seconds") else float(c[i]))
                                 for i, f in enumerate(COHORT_FIELDS)}
        return out

    def _index(self, t: dt.datetime) -> int:
        return max(0, int((floor_hour(t) - self.since) // dt.timedelta(hours=1)))

    def daily(self, first_local: dt.datetime, days: int, tz: ZoneInfo) -> list[dict]:
        """City-wide reported and closed per local day from `first_local` (a local midnight)."""
        reported, closed = self.reported.sum(axis=1), self.closed.sum(axis=1)
        out = []
        for i in range(days):
            lo = self._index((first_local + dt.timedelta(days=i)).astimezone(UTC))
            hi = self._index((first_local + dt.timedelta(days=i + 1)).astimezone(UTC))
            out.append({"date": (first_local + dt.timedelta(days=i)).date().isoformat(),
                        "reported": int(round(reported[lo:hi].sum())), "closed": int(round(closed[lo:hi].sum()))})
        return out


def window_start(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The rollups cover this year and last year (for "this year" and its comparison)."""
    return period("year", now, tz).prev_start


def load_reference(engine) -> tuple[list[str], dict[str, str]]:
    """District codes in display order, and each subcategory's top-level category."""
    return ([d["code"] for d in q.districts(engine)],
            {c["code"]: c["parent_code"] for c in q.categories(engine) if c["parent_code"]})


def load_rollup(engine, districts: list[str], since: dt.datetime,
                until: dt.datetime | None = None) -> CaseRollup:
    """A full recompute of the rollups from the cases table."""
    roll = CaseRollup(since, districts)
    for r in q.reported_by_hour(engine, since, until):
        roll.add("reported", r["district"], r["hour"], r["reported"])
    for r in q.closed_by_hour(engine, since, until):
        roll.add("closed", r["district"], r["hour"], r["closed"])
    for r in q.filed_cohorts_by_hour(engine, since, until):
        roll.add("cohort", r["district"], r["hour"], r)
    return roll


def _merge(a: dict, b: dict) -> dict:
    out = {axis: {k: dict(v) for k, v in per.items()} for axis, per in a.items()}
    for axis, per in b.items():
        for k, v in per.items():
            tgt = out[axis].setdefault(k, {})
            for f, x in v.items():
                tgt[f] = tgt.get(f, 0) + x
    return out


def _edge_range(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The part-hour [floor(end), end) that whole-hour sums leave out, if any."""
    edge_start = floor_hour(end)
    return None if edge_start == end or edge_start < start else (edge_start, end)


def _edge_counts(rows: dict[str, list[dict]], part: int) -> dict:
    """One range's rows of kpi_queries.in_ranges, in the shape of CaseRollup.window."""
    out: dict[str, dict] = {"reported": {}, "closed": {}, "filed": {}}
    for axis, target in (("reported", "reported"), ("closed", "closed"), ("cohort", "filed")):
        for r in rows[axis]:
            if r["part"] != part:
                continue
            values = {"n": r["n"]} if axis != "cohort" else {f: r[f] or 0 for f in COHORT_FIELDS}
            for key in (r["district"], CITY):
                tgt = out[target].setdefault(key, {})
                for f, x in values.items():
                    tgt[f] = tgt.get(f, 0) + x
    return out


def part_hours_needed(periods: dict[str, Period], now: dt.datetime) -> set[dt.datetime]:
    """The whole UTC hours counted case by case: the last part-hour of each previous
    period, and the hours holding an overdue ageing boundary."""
    edges = (_edge_range(p.prev_start, p.prev_end) for p in periods.values())
    return {r[0] for r in edges if r} | {a for a, _ in overdue_partial_hours(now)}


def previous_windows(engine, roll: CaseRollup, periods: dict[str, Period], part_hours=None) -> dict[str, dict]:
    """Counts of every previous equal period: whole hours from the rollup, and the last
    part-hour of each counted exactly, from `part_hours` (the poller's PartHours) or
    from the store, all part-hours in one statement per axis."""
    edges = {name: _edge_range(p.prev_start, p.prev_end) for name, p in periods.items()}
    if part_hours is not None:
        count = lambda edge: part_hours.counts(*edge)  # noqa: E731
    else:
        ranges = [r for r in edges.values() if r]
        rows = q.in_ranges(engine, ranges)
        count = lambda edge: _edge_counts(rows, ranges.index(edge))  # noqa: E731
    out = {}
    for name, p in periods.items():
        whole = roll.window(p.prev_start, p.prev_end)
        out[name] = _merge(whole, count(edges[name])) if edges[name] else whole
    return out


def not_recorded(c: dict, recorded=ALL_INPUTS) -> set[str]:
    """The figures of a cohort `c` whose inputs the city does not record: those needing
    a stage or deadlines outside `recorded`, and the on-time rates of a cohort none of
    whose cases has a deadline. (An empty cohort is not "not recorded": nothing to count.)"""
    out = {k for k, need in NEEDS.items() if not need <= recorded}
    if c.get("filed", 0) and not c.get("with_deadline", 0):
        out.update(ON_TIME)
    return out


def cohort_rates(c: dict, recorded=ALL_INPUTS) -> dict:
    """Rates of one cohort of filed cases (see docs/kpis.md); None when there is nothing
    to divide by or the city does not record the inputs (`not_recorded` tells which)."""
    filed, due = c.get("filed", 0), c.get("with_deadline", 0)
    rates = {
        "filed": filed,
        "closure_rate": ratio(c.get("closed", 0), filed),
        # of the cohort's cases with a deadline: a case without one is neither late nor on time
        "on_time_closure_rate": ratio(c.get("closed_on_time", 0), due),
        "handling_rate": ratio(c.get("handled", 0), filed),
        "on_time_handling_rate": ratio(c.get("handled_on_time", 0), due),
        "rework_rate": ratio(c.get("reworked", 0), filed),
        "extension_rate": ratio(c.get("extended", 0), filed),
        "avg_handle_hours": ratio(c.get("handle_seconds", 0) / 3600, c.get("handled", 0)),
        "avg_close_hours": ratio(c.get("close_seconds", 0) / 3600, c.get("closed", 0)),
    }
    for k in not_recorded(c, recorded) & rates.keys():
        rates[k] = None
    return rates


RATE_KEYS = ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate",
             "rework_rate", "extension_rate", "avg_handle_hours", "avg_close_hours")


def compare_cohorts(cur: dict, prev: dict, recorded=ALL_INPUTS, closed: tuple = (0, 0)) -> dict:
    """"filed", "closed" (the counts `closed` of the two windows) and every rate of two
    cohorts, each marked when not recorded (common.compare)."""
    c_rates, p_rates = cohort_rates(cur, recorded), cohort_rates(prev, recorded)
    c_nr, p_nr = not_recorded(cur, recorded), not_recorded(prev, recorded)
    c_rates["closed"], p_rates["closed"] = closed
    for k in ("filed", "closed"):
        for rates, nr in ((c_rates, c_nr), (p_rates, p_nr)):
            if k in nr:
                rates[k] = None
    return {k: compare(c_rates[k], p_rates[k], k in c_nr, k in p_nr) for k in ("filed", "closed") + RATE_KEYS}


def period_block(cur: dict, prev: dict, districts: list[str], recorded=ALL_INPUTS) -> dict:
    """Counts and rates of one period against its previous equal period; `recorded`: the
    inputs the city records (datasource/stages.py, `recorded_inputs`)."""
    def one(d):
        return {
            "reported": compare(cur["reported"].get(d, {}).get("n", 0), prev["reported"].get(d, {}).get("n", 0)),
            **compare_cohorts(cur["filed"].get(d, {}), prev["filed"].get(d, {}), recorded,
                              (cur["closed"].get(d, {}).get("n", 0), prev["closed"].get(d, {}).get("n", 0))),
        }
    return {"city": one(CITY), "by_district": {d: one(d) for d in districts}}


def open_block(rows: list[dict], districts: list[str], parents: dict[str, str]) -> dict:
    by_stage = {s: 0 for s in STAGES}
    by_district = {d: {s: 0 for s in STAGES} for d in districts}
    by_category: dict[str, int] = defaultdict(int)
    detail = []
    for r in rows:
        d, c, status, n = r["district"], r["category"], r["status"], r["n"]
        by_stage[status] += n
        if d not in by_district:
            by_district[d] = {s: 0 for s in STAGES}
        by_district[d][status] += n
        by_category[parents.get(c, c)] += n
        detail.append([d, c, status, n])
    detail.sort()
    return {"total": sum(by_stage.values()), "by_stage": by_stage,
            "by_district": {d: {"total": sum(v.values()), **v} for d, v in by_district.items()},
            "by_category": dict(sorted(by_category.items())),
            "by_district_category_stage": detail}


def overdue_block(rows: list[dict], districts: list[str], recorded=ALL_INPUTS) -> dict:
    """Overdue open cases per district and ageing bucket; marked `not_recorded` (the
    counts then all zero) when no case of the city has a deadline."""
    out = _overdue_counts(rows, districts)
    if not STOCK_NEEDS["overdue"] <= recorded:
        out["not_recorded"] = True
    return out


def _overdue_counts(rows: list[dict], districts: list[str]) -> dict:
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


def overdue_partial_hours(now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The hours that hold a bucket boundary (now, now - 24 h, ...): an hourly histogram
    cannot split them, so their cases are counted one by one."""
    hours = {floor_hour(now - dt.timedelta(hours=h)) for h in OVERDUE_EDGES_H}
    return sorted((h, h + dt.timedelta(hours=1)) for h in hours)


class DeadlineHistogram:
    """Running open cases counted per (deadline hour, district), as a numpy array from
    `since` on; deadlines before `since` (more than a year ago) sit in `older`."""

    def __init__(self, since: dt.datetime, districts: list[str], hours: int = 24):
        self.since = floor_hour(since)
        self.index = {d: i for i, d in enumerate(districts)}
        self.districts = list(districts)
        self.counts = np.zeros((hours, len(districts)), dtype=np.int64)
        self.older = np.zeros(len(districts), dtype=np.int64)

    def _h(self, t: dt.datetime) -> int:
        return int((floor_hour(t) - self.since) // dt.timedelta(hours=1))

    def add(self, district: str, hour: str, n: int) -> None:
        d = self.index.get(district)
        if d is None:
            return
        h = self._h(hour_of(hour))
        if h < 0:
            self.older[d] += n
            return
        if h >= len(self.counts):
            grow = max(h + 1, 2 * len(self.counts)) - len(self.counts)
            self.counts = np.concatenate([self.counts, np.zeros((grow, self.counts.shape[1]), dtype=np.int64)])
        self.counts[h, d] += n

    def load(self, districts: list[str], hours: np.ndarray, due: np.ndarray) -> None:
        """Add many (district, deadline hour) counts at once, like `add`."""
        h, d = _cells_at(hours, districts, self.since, self.index)
        keep = (d >= 0) & (due != 0)
        older = keep & (h < 0)
        np.add.at(self.older, d[older], due[older])
        later = keep & (h >= 0)
        if later.any():
            top = int(h[later].max())
            if top >= len(self.counts):
                grow = max(top + 1, 2 * len(self.counts)) - len(self.counts)
                self.counts = np.concatenate([self.counts, np.zeros((grow, self.counts.shape[1]), dtype=np.int64)])
            np.add.at(self.counts, (h[later], d[later]), due[later])

    def overdue_rows(self, exact: tuple, now: dt.datetime) -> list[dict]:
        """Rows like kpi_queries.overdue_by_age: whole hours between the hours that hold a
        bucket boundary (now, now - 24 h, ...) are slice sums; those boundary hours are
        counted from `exact`, the deadlines of their cases (PartHours.deadlines: times in
        us, district indices, the districts by index)."""
        marks = [self._h(now - dt.timedelta(hours=h)) for h in OVERDUE_EDGES_H]  # descending
        sums = []
        for i in range(len(OVERDUE_EDGES_H)):
            hi = marks[i]
            lo = marks[i + 1] + 1 if i + 1 < len(marks) else 0
            part = self.counts[max(lo, 0):max(min(hi, len(self.counts)), 0)].sum(axis=0)
            sums.append(part + (self.older if i == len(OVERDUE_EDGES_H) - 1 else 0))
        out: dict[tuple[str, int], int] = defaultdict(int)
        for b, vec in enumerate(sums):
            for d, n in zip(self.districts, vec):
                if n:
                    out[(d, b)] += int(n)
        times, districts, codes = exact
        age = epoch_us(now) - times
        due = age > 0
        if due.any():  # bucket i holds ages in [EDGES[i], EDGES[i + 1])
            buckets = np.searchsorted(EDGES_US[1:], age[due], side="right")
            ours = np.array([self.index.get(c, -1) for c in codes] or [-1], dtype=np.int64)[districts[due]]
            known = ours >= 0
            nb = len(OVERDUE_EDGES_H)
            cells = np.bincount(ours[known] * nb + buckets[known], minlength=len(self.districts) * nb)
            for k in np.flatnonzero(cells):
                out[(self.districts[k // nb], int(k % nb))] += int(cells[k])
        return [{"district": d, "bucket": b, "n": n} for (d, b), n in out.items() if n]


def daily_series(roll: CaseRollup, now: dt.datetime, tz: ZoneInfo, days: int = SERIES_DAYS) -> list[dict]:
    """Reported and closed per local day for the last `days` days, today included."""
    first = local_day(now, tz) - dt.timedelta(days=days - 1)
    return roll.daily(dt.datetime(first.year, first.month, first.day, tzinfo=tz), days, tz)


def ticker_row(r: dict) -> dict:
    return {"id": r["id"], "external_id": r["external_id"], "district": r["district"],
            "category": r["category"], "status": r["status"], "source": r["source"],
            "address": r["address"], "reported_at": iso(r["reported_at"]),
            "deadline_at": iso(r["deadline_at"])}


# -- sections -------------------------------------------------------------------------
def compute_cases(engine, now: dt.datetime, tz: ZoneInfo, roll: CaseRollup | None = None,
                  open_rows: list[dict] | None = None, overdue_rows: list[dict] | None = None,
                  reference: tuple[list[str], dict[str, str]] | None = None, part_hours=None,
                  recorded: frozenset[str] | None = None) -> dict:
    """The "cases" section of the snapshot. An incremental poller passes what it maintains
    (rollups, open counts, overdue rows, the part-hours' cases, the recorded inputs);
    anything not passed is recomputed from SQL."""
    check_hour_aligned(tz, now)
    districts, parents = reference or load_reference(engine)
    if recorded is None:
        recorded = recorded_inputs(engine)
    if roll is None:
        roll = load_rollup(engine, districts, window_start(now, tz))
    periods: dict[str, Period] = all_periods(now, tz)
    blocks = {}
    previous = previous_windows(engine, roll, periods, part_hours)
    for name, p in periods.items():
        cur = roll.window(p.start, p.end + dt.timedelta(hours=1))  # the current hour is whole so far
        blocks[name] = period_block(cur, previous[name], districts, recorded)
    if open_rows is None:
        open_rows = q.open_by_district_category_status(engine)
    if overdue_rows is None:
        overdue_rows = q.overdue_by_age(engine, now, list(OVERDUE_EDGES_H))
    return {
        "districts": districts,
        "periods": {n: p.as_dict() for n, p in periods.items()},
        "periods_kpis": blocks,
        "open": open_block(open_rows, districts, parents),
        "overdue": overdue_block(overdue_rows, districts, recorded),
        "series_30d": daily_series(roll, now, tz),
        "recorded": [s for s in INPUTS if s in recorded],
    }


def compute_ticker(engine, now: dt.datetime, tz: ZoneInfo) -> dict:
    """The newest cases and the newly overdue ones, newest first."""
    since = now - dt.timedelta(hours=NEWLY_OVERDUE_HOURS)
    return {"newest": [ticker_row(r) for r in q.newest_cases(engine, TICKER_LIMIT)],
            "newly_overdue": [ticker_row(r) for r in q.newly_overdue(engine, now, since, TICKER_LIMIT)]}
