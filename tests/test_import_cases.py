"""Importing cases into a real store, on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, insert, select

from datasource.importer import ImportError_, run_import
from datasource.importer.lookups import CategoryInfo, Reference
from datasource.importer.rejects import read_rejects
from datasource.schema import Case, CaseEvent, Street
from tests.import_helpers import T0, run, utc, write_csv

JINSHUI_POINT = (113.743791, 34.810784)  # inside 金水区's polygon





def cases(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.external_id: dict(r._mapping) for r in conn.execute(select(Case))}


def events(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Case.external_id, CaseEvent.from_status, CaseEvent.to_status, CaseEvent.at,
                   CaseEvent.actor).join(Case, Case.id == CaseEvent.case_id)
            .order_by(Case.external_id, CaseEvent.at, CaseEvent.id))]


def assert_accounted(result):
    for f in result.files:
        c = f.counts
        assert f.read == c["inserted"] + c["updated"] + c["unchanged"] + c["rejected"] + c["superseded"]


HEADER = ["external_id", "source", "category", "district", "street", "lat", "lon", "address",
          "status", "reported_at", "filed_at", "dispatched_at", "closed_at", "deadline_at"]


def test_csv_cases(reference_engine, tmp_path):
    path = write_csv(tmp_path / "cases.csv", HEADER, [
        ["C1", "app", "S05-01", "410105", "花园路街道", "34.8", "113.7", "花园路1号", "",
         "2026-11-26 09:05", "2026-11-26 09:20", "", "", ""],
        ["C2", "12345热线", "Illegal parking", "二七", "", "", "", "", "已结案",
         "2026/11/26 8:00", "2026/11/26 8:10", "2026/11/26 8:30", "2026/11/26 9:00", "2026-11-27 08:00"],
        ["C3", "patrol", "暴露垃圾", "Zhongyuan", "", "", "", "", "",
         "20261126070000", "", "", "", ""],
    ])
    result = run(reference_engine, path, now=T0)
    assert (result.inserted, result.rejected) == (3, 0)
    assert result.summary_lines()[-1] == "no rows rejected"
    assert_accounted(result)
    got = cases(reference_engine)
    c1, c2, c3 = got["C1"], got["C2"], got["C3"]
    assert (c1["district_code"], c1["category_code"], c1["source"], c1["status"]) == \
        ("410105", "S05-01", "app", "filed")
    with reference_engine.connect() as conn:
        assert conn.execute(select(Street.name_zh).where(Street.id == c1["street_id"])).scalar_one() == "花园路街道"
        # stored exactly as SQLAlchemy writes times, so that queries compare them right
        assert conn.execute(select(Case.external_id).where(
            Case.reported_at == utc("2026-11-26T09:05:00"))).scalar_one() == "C1"
        assert conn.execute(select(func.count()).select_from(Case).where(
            Case.reported_at > utc("2026-11-26T07:00:00"))).scalar_one() == 2
    assert (c1["lat"], c1["lon"], c1["address"]) == (34.8, 113.7, "花园路1号")
    assert c1["reported_at"] == utc("2026-11-26T09:05:00")
    # deadline = filed + 4 h (占道经营), department from the category
    assert c1["deadline_at"] == utc("2026-11-26T13:20:00") and c1["department"] == "城管执法"
    assert c1["updated_at"] == T0 and (c1["rework_count"], c1["extended"], c1["voided"]) == (0, False, False)
    assert (c2["source"], c2["category_code"], c2["district_code"], c2["status"]) == \
        ("hotline", "S05-03", "410103", "closed")
    assert c2["deadline_at"] == utc("2026-11-27T08:00:00")  # given, not derived
    assert (c3["status"], c3["district_code"], c3["category_code"]) == ("reported", "410102", "S01-01")
    assert c3["deadline_at"] == utc("2026-11-26T09:00:00")  # no filing: reported + 2 h
    assert events(reference_engine) == [
        ("C1", None, "reported", utc("2026-11-26T09:05:00"), "import"),
        ("C1", "reported", "filed", utc("2026-11-26T09:20:00"), "import"),
        ("C2", None, "reported", utc("2026-11-26T08:00:00"), "import"),
        ("C2", "reported", "filed", utc("2026-11-26T08:10:00"), "import"),
        ("C2", "filed", "dispatched", utc("2026-11-26T08:30:00"), "import"),
        ("C2", "dispatched", "closed", utc("2026-11-26T09:00:00"), "import"),
        ("C3", None, "reported", utc("2026-11-26T07:00:00"), "import"),
    ]
    assert not path.with_name("cases.rej.csv").exists()


def test_district_from_coordinates(reference_engine, tmp_path):
    lon, lat = JINSHUI_POINT
    path = write_csv(tmp_path / "cases.csv", ["id", "source", "category", "lat", "lon", "reported_at"], [
        ["P1", "app", "S05-01", lat, lon, "2026-11-26 09:05"],
        ["P2", "app", "S05-01", "0", "0", "2026-11-26 09:05"],   # in no district
        ["P3", "app", "S05-01", "", "", "2026-11-26 09:05"],     # nothing to go by
    ])
    result = run(reference_engine, path)
    assert cases(reference_engine)["P1"]["district_code"] == "410105"
    rejects = read_rejects(path.with_name("cases.rej.csv"))
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        ("3", "district_code", "unknown_district"), ("4", "district_code", "missing_value")]
    assert result.rejected == 2


def test_json_lines(reference_engine, tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join([json.dumps(o, ensure_ascii=False) for o in [
        {"external_id": "J1", "source": "sensor", "category_code": "S04-01", "district": "惠济区",
         "reported_at": 1795655100, "handled_at": "2026-11-26T10:00:00+08:00", "rework_count": 1,
         "extended": True},
        {"external_id": "J2", "source": "app", "category_code": "S04-01", "district": "410108"},
        {"external_id": "J3", "source": "app", "category_code": "S04-01", "district": "410108",
         "reported_at": "2026-11-26 09:00", "voided": "是"},
    ]]), encoding="utf-8")
    result = run(reference_engine, path)
    got = cases(reference_engine)
    j1 = got["J1"]
    assert (j1["status"], j1["rework_count"], j1["extended"]) == ("handled", 1, True)
    assert j1["reported_at"] == utc("2026-11-26T09:05:00")
    assert j1["deadline_at"] == utc("2026-11-26T13:05:00")  # not filed: reported + 2 x 2 h (extended)
    assert (got["J3"]["status"], got["J3"]["voided"]) == ("voided", True)
    rejects = read_rejects(path.with_name("cases.rej.csv"))
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [("2", "reported_at", "missing_value")]
    assert json.loads(rejects[0]["raw"])["external_id"] == "J2"
    assert result.rejected == 1


def test_json_escapes_that_utf8_cannot_hold(reference_engine, tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "E1", "source": "app", "category": "S05-01", "district": "金水", '
                    '"reported_at": "2026-11-26 09:05", "summary": "bad \\ud800 half\\u0000"}\n'
                    '{"id": "E2\\udfff", "source": "app", "category": "S05-01", "district": "Gotham", '
                    '"reported_at": "2026-11-26 09:05"}\n', encoding="utf-8")
    result = run(reference_engine, path)
    assert (result.inserted, result.rejected) == (1, 1)
    assert cases(reference_engine)["E1"]["summary"] == "bad ? half"
    assert read_rejects(path.with_name("cases.rej.csv"))[0]["reason"] == "unknown_district"


def test_the_rejects_file_never_overwrites_an_input(reference_engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", ["id", "source", "category", "district", "reported_at"],
                     [["X1", "app", "S05-01", "Gotham", "2026-11-26 09:05"]])
    with pytest.raises(ImportError_, match="would overwrite an input file"):
        run(reference_engine, path, rejects=path)
    assert path.read_text(encoding="utf-8").startswith("id,source")


OPEN311 = [
    {"service_request_id": "638344", "status": "closed", "status_notes": "Duplicate request.",
     "service_name": "Illegal parking", "service_code": "ZZ-PARK", "description": "占用消防通道",
     "agency_responsible": "交警支队", "requested_datetime": "2026-11-20T08:10:00+08:00",
     "updated_datetime": "2026-11-20T11:00:00+08:00", "expected_datetime": "2026-11-20T12:00:00+08:00",
     "address": "花园路与农业路交叉口", "lat": JINSHUI_POINT[1], "long": JINSHUI_POINT[0],
     "media_url": "http://example.org/1.jpg"},
    {"service_request_id": "638345", "status": "open", "service_code": "S04-01",
     "service_name": "Waterlogging", "requested_datetime": "2026-11-26T09:00:00+08:00",
     "updated_datetime": "2026-11-26T09:30:00+08:00", "address": "", "lat": 34.78, "long": 113.5,
     "district": "中原区"},
]


def test_open311(reference_engine, tmp_path):
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(OPEN311, ensure_ascii=False, indent=2), encoding="utf-8")
    result = run(reference_engine, path)
    assert (result.inserted, result.rejected, result.files[0].format) == (2, 0, "open311")
    got = cases(reference_engine)
    closed, open_ = got["638344"], got["638345"]
    # service_code is the city's own; the name resolves the category
    # a request does not say its channel: the default source (the preset gives none)
    assert (closed["category_code"], closed["district_code"], closed["source"]) == ("S05-03", "410105", "other")
    assert (closed["status"], closed["closed_at"]) == ("closed", utc("2026-11-20T11:00:00"))
    assert (closed["deadline_at"], closed["department"]) == (utc("2026-11-20T12:00:00"), "交警支队")
    assert closed["summary"] == "占用消防通道" and closed["address"] == "花园路与农业路交叉口"
    assert (open_["status"], open_["closed_at"], open_["category_code"]) == ("reported", None, "S04-01")
    assert open_["district_code"] == "410102"
    # --format open311 with a mapping laid over the preset
    mapping = tmp_path / "o311.yaml"
    mapping.write_text("values:\n  status: {open: filed}\ndefaults: {source: hotline}\n", encoding="utf-8")
    other = tmp_path / "requests.txt"
    other.write_text(json.dumps([dict(OPEN311[1], service_request_id="9")]), encoding="utf-8")
    run(reference_engine, other, mapping=mapping, fmt="open311")
    assert (cases(reference_engine)["9"]["status"], cases(reference_engine)["9"]["source"]) == ("filed", "hotline")


CHINESE_HEADER = ["案件编号", "上报时间", "所属区", "问题类型", "案件状态", "问题来源", "结案时间", "详细地址", "备注"]
CHINESE_MAPPING = """
kind: cases
columns:
  external_id: 案件编号
  reported_at: 上报时间
  district_code: 所属区
  category_code: 问题类型
  status: 案件状态
  source: 问题来源
  closed_at: 结案时间
  address: 详细地址
