"""Importing parking facilities, occupancy readings, enterprises, visits and problems,
on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from datasource.importer.rejects import read_rejects
from datasource.schema import (Enterprise, EnterpriseProblem, EnterpriseVisit, OccupancyReading,
                               ParkingFacility)
from tests.import_helpers import T0, run, utc, write_csv






def rejects_of(path: Path) -> list[tuple[str, str, str]]:
    return [(r["line"], r["field"], r["reason"]) for r in read_rejects(path.with_name(path.stem + ".rej.csv"))]


def rows(engine, model, key="external_id") -> dict:
    with engine.connect() as conn:
        return {getattr(r, key): dict(r._mapping) for r in conn.execute(select(model.__table__))}


def load_facilities(engine, tmp_path):
    path = write_csv(tmp_path / "facilities.csv",
                     ["编号", "名称", "所属区", "类型", "泊位数", "项目", "示范点", "启用日期", "经度", "纬度"], [
                         ["P-001", "花园路停车场", "金水区", "路外", "1,200", "盘活", "是", "2026/3/1", "113.74", "34.81"],
                         ["P-002", "农业路路内泊位", "", "路内", "40", "", "否", "", "113.743791", "34.810784"],
                         ["P-003", "坏的", "金水区", "地下", "10", "", "", "", "", ""],
                         ["P-004", "负数", "金水区", "路外", "-5", "", "", "", "", ""],
                     ])
    mapping = tmp_path / "facilities.yaml"
    mapping.write_text("columns: {external_id: 编号, name: 名称, district_code: 所属区, kind: 类型, "
                       "capacity: 泊位数, programme: 项目, demo_site: 示范点, since: 启用日期, "
                       "lon: 经度, lat: 纬度}\n", encoding="utf-8")
    return path, run(engine, path, "facilities", mapping=mapping, now=T0)


def test_facilities(reference_engine, tmp_path):
    path, result = load_facilities(reference_engine, tmp_path)
    assert (result.inserted, result.rejected) == (2, 2)
    got = rows(reference_engine, ParkingFacility)
    p1, p2 = got["P-001"], got["P-002"]
    assert (p1["kind"], p1["capacity"], p1["programme"], p1["demo_site"], p1["since"]) == \
        ("off_street", 1200, "revitalised", True, dt.date(2026, 3, 1))
    assert (p2["kind"], p2["district_code"], p2["demo_site"], p2["programme"]) == ("on_street", "410105", False, None)
    assert rejects_of(path) == [("4", "kind", "invalid_value"), ("5", "capacity", "invalid_number")]


def test_occupancy(reference_engine, tmp_path):
    load_facilities(reference_engine, tmp_path)
    path = write_csv(tmp_path / "occupancy.csv", ["facility_id", "observed_at", "occupied"], [
        ["P-001", "2026-11-26 09:00", "800"],
        ["P-001", "2026-11-26 09:30", "1,250"],    # above capacity: kept as read (clamped in the KPIs)
        ["P-002", "2026-11-26 09:00", "-3"],       # negative: kept, then superseded by line 6
        ["P-999", "2026-11-26 09:00", "1"],        # unknown facility
        ["P-002", "2026-11-26 09:00", "12"],
        ["P-002", "half past nine", "12"],
        ["P-002", "2026-11-26 09:30", "many"],
        ["P-002", "1795659000", "15"],             # epoch seconds: 2026-11-26 10:10 Shanghai
    ])
    result = run(reference_engine, path, "occupancy", now=T0)
    assert (result.inserted, result.rejected, result.files[0].counts["superseded"]) == (4, 3, 1)
    assert rejects_of(path) == [("5", "facility", "unknown_facility"), ("7", "observed_at", "unparseable_time"),
                                ("8", "occupied", "invalid_number")]
    with reference_engine.connect() as conn:
        readings = conn.execute(select(ParkingFacility.external_id, OccupancyReading.observed_at,
                                       OccupancyReading.occupied, OccupancyReading.received_at)
                                .join(ParkingFacility).order_by(ParkingFacility.external_id,
                                                                OccupancyReading.observed_at)).all()
    assert [tuple(r) for r in readings] == [
        ("P-001", utc("2026-11-26T09:00:00"), 800, T0), ("P-001", utc("2026-11-26T09:30:00"), 1250, T0),
        ("P-002", utc("2026-11-26T09:00:00"), 12, T0),
        ("P-002", utc("2026-11-26T10:10:00"), 15, T0)]
    # re-import: a no-op; a corrected count for the same moment replaces the old one
    again = run(reference_engine, path, "occupancy", now=T0 + dt.timedelta(hours=1))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    fix = write_csv(tmp_path / "fix.csv", ["facility", "observed_at", "occupied"],
                    [["P-002", "2026-11-26T01:00:00Z", "13"]])
    later = T0 + dt.timedelta(hours=2)
    fixed = run(reference_engine, fix, "occupancy", now=later)
    assert (fixed.inserted, fixed.updated) == (0, 1)
    with reference_engine.connect() as conn:
        r = conn.execute(select(OccupancyReading.occupied, OccupancyReading.received_at).join(ParkingFacility)
                         .where(OccupancyReading.observed_at == utc("2026-11-26T09:00:00"),
                                ParkingFacility.external_id == "P-002")).one()
    assert tuple(r) == (13, later)


def test_a_rejected_later_reading_does_not_undo_an_earlier_one(reference_engine, tmp_path):
    load_facilities(reference_engine, tmp_path)
    path = write_csv(tmp_path / "dup.csv", ["facility", "observed_at", "occupied"], [
        ["P-002", "2026-11-26 09:00", "30"],
        ["P-002", "2026-11-26 09:00", "31"],
        ["P-002", "2026-11-26 09:00", "many"],   # same moment, not a number: rejected
    ])
    result = run(reference_engine, path, "occupancy")
    assert (result.inserted, result.rejected, result.files[0].counts["superseded"]) == (1, 1, 1)
    with reference_engine.connect() as conn:
        assert conn.execute(select(OccupancyReading.occupied)).scalars().all() == [31]


VISIT_HEADER = ["走访编号", "企业编号", "企业名称", "所属区", "规上企业", "行业", "走访时间", "网格员", "走访情况"]
VISIT_MAPPING = """
kind: visits
columns:
  external_id: 走访编号
  enterprise: 企业编号
  enterprise_name: 企业名称
  district_code: 所属区
  above_scale: 规上企业
  industry: 行业
  visited_at: 走访时间
  liaison: 网格员
  note: 走访情况
