"""The demo city looks well run, within the magnitudes of docs (shared DOMAIN.md and
docs/kpis.md "The demo city"): few overdue cases, none stuck in a stage for months, no
day with another day's reports, and a history long enough for year-over-year figures.
A regression in realism fails here."""
from __future__ import annotations

import datetime as dt
import shutil
import statistics
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from datasource import schema
from datasource.demo.cases import intake_per_second
from datasource.demo.city import load_profile
from datasource.demo.seed import seed
from datasource.demo.simulate import Simulator
from datasource.engine import make_engine
from tests.conftest import FIXED_NOW

pytestmark = pytest.mark.slow  # a city of 200,000 cases is seeded for the module
C = schema.Case
TZ = ZoneInfo("Asia/Shanghai")
N = 200_000
HISTORY_DAYS = 400


@pytest.fixture(scope="module")
def city(tmp_path_factory, sqlite_template):
    path = tmp_path_factory.mktemp("demo") / "city.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    seed(engine, seed=20261126, now=FIXED_NOW, total_cases=N, history_days=HISTORY_DAYS, occupancy_days=1)
    yield engine
    engine.dispose()


def _scalar(engine, stmt):
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def _daily(engine) -> dict[dt.date, int]:
    """Reports per local day (read as UTC times, grouped in Python over one column)."""
    with engine.connect() as conn:
        rows = conn.execute(select(func.date(C.reported_at, "+8 hours"), func.count())
                            .group_by(func.date(C.reported_at, "+8 hours"))).all()
    return {dt.date.fromisoformat(d): n for d, n in rows}


def test_overdue_cases_are_a_small_share_of_open_ones(city):
    open_n = _scalar(city, select(func.count()).where(C.status.in_(schema.OPEN_STATUSES)))
    running = C.status.in_(schema.RUNNING_STATUSES)
    overdue = _scalar(city, select(func.count()).where(running, C.deadline_at < FIXED_NOW))
    over_30 = _scalar(city, select(func.count()).where(
        running, C.deadline_at < FIXED_NOW - dt.timedelta(days=30)))
    per_day = N / (FIXED_NOW.date() - dt.date(FIXED_NOW.year - 1, 1, 1)).days
    assert 0.3 * per_day <= open_n <= 3 * per_day, (open_n, per_day)  # about 1-3 days of intake
    assert 0 < overdue <= 0.10 * open_n, (overdue, open_n)
    assert over_30 <= 0.01 * open_n, (over_30, open_n)


def test_no_case_waits_in_one_stage_for_months(city):
    running = C.status.in_(schema.RUNNING_STATUSES)
    oldest = _scalar(city, select(func.min(C.updated_at)).where(running))
    assert FIXED_NOW - oldest < dt.timedelta(days=30)
    # the long-running ones are parked (挂账), and there are some
    assert _scalar(city, select(func.count()).where(C.status == "parked")) > 0


def test_no_day_carries_another_days_reports(city):
    daily = _daily(city)
    today = FIXED_NOW.astimezone(TZ).date()
    recent = [daily[today - dt.timedelta(days=k)] for k in range(1, 61)]
    median = statistics.median(recent)
    assert all(0.6 * median <= n <= 1.4 * median for n in recent), recent
    yesterday = daily[today - dt.timedelta(days=1)]
    assert yesterday <= 1.3 * median
    assert daily[today] < 0.8 * median  # today so far: 12:00, about half a day's intake
    sundays = [daily[d] for d in daily if d.weekday() == 6 and today - d < dt.timedelta(days=120)]
    weekdays = [daily[d] for d in daily if d.weekday() == 1 and today - d < dt.timedelta(days=120)]
    assert statistics.mean(sundays) < statistics.mean(weekdays)  # fewer reports on Sundays


def test_the_history_allows_year_over_year_comparisons(city):
    daily = _daily(city)
    today = FIXED_NOW.astimezone(TZ).date()
    first = min(daily)
    assert first <= dt.date(today.year - 1, 1, 1) and (today - first).days >= 396  # 13 months
    this_ytd = sum(n for d, n in daily.items() if d.year == today.year and d < today)
    last_ytd = sum(n for d, n in daily.items() if d.year == today.year - 1
                   and (d.month, d.day) < (today.month, today.day))
    assert 0.9 <= this_ytd / last_ytd <= 1.1, (this_ytd, last_ytd)


def test_closure_and_on_time_rates_within_documented_ranges(city):
    start = FIXED_NOW - dt.timedelta(days=365)
    end = FIXED_NOW - dt.timedelta(days=7)
    on_time = (C.closed_at.is_not(None) & (C.closed_at <= C.deadline_at)).cast(schema.Integer)
    with city.connect() as conn:
        rows = conn.execute(select(C.district_code, func.avg((C.status == "closed").cast(schema.Integer)),
                                   func.avg(on_time))
                            .where(C.filed_at.is_not(None), C.filed_at >= start, C.filed_at < end)
                            .group_by(C.district_code)).all()
    closure = {d: float(c) for d, c, _o in rows}
    timely = {d: float(o) for d, _c, o in rows}
    assert all(0.97 <= r <= 1.0 for r in closure.values()), closure
    assert all(0.83 <= r <= 0.97 for r in timely.values()), timely
    assert max(timely.values()) - min(timely.values()) >= 0.04  # some districts visibly weaker


def test_the_live_simulator_keeps_the_historys_pace(city):
    """No jump at the seam: the simulator's intake at an hour is the history's at that
    hour and weekday (scaled from the profile's volume to this store's)."""
    sim = Simulator(city, seed=1)
    per_year = sum(p["cases_per_year"] for p in load_profile()["districts"].values())
    local = FIXED_NOW.astimezone(TZ)
    assert sim.rate_at(FIXED_NOW) == intake_per_second(per_year, local)
    assert 0.005 < sim.rate_at(FIXED_NOW) < 0.2  # a case every few seconds to minutes
    # the same hour of the same weekday over the last eight weeks, in this store
    hour_start = FIXED_NOW.replace(minute=0) - dt.timedelta(hours=1)
    seen = 0
    for week in range(1, 9):
        a = hour_start - dt.timedelta(weeks=week)
        seen += _scalar(city, select(func.count()).where(
            C.reported_at >= a, C.reported_at < a + dt.timedelta(hours=1)))
    days = (FIXED_NOW.date() - dt.date(FIXED_NOW.year - 1, 1, 1)).days
    store_share = N / (per_year * days / 365)
    expected = sim.rate_at(hour_start) * 3600 * store_share * 8
    assert 0.6 <= seen / expected <= 1.5, (seen, expected)
