"""The drill numbers on real SQLite and PostgreSQL stores, against straightforward pandas
over the raw rows (tests/kpi_oracle.py for the cohort rates)."""
import math

import pandas as pd
import pytest

from dashboard import browse as B
from dashboard import create_app
from dashboard.scope import Scope
from datasource import schema
from datasource.engine import make_engine
from tests.conftest import BACKENDS, BACKLOG, FIXED_NOW, seeded_store_url
from tests.kpi_oracle import case_period, frame

OPEN = set(schema.OPEN_STATUSES)
RATES = ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate", "rework_rate",
         "extension_rate", "avg_handle_hours", "avg_close_hours")


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request, tmp_path_factory):
    """One seeded store per backend for the whole module: the tests only read it."""
    url = seeded_store_url(request.param, request, tmp_path_factory.mktemp("browse"), profile=BACKLOG, seed=7,
                           total_cases=3000, now=FIXED_NOW, occupancy_days=1)
    engine = make_engine(url)
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False})
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    yield app, engine
    B.browse(app.server).engine.dispose()
    engine.dispose()


@pytest.fixture
def app(seeded):
    return seeded[0]


@pytest.fixture
def engine(seeded):
    return seeded[1]


def view_of(app, query, scope=None):
    with app.server.test_request_context("/"):
        return B.resolve(query, scope)


def call(app, fn, *args):
    with app.server.test_request_context("/"):
        return fn(*args)


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-5)  # SQLite julianday: sub-second error


def stock_at(cases: pd.DataFrame, t) -> pd.DataFrame:
    """Open at t, written from the lifecycle: filed before t, not voided, not closed by t."""
    t = pd.Timestamp(t)
    return cases[(cases.filed_at < t) & ~cases.voided & (cases.closed_at.isna() | (cases.closed_at >= t))]


def expected_rows(cases, group, window):
    cur = case_period(cases.assign(district_code=cases[group]), window.start, window.end, False)
    prev = case_period(cases.assign(district_code=cases[group]), window.prev_start, window.prev_end, False)
    out = {}
    for key in set(cur) | set(prev):
        if key == "city":
            continue
        out[key] = {"cur": cur.get(key), "prev": prev.get(key)}
    return out, cur["city"], prev["city"]


def check_metrics(got: dict, cur: dict | None, prev: dict | None, cases_cur_open, cases_prev_open, label):
    for which, exp in (("value", cur), ("prev", prev)):
        for m in ("reported", "closed", "filed"):
            assert got[m][which] == (exp[m] if exp else 0), (label, m, which)
        for m in RATES:
            assert close(got[m][which], exp[m] if exp else None), (label, m, which, got[m][which], exp and exp[m])
    assert got["open"]["value"] == cases_cur_open[0] and got["overdue"]["value"] == cases_cur_open[1], label
    assert got["open"]["prev"] == cases_prev_open[0] and got["overdue"]["prev"] == cases_prev_open[1], label
    for m in got:
        v, p, d = got[m]["value"], got[m]["prev"], got[m]["delta"]
        assert d is None if v is None or p is None else close(d, v - p), (label, m)


def stock_counts(cases, t, mask):
    o = stock_at(cases[mask], t)
    overdue = o[(o.deadline_at < pd.Timestamp(t)) & (o.status != "parked")]
    return len(o), len(overdue)


@pytest.mark.parametrize("query", [{"period": "week"}, {"period": "last_week"},
                                   {"period": "custom", "from": "2026-10-01", "to": "2026-10-31",
                                    "compare": "custom", "cfrom": "2026-09-01", "cto": "2026-09-15"}])
