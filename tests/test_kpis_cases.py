"""Case KPIs equal an independent pandas computation over the raw rows, on both backends,
including the edges of Asia/Shanghai days, weeks and months."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from dashboard.kpis.cases import OVERDUE_EDGES_H, compute_cases, compute_ticker
from dashboard.periods import PERIODS
from datasource import schema
from tests import kpi_oracle as oracle
from tests.conftest import BACKENDS, BACKLOG, FIXED_NOW, seeded_engine

TZ = ZoneInfo("Asia/Shanghai")
SH = dt.timezone(dt.timedelta(hours=8))
RATES = ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate",
         "rework_rate", "extension_rate", "avg_handle_hours", "avg_close_hours")


def _edge_cases():
    """Cases right on the boundaries of today, this week, this month and the comparison
    windows (FIXED_NOW is Thursday 2026-11-26 12:00 in Shanghai)."""
    moments = [
        dt.datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=SH),  # yesterday's last instant
        dt.datetime(2026, 11, 26, 0, 0, tzinfo=SH),                 # today's first
        dt.datetime(2026, 11, 22, 23, 59, 59, tzinfo=SH),           # Sunday: last week
        dt.datetime(2026, 11, 23, 0, 0, tzinfo=SH),                 # Monday: this week
        dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=SH),           # last month
        dt.datetime(2026, 11, 1, 0, 0, tzinfo=SH),                  # this month
        dt.datetime(2026, 11, 25, 11, 59, 59, tzinfo=SH),           # yesterday, inside "same time"
        dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=SH),             # yesterday, just past it
        dt.datetime(2026, 11, 25, 11, 30, 0, tzinfo=SH),            # mid-hour of the comparison edge
        dt.datetime(2026, 11, 19, 11, 59, 0, tzinfo=SH),            # last week, same time edge
        dt.datetime(2026, 11, 19, 12, 0, 1, tzinfo=SH),
        dt.datetime(2025, 11, 26, 11, 45, 0, tzinfo=SH),            # last year, same time edge
    ]
    rows = []
    for i, t in enumerate(moments):
        closed = t + dt.timedelta(minutes=1)
        rows.append(dict(external_id=f"EDGE-{i}", source="patrol", category_code="S01-01",
                         district_code="410105" if i % 2 else "410172", status="closed",
                         reported_at=t, filed_at=t, dispatched_at=t, handled_at=t, verified_at=t,
                         closed_at=closed if closed <= FIXED_NOW else t, deadline_at=t + dt.timedelta(hours=2),
                         rework_count=int(i % 3 == 0), extended=i % 4 == 0, voided=False, updated_at=FIXED_NOW))
    return rows


@pytest.fixture(scope="module", params=BACKENDS)
def city(request, tmp_path_factory):
    """One store per backend for the module: the tests only read it."""
    engine = seeded_engine(request.param, request, tmp_path_factory.mktemp("city"), profile=BACKLOG, seed=21,
                           now=FIXED_NOW, total_cases=4000, occupancy_days=1)
    with engine.begin() as conn:
        conn.execute(insert(schema.Case), _edge_cases())
    return engine


def _check_period(got: dict, want: dict):
    for key, w in want.items():
        g = got["city"] if key == "city" else got["by_district"][key]
        for f in ("reported", "closed", "filed"):
            assert g[f] == w[f], (key, f)
        for f in RATES:
            if w[f] is None:
                assert g[f] is None, (key, f)
            else:
                # SQLite's julianday() carries durations to about a millisecond
                tol = 1e-6 if f.startswith("avg") else 1e-9
                assert g[f] == pytest.approx(float(w[f]), rel=tol, abs=tol), (key, f)


@pytest.mark.parametrize("now", [FIXED_NOW,
                                 dt.datetime(2026, 11, 23, 0, 30, tzinfo=SH),   # just into a new week
                                 dt.datetime(2026, 11, 1, 0, 5, tzinfo=SH)])    # just into a new month
def test_period_counts_and_rates_match_pandas(city, now):
    got = compute_cases(city, now, TZ)
    cases = oracle.frame(city, schema.Case)
    for name in PERIODS:
        start, end, prev_start, prev_end = oracle.local_bounds(now, TZ, name)
        cur = oracle.case_period(cases, start, end, inclusive_end=True)
        prev = oracle.case_period(cases, prev_start, prev_end, inclusive_end=False)
        block = got["periods_kpis"][name]
        _check_period({"city": {k: v["value"] for k, v in block["city"].items()},
                       "by_district": {d: {k: v["value"] for k, v in b.items()}
                                       for d, b in block["by_district"].items()}}, cur)
        _check_period({"city": {k: v["prev"] for k, v in block["city"].items()},
                       "by_district": {d: {k: v["prev"] for k, v in b.items()}
                                       for d, b in block["by_district"].items()}}, prev)
        assert block["city"]["reported"]["delta"] == cur["city"]["reported"] - prev["city"]["reported"]


def test_edge_cases_land_on_the_right_side(city):
    """Spot checks that do not rely on the oracle: the boundary cases count where they should."""
    got = compute_cases(city, FIXED_NOW, TZ)["periods_kpis"]
    # 410172 holds the even EDGE cases: today's first instant (i=1 is odd -> 410105)
    today_jinshui = oracle.case_period(oracle.frame(city, schema.Case),
                                       *oracle.local_bounds(FIXED_NOW, TZ, "today")[:2], True)["410105"]
    assert got["today"]["by_district"]["410105"]["reported"]["value"] == today_jinshui["reported"]
    edge = [r for r in _edge_cases() if r["reported_at"] >= dt.datetime(2026, 11, 26, tzinfo=SH)]
    assert len(edge) == 1  # the only edge case reported today is the 00:00 one


def test_open_overdue_and_series_match_pandas(city):
    got = compute_cases(city, FIXED_NOW, TZ)
    cases = oracle.frame(city, schema.Case)
    want_open = oracle.open_counts(cases)
    assert got["open"]["total"] == want_open["total"]
    for (d, stage), n in want_open["by_district_stage"].items():
        assert got["open"]["by_district"][d][stage] == n
    assert sum(got["open"]["by_stage"].values()) == want_open["total"]
    want_over = oracle.overdue(cases, FIXED_NOW, OVERDUE_EDGES_H)
    assert got["overdue"]["total"] == want_over["total"] > 0
    assert {d: n for d, n in got["overdue"]["by_district"].items() if n} == want_over["by_district"]
    assert {i: b["n"] for i, b in enumerate(got["overdue"]["ageing"]) if b["n"]} == want_over["ageing"]
    assert got["series_30d"] == oracle.daily(cases, FIXED_NOW, TZ, 30)


def test_ticker_is_newest_first_and_unique(city):
    t = compute_ticker(city, FIXED_NOW, TZ)
    cases = oracle.frame(city, schema.Case)
    newest = cases.sort_values(["reported_at", "id"], ascending=False).head(20)
    assert [r["external_id"] for r in t["newest"]] == list(newest.external_id)
    over = cases[cases.status.isin(oracle.OPEN - {"parked"}) & (cases.deadline_at < FIXED_NOW)
                 & (cases.deadline_at >= FIXED_NOW - dt.timedelta(hours=24))]
    want = over.sort_values(["deadline_at", "id"], ascending=False).head(20)
    assert [r["external_id"] for r in t["newly_overdue"]] == list(want.external_id)
    assert len({r["id"] for r in t["newest"]}) == len(t["newest"])


def test_empty_store_gives_true_zeros_not_errors(reference_engine):
    got = compute_cases(reference_engine, FIXED_NOW, TZ)
    city = got["periods_kpis"]["week"]["city"]
    assert city["reported"]["value"] == 0 and city["closure_rate"]["value"] is None
    assert got["open"]["total"] == 0 and got["overdue"]["total"] == 0


def test_epoch_microseconds_are_exact_on_both_backends(reference_engine):
    """sqlfuncs.epoch_us, which the poller reads visit and problem times with, gives the
    exact microsecond, on a whole second as well, and None for no time."""
    from sqlalchemy import select

    from datasource.sqlfuncs import epoch_us

    C = schema.Case
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    times = [FIXED_NOW, FIXED_NOW + dt.timedelta(microseconds=1), FIXED_NOW - dt.timedelta(days=400, microseconds=999999)]
    with reference_engine.begin() as conn:
        conn.execute(insert(C), [dict(external_id=f"T-{i}", source="app", category_code="S01-01",
                                      district_code="410105", status="reported", reported_at=t,
                                      updated_at=FIXED_NOW) for i, t in enumerate(times)])
        got = conn.execute(select(epoch_us(C.reported_at), epoch_us(C.closed_at)).order_by(C.external_id)).all()
    assert got == [((t - epoch) // dt.timedelta(microseconds=1), None) for t in times]
