"""A figure whose inputs the city does not record is "not recorded" (—), never 0 % with an
alert: a city whose export has no deadlines, and one without a handling step, on the wall,
in browsing, in the browsing exports and in the weekly report; and a case without a
deadline is left out of the on-time rates. On SQLite and PostgreSQL. docs/kpis.md
("Not recorded")."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from dashboard import browse as B
from dashboard import create_app, thresholds
from dashboard.kpis.cases import compute_cases
from dashboard.kpis.incremental import IncrementalCases
from dashboard.periods import PERIODS
from dashboard.poller import to_json_data
from dashboard.reference import bundled
from dashboard.services import EXTENSION
from dashboard.weekly.compute import compute_week
from dashboard.weekly.report import KINDS, build_report
from dashboard.weekly.weeks import parse_week
from datasource import schema
from datasource.demo.seed import seed
from datasource.engine import make_engine
from layouts.weekly.html import render_report
from layouts.weekly.workbook import build_workbook
from layouts.wall.render import render
from layouts.wall.view import parse_view
from tests import kpi_oracle as oracle
from tests.conftest import BACKLOG, FIXED_NOW
from tests.dash_posts import body_for, find
from tests.weekly_helpers import SEED_NOW, TZ, WEEK, seeded_store
from tests.wall_helpers import props

ON_TIME = ("on_time_closure_rate", "on_time_handling_rate")
HANDLING = ("handling_rate", "on_time_handling_rate", "avg_handle_hours")
RATES = ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate",
         "rework_rate", "extension_rate", "avg_handle_hours", "avg_close_hours")
NOT_RECORDED = {"value": None, "prev": None, "delta": None, "not_recorded": True, "prev_not_recorded": True}
CODES = [d.code for d in bundled().districts]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def no_deadlines(request, tmp_path_factory):
    """The demo city up to SEED_NOW (a Monday after the report's week), exported without
    any deadline."""
    folder = tmp_path_factory.mktemp(f"no-deadlines-{request.param}")
    url = seeded_store(request.param, request, folder, cases=1500)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(schema.Case).values(deadline_at=None))
    yield url, engine, folder
    engine.dispose()


def _blocks(period: dict):
    yield "city", period["city"]
    yield from period["by_district"].items()


def _text(node) -> str:
    return json.dumps(node, ensure_ascii=False)


def test_the_wall_shows_not_recorded_without_a_level(no_deadlines):
    _url, engine, _folder = no_deadlines
    live = to_json_data(IncrementalCases()(engine, SEED_NOW, TZ))  # the poller's section
    assert live == to_json_data(compute_cases(engine, SEED_NOW, TZ))
    month = live["periods_kpis"]["month"]
    assert month["city"]["filed"]["value"] > 0 and month["city"]["closure_rate"]["value"] > 0
    for key, block in _blocks(month):
        for kpi in ON_TIME:  # no case of the city has a deadline: whether or not it had cases
            assert block[kpi] == NOT_RECORDED, (key, kpi)
            assert thresholds.level(kpi, block[kpi]["value"]) is None
        assert "not_recorded" not in block["closure_rate"]
        assert (block["closure_rate"]["value"] is None) == (block["filed"]["value"] == 0)
    sections = {"cases": {"status": "fresh", "since": None, "error": None, "data": live}}
    out = render(sections, bundled(), parse_view({}, CODES, "zh-CN")[0], thresholds, TZ)
    cards = out["ov-cards-body.children"]
    card = next(c for c in cards if c["props"]["id"] == "card-on_time_closure_rate")
    value = next(p for p in props(card) if p.get("data-kpi") == "on_time_closure_rate")
    assert value["children"] == "—" and value["data-value"] == "" and value["data-not-recorded"] == "true"
    assert "未记录" in value["title"] and "未记录" in _text(card)
    assert "level-none" in card["props"]["className"] and "data-level" not in _text(card)
    assert "0.0%" not in _text(card)
    closure = next(c for c in cards if c["props"]["id"] == "card-closure_rate")
    assert "not-recorded" not in closure["props"]["className"]  # closing is recorded: a figure
    # without deadlines nothing can be overdue: not "0, good"
    assert live["overdue"]["not_recorded"] and "deadline" not in live["recorded"]
    overdue = next(c for c in cards if c["props"]["id"] == "card-overdue")
    assert "not-recorded" in overdue["props"]["className"] and "level-none" in overdue["props"]["className"]
    assert "data-level" not in _text(overdue) and "未记录" in _text(overdue)
    table = out["cs-rates-body.children"]
    cells = [p for p in props(table) if p.get("data-kpi") in ON_TIME]
    assert len(cells) == 2 * (len(CODES) + 1)
    for cell in cells:
        assert cell["data-not-recorded"] == "true" and cell["data-value"] == ""
        assert "alert" not in cell["className"] and "watch" not in cell["className"]
    assert "— 未记录" in _text(table)  # the legend, for a wall nobody hovers over
    for kpi in ("on_time_closure_rate", "overdue"):  # the map of a KPI not recorded: no colour, no value
        figure = render(sections, bundled(), parse_view({"kpi": kpi}, CODES, "zh-CN")[0], thresholds, TZ)[
            "ov-map-body.figure"]
        labels = [t for trace in figure["data"] if trace.get("meta") == "labels" for t in trace["text"]]
        assert labels and all(label.endswith("<br>—") for label in labels), (kpi, labels)


def _browse_app(url, folder):
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, "REDIS_URL": "",
                      "LOCAL_CACHE_DIR": str(folder / "cache"), "REPORTS_DIR": str(folder / "reports")})
    B.browse(app.server).clock = lambda: SEED_NOW.timestamp()
    assert app.server.test_client().get("/browse").status_code == 200  # the pages' callbacks are there
    return app


def _table_cells(raw: str, metric: str) -> list[dict]:
    resp = json.loads(raw)["response"]
    return [p for p in props(resp) if p.get("data-metric") == metric and "data-value" in p]


def _rows(resp, fmt: str) -> list[list[str]]:
    assert resp.status_code == 200
    if fmt == "csv":
        return list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    ws = load_workbook(io.BytesIO(resp.data), read_only=True).active
    return [["" if v is None else str(v) for v in r] for r in ws.iter_rows(values_only=True)]


def test_browsing_and_its_exports_say_not_recorded(no_deadlines):
    url, _engine, folder = no_deadlines
    app = _browse_app(url, folder)
    try:
        client = app.server.test_client()
        output, cb = find(app, "..browse-summary.children")
        body = body_for(output, cb, {("inputs", 0): "?period=month", ("state", 0): "cases"})
        resp = client.post("/_dash-update-component", json=body)
        assert resp.status_code == 200
        raw = resp.get_data(as_text=True)
        filed = [c["data-value"] for c in _table_cells(raw, "filed")]
        assert len(filed) == len(CODES) + 1 and filed[-1] not in ("", "0")  # every district and the total
        for metric in ON_TIME:
            cells = _table_cells(raw, metric)
            assert len(cells) == len(filed)
            for cell in cells:
                assert cell["data-value"] == "" and cell["data-not-recorded"] == "true", metric
                assert "未记录" in cell["title"]
        assert all(c["data-not-recorded"] == "true" for c in _table_cells(raw, "overdue"))
        total_closure = _table_cells(raw, "closure_rate")[-1]
        assert float(total_closure["data-value"]) > 0 and "data-not-recorded" not in total_closure
        assert "— 未记录" in raw  # the legend under the table
        for fmt in ("csv", "xlsx"):
            rows = _rows(client.get(f"/browse/export.{fmt}?period=month&what=kpis"), fmt)
            head = rows[0]
            on_time, closure, filed_col = head.index("按期结案率(%)"), head.index("结案率(%)"), head.index("立案")
            assert len(rows) == len(CODES) + 2
            for row in rows[1:]:
                assert row[on_time] == row[on_time + 1] == "未记录", (fmt, row)
                if row[filed_col] not in ("0", "0.0"):
                    assert float(row[closure]) > 0, (fmt, row)
            assert float(rows[-1][filed_col]) > 0
    finally:
        app.server.extensions[EXTENSION].engine.dispose()
        B.browse(app.server).engine.dispose()


def test_the_weekly_report_says_not_recorded(no_deadlines):
    _url, engine, _folder = no_deadlines
    figures = compute_week(engine, parse_week(WEEK, TZ))
    report = build_report(figures, "city", generated_at="2026-11-23T08:00:00+08:00", app_version="test")
    kpis = report["cases"]["kpis"]
    for kpi in ON_TIME:
        assert kpis[kpi] == NOT_RECORDED
        for code, block in report["cases"]["by_district"].items():
            assert block[kpi] == NOT_RECORDED, (code, kpi)
    assert kpis["closure_rate"]["value"] > 0
    assert kpis["overdue_at_end"] == kpis["overdue_share_at_end"] == NOT_RECORDED
    assert kpis["open_at_end"]["value"] > 0
    wall_month = figures.wall_sections["cases"]["periods_kpis"]["month"]["city"]
    assert wall_month["on_time_closure_rate"]["not_recorded"]  # the wall's PNG of the week too
    page = render_report(report, kinds=KINDS, title="城市运行", categories={}, tz=TZ)
    cards = re.findall(r'<div class="card"><div class="label">([^<]*)</div><div class="value"([^>]*)>([^<]*)</div>'
                       r'<div class="delta">([^<]*)</div>', page.body)
    on_time = next(c for c in cards if c[0] == "按期结案率")
    assert on_time[2] == "—" and "data-not-recorded" in on_time[1] and on_time[3] == "未记录"
    closure = next(c for c in cards if c[0] == "结案率")
    assert closure[2].endswith("%") and closure[2] != "—"
    book = load_workbook(io.BytesIO(build_workbook(report["tables"], title="t")), read_only=True)
    rows = [list(r) for r in book["各区案件指标"].iter_rows(values_only=True)]
    col, filed = rows[0].index("按期结案率"), rows[0].index("立案")
    assert len(rows) == len(CODES) + 2
    for row in rows[1:]:  # this week, the week before, the change: no deadline in the whole store
        assert row[col] == row[col + 1] == "未记录" and row[col + 2] is None, row
    assert rows[-1][filed] > 0 and isinstance(rows[-1][rows[0].index("结案率")], float)


# --- some cases without a deadline; a city without a handling step -------------------
def _check(got: dict, want: dict, period: str, side: str) -> None:
    for key, w in want.items():
        g = got["city"] if key == "city" else got["by_district"][key]
        for f in ("reported", "closed", "filed") + RATES:
            value = g[f][side]
            flag = bool(g[f].get("not_recorded" if side == "value" else "prev_not_recorded"))
            assert flag == (f in w["not_recorded"]), (period, side, key, f)
            if w[f] is None:
                assert value is None, (period, side, key, f)
            else:
                tol = 1e-6 if f.startswith("avg") else 1e-9
                assert value == pytest.approx(float(w[f]), rel=tol, abs=tol), (period, side, key, f)


@pytest.mark.parametrize("gap", ["some_deadlines", "no_handling"])
def test_rates_match_an_independent_computation(engine, gap):
    seed(engine, profile=BACKLOG, seed=23, now=FIXED_NOW, total_cases=2500, occupancy_days=1)
    C = schema.Case
    with engine.begin() as conn:
        if gap == "some_deadlines":  # one case in three has no deadline
            conn.execute(update(C).where(C.id % 3 == 0).values(deadline_at=None))
        else:
            conn.execute(update(C).values(dispatched_at=None, handled_at=None))
    cases = oracle.frame(engine, schema.Case)
    full = compute_cases(engine, FIXED_NOW, TZ)
    assert to_json_data(IncrementalCases()(engine, FIXED_NOW, TZ)) == to_json_data(full)
    for name in PERIODS:
        start, end, prev_start, prev_end = oracle.local_bounds(FIXED_NOW, TZ, name)
        _check(full["periods_kpis"][name], oracle.case_period(cases, start, end, inclusive_end=True), name, "value")
        _check(full["periods_kpis"][name], oracle.case_period(cases, prev_start, prev_end, inclusive_end=False),
               name, "prev")
    city = full["periods_kpis"]["year"]["city"]
    if gap == "some_deadlines":
        # the deadline-less cases are out of both numerator and denominator: dividing by
        # every filed case instead would give a lower figure
        year = oracle.local_bounds(FIXED_NOW, TZ, "year")
        cohort = cases[(cases.filed_at >= year[0]) & (cases.filed_at <= year[1]) & ~cases.voided]
        on_time = (cohort.closed_at.notna() & (cohort.closed_at <= cohort.deadline_at)).sum()
        assert city["on_time_closure_rate"]["value"] == pytest.approx(on_time / cohort.deadline_at.notna().sum())
        assert city["on_time_closure_rate"]["value"] > on_time / len(cohort) + 0.1
        assert full["recorded"] == ["filed", "dispatched", "handled", "verified", "closed", "deadline"]
    else:
        for kpi in HANDLING:
            assert city[kpi]["not_recorded"] and city[kpi]["value"] is None
            assert thresholds.level(kpi, city[kpi]["value"]) is None
        assert city["closure_rate"]["value"] > 0 and city["on_time_closure_rate"]["value"] > 0
        assert full["recorded"] == ["filed", "verified", "closed", "deadline"]


def test_an_empty_period_is_not_not_recorded(reference_engine):
    """No case at all is nothing to count (—, as before), not a gap in the city's data."""
    got = compute_cases(reference_engine, FIXED_NOW, TZ)
    week = got["periods_kpis"]["week"]["city"]
    assert week["filed"] == {"value": 0, "prev": 0, "delta": 0}
    assert week["on_time_closure_rate"] == {"value": None, "prev": None, "delta": None}
    assert got["recorded"] == ["filed", "dispatched", "handled", "verified", "closed", "deadline"]


def test_a_handling_time_arriving_makes_handling_recorded_again(reference_engine):
    """The poller keeps which stages the city records from the cases it reads."""
    now = FIXED_NOW
    C = schema.Case
    earlier = now - dt.timedelta(hours=3)
    with reference_engine.begin() as conn:
        conn.execute(schema.Case.__table__.insert(), [dict(
            external_id="NR-1", source="hotline", category_code="S01-01", district_code="410105", status="filed",
            reported_at=earlier, filed_at=earlier, deadline_at=now + dt.timedelta(hours=4), updated_at=earlier)])
    inc = IncrementalCases()
    first = inc(reference_engine, now, TZ)["periods_kpis"]["today"]["city"]
    assert first["handling_rate"]["not_recorded"] and first["closure_rate"]["not_recorded"]
    with reference_engine.begin() as conn:
        conn.execute(update(C).where(C.external_id == "NR-1").values(
            status="handled", handled_at=now - dt.timedelta(hours=1), updated_at=now))
    later = now + dt.timedelta(seconds=5)
    second = to_json_data(inc(reference_engine, later, TZ))
    city = second["periods_kpis"]["today"]["city"]
    assert city["handling_rate"] == {"value": 1.0, "prev": None, "delta": None}
    assert city["closure_rate"]["not_recorded"]  # nothing closed yet in this store: no closing time at all
    assert second == to_json_data(compute_cases(reference_engine, later, TZ))


def test_a_cohort_without_deadlines_in_a_city_that_records_them(reference_engine):
    """The city records deadlines, one district's cases of the day have none: there the
    on-time rates are not recorded; the city's leave those cases out."""
    t = FIXED_NOW - dt.timedelta(hours=3)

    def case(cid, district, deadline, closed):
        return dict(external_id=cid, source="hotline", category_code="S01-01", district_code=district,
                    status="closed", reported_at=t, filed_at=t, handled_at=closed, closed_at=closed,
                    deadline_at=deadline, updated_at=FIXED_NOW)
    with reference_engine.begin() as conn:
        conn.execute(schema.Case.__table__.insert(), [
            case("D-1", "410105", t + dt.timedelta(hours=2), t + dt.timedelta(hours=1)),   # on time
            case("D-2", "410105", t + dt.timedelta(hours=1), t + dt.timedelta(hours=2)),   # late
            case("D-3", "410102", None, t + dt.timedelta(hours=1)),
            case("D-4", "410102", None, t + dt.timedelta(hours=2))])
    today = compute_cases(reference_engine, FIXED_NOW, TZ)["periods_kpis"]["today"]
    with_deadlines, without = today["by_district"]["410105"], today["by_district"]["410102"]
    assert with_deadlines["on_time_closure_rate"]["value"] == 0.5
    assert without["on_time_closure_rate"] == {"value": None, "prev": None, "delta": None, "not_recorded": True}
    assert without["closure_rate"]["value"] == 1.0 and without["handling_rate"]["value"] == 1.0
    assert today["city"]["on_time_closure_rate"]["value"] == 0.5  # D-3 and D-4 left out, not counted late
    assert today["city"]["on_time_handling_rate"]["value"] == 0.5


def test_a_state_written_by_an_older_poller_is_rebuilt(reference_engine):
    """During a rolling upgrade a poller of the previous version may still write the state
    (after migration 0011): rows without `with_deadline`, its watermark moved on without
    this version's stamp. The next poller of this version to load it rebuilds it."""
    from sqlalchemy import insert

    from datasource import kpi_state

    t = FIXED_NOW - dt.timedelta(hours=2)
    with reference_engine.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id=f"V-{i}", source="hotline", category_code="S01-01", district_code="410105",
            status="closed", reported_at=t, filed_at=t, handled_at=t, closed_at=t + dt.timedelta(minutes=30),
            deadline_at=t + dt.timedelta(hours=1), updated_at=t) for i in range(3)])
    IncrementalCases(save_every=0)(reference_engine, FIXED_NOW, TZ)
    assert kpi_state.state_current(reference_engine)
    with reference_engine.begin() as conn:  # what the older poller leaves
        conn.execute(update(schema.KpiCaseState).values(with_deadline=0))
        conn.execute(update(schema.KpiRollup).values(cohort_with_deadline=0))
        conn.execute(update(schema.KpiMeta).where(schema.KpiMeta.key.in_([kpi_state.WATERMARK,
                                                                         kpi_state.ROLLUPS_WATERMARK]))
                     .values(value=FIXED_NOW.isoformat()))
    assert not kpi_state.state_current(reference_engine)
    fresh = IncrementalCases()
    city = fresh(reference_engine, FIXED_NOW, TZ)["periods_kpis"]["today"]["city"]
    assert fresh.rebuilds == 1 and city["on_time_closure_rate"]["value"] == 1.0
