"""Seed the store with the demo city: its history, deterministic from a seed.

`total_cases` scales the case volume (benchmarks: 100k, 1M, 10M); by default each
district gets its yearly volume from demo_city.json (about 1.35M cases a year), over a
year, or over `history_days` (the `make run` demo: back to 1 January of last year).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select, text

from datasource import schema
from datasource.bulk import bulk_insert, deferred_indexes, reset_sequence
from datasource.demo.cases import CaseContext, Categories, day_weight, generate_cases, generate_visits
from datasource.demo.city import (build_enterprises, build_facilities, build_grids, build_readings,
                                  fold_hourly, load_profile)
from datasource.reference import read_categories, read_districts, load_reference

CHUNK = 200_000
# the big tables: loaded with their secondary indexes and constraints off, built after
HEAVY = (schema.Case, schema.CaseEvent, schema.OccupancyReading, schema.OccupancyHourly,
         schema.EnterpriseVisit, schema.EnterpriseProblem)


class StoreNotEmpty(RuntimeError):
    pass


@dataclass
class SeedReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        """Rows written (the generation step only counts what it made)."""
        return sum(n for name, n in self.rows.items() if not name.startswith(("generate", "build")))

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def lines(self) -> list[str]:
        out = []
        for name, s in self.seconds.items():
            n = self.rows.get(name)
            rate = f"{n:>11,} rows {s:8.1f} s {n / s if s else 0:>12,.0f} rows/s" if n else f"{'':>16} {s:8.1f} s"
            out.append(f"{name:<20} {rate}")
        out.append(f"{'total (written)':<20} {self.total_rows:>11,} rows {self.total_seconds:8.1f} s "
                   f"{self.total_rows / max(self.total_seconds, 1e-9):>12,.0f} rows/s")
        return out


def planned_cases(profile: dict, total_cases: int | None = None, years: float = 1.0) -> dict[str, int]:
    """Cases per district: the profile's yearly volumes over `years`, or scaled to
    `total_cases` if given."""
    per_year = {code: p["cases_per_year"] for code, p in profile["districts"].items()}
    if total_cases is None:
        return {code: round(n * years) for code, n in per_year.items()}
    exact = {code: n * total_cases / sum(per_year.values()) for code, n in per_year.items()}
    plan = {code: int(x) for code, x in exact.items()}
    # largest remainders get the cases that flooring left over, so the total is exact
    for code in sorted(exact, key=lambda c: plan[c] - exact[c])[:total_cases - sum(plan.values())]:
        plan[code] += 1
    return plan


def store_is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return not conn.execute(select(func.count()).select_from(schema.Case)).scalar_one() and \
            not conn.execute(select(func.count()).select_from(schema.District)).scalar_one()


def clear_store(engine: Engine) -> None:
    """Remove every row of every data table (schema and migrations stay)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in schema.DATA_TABLES)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in schema.DATA_TABLES:
                conn.execute(t.delete())


def _timed(report: SeedReport, name: str, fn, *args) -> int:
    t0 = time.perf_counter()
    n = fn(*args)
    report.rows[name] = report.rows.get(name, 0) + n
    report.seconds[name] = report.seconds.get(name, 0.0) + time.perf_counter() - t0
    return n


def history_start(today: dt.date, history_days: int | None) -> dt.date:
    """The first local day of the seeded history: 365 days back by default; with
    `history_days`, at least that many and back to 1 January of last year, so that a
    year-to-date figure always has last year's same span to compare with."""
    if history_days is None:
        return today - dt.timedelta(days=365)
    return min(today - dt.timedelta(days=history_days), dt.date(today.year - 1, 1, 1))


def parking_history_start(now: dt.datetime, zone, weeks: int) -> dt.datetime:
    """The Monday 00:00 (local) `weeks` finished weeks before the current week."""
    today = now.astimezone(zone).date()
    monday = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=weeks)
    return dt.datetime.combine(monday, dt.time(), zone)