def test_district_table_matches_pandas(app, engine, query):
    cases = frame(engine, schema.Case)
    view = view_of(app, query)
    table = call(app, B.kpi_table, view, "zh-CN")
    assert table["level"] == "district"
    w = view.window
    exp, city_cur, city_prev = expected_rows(cases, "district_code", w)
    rows = {r["key"]: r for r in table["rows"]}
    assert len(rows) == 8  # every district, zero rows included
    for code, r in rows.items():
        mask = cases.district_code == code
        check_metrics(r["metrics"], exp.get(code, {}).get("cur"), exp.get(code, {}).get("prev"),
                      stock_counts(cases, w.end, mask), stock_counts(cases, w.prev_end, mask), code)
    all_ = pd.Series(True, index=cases.index)
    check_metrics(table["total"], city_cur, city_prev, stock_counts(cases, w.end, all_),
                  stock_counts(cases, w.prev_end, all_), "total")


def test_open_now_is_the_open_statuses(app, engine):
    """At the period's end = now, the reconstructed stock equals the statuses (as the wall counts)."""
    cases = frame(engine, schema.Case)
    table = call(app, B.kpi_table, view_of(app, {"period": "today"}), "zh-CN")
    now = pd.Timestamp(FIXED_NOW)
    for r in table["rows"]:
        d = cases[cases.district_code == r["key"]]
        assert r["metrics"]["open"]["value"] == d.status.isin(OPEN).sum()
        running = d.status.isin(OPEN - {"parked"}) & (d.deadline_at < now)
        assert r["metrics"]["overdue"]["value"] == running.sum()


def test_drill_to_streets_grids_and_the_case_list(app, engine):
    cases = frame(engine, schema.Case)
    view = view_of(app, {"period": "month", "district": "410105", "sort": "-reported"})
    table = call(app, B.kpi_table, view, "zh-CN")
    assert table["level"] == "street"
    d = cases[cases.district_code == "410105"]
    w = view.window
    exp, _, _ = expected_rows(d, "street_id", w)
    values = [r["metrics"]["reported"]["value"] for r in table["rows"]]
    assert values == sorted(values, reverse=True)  # ?sort=-reported
    for r in table["rows"]:
        mask = d.street_id == r["key"]
        check_metrics(r["metrics"], exp.get(r["key"], {}).get("cur"), exp.get(r["key"], {}).get("prev"),
                      stock_counts(d, w.end, mask), stock_counts(d, w.prev_end, mask), r["key"])
    assert sum(v for v in values) == table["total"]["reported"]["value"] == \
        int(((d.reported_at >= w.start) & (d.reported_at < w.end)).sum())

    street = max(table["rows"], key=lambda r: r["metrics"]["reported"]["value"])["key"]
    gview = view_of(app, {"period": "month", "street": str(street)})
    assert gview.state.district == "410105"
    gtable = call(app, B.kpi_table, gview, "zh-CN")
    assert gtable["level"] == "grid"
    s = d[d.street_id == street]
    in_window = s[(s.reported_at >= w.start) & (s.reported_at < w.end)]
    got = {r["key"]: r["metrics"]["reported"]["value"] for r in gtable["rows"] if r["metrics"]["reported"]["value"]}
    assert got == in_window.groupby("grid_id").size().to_dict()

    grid = in_window.grid_id.value_counts().index[0]
    cview = view_of(app, {"period": "month", "grid": str(grid)})
    expected = s[(s.grid_id == grid) & (s.reported_at >= w.start) & (s.reported_at < w.end)]
    assert call(app, B.case_count, cview) == len(expected)
    seen = []
    for offset in range(0, len(expected) + 3, 3):  # small pages: pages never overlap or skip
        seen += call(app, B.case_rows, cview, offset, 3)
    assert [r["id"] for r in seen] == expected.sort_values(["reported_at", "id"], ascending=False).id.tolist()
    one = seen[0]
    assert one["overdue"] == (one["status"] in OPEN - {"parked"} and
                              pd.Timestamp(one["deadline_at"]) < pd.Timestamp(FIXED_NOW))


