"""The day_start section (open and overdue cases at 00:00 today) equals an independent
pandas count over the raw rows on both backends, with cases on the edges of midnight;
counted at `now` it is exactly the cases section's open set and overdue count; the
poller's copy is re-read on the first poll of each hour, not on every poll."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import insert

from dashboard.kpis.cases import compute_cases
from dashboard.kpis.daystart import DayStart, compute_day_start, day_start, stock_block
from datasource import kpi_queries as q
from datasource import schema
from datasource.demo.seed import seed
from tests import kpi_oracle as oracle
from datasource.engine import make_engine
from tests.conftest import BACKENDS, BACKLOG, FIXED_NOW, new_store_url

TZ = ZoneInfo("Asia/Shanghai")
SH = dt.timezone(dt.timedelta(hours=8))
MIDNIGHT = dt.datetime(2026, 11, 26, 0, 0, tzinfo=SH)  # 00:00 of FIXED_NOW's day in Shanghai
OPEN = {"filed", "dispatched", "handled", "verified", "rework", "parked"}


def _case(i: int, **kw) -> dict:
    base = dict(external_id=f"MID-{i}", source="patrol", category_code="B02-01", district_code="410102",
                status="dispatched", reported_at=MIDNIGHT - dt.timedelta(hours=5),
                filed_at=MIDNIGHT - dt.timedelta(hours=5), deadline_at=MIDNIGHT - dt.timedelta(hours=1),
                voided=False, updated_at=FIXED_NOW)
    return {**base, **kw}


def _edge_cases() -> list[dict]:
    """Cases whose state at 00:00 hangs on an instant's side of midnight."""
    just_before, just_after = MIDNIGHT - dt.timedelta(microseconds=1), MIDNIGHT
    return [
        _case(0),                                                       # open and overdue at 00:00, still open
        _case(1, filed_at=just_after, reported_at=just_after),          # filed at 00:00: not open then
        _case(2, filed_at=just_before, reported_at=just_before,
              deadline_at=MIDNIGHT + dt.timedelta(hours=4)),            # open at 00:00, not overdue
        _case(3, status="closed", closed_at=just_after),                # closed at 00:00: still open then
        _case(4, status="closed", closed_at=just_before),               # closed before: not open
        _case(5, status="parked"),                                      # parked: open, never overdue
        _case(6, status="voided", voided=True),                         # voided: never counted
        _case(7, deadline_at=just_after),                               # due at 00:00: not yet overdue
        _case(8, deadline_at=just_before, district_code="410190", category_code="S05-01"),
    ]


@pytest.fixture(scope="module", params=BACKENDS)
def city(request, tmp_path_factory):
    """One seeded store per backend for the module: the tests compare with the rows as
    they are, so the one that adds a case does not upset the others, in any order."""
    engine = make_engine(new_store_url(request.param, request, tmp_path_factory.mktemp("daystart")))
    seed(engine, profile=BACKLOG, seed=41, now=FIXED_NOW, total_cases=1500, occupancy_days=1)
    with engine.begin() as conn:
        conn.execute(insert(schema.Case), _edge_cases())
    yield engine
    engine.dispose()


def _oracle(engine, at: dt.datetime) -> dict:
    """Open and overdue at `at`, from the definitions in docs/browsing.md, over raw rows."""
    cases = oracle.frame(engine, schema.Case)
    cats = oracle.frame(engine, schema.CaseCategory)
    parent = {r.code: (r.parent_code or r.code) for r in cats.itertuples()}
    t = pd.Timestamp(at)
    is_open = ((cases.filed_at < t) & ~cases.voided.astype(bool)
               & (cases.status.isin(OPEN) | (cases.closed_at >= t)))
    is_overdue = is_open & (cases.deadline_at < t) & (cases.status != "parked")
    opened = cases[is_open]
    return {"open": int(is_open.sum()), "overdue": int(is_overdue.sum()),
            "open_by_district": opened.groupby("district_code").size().to_dict(),
            "overdue_by_district": cases[is_overdue].groupby("district_code").size().to_dict(),
            "by_category": opened.category_code.map(parent).value_counts().to_dict()}


def test_the_stock_at_midnight_equals_the_raw_rows(city):
    got = compute_day_start(city, FIXED_NOW, TZ)
    want = _oracle(city, MIDNIGHT)
    assert got["at"] == MIDNIGHT.astimezone(dt.timezone.utc).isoformat()
    assert (got["open"], got["overdue"]) == (want["open"], want["overdue"])
    assert want["open"] > 0 and want["overdue"] > 0
    for code, block in got["by_district"].items():
        assert block["open"] == want["open_by_district"].get(code, 0), code
        assert block["overdue"] == want["overdue_by_district"].get(code, 0), code
        assert sum(block["by_category"].values()) == block["open"]
    assert {k: v for k, v in got["by_category"].items() if v} == want["by_category"]
    # every district is listed, a zero is a value
    assert set(got["by_district"]) == {d["code"] for d in q.districts(city)}


def test_counted_now_it_is_the_open_set_and_the_overdue_count(city):
    """The browsing pages' "open / overdue at a period's end" and the snapshot's stocks are
    one definition: at t = now they agree district by district."""
    cases = compute_cases(city, FIXED_NOW, TZ)
    districts = [d["code"] for d in q.districts(city)]
    now = stock_block(q.stock_at(city, FIXED_NOW), districts, {}, FIXED_NOW)
    assert now["open"] == cases["open"]["total"]
    assert now["overdue"] == cases["overdue"]["total"]
    for code in districts:
        assert now["by_district"][code]["open"] == cases["open"]["by_district"][code]["total"]
        assert now["by_district"][code]["overdue"] == cases["overdue"]["by_district"][code]


def test_the_poller_reads_it_again_each_hour_not_each_poll(city):
    section = DayStart()
    first = section(city, FIXED_NOW, TZ)
    # a late import: a case filed yesterday, still open
    with city.begin() as conn:
        conn.execute(insert(schema.Case), [_case(99, district_code="410105", external_id="LATE-1")])
    assert compute_day_start(city, FIXED_NOW, TZ)["by_district"]["410105"]["open"] == \
        first["by_district"]["410105"]["open"] + 1
    same_hour = section(city, FIXED_NOW + dt.timedelta(minutes=59), TZ)
    assert same_hour is first  # kept: no query within the hour
    next_hour = section(city, FIXED_NOW + dt.timedelta(hours=1), TZ)
    assert next_hour["by_district"]["410105"]["open"] == first["by_district"]["410105"]["open"] + 1
    assert next_hour["at"] == first["at"]
    tomorrow = section(city, FIXED_NOW + dt.timedelta(days=1), TZ)
    assert tomorrow["at"] == day_start(FIXED_NOW + dt.timedelta(days=1), TZ).isoformat()
    section.reset()
    assert section(city, FIXED_NOW + dt.timedelta(minutes=59), TZ) == next_hour
