"""Live and weekly stages agree: a city's own status words, mapped onto lifecycle stages,
give the same stage on the wall (the poller's state and the live queries), in browsing
and in the weekly report, whatever times the export has for them; on SQLite and
PostgreSQL. docs/kpis.md ("Stages")."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.kpis.cases import OVERDUE_EDGES_H, compute_cases, open_block, overdue_block
from dashboard.kpis.incremental import IncrementalCases
from datasource import browse_queries as bq
from datasource import kpi_queries as kq
from datasource import schema
from datasource import weekly_queries as wq
from datasource.stages import stage_at, stage_now
from tests.conftest import FIXED_NOW
from tests.import_helpers import run, write_csv

TZ = ZoneInfo("Asia/Shanghai")
NOW = FIXED_NOW  # Thursday 2026-11-26 12:00 in Shanghai, after every time below
MID = dt.datetime(2026, 11, 24, 12, 0, tzinfo=TZ)  # between A-LATER's filing and its dispatch

MAPPING = """\
kind: cases
timezone: Asia/Shanghai
columns:
  external_id: id
  category_code: category
  district_code: district
  reported_at: reported
  filed_at: filed
  dispatched_at: dispatched
  handled_at: handled
  closed_at: closed
  deadline_at: deadline
  status: status
  voided: void
values:
  status:
    New: reported
    Open: filed
    In Progress: dispatched
    Rework: rework
    On Hold: parked
    Closed: closed
defaults:
  source: hotline
"""
HEADER = ["id", "category", "district", "reported", "filed", "dispatched", "handled", "closed", "deadline",
          "status", "void"]
PAST = "2026-11-25 09:00"  # a deadline already passed at NOW
# id, filed, dispatched, handled, closed, deadline, status, void -> the stage now, and at MID
CASES = [
    # a status without its own time: "In Progress" with no dispatch time is dispatched
    ("A-STATUS-NO-TIME", "2026-11-23 08:10", "", "", "", PAST, "In Progress", "", "dispatched", "dispatched"),
    # times beyond the status: the status is the city's word for where the case is
    ("A-TIMES-BEYOND", "2026-11-23 08:10", "2026-11-23 09:00", "2026-11-23 10:00", "", PAST, "Open", "",
     "filed", "filed"),
    # a parking status has no time column at all: parked, so never overdue
    ("A-ON-HOLD", "2026-11-23 08:10", "2026-11-23 09:00", "", "", PAST, "On Hold", "", "parked", "parked"),
    ("A-REWORK", "2026-11-23 08:10", "2026-11-23 09:00", "2026-11-23 11:00", "", PAST, "Rework", "",
     "rework", "rework"),
    # a city without a filing step: open as soon as its status says so
    ("A-NO-FILING", "", "", "", "", PAST, "In Progress", "", "dispatched", "dispatched"),
    # closed by its status, without a closing time: not open
    ("A-CLOSED-NO-TIME", "2026-11-23 08:10", "", "", "", PAST, "Closed", "", "closed", "closed"),
    # a closing time closes the case whatever its status says
    ("A-TIME-CLOSED", "2026-11-23 08:10", "", "", "2026-11-23 12:00", PAST, "In Progress", "", "closed", "closed"),
    # voided: never open
    ("A-VOIDED", "2026-11-23 08:10", "", "", "", PAST, "In Progress", "是", "voided", "voided"),
    ("A-NEW", "", "", "", "", "", "New", "", "reported", "reported"),
    # a running case still inside its time limit
    ("A-IN-TIME", "2026-11-23 08:10", "2026-11-23 09:00", "", "", "2026-11-30 09:00", "In Progress", "",
     "dispatched", "dispatched"),
    # dispatched after MID: at MID the weekly report shows where it was then
    ("A-LATER", "2026-11-23 08:10", "2026-11-25 08:00", "", "", PAST, "In Progress", "", "dispatched", "filed"),
]
OPEN = set(schema.OPEN_STATUSES)
RUNNING = set(schema.RUNNING_STATUSES)


@pytest.fixture
def crafted(reference_engine, tmp_path):
    mapping = tmp_path / "city.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    rows = [[cid, "S01-01", "410105", "2026-11-23 08:00", filed, dispatched, handled, closed, deadline, status, void]
            for cid, filed, dispatched, handled, closed, deadline, status, void, _, _ in CASES]
    summary = run(reference_engine, write_csv(tmp_path / "cases.csv", HEADER, rows), mapping=mapping)
    assert summary.rejected == 0, summary
    return reference_engine


def _stages(engine, expr) -> dict[str, str]:
    C = schema.Case
    with engine.connect() as conn:
        return dict(conn.execute(select(C.external_id, expr)).all())


def test_each_case_has_one_stage_now_and_at_any_later_instant(crafted):
    now = {cid: want for cid, *_, want, _ in CASES}
    then = {cid: want for cid, *_, want in CASES}
    assert _stages(crafted, stage_now()) == now
    assert _stages(crafted, stage_at(NOW)) == now  # the report of a week just ended = the wall
    assert _stages(crafted, stage_at(NOW, events=False)) == now  # browsing's reading
    assert _stages(crafted, stage_at(MID)) == then


def test_the_wall_browsing_and_the_weekly_report_count_the_same_open_cases(crafted):
    want_open = {}
    for cid, *_, stage, _ in CASES:
        if stage in OPEN:
            want_open[stage] = want_open.get(stage, 0) + 1
    districts = [d["code"] for d in kq.districts(crafted)]
    full = compute_cases(crafted, NOW, TZ)
    live = IncrementalCases()(crafted, NOW, TZ)
    weekly = open_block(wq.open_at(crafted, NOW), districts, {})
    for got in (full["open"], live["open"], weekly):
        assert {s: n for s, n in got["by_stage"].items() if n} == want_open
    window = (NOW - dt.timedelta(days=7), NOW)
    assert bq.count_cases(crafted, bq.CaseFilter(), "open", window) == sum(want_open.values())
    # at MID A-LATER was still awaiting dispatch: the history, not the stage now
    at_mid = open_block(wq.open_at(crafted, MID), districts, {})["by_stage"]
    assert at_mid["filed"] == want_open.get("filed", 0) + 1 and at_mid["dispatched"] == want_open["dispatched"] - 1


def test_overdue_agrees_and_leaves_parked_cases_out(crafted):
    running = {cid for cid, _f, _d, _h, _c, deadline, *_, stage, _ in CASES if stage in RUNNING and deadline == PAST}
    assert "A-ON-HOLD" not in running and "A-NO-FILING" in running
    districts = [d["code"] for d in kq.districts(crafted)]
    edges = list(OVERDUE_EDGES_H)
    full = compute_cases(crafted, NOW, TZ)["overdue"]
    live = IncrementalCases()(crafted, NOW, TZ)["overdue"]
    weekly = overdue_block(wq.overdue_at(crafted, NOW, edges), districts)
    assert full["total"] == live["total"] == weekly["total"] == len(running)
    listed = wq.top_overdue_at(crafted, NOW, 50)
    assert {r["external_id"]: r["stage"] for r in listed} == {cid: s for cid, *_, s, _ in CASES if cid in running}
    window = (NOW - dt.timedelta(days=7), NOW)
    assert bq.count_cases(crafted, bq.CaseFilter(), "overdue", window) == len(running)