def folded_readings(facilities: pd.DataFrame, since: dt.datetime, until: dt.datetime, zone, step_minutes: int,
                    seed: int, chunk_days: int = 7) -> pd.DataFrame:
    """The occupancy_hourly rows of the readings of [since, until), in key order (so that
    the table's primary key grows at its end while they are loaded). The readings are made
    a week at a time: a few hundred thousand in memory at once."""
    rng = np.random.default_rng([seed, 3])
    parts, end = [], until
    while end > since:
        # chunks meet on the hour: no facility-hour is split between two of them
        start = max(since, (end - dt.timedelta(days=chunk_days)).replace(minute=0, second=0, microsecond=0))
        days = (end - start).total_seconds() / 86400
        # build_readings ends at its `now` (inclusive): the last reading is one step before `end`
        raw = build_readings(rng, facilities, end - dt.timedelta(minutes=step_minutes), zone, days, step_minutes)
        parts.append(fold_hourly(raw[raw.observed_at >= pd.Timestamp(start).tz_convert("UTC").tz_localize(None)],
                                 facilities))
        end = start
    if not parts:
        return fold_hourly(pd.DataFrame(), facilities)
    return pd.concat(parts, ignore_index=True).sort_values(["facility_id", "hour"], ignore_index=True)


def seed(engine: Engine, *, seed: int = 20261126, now: dt.datetime | None = None,
         total_cases: int | None = None, tz: str = "Asia/Shanghai", events: bool = True,
         occupancy_days: int | None = None, history_days: int | None = None,
         parking_weeks: int | None = None, profile: dict | None = None,
         progress=lambda msg: None) -> SeedReport:
    """Fill an empty store with the demo city; returns rows and timings per table.
    `history_days` (the demo: 400) seeds a longer past at the profile's yearly volumes;
    `occupancy_days` of raw parking readings (default: the profile's); `parking_weeks`
    (the demo: DEMO_PARKING_WEEKS) extends the parking history back to the Monday that
    many finished weeks ago, the part older than the raw readings folded per hour as the
    prune keeps it (occupancy_hourly), so that the weekly reports of those weeks can be
    made; `profile` replaces demo_city.json's (e.g. a city with a backlog, for tests)."""
    if not store_is_empty(engine):
        raise StoreNotEmpty("the store already has data; use --reset to replace it")
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    zone = ZoneInfo(tz)
    profile = profile or load_profile()
    report = SeedReport()
    rng = np.random.default_rng([seed, 0])

    t0 = time.perf_counter()
    load_reference(engine)
    districts = read_districts()
    with engine.connect() as conn:
        streets = pd.read_sql(select(schema.Street), conn)  # reference table, a few dozen rows
    grids = build_grids(rng, districts, streets)
    enterprises = build_enterprises(rng, profile, grids)
    facilities = build_facilities(rng, profile, districts, streets, now)
    readings = build_readings(rng, facilities, now, zone, occupancy_days or profile["occupancy_days"],
                              profile["occupancy_step_minutes"])
    stamp = pd.Timestamp(now).tz_convert("UTC").tz_localize(None)
    enterprises["updated_at"] = stamp
    facilities["updated_at"] = stamp
    report.seconds["build city"] = time.perf_counter() - t0
    load = deferred_indexes(engine, [t.__table__ for t in HEAVY])
    load.__enter__()
    with engine.begin() as conn:
        _timed(report, "grids", bulk_insert, conn, schema.Grid.__table__, grids)
        _timed(report, "enterprises", bulk_insert, conn, schema.Enterprise.__table__, enterprises)
        _timed(report, "parking_facilities", bulk_insert, conn, schema.ParkingFacility.__table__,
               facilities)
        _timed(report, "occupancy_readings", bulk_insert, conn, schema.OccupancyReading.__table__,
               readings)
    progress(f"city: {len(grids)} grids, {len(enterprises)} enterprises, "
             f"{len(facilities)} parking facilities, {len(readings)} occupancy readings")
    if parking_weeks and len(readings):
        since = parking_history_start(now, zone, parking_weeks)
        first_raw = readings.observed_at.min().tz_localize("UTC").to_pydatetime()
        t0 = time.perf_counter()
        rows = folded_readings(facilities, since, first_raw, zone, profile["occupancy_step_minutes"], seed)
        report.seconds["build parking history"] = time.perf_counter() - t0
        with engine.begin() as conn:
            folded = sum(_timed(report, "occupancy_hourly", bulk_insert, conn, schema.OccupancyHourly.__table__,
                                rows.iloc[lo:lo + CHUNK]) for lo in range(0, len(rows), CHUNK))
        del rows
        progress(f"parking history since {since.date()}: {folded:,} facility-hours, folded as the prune keeps them")

    cats = read_categories()
    subs = [c for c in cats if c["parent_code"]]
    categories = Categories(
        codes=np.array([c["code"] for c in subs], dtype=object),
        names=np.array([c["name_zh"] for c in subs], dtype=object),
        limits_h=np.array([float(c["time_limit_hours"]) for c in subs]),
        departments=np.array([c["department"] for c in subs], dtype=object),
        weights=np.array([float(c["weight"]) for c in subs]) / sum(float(c["weight"]) for c in subs))
    first_day = history_start(now.astimezone(zone).date(), history_days)
    start_local = dt.datetime.combine(first_day, dt.time(), zone)
    start = start_local.timestamp()
    days = (now.astimezone(zone).date() - first_day).days + 1
    day_weights = np.array([day_weight(first_day + dt.timedelta(days=i)) for i in range(days)])
    # a longer history holds proportionally more cases, a shorter one fewer
    planned = planned_cases(profile, total_cases,
                            1.0 if history_days is None else float(day_weights.sum()) / 365.0)
    nowf = now.timestamp()
    street_names = dict(zip(streets.id, streets.name_zh))
    next_case, next_visit, next_problem = 1, 1, 1
    for di, d in enumerate(districts):
        p = profile["districts"][d.code]
        place = grids[(grids.district_code == d.code) & ((grids.level == 2) | (grids.kind == "exclusive"))]
        ctx = CaseContext(d.code, d.short_zh, p["stuck_share"], p["late_share"],
                          place.id.to_numpy(), place.street_id.to_numpy(),
                          place.center_lon.to_numpy(), place.center_lat.to_numpy(), street_names,
                          place.name_zh.to_numpy(dtype=object))
        n_total = planned[d.code]
        for ci, lo in enumerate(range(0, n_total, CHUNK)):
            n = min(CHUNK, n_total - lo)
            crng = np.random.default_rng([seed, 1, di, ci])
            t0 = time.perf_counter()
            cases, evs = generate_cases(crng, ctx, categories, profile, profile["sources"],
                                        next_case, n, start, day_weights, nowf)
            report.seconds["generate cases"] = report.seconds.get("generate cases", 0.0) + \
                time.perf_counter() - t0
            report.rows["generate cases"] = report.rows.get("generate cases", 0) + n
            with engine.begin() as conn:
                _timed(report, "cases", bulk_insert, conn, schema.Case.__table__, cases)
                if events:
                    _timed(report, "case_events", bulk_insert, conn, schema.CaseEvent.__table__, evs)
            next_case += n
        progress(f"{d.name_zh}: {n_total:,} cases")
        vrng = np.random.default_rng([seed, 2, di])
        # visits scale with the cases, so small test stores stay small
        n_visits = max(50, round(p["visits_per_year"] * planned[d.code] / p["cases_per_year"]))
        visits, problems = generate_visits(vrng, d.code, enterprises, n_visits,
                                           profile, start, nowf, next_visit, next_problem)
        next_visit += len(visits)
        next_problem += len(problems)
        with engine.begin() as conn:
            _timed(report, "enterprise_visits", bulk_insert, conn,
                   schema.EnterpriseVisit.__table__, visits)
            _timed(report, "enterprise_problems", bulk_insert, conn,
                   schema.EnterpriseProblem.__table__, problems)
    t0 = time.perf_counter()
    load.__exit__(None, None, None)
    report.seconds["build indexes"] = time.perf_counter() - t0
    with engine.begin() as conn:
        for t in (schema.Grid, schema.Enterprise, schema.ParkingFacility, schema.Case,
                  schema.CaseEvent, schema.EnterpriseVisit, schema.EnterpriseProblem,
                  schema.OccupancyReading):
            reset_sequence(conn, t.__table__)
        if engine.dialect.name != "postgresql":
            conn.execute(text("ANALYZE"))  # fresh statistics for the planner
    if engine.dialect.name == "postgresql":
        # rows just copied in carry no hint bits and no visibility map: until a vacuum
        # sets them, reads write hint bits and index-only scans visit the heap
        t0 = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
        report.seconds["vacuum"] = time.perf_counter() - t0
    return report