"""


def test_visits_create_and_update_enterprises(reference_engine, tmp_path):
    mapping = tmp_path / "visits.yaml"
    mapping.write_text(VISIT_MAPPING, encoding="utf-8")
    first = write_csv(tmp_path / "visits1.csv", VISIT_HEADER, [
        ["V1", "91410100MA001", "郑州华盛科技有限公司", "高新区", "是", "IT", "2026-11-20 10:00", "张三", "了解用工需求"],
        ["V2", "91410100MA002", "河南瑞丰食品有限公司", "金水", "否", "food", "2026-11-21 15:30", "李四", ""],
        ["V3", "91410100MA001", "", "", "", "", "2026-11-22 09:00", "张三", "回访"],
        ["V4", "91410100MA999", "", "", "", "", "2026-11-22 09:00", "王五", ""],   # unknown enterprise
        ["V5", "91410100MA003", "新企业", "", "", "", "2026-11-22 09:00", "王五", ""],  # no district
    ], encoding="gbk")
    result = run(reference_engine, first, "visits", mapping=mapping, now=T0)
    assert (result.inserted, result.rejected) == (3, 2)
    assert result.files[0].counts["enterprises_inserted"] == 2
    assert rejects_of(first) == [("5", "enterprise", "unknown_enterprise"),
                                 ("6", "enterprise_district", "missing_value")]
    ents = rows(reference_engine, Enterprise)
    assert {k: (v["name"], v["district_code"], v["above_scale"], v["industry"]) for k, v in ents.items()} == {
        "91410100MA001": ("郑州华盛科技有限公司", "410172", True, "IT"),
        "91410100MA002": ("河南瑞丰食品有限公司", "410105", False, "food")}
    visits = rows(reference_engine, EnterpriseVisit)
    assert visits["V3"]["enterprise_id"] == ents["91410100MA001"]["id"]
    assert visits["V3"]["district_code"] == "410172"  # the enterprise's district
    assert visits["V1"]["visited_at"] == utc("2026-11-20T10:00:00") and visits["V1"]["liaison"] == "张三"

    # a later export: same visits, one enterprise became above-scale, one more visit
    second = write_csv(tmp_path / "visits2.csv", VISIT_HEADER, [
        ["V1", "91410100MA001", "郑州华盛科技有限公司", "高新区", "是", "IT", "2026-11-20 10:00", "张三", "了解用工需求"],
        ["V2", "91410100MA002", "河南瑞丰食品有限公司", "金水", "是", "food", "2026-11-21 15:30", "李四", ""],
        ["V6", "91410100MA002", "", "", "", "", "2026-11-25 15:30", "李四", "协调融资"],
    ])
    again = run(reference_engine, second, "visits", mapping=mapping, now=T0 + dt.timedelta(days=1))
    assert (again.inserted, again.updated, again.unchanged) == (1, 0, 2)
    assert again.files[0].counts["enterprises_updated"] == 1
    ents2 = rows(reference_engine, Enterprise)
    assert ents2["91410100MA002"]["above_scale"] is True
    assert ents2["91410100MA002"]["updated_at"] == T0 + dt.timedelta(days=1)
    assert ents2["91410100MA001"]["updated_at"] == T0


def test_a_superseded_visit_still_creates_its_enterprise(reference_engine, tmp_path):
    path = write_csv(tmp_path / "visits.csv", ["id", "enterprise", "enterprise_name", "district", "visited_at"], [
        ["V1", "E1", "郑州新源有限公司", "金水", "2026-11-20 10:00"],
        ["V1", "E1", "", "", "2026-11-20 11:00"],   # a correction without the enterprise columns
    ])
    result = run(reference_engine, path, "visits")
    assert (result.inserted, result.rejected, result.files[0].counts["superseded"]) == (1, 0, 1)
    assert rows(reference_engine, Enterprise)["E1"]["name"] == "郑州新源有限公司"
    v1 = rows(reference_engine, EnterpriseVisit)["V1"]
    assert (v1["visited_at"], v1["district_code"]) == (utc("2026-11-20T11:00:00"), "410105")


def test_enterprises_and_problems(reference_engine, tmp_path):
    ents = write_csv(tmp_path / "enterprises.csv", ["credit_code", "name", "district", "above_scale", "industry"], [
        ["E1", "郑州智远物流有限公司", "Guancheng", "Y", "logistics"],
        ["E2", "中原鼎信商贸有限公司", "410102", "N", ""],
        ["E3", "", "410102", "N", ""],
    ])
    result = run(reference_engine, ents, "enterprises", now=T0)
    assert (result.inserted, result.rejected) == (2, 1)
    assert rejects_of(ents) == [("4", "name", "missing_value")]
    visits = write_csv(tmp_path / "visits.csv", ["id", "enterprise", "visited_at"],
                       [["V1", "E1", "2026-11-20 10:00"]])
    run(reference_engine, visits, "visits")
    problems = write_csv(tmp_path / "problems.csv",
                         ["id", "enterprise", "visit", "type", "summary", "raised_at", "resolved_at"], [
                             ["Q1", "E1", "V1", "用工", "招工难", "2026-11-20 10:00", ""],
                             ["Q2", "E2", "", "税务", "", "2026-11-20 10:00", "2026-11-22 10:00"],
                             ["Q3", "E9", "", "tax", "", "2026-11-20 10:00", ""],
                             ["Q4", "E1", "V9", "tax", "", "2026-11-20 10:00", ""],
                             ["Q5", "E1", "", "tax", "", "2026-11-20 10:00", "2026-11-19 10:00"],
                         ])
    result = run(reference_engine, problems, "problems")
    assert (result.inserted, result.rejected) == (2, 3)
    assert rejects_of(problems) == [("4", "enterprise", "unknown_enterprise"), ("5", "visit", "unknown_visit"),
                                    ("6", "resolved_at", "time_before_reported")]
    got = rows(reference_engine, EnterpriseProblem)
    assert (got["Q1"]["problem_type"], got["Q1"]["status"], got["Q1"]["district_code"]) == ("hiring", "open", "410104")
    assert got["Q1"]["visit_id"] is not None
    assert (got["Q2"]["problem_type"], got["Q2"]["status"], got["Q2"]["visit_id"]) == ("tax", "resolved", None)