values:
  status: {已结案: closed, 处置中: dispatched, 待受理: reported}
  category_code: {乱摆摊点: S05-01, 机动车乱停: S05-03}
  source: {数字城管APP: app, 市长热线: hotline}
  district_code: {郑东: 郑东新区}
defaults:
  source: patrol
"""


def test_chinese_gbk_export_with_mapping(reference_engine, tmp_path):
    path = write_csv(tmp_path / "导出.csv", CHINESE_HEADER, [
        ["ZZ2026-0001", "2026/11/26 9:05", "金水区", "乱摆摊点", "处置中", "数字城管APP", "", "花园路", "x"],
        ["ZZ2026-0002", "2026/11/25 18:30", "郑东", "机动车乱停", "已结案", "市长热线", "2026/11/25 19:10", "", ""],
        ["ZZ2026-0003", "2026/11/26 7:00", "高新区", "道路积水", "待受理", "", "", "", ""],
        ["ZZ2026-0004", "2026/11/26 7:00", "上街区", "道路积水", "待受理", "", "", "", ""],
    ], encoding="gbk")
    mapping = tmp_path / "city.yaml"
    mapping.write_text(CHINESE_MAPPING, encoding="utf-8")
    result = run(reference_engine, path, mapping=mapping)
    assert result.files[0].encoding == "gb18030"
    got = cases(reference_engine)
    assert {k: (v["status"], v["district_code"], v["category_code"], v["source"]) for k, v in got.items()} == {
        "ZZ2026-0001": ("dispatched", "410105", "S05-01", "app"),
        "ZZ2026-0002": ("closed", "410190", "S05-03", "hotline"),
        "ZZ2026-0003": ("reported", "410172", "S04-01", "patrol"),
    }
    assert got["ZZ2026-0002"]["closed_at"] == utc("2026-11-25T19:10:00")
    rejects = read_rejects(path.with_name("导出.rej.csv"))
    assert [(r["line"], r["reason"], r["raw"]) for r in rejects] == [
        ("5", "unknown_district", "ZZ2026-0004,2026/11/26 7:00,上街区,道路积水,待受理,,,,")]


def test_reimport_changes_nothing(reference_engine, tmp_path):
    path = write_csv(tmp_path / "cases.csv", HEADER, [
        ["R1", "app", "S05-01", "金水", "", "34.8", "113.7", "地址", "", "2026-11-26 09:05",
         "2026-11-26 09:20", "2026-11-26 09:30", "", ""],
        ["R2", "app", "S05-01", "金水", "", "", "", "", "", "2026-11-26 09:05", "", "", "", ""],
    ])
    first = run(reference_engine, path, now=T0)
    before, before_events = cases(reference_engine), events(reference_engine)
    again = run(reference_engine, path, now=T0 + dt.timedelta(hours=1))
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 0)
    assert first.files[0].counts["events"] == 4 and again.files[0].counts["events"] == 0
    assert cases(reference_engine) == before  # updated_at included
    assert events(reference_engine) == before_events


def test_later_export_updates(reference_engine, tmp_path):
    first = write_csv(tmp_path / "day1.csv", HEADER, [
        ["U1", "app", "S05-01", "金水", "", "", "", "", "", "2026-11-26 09:05", "2026-11-26 09:20", "", "", ""],
        ["U2", "app", "S05-01", "金水", "", "", "", "", "", "2026-11-26 09:05", "", "", "", ""],
        ["U3", "app", "S05-01", "金水", "", "", "", "", "", "2026-11-26 09:05", "", "", "", ""],
    ])
    run(reference_engine, first, now=T0)
    later = T0 + dt.timedelta(hours=6)
    second = write_csv(tmp_path / "day2.csv", HEADER, [
        ["U1", "app", "S05-01", "金水", "", "", "", "", "", "2026-11-26 09:05", "2026-11-26 09:20",
         "2026-11-26 09:40", "2026-11-26 11:00", ""],
        ["U2", "app", "S05-02", "金水", "", "", "", "", "", "2026-11-26 09:05", "", "", "", ""],
        ["U3", "app", "S05-01", "金水", "", "", "", "", "", "2026-11-26 09:05", "", "", "", ""],
        ["U4", "app", "S05-01", "金水", "", "", "", "", "", "2026-11-26 10:05", "", "", "", ""],
    ])
    result = run(reference_engine, second, now=later)
    assert (result.inserted, result.updated, result.unchanged) == (1, 2, 1)
    got = cases(reference_engine)
    assert (got["U1"]["status"], got["U1"]["updated_at"]) == ("closed", later)
    assert (got["U2"]["category_code"], got["U2"]["updated_at"]) == ("S05-02", later)
    assert got["U3"]["updated_at"] == T0 and got["U4"]["updated_at"] == later
    u1 = [e[1:3] for e in events(reference_engine) if e[0] == "U1"]
    assert u1 == [(None, "reported"), ("reported", "filed"), ("filed", "dispatched"), ("dispatched", "closed")]
    assert [e for e in events(reference_engine) if e[0] == "U2"] == [
        ("U2", None, "reported", utc("2026-11-26T09:05:00"), "import")]


def test_columns_the_file_lacks_are_left_as_stored(reference_engine, tmp_path):
    run(reference_engine, write_csv(tmp_path / "a.csv", ["id", "source", "category", "district", "address",
                                                          "reported_at"],
                                     [["K1", "app", "S05-01", "金水", "花园路1号", "2026-11-26 09:05"]]))
    result = run(reference_engine, write_csv(tmp_path / "b.csv", ["id", "source", "category", "district",
                                                                   "reported_at", "closed_at"],
                                              [["K1", "app", "S05-01", "金水", "2026-11-26 09:05",
                                                "2026-11-26 10:05"]]))
    assert result.updated == 1
    k1 = cases(reference_engine)["K1"]
    assert (k1["address"], k1["status"]) == ("花园路1号", "closed")


BAD_HEADER = ["external_id", "source", "category", "district", "lat", "lon", "status",
              "reported_at", "filed_at", "closed_at", "rework_count", "extended", "grid"]


def test_every_reject_reason_with_its_line(reference_engine, tmp_path):
    ok = ["OK{}", "app", "S05-01", "金水", "", "", "", "2026-11-26 09:05", "", "", "", "", ""]

    def good(i):
        return [ok[0].format(i), *ok[1:]]

    def bad(**changes):
        row = dict(zip(BAD_HEADER, good(0)))
        row.update(changes)
        return [row[h] for h in BAD_HEADER]

    rows = [
        good(1),
        bad(external_id=""),                                                   # line 3
        bad(external_id="B2", reported_at="26th of November"),                 # 4
        bad(external_id="B3", district="Atlantis"),                            # 5
        bad(external_id="B4", category="UFO sighting"),                        # 6
        bad(external_id="B5", closed_at="2026-11-26 08:00"),                   # 7: closed before reported
        bad(external_id="B6", status="lost"),                                  # 8
        bad(external_id="B7", rework_count="twice"),                           # 9
        bad(external_id="B8", extended="perhaps"),                             # 10
        bad(external_id="B9", district="", lat="1", lon="1"),                  # 11: point in no district
        bad(external_id="B10", source=""),                                     # 12
        bad(external_id="B11", lat="95", lon="113"),                           # 13
        bad(external_id="B12", grid="NO-SUCH-GRID"),                           # 14
        bad(external_id="B13", category="市容环境"),                             # 15: two categories have it
        bad(external_id="X" * 65),                                             # 16: id too long
        good(2),
    ]
    path = write_csv(tmp_path / "cases.csv", BAD_HEADER, rows)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("B14,app,S05-01,金水,,,,2026-11-26 09:05,,,,,,surplus\n")   # 18: a cell too many
    result = run(reference_engine, path)
    got = [(r["file"], r["line"], r["field"], r["reason"]) for r in
           read_rejects(path.with_name("cases.rej.csv"))]
    f = str(path)
    assert got == [
        (f, "3", "external_id", "missing_id"),
        (f, "4", "reported_at", "unparseable_time"),
        (f, "5", "district_code", "unknown_district"),
        (f, "6", "category_code", "unknown_category"),
        (f, "7", "closed_at", "time_before_reported"),
        (f, "8", "status", "invalid_value"),
        (f, "9", "rework_count", "invalid_number"),
        (f, "10", "extended", "invalid_value"),
        (f, "11", "district_code", "unknown_district"),
        (f, "12", "source", "missing_value"),
        (f, "13", "lat", "invalid_number"),
        (f, "14", "grid", "unknown_grid"),
        (f, "15", "category_code", "unknown_category"),
        (f, "16", "external_id", "too_long"),
        (f, "18", "", "malformed_row"),
    ]
    assert set(cases(reference_engine)) == {"OK1", "OK2"}  # the valid rows are committed
    assert result.rejected == 15 and result.inserted == 2
    assert_accounted(result)
    summary = result.summary_lines()
    assert "unknown_district 2" in summary[-2] and "missing_id 1" in summary[-2]
    assert summary[-1] == f"rejected rows are in {path.with_name('cases.rej.csv')}"
    raw = read_rejects(path.with_name("cases.rej.csv"))[4]["raw"]
    assert raw == "B5,app,S05-01,金水,,,,2026-11-26 09:05,,2026-11-26 08:00,,,"
    # the file opens in Excel as UTF-8: it starts with a BOM
    assert path.with_name("cases.rej.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_duplicate_ids_the_last_row_wins(reference_engine, tmp_path):
    header = ["id", "source", "category", "district", "reported_at", "closed_at"]
    rows = [["D1", "app", "S05-01", "金水", "2026-11-26 09:05", ""],
            ["D2", "app", "S05-01", "金水", "2026-11-26 09:05", ""],
            ["D1", "app", "S05-01", "金水", "2026-11-26 09:05", "2026-11-26 10:00"],
            ["D2", "app", "S05-01", "金水", "bad time", ""],           # rejected: D2 stays as it was
            ["D3", "app", "S05-01", "金水", "2026-11-26 09:05", ""],
            ["D3", "hotline", "S05-01", "金水", "2026-11-26 09:05", ""]]
    outcomes = {}
    for batch_size in (100, 2):  # inside one batch, and across batches
        path = write_csv(tmp_path / f"dup{batch_size}.csv", header,
                         [[f"{r[0]}-{batch_size}", *r[1:]] for r in rows])
        result = run(reference_engine, path, batch_size=batch_size)
        got = cases(reference_engine)
        assert got[f"D1-{batch_size}"]["status"] == "closed"
        assert got[f"D2-{batch_size}"]["status"] == "reported"
        assert got[f"D3-{batch_size}"]["source"] == "hotline"
        assert result.rejected == 1
        assert_accounted(result)
        d1 = [e[1:3] for e in events(reference_engine) if e[0] == f"D1-{batch_size}"]
        assert d1 == [(None, "reported"), ("reported", "closed")]
        outcomes[batch_size] = (result.inserted, result.updated, result.files[0].counts["superseded"])
    # in one batch an earlier row is superseded; in an earlier batch it is written, then updated
    # (batches of 2: D1 spans two batches, D3's two rows share one)
    assert outcomes == {100: (3, 0, 2), 2: (3, 1, 1)}


def test_batches(reference_engine, tmp_path):
    rows = [[f"B{i:03d}", "app", "S05-01", "金水", "2026-11-26 09:05" if i % 7 else "never"] for i in range(50)]
    path = write_csv(tmp_path / "cases.csv", ["id", "source", "category", "district", "reported_at"], rows)
    result = run(reference_engine, path, batch_size=8)
    assert (result.read, result.inserted, result.rejected) == (50, 42, 8)
    lines = [int(r["line"]) for r in read_rejects(path.with_name("cases.rej.csv"))]
    assert lines == [i + 2 for i in range(50) if i % 7 == 0]


def test_missing_required_column_is_fatal_and_writes_nothing(reference_engine, tmp_path):
    good = write_csv(tmp_path / "good.csv", ["id", "source", "category", "district", "reported_at"],
                     [["F1", "app", "S05-01", "金水", "2026-11-26 09:05"]])
    # (a file without a source column is a city without sources: its cases get the default source)
    lacking = write_csv(tmp_path / "lacking.csv", ["id", "source", "category", "district", "opened"],
                        [["F2", "app", "S05-01", "金水", "2026-11-26 09:05"]])
    with pytest.raises(ImportError_, match=r"lacking\.csv: no column for required field\(s\) reported_at"):
        run_import(reference_engine, [good, lacking], "cases", None, None, None, "Asia/Shanghai")
    assert cases(reference_engine) == {}


def test_fatal_setup_errors(reference_engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", ["id", "source", "category", "district", "reported_at"],
                     [["F1", "app", "S05-01", "金水", "2026-11-26 09:05"]])
    mapping = tmp_path / "m.yaml"
    for text, key in [("defaults: {district_code: Gotham}", "`defaults.district_code`"),
                      ("values: {category_code: {x: NOPE}}", "`values.category_code.x`"),
                      ("kind: visits", "`kind`")]:
        mapping.write_text(text, encoding="utf-8")
        with pytest.raises(ImportError_, match=key):
            run(reference_engine, path, mapping=mapping)
    with pytest.raises(ImportError_, match="unknown kind 'parcels'"):
        run(reference_engine, path, kind="parcels")
    with pytest.raises(ImportError_, match="cannot hold occupancy"):
        run(reference_engine, path, kind="occupancy", fmt="open311")
    with pytest.raises(ImportError_, match="unknown time zone"):
        run(reference_engine, path, tz="Mars/Olympus")
    assert cases(reference_engine) == {}


def test_a_store_without_reference_data_is_fatal(engine, tmp_path):
    path = write_csv(tmp_path / "c.csv", ["id", "source", "category", "district", "reported_at"],
                     [["F1", "app", "S05-01", "金水", "2026-11-26 09:05"]])
    with pytest.raises(ImportError_, match="no districts"):
        run(engine, path)


def test_a_row_the_store_refuses_is_rejected_alone(reference_engine, tmp_path, monkeypatch):
    """Checks normally catch everything; if the store still refuses a row (here: a
    category the checks were tricked into accepting), only that row is rejected."""
    real = Reference.category

    def fake(self, value, field="category_code"):
        return CategoryInfo("NO-SUCH", 4.0, None) if value == "trick" else real(self, value, field)

    monkeypatch.setattr(Reference, "category", fake)
    path = write_csv(tmp_path / "c.csv", ["id", "source", "category", "district", "reported_at"],
                     [["S1", "app", "S05-01", "金水", "2026-11-26 09:05"],
                      ["S2", "app", "trick", "金水", "2026-11-26 09:05"],
                      ["S3", "app", "S05-01", "金水", "2026-11-26 09:05"]])
    result = run(reference_engine, path)
    assert set(cases(reference_engine)) == {"S1", "S3"}
    assert [(r["line"], r["reason"]) for r in read_rejects(path.with_name("c.rej.csv"))] == [("3", "store_error")]
    assert result.rejected == 1 and result.files[0].counts["events"] == 2


def test_concurrent_insert_of_the_same_case_becomes_an_update(reference_engine, tmp_path, monkeypatch):
    """Someone else inserts a case between our lookup and our insert: the batch's unique
    violation sends it through the row-by-row path, which then updates it."""
    from datasource.importer import store

    real_fetch = store.fetch
    raced = []

    def racing_fetch(conn, target, keys, columns):
        found = real_fetch(conn, target, keys, columns)
        if target.table.name == "cases" and not raced:
            raced.append(1)
            with reference_engine.begin() as other:
                other.execute(insert(Case).values(
                    external_id="RACE", source="app", category_code="S05-01", district_code="410105",
                    status="reported", reported_at=T0, rework_count=0, extended=False, voided=False,
                    updated_at=T0))
        return found

    monkeypatch.setattr(store, "fetch", racing_fetch)
    path = write_csv(tmp_path / "c.csv", ["id", "source", "category", "district", "reported_at"],
                     [["RACE", "hotline", "S05-01", "金水", "2026-11-26 09:05"]])
    result = run(reference_engine, path)
    assert (result.updated, result.rejected) == (1, 0)
    assert cases(reference_engine)["RACE"]["source"] == "hotline"
    with reference_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Case)).scalar_one() == 1
