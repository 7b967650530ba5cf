"""One week's figures as they stood at the week's end, for the city and every district.

The store is read once per export (whatever the number of scopes): the case rollups are
rebuilt with outcomes cut at the week's end, and the live KPI functions
(dashboard.kpis) are called with `now` = the last instant of the week and as-of
sources. The same results feed the report of every scope and the wall's snapshot.
What is "as of the week's end" and what is "as of the run" is listed in docs/weekly.md.
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from dashboard.kpis.cases import (OVERDUE_EDGES_H, STAGES, TICKER_LIMIT, CaseRollup, compute_cases,
                                  open_block, overdue_block, period_block, ticker_row, window_start)
from dashboard.kpis.common import CITY, compare, ratio
from dashboard.kpis.enterprise import SqlSource, compute_enterprise
from dashboard.kpis.parking import compute_parking
from dashboard.periods import UTC, all_periods, check_hour_aligned, parse_hour_key
from dashboard.poller import to_json_data
from dashboard.weekly.weeks import Week
from datasource import kpi_queries as kq
from datasource import queries, stages
from datasource import weekly_queries as wq

# the wall and the period functions see the week's last instant: at Monday 00:00 itself
# "today" and "this week" would be empty periods
LAST_INSTANT = dt.timedelta(microseconds=1)
TOP_OVERDUE = 20
PARALLEL_QUERIES = 3  # database sessions working at once on one export


class IncompleteReport(RuntimeError):
    """A section that should have data has none (or the store stops before the week's
    end): the report is refused rather than published partial."""


SUBJECTS = ("cases", "enterprise", "parking")
# a parking feed reaches the week's end when a reading was observed in its last hour or later
PARKING_END_SLACK = dt.timedelta(hours=1)


@dataclass
class WeekFigures:
    """Everything the reports of one week are made of (JSON-able parts only)."""

    week: Week
    districts: list[dict]  # code, name_zh, short_zh, name_en, in display order
    store_as_of: str | None  # newest cases.updated_at when the report was computed
    wall_sections: dict  # name -> payload: the wall's snapshot at the week's last instant
    cases: dict = field(default_factory=dict)
    enterprise: dict = field(default_factory=dict)
    parking: dict = field(default_factory=dict)
    # the subjects the city records (its profile's); the others are "not recorded" in the
    # reports, and complete-or-refuse does not apply to them
    subjects: tuple[str, ...] = SUBJECTS

    @property
    def codes(self) -> list[str]:
        return [d["code"] for d in self.districts]


class AsOfEnterprise(SqlSource):
    """The enterprise KPIs' store source with every window ending by `at` and problem
    outcomes cut at `at`: resolved means resolved before it, open means raised and not
    resolved by it. (Enterprises and grid memberships are as the store has them now.)"""

    def __init__(self, engine, at: dt.datetime):
        super().__init__(engine)
        self.at = at

    def visits_summary(self, start, end):
        return kq.visits_summary(self.engine, start, min(end, self.at))

    def problems_raised(self, start, end):
        return wq.problems_raised_at(self.engine, start, min(end, self.at), self.at)

    def problems_resolved_in(self, start, end):
        return kq.problems_resolved_in(self.engine, start, min(end, self.at))

    def problems_open(self):
        return wq.problems_open_at(self.engine, self.at)

    def exclusive_grids(self, start, end):
        return kq.visits_by_exclusive_grid(self.engine, start, min(end, self.at))


def prefetch(engine, week: Week, since: dt.datetime, pool: ThreadPoolExecutor) -> dict[str, Future]:
    """Start the export's big aggregates at once: each runs in its own database session,
    so the store works on them in parallel while Python folds the first ones in."""
    end, prev_end, edges = week.end, week.previous.end, list(OVERDUE_EDGES_H)
    jobs = {
        "cohorts": (wq.cohorts_by_hour_at, since, end),
        "reported": (kq.reported_by_hour, since, end),
        "closed": (kq.closed_by_hour, since, end),
        "open": (wq.open_at, end), "open_prev": (wq.open_at, prev_end),
        "overdue": (wq.overdue_at, end, edges), "overdue_prev": (wq.overdue_at, prev_end, edges),
        "top_overdue": (wq.top_overdue_at, end, TOP_OVERDUE),
        "occupancy": (kq.occupancy_by_hour, week.previous.start, end - LAST_INSTANT),
        "stages": (stages.recorded_inputs, end),
    }
    return {name: pool.submit(fn, engine, *args) for name, (fn, *args) in jobs.items()}


def case_rollup_at(districts: list[str], since: dt.datetime, rows: dict[str, Future]) -> CaseRollup:
    """The hourly case rollups from `since` to the week's end, cohort outcomes as of the end."""
    roll = CaseRollup(since, districts)
    for r in rows["reported"].result():
        roll.add("reported", r["district"], r["hour"], r["reported"])
    for r in rows["closed"].result():
        roll.add("closed", r["district"], r["hour"], r["closed"])
    for r in rows["cohorts"].result():
        roll.add("cohort", r["district"], r["hour"], r)
    return roll