@pytest.mark.parametrize("kind", ["filed", "closed", "open", "overdue"])
def test_case_lists_and_filters(app, engine, kind):
    cases = frame(engine, schema.Case)
    view = view_of(app, {"period": "year", "list": kind, "category": "S01", "source": "hotline",
                         "csort": "deadline_at"})
    w = view.window
    cats = {c for c, p in call(app, lambda: view.lookup.categories()).items() if c == "S01" or p == "S01"}
    c = cases[cases.category_code.isin(cats) & (cases.source == "hotline")]
    if kind == "filed":
        exp = c[(c.filed_at >= w.start) & (c.filed_at < w.end) & ~c.voided]
    elif kind == "closed":
        exp = c[(c.closed_at >= w.start) & (c.closed_at < w.end)]
    else:
        exp = stock_at(c, w.end)
        if kind == "overdue":
            exp = exp[(exp.deadline_at < pd.Timestamp(w.end)) & (exp.status != "parked")]
    assert call(app, B.case_count, view) == len(exp) > 0
    rows = call(app, B.case_rows, view, 0, 1000)
    assert sorted(r["id"] for r in rows) == sorted(exp.id)
    deadlines = [r["deadline_at"] for r in rows if r["deadline_at"] is not None]
    assert deadlines == sorted(deadlines)  # ?csort=deadline_at: ascending, in SQL


def test_case_detail_has_its_lifecycle(app, engine):
    events = frame(engine, schema.CaseEvent)
    cases = frame(engine, schema.Case)
    case = cases[cases.rework_count > 0].iloc[0]
    for ref in (str(case.id), case.external_id):
        got = call(app, B.case_detail, ref)
        assert got["case"]["id"] == case.id
        mine = events[events.case_id == case.id].sort_values(["at", "id"])
        assert [e["to_status"] for e in got["events"]] == mine.to_status.tolist()
        assert got["reworks"] == (mine.to_status == "rework").sum() >= 1
    assert call(app, B.case_detail, "no-such-case") is None
    other = cases[cases.district_code != "410105"].iloc[0]
    assert call(app, B.case_detail, str(other.id), Scope(frozenset({"410105"}), role="district_leader")) is None


def test_enterprise_and_parking_drills(app, engine):
    visits, ents = frame(engine, schema.EnterpriseVisit), frame(engine, schema.Enterprise)
    problems = frame(engine, schema.EnterpriseProblem)
    view = view_of(app, {"period": "year", "district": "410102"})
    data = call(app, B.enterprise_view, view)
    w = view.window
    v = visits.merge(ents[["id", "exclusive_grid_id"]], left_on="enterprise_id", right_on="id")
    v = v[(v.visited_at >= w.start) & (v.visited_at < w.end) & v.exclusive_grid_id.notna()]
    members = ents[ents.exclusive_grid_id.notna()].groupby("exclusive_grid_id").size()
    for g in data["grids"]:
        assert g["district"] == "410102"
        mine = v[v.exclusive_grid_id == g["grid_id"]]
        assert g["visits_cur"] == len(mine) and g["visited_cur"] == mine.enterprise_id.nunique()
        assert g["members"] == members.get(g["grid_id"], 0)
    open_ = problems[(problems.status == "open") & (problems.district_code == "410102")]
    assert data["open_total"] == len(open_)
    assert sum(t["open_now"] for t in data["types"]) == len(open_)

    readings, facilities = frame(engine, schema.OccupancyReading), frame(engine, schema.ParkingFacility)
    fac = facilities[(facilities.district_code == "410102") & (facilities.kind == "off_street")].iloc[0]
    pview = view_of(app, {"period": "today", "facility": str(fac.id)})
    pdata = call(app, B.parking_view, pview)
    assert {f["district"] for f in pdata["facilities"]} == {"410102"}
    r = readings[(readings.facility_id == fac.id) & (readings.observed_at >= pview.window.start)
                 & (readings.observed_at < pview.window.end)]
    hourly = r.assign(h=r.observed_at.dt.strftime("%Y-%m-%d %H"),
                      occ=r.occupied.clip(0, fac.capacity)).groupby("h").occ.mean()
    got = {h["hour"]: h["occupied"] for h in pdata["history"]["hours"]}
    assert got.keys() == hourly.to_dict().keys()
    assert all(close(float(got[k]), float(hourly[k])) for k in got)