def _day_index(week: Week, hour_key: str) -> int | None:
    """Index (0-13) of the local day of an hour within [previous Monday, next Monday)."""
    day = parse_hour_key(hour_key).astimezone(week.tz).date()
    i = (day - week.previous.monday).days
    return i if 0 <= i < 14 else None


def _daily_cases(roll: CaseRollup, week: Week, districts: list[str]) -> dict[str, list[dict]]:
    """Reported, filed and closed per local day of the week, per district and city."""
    out = {}
    starts = [dt.datetime.combine(d, dt.time(), week.tz) for d in week.days()] + [week.end]
    bounds = [max(0, int((s.astimezone(UTC) - roll.since) // dt.timedelta(hours=1))) for s in starts]
    for key in districts + [CITY]:
        col = slice(None) if key == CITY else roll.index[key]
        rows = []
        for i, day in enumerate(week.days()):
            lo, hi = bounds[i], bounds[i + 1]
            rows.append({"date": day.isoformat(),
                         "reported": int(round(roll.reported[lo:hi, col].sum())),
                         "filed": int(round(roll.cohort[lo:hi, col, 0].sum())),
                         "closed": int(round(roll.closed[lo:hi, col].sum()))})
        out[key] = rows
    return out


def _cases(engine, week: Week, districts: list[str], parents: dict, roll: CaseRollup,
           rows: dict[str, Future]) -> tuple[dict, dict]:
    """(the report's case figures, the wall's cases section)."""
    end, prev_end = week.end, week.previous.end
    recorded = rows["stages"].result()
    kpis = period_block(roll.window(week.start, end), roll.window(week.previous.start, prev_end), districts,
                        recorded)
    open_rows, open_prev = rows["open"].result(), rows["open_prev"].result()
    overdue_rows, overdue_prev = rows["overdue"].result(), rows["overdue_prev"].result()
    opened, opened_prev = open_block(open_rows, districts, parents), open_block(open_prev, districts, parents)
    overdue, overdue_p = overdue_block(overdue_rows, districts, recorded), overdue_block(overdue_prev, districts,
                                                                                        recorded)
    missing = bool(overdue.get("not_recorded"))  # no deadlines in the city's data: no overdue either
    for key in districts + [CITY]:
        block = kpis["city"] if key == CITY else kpis["by_district"][key]
        get_open = (lambda o: o["total"]) if key == CITY else (lambda o: o["by_district"].get(key, {}).get("total", 0))
        get_over = (lambda o: o["total"]) if key == CITY else (lambda o: o["by_district"].get(key, 0))
        block["open_at_end"] = compare(get_open(opened), get_open(opened_prev))
        if missing:
            block["overdue_at_end"] = compare(None, None, True, True)
            block["overdue_share_at_end"] = compare(None, None, True, True)
            continue
        block["overdue_at_end"] = compare(get_over(overdue), get_over(overdue_p))
        block["overdue_share_at_end"] = compare(ratio(get_over(overdue), get_open(opened)),
                                                ratio(get_over(overdue_p), get_open(opened_prev)))
    top = []
    for r in rows["top_overdue"].result():
        top.append({**ticker_row({**r, "status": r["stage"]}),
                    "filed_at": r["filed_at"].isoformat() if r["filed_at"] else None,
                    "overdue_hours": round((end - r["deadline_at"]).total_seconds() / 3600, 1)})
    wall = compute_cases(engine, end - LAST_INSTANT, week.tz, roll=roll, open_rows=open_rows,
                         overdue_rows=overdue_rows, reference=(districts, parents), recorded=recorded)
    report = {"kpis": kpis, "open": opened, "overdue": overdue, "top_overdue": top,
              "daily": _daily_cases(roll, week, districts), "stages": list(STAGES),
              "recorded": wall["recorded"]}
    return report, wall


def _ticker(engine, at: dt.datetime) -> dict:
    since = at - dt.timedelta(hours=24)
    return {"newest": [ticker_row(r) for r in wq.newest_before(engine, at, TICKER_LIMIT)],
            "newly_overdue": [ticker_row(r) for r in wq.newly_overdue_at(engine, at, since, TICKER_LIMIT)]}


def _enterprise(engine, week: Week, districts: list[str]) -> tuple[dict, dict]:
    source = AsOfEnterprise(engine, week.end)
    wall = compute_enterprise(engine, week.end - LAST_INSTANT, week.tz, source=source)
    block = wall["periods"]["week"]
    open_by_district = wall["open_problems"]["by_district"]
    daily = {key: [0] * 7 for key in districts + [CITY]}
    for r in wq.visits_by_hour(engine, week.start, week.end):
        i = _day_index(week, r["hour"])
        if i is not None and i >= 7:
            for key in (r["district"], CITY):
                if key in daily:
                    daily[key][i - 7] += r["visits"]
    report = {"kpis": {"city": block["city"], "by_district": block["by_district"]},
              "by_type": block["by_type"], "by_exclusive_grid": block["by_exclusive_grid"],
              "exclusive_grids": wall["exclusive_grids"], "enterprises": wall["enterprises"],
              "open_problems_at_end": {**open_by_district, CITY: wall["open_problems"]["total"]},
              "daily_visits": {k: [{"date": d.isoformat(), "visits": v[i]} for i, d in enumerate(week.days())]
                               for k, v in daily.items()}}
    return report, wall


def _parking(engine, week: Week, districts: list[str], rows: dict[str, Future]) -> tuple[dict, dict]:
    tz, last = week.tz, week.end - LAST_INSTANT
    year_start = all_periods(last, tz)["year"].start.astimezone(tz).date()
    facility_rows = (kq.facilities_by_kind(engine), wq.programme_between(engine, year_start, week.sunday))
    wall = compute_parking(engine, last, tz, facility_rows=facility_rows)
    # occupancy per local day over both weeks: Σ facility-hour means / Σ their capacity
    sums = {key: [[0.0, 0] for _ in range(14)] for key in districts + [CITY]}
    for r in rows["occupancy"].result():
        i = _day_index(week, r["hour"])
        if i is None:
            continue
        for key in (r["district"], CITY):
            if key in sums:
                sums[key][i][0] += float(r["occupied"] or 0)
                sums[key][i][1] += r["capacity"] or 0
    programme = {p: wq.programme_between(engine, w.monday, w.sunday) for p, w in (("cur", week), ("prev", week.previous))}
    readings = {r["district"]: r["readings"] for r in wq.readings_between(engine, week.start, week.end)}
    by_key = {}
    for key in districts + [CITY]:
        days = sums[key]
        cur = ratio(sum(d[0] for d in days[7:]), sum(d[1] for d in days[7:]))
        prev = ratio(sum(d[0] for d in days[:7]), sum(d[1] for d in days[:7]))
        added = {p: {prog: sum(r["spaces"] or 0 for r in rows if r["programme"] == prog
                               and (key == CITY or r["district"] == key))
                     for prog in ("added", "revitalised", "shared")} for p, rows in programme.items()}
        live = wall["city"] if key == CITY else wall["by_district"].get(key, {})
        by_key[key] = {
            "facilities": live.get("facilities", 0), "capacity": live.get("capacity", 0),
            "non_motor_points": live.get("non_motor_points", 0), "demo_sites": live.get("demo_sites", 0),
            "occupancy_week": compare(cur, prev),
            "occupancy_at_end": live.get("occupancy_now"),
            "readings": sum(readings.values()) if key == CITY else readings.get(key, 0),
            **{f"{prog}_spaces_week": compare(added["cur"][prog], added["prev"][prog])
               for prog in ("added", "revitalised", "shared")},
            "programme_this_year": live.get("programme_this_year", {}),
            "daily": [{"date": d.isoformat(), "occupancy": ratio(*days[7 + i]),
                       "prev_occupancy": ratio(*days[i])} for i, d in enumerate(week.days())],
        }
    report = {"city": by_key[CITY], "by_district": {d: by_key[d] for d in districts}}
    return report, wall


def _feeds_reach_the_end(engine, week: Week, subjects: tuple[str, ...]) -> dt.datetime:
    """Refuse a week whose end a recorded subject's feed does not reach; returns how fresh
    the store is (its newest change among the recorded subjects)."""
    tz, marks = week.tz, []
    if "cases" in subjects:
        latest = queries.latest_change(engine)
        if latest is None:
            raise IncompleteReport("the store has no cases (the city records cases)")
        if latest < week.end:
            raise IncompleteReport(f"the store's newest case change is {latest.astimezone(tz).isoformat()}, "
                                   f"before the end of {week.label} ({week.end.isoformat()}): the end of the "
                                   "week is missing")
        marks.append(latest)
    if "parking" in subjects:
        latest = wq.latest_reading(engine)
        if latest is None:
            raise IncompleteReport("the store has no occupancy reading (the city records "
                                   "parking)")
        if latest < week.end - PARKING_END_SLACK:
            raise IncompleteReport(f"the store's newest occupancy reading is {latest.astimezone(tz).isoformat()}, "
                                   f"before the last hour of {week.label}: the end of the week is missing")
        marks.append(latest)
    if "enterprise" in subjects:
        latest = wq.latest_visit_change(engine)
        if latest is not None:
            marks.append(latest)
    if not marks:
        raise IncompleteReport("the store has no data of the subjects the city records "
                               f"({', '.join(subjects)})")
    return max(marks)


def compute_week(engine, week: Week, subjects: tuple[str, ...] | None = None) -> WeekFigures:
    """Read the store once and compute the week for the city and every district. Raises
    IncompleteReport when the store cannot have the whole week of a subject the city
    records (`subjects`: default the city profile's, else those the store has data of;
    dashboard/profile.py)."""
    tz: ZoneInfo = week.tz
    check_hour_aligned(tz, week.start)
    if subjects is None:
        from dashboard.profile import recorded_subjects

        subjects = recorded_subjects(engine)
        if not subjects:
            raise IncompleteReport("the store has no cases, enterprises or parking facilities")
    latest = _feeds_reach_the_end(engine, week, subjects)
    district_rows = kq.districts(engine)
    if not district_rows:
        raise IncompleteReport("the store has no districts")
    codes = [d["code"] for d in district_rows]
    parents = {c["code"]: c["parent_code"] for c in kq.categories(engine) if c["parent_code"]}
    since = window_start(week.end - LAST_INSTANT, tz)
    with ThreadPoolExecutor(PARALLEL_QUERIES, thread_name_prefix="weekly-sql") as pool:
        rows = prefetch(engine, week, since, pool)
        try:
            roll = case_rollup_at(codes, since, rows)
            cases, wall_cases = _cases(engine, week, codes, parents, roll, rows)
            enterprise, wall_ent = _enterprise(engine, week, codes)
            parking, wall_park = _parking(engine, week, codes, rows)
        finally:
            for future in rows.values():
                future.cancel()
    figures = WeekFigures(
        week=week,
        districts=[{k: d[k] for k in ("code", "name_zh", "short_zh", "name_en")} for d in district_rows],
        store_as_of=latest.astimezone(tz).isoformat(),
        wall_sections=to_json_data({"cases": wall_cases, "ticker": _ticker(engine, week.end),
                                    "enterprise": wall_ent, "parking": wall_park}),
        cases=to_json_data(cases), enterprise=to_json_data(enterprise), parking=to_json_data(parking),
        subjects=tuple(subjects))
    check_complete(figures)
    return figures


def check_complete(f: WeekFigures) -> None:
    """Refuse a week whose sections are empty where the store says they should not be, for
    the subjects the city records. A week without a case is a week like any other (a quiet
    week, a small city): that the case feed reaches the week's end is checked above."""
    if "enterprise" in f.subjects:
        ents = f.enterprise["enterprises"].get(CITY, {}).get("enterprises", 0)
        if not ents:
            raise IncompleteReport("the store has no enterprises (the city records "
                                   "enterprise service)")
        if not f.enterprise["kpis"]["city"]["visits"]["value"]:
            raise IncompleteReport(f"the store has {ents} enterprises but no visit in {f.week.label}")
    if "parking" in f.subjects:
        park = f.parking["city"]
        if park["facilities"] - park["non_motor_points"] <= 0:
            raise IncompleteReport("the store has no parking facilities (the city records "
                                   "parking)")
        if not park["readings"]:
            raise IncompleteReport(f"the store has parking facilities but no occupancy reading in {f.week.label}")
    for name, payload in f.wall_sections.items():
        if payload in (None, {}, []):
            raise IncompleteReport(f"the wall's {name} section is empty")
