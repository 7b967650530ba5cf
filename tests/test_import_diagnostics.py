"""What an import says about the rows it rejects, on SQLite and on PostgreSQL: over-long
values are rejected the same way on both stores (never cut), every problem of a row is
reported at once, each message names the mapping key that fixes it, and a file most of
whose rows fail for one reason gets a summary line that says which key to change."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import String, Text, select

from datasource.importer import errors as E
from datasource.importer.hints import time_format
from datasource.importer.kinds import KINDS
from datasource.importer.rejects import read_rejects
from datasource.schema import (Base, Case, CaseCategory, CaseSource, Department, District, Enterprise,
                               EnterpriseVisit, Grid, ParkingFacility, Street)
from tests.import_helpers import T0, run, write_csv

HEADER = ["external_id", "source", "category", "district", "reported_at", "address"]


def rejects(path):
    return read_rejects(path.with_name(path.stem + ".rej.csv"))


def stored_ids(engine, model) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(model.external_id)).scalars())


# --- over-long values ----------------------------------------------------------------
def test_an_address_longer_than_its_column_is_rejected_not_cut(reference_engine, tmp_path):
    limit = Case.__table__.c.address.type.length
    path = write_csv(tmp_path / "cases.csv", HEADER, [
        ["A1", "app", "S05-01", "金水", "2026-11-26 09:05", "路" * limit],          # exactly the limit
        ["A2", "app", "S05-01", "金水", "2026-11-26 09:05", "路" * (limit + 1)],    # one too many
    ])
    result = run(reference_engine, path, now=T0)
    assert (result.inserted, result.rejected) == (1, 1)
    assert stored_ids(reference_engine, Case) == ["A1"]
    (r,) = rejects(path)
    assert (r["line"], r["field"], r["reason"]) == ("3", "address", "too_long")
    assert f"address is {limit + 1:,} characters long, the limit is {limit}" in r["message"]
    assert "columns.address: []" in r["message"]
    with reference_engine.connect() as conn:
        assert conn.execute(select(Case.address)).scalar_one() == "路" * limit


@pytest.mark.parametrize("kind, header, row, field", [
    ("facilities", ["external_id", "name", "district", "kind", "capacity"],
     ["P1", "停" * 129, "金水", "off_street", "10"], "name"),
    ("visits", ["external_id", "enterprise", "enterprise_name", "district", "visited_at", "liaison"],
     ["V1", "E1", "企业", "金水", "2026-11-26 09:05", "张" * 65], "liaison"),
    ("visits", ["external_id", "enterprise", "enterprise_name", "district", "visited_at", "industry"],
     ["V1", "E1", "企" * 129, "金水", "2026-11-26 09:05", "制造"], "enterprise_name"),
    ("enterprises", ["external_id", "name", "district", "industry"],
     ["E1", "企业", "金水", "业" * 65], "industry"),
])
def test_over_long_values_of_other_kinds(reference_engine, tmp_path, kind, header, row, field):
    path = write_csv(tmp_path / f"{kind}.csv", header, [row])
    result = run(reference_engine, path, kind, now=T0)
    assert (result.inserted, result.rejected) == (0, 1)
    (r,) = rejects(path)
    assert (r["field"], r["reason"]) == (field, "too_long")
    for model in (ParkingFacility, EnterpriseVisit, Enterprise):
        assert stored_ids(reference_engine, model) == []


FREE_TEXT = {"summary", "note"}  # stored in Text columns: no limit
# a boundary's shape and label point: JSON made by the GeoJSON reader, stored in Text or as numbers
READER_MADE = {("boundaries", "geometry"), ("boundaries", "centroid")}


def test_every_text_and_id_field_has_its_columns_limit():
    """Each text or id field a kind writes is checked against the length of the column it
    is stored in: a field without a limit would be cut by SQLite's neighbour PostgreSQL."""
    tables = {"cases": Case, "facilities": ParkingFacility, "enterprises": Enterprise,
              "visits": EnterpriseVisit, "districts": District, "streets": Street, "grids": Grid,
              "categories": CaseCategory, "sources": CaseSource, "departments": Department}
    # fields stored in another column than their name says
    elsewhere = {("visits", "enterprise_name"): Enterprise.__table__.c.name,
                 ("visits", "industry"): Enterprise.__table__.c.industry,
                 ("occupancy", "facility_name"): ParkingFacility.__table__.c.name,
                 ("occupancy", "facility"): ParkingFacility.__table__.c.external_id,
                 ("visits", "enterprise"): Enterprise.__table__.c.external_id,
                 ("problems", "enterprise"): Enterprise.__table__.c.external_id,
                 ("problems", "visit"): EnterpriseVisit.__table__.c.external_id}
    lengths = {t.name: t for t in Base.metadata.sorted_tables}
    assert lengths
    checked = 0
    for kind, spec in KINDS.items():
        for f in spec.fields:
            if f.type not in ("text", "id"):
                continue
            column = elsewhere.get((kind, f.name))
            if column is None and kind in tables and f.name in tables[kind].__table__.c:
                column = tables[kind].__table__.c[f.name]
            if (kind, f.name) in READER_MADE:
                assert f.max_len is None, (kind, f.name)
                continue
            if f.name in FREE_TEXT:
                assert f.max_len is None and (column is None or isinstance(column.type, Text)), (kind, f.name)
                continue
            assert f.max_len is not None, f"{kind}.{f.name} has no max_len"
            if column is not None:
                assert isinstance(column.type, String) and f.max_len == column.type.length, (kind, f.name)
                checked += 1
    assert checked >= 12


def test_a_value_cut_would_differ_between_stores_so_it_never_reaches_them(reference_engine, tmp_path):
    """An id exactly at the limit is stored whole on both stores; one over is a too_long
    reject (PostgreSQL would have refused it, SQLite stored it)."""
    n = Case.__table__.c.external_id.type.length
    path = write_csv(tmp_path / "cases.csv", HEADER, [
        ["X" * n, "app", "S05-01", "金水", "2026-11-26 09:05", ""],
        ["Y" * (n + 1), "app", "S05-01", "金水", "2026-11-26 09:05", ""],
    ])
    result = run(reference_engine, path, now=T0)
    assert (result.inserted, result.rejected) == (1, 1)
    assert stored_ids(reference_engine, Case) == ["X" * n]
    (r,) = rejects(path)
    assert (r["field"], r["reason"]) == ("external_id", "too_long") and f"the limit is {n}" in r["message"]


# --- every problem of a row ----------------------------------------------------------
def test_every_problem_of_a_row_is_reported(reference_engine, tmp_path):
    path = write_csv(tmp_path / "cases.csv", HEADER + ["street", "extended"], [
        ["B1", "carrier pigeon", "UFO sighting", "Atlantis", "1/1/20 0:05", "", "", "perhaps"],
        ["B2", "app", "UFO sighting", "金水", "2026-11-26 09:05", "", "No Such Street", ""],
        ["OK", "app", "S05-01", "金水", "2026-11-26 09:05", "", "", ""],
    ])
    result = run(reference_engine, path, now=T0)
    assert (result.inserted, result.rejected) == (1, 2)
    b1, b2 = rejects(path)
    # cells first, then the references (sources are the store's reference data)
    assert b1["field"].split("; ") == ["reported_at", "extended", "category_code", "source", "district_code"]
    assert b1["reason"].split("; ") == ["unparseable_time", "invalid_value", "unknown_category",
                                        "invalid_value", "unknown_district"]
    assert len(b1["message"].split("\n")) == 5
    assert b2["field"].split("; ") == ["category_code", "street"]
    assert b2["reason"].split("; ") == ["unknown_category", "unknown_street"]
    summary = "\n".join(result.summary_lines())
    for reason, n in (("unknown_category", 2), ("invalid_value", 1), ("unparseable_time", 1),
                      ("unknown_district", 1), ("unknown_street", 1)):
        assert f"{reason} {n}" in summary
    assert "a row with several problems counts under each" in summary


def test_a_rejected_reading_also_names_its_unknown_facility(reference_engine, tmp_path):
    path = write_csv(tmp_path / "occupancy.csv", ["facility", "observed_at", "occupied"],
                     [["NOPE", "half past nine", "many"]])
    result = run(reference_engine, path, "occupancy", now=T0)
    assert result.rejected == 1
    (r,) = rejects(path)
    assert r["reason"].split("; ") == ["unparseable_time", "invalid_number", "unknown_facility"]
    assert "--kind facilities" in r["message"]


# --- messages name the mapping key ---------------------------------------------------
def test_messages_name_the_mapping_key_that_fixes_them(reference_engine, tmp_path):
    path = write_csv(tmp_path / "cases.csv", HEADER + ["rework_count"], [
        ["M1", "app", "S05-01", "金水", "1/1/20 0:05", "", ""],
        ["M2", "app", "S05-01", "Ward 5", "2026-11-26 09:05", "", ""],
        ["M3", "fax", "S05-01", "金水", "2026-11-26 09:05", "", ""],
        ["M4", "", "S05-01", "金水", "2026-11-26 09:05", "", ""],
        ["M5", "app", "S05-01", "金水", "2026-11-26 09:05", "", "twice"],
        ["M6", "app", "Pothole", "金水", "2026-11-26 09:05", "", ""],
    ])
    run(reference_engine, path, now=T0)
    got = {r["line"]: r["message"] for r in rejects(path)}
    assert got["2"] == ("'1/1/20 0:05' is not a time (add its format to time_formats:, e.g. "
                        '"%m/%d/%y %H:%M" (or "%d/%m/%y %H:%M" if the day comes first))')
    assert "values.district_code:" in got["3"] and "columns.district_code:" in got["3"]
    assert "column `district` was taken for `district_code` by its alias" in got["3"]
    assert "values.source:" in got["4"]
    assert "defaults.source:" in got["5"] and "columns.source:" in got["5"]
    assert "values.rework_count:" in got["6"] and "null_values:" in got["6"]
    assert "values.category_code:" in got["7"]


@pytest.mark.parametrize("text", ["1/1/20 0:05", "01/31/2020 11:05:00 PM", "31.12.2020 23:05",
                                  "12/25/2020", "2/3/2021 7:05AM", "13-01-2021 07:00:00.250"])
def test_the_suggested_time_format_reads_the_value(text):
    fmt, _ = time_format(text)
    assert dt.datetime.strptime(text, fmt)


def test_the_suggested_time_format_then_loads_the_file(reference_engine, tmp_path):
    """The format a message suggests, put under time_formats:, loads the rows."""
    path = write_csv(tmp_path / "cases.csv", HEADER, [["T1", "app", "S05-01", "金水", "01/31/2020 11:05:00 PM", ""]])
    run(reference_engine, path, now=T0)
    message = rejects(path)[0]["message"]
    fmt = message.split('e.g. "')[1].split('"')[0]
    mapping = tmp_path / "m.yaml"
    mapping.write_text(f'time_formats: ["{fmt}"]\ntimezone: America/Chicago\n', encoding="utf-8")
    result = run(reference_engine, path, mapping=mapping, now=T0)
    assert (result.inserted, result.rejected) == (1, 0)
    with reference_engine.connect() as conn:
        assert conn.execute(select(Case.reported_at)).scalar_one() == dt.datetime(2020, 2, 1, 5, 5,
                                                                                  tzinfo=dt.timezone.utc)


# --- most rows fail for one reason ---------------------------------------------------
def test_an_alias_that_took_the_wrong_column_is_named_in_the_summary(reference_engine, tmp_path):
    """The 311 export: `street_name` holds the street of the address ("N STATE ST"), not
    a street (街道) of the store; the importer took it for `street` by its alias."""
    n = 40
    rows = [[f"S{i}", "app", "S05-01", "金水", "2026-11-26 09:05", "", f"{100 + i} N STATE ST"]
            for i in range(n - 1)]
    rows.append([f"S{n}", "app", "S05-01", "金水", "2026-11-26 09:05", "", ""])
    path = write_csv(tmp_path / "cases.csv", HEADER + ["street_name"], rows)
    result = run(reference_engine, path, now=T0)
    assert (result.inserted, result.rejected) == (1, n - 1)
    lines = result.summary_lines()
    assert (f"  {n - 1} of {n} rows rejected: unknown street — column `street_name` was taken for "
            "`street` by its alias; set columns.street: to the right column or [] to read none") in lines
    assert "  for example line 2: '100 N STATE ST' is not a street of district 410105" in lines
    # the suggested fix works
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  street: []\n", encoding="utf-8")
    again = run(reference_engine, path, mapping=mapping, now=T0)
    assert (again.inserted, again.rejected) == (n - 1, 0)


def test_a_time_format_most_rows_miss_is_suggested(reference_engine, tmp_path):
    rows = [[f"T{i}", "app", "S05-01", "金水", f"11/{i + 1}/2026 9:05", ""] for i in range(5)]
    path = write_csv(tmp_path / "cases.csv", HEADER, rows)
    result = run(reference_engine, path, now=T0)
    assert result.rejected == 5
    assert ('  5 of 5 rows rejected: unparseable time (reported_at) — add its format to time_formats:, '
            'e.g. "%m/%d/%Y %H:%M" (or "%d/%m/%Y %H:%M" if the day comes first)') in result.summary_lines()


def test_no_summary_hint_when_few_rows_fail(reference_engine, tmp_path):
    rows = [[f"F{i}", "app", "S05-01", "金水", "2026-11-26 09:05", ""] for i in range(3)]
    rows.append(["F9", "app", "S05-01", "Atlantis", "2026-11-26 09:05", ""])
    path = write_csv(tmp_path / "cases.csv", HEADER, rows)
    result = run(reference_engine, path, now=T0)
    assert result.rejected == 1
    assert not any("rows rejected:" in line for line in result.summary_lines())


def test_every_reason_has_a_hint_or_says_why_not():
    from datasource.importer.hints import row_hint

    no_hint = {E.MALFORMED_ROW, E.STORE_ERROR, E.UNKNOWN_FACILITY, E.UNKNOWN_ENTERPRISE, E.UNKNOWN_VISIT}
    for reason in E.REASONS:
        if reason not in no_hint:  # those carry their own hint where they are found
            assert row_hint("field", reason, None), reason


def test_the_docs_rejected_row_example_is_what_the_import_writes(reference_engine, tmp_path):
    """docs/import.md shows the rejects line of its worked example with a bad district."""
    import csv
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "import.md").read_text(encoding="utf-8")
    claimed = re.search(r"file would hold `(docs/examples/cases_export_gbk\.csv,4,.*?),\"2,SZCG-\.\.\.\"`", doc,
                        re.S).group(1)
    lines = (root / "docs" / "examples" / "cases_export_gbk.csv").read_text(encoding="gb18030").splitlines(True)
    assert "二七区" in lines[3]
    lines[3] = lines[3].replace("二七区", "上街区")
    bad = tmp_path / "cases_export_gbk.csv"
    bad.write_text("".join(lines), encoding="gb18030")
    result = run(reference_engine, bad, mapping=root / "docs" / "examples" / "cases_export_mapping.yaml", now=T0)
    assert result.rejected == 1
    with bad.with_name("cases_export_gbk.rej.csv").open(encoding="utf-8-sig", newline="") as fh:
        (header, row) = list(csv.reader(fh))
    assert ",".join(row[:5]).replace(str(bad), "docs/examples/cases_export_gbk.csv") == " ".join(claimed.split())


def test_readings_of_unknown_facilities_say_where_facilities_come_from(reference_engine, tmp_path):
    path = write_csv(tmp_path / "occupancy.csv", ["facility", "observed_at", "occupied"],
                     [[f"CP-{i}", "2026-11-26 09:00", "5"] for i in range(3)])
    result = run(reference_engine, path, "occupancy", now=T0)
    assert result.rejected == 3
    assert ("  3 of 3 rows rejected: unknown facility — import it with --kind facilities first, or give the "
            "readings file the facility's columns (facility_name, capacity, district_code, facility_kind)"
            ) in result.summary_lines()


def test_a_hostile_column_name_is_shown_quoted(reference_engine, tmp_path):
    """Column names are the city's data: a terminal escape in one never reaches the summary
    or the rejects file as such."""
    col = "区\x1b[2J\x1b[31m"
    path = write_csv(tmp_path / "cases.csv", ["external_id", "source", "category", col, "reported_at"],
                     [[f"H{i}", "app", "S05-01", "Atlantis", "2026-11-26 09:05"] for i in range(3)])
    mapping = tmp_path / "m.yaml"
    mapping.write_text('columns:\n  district_code: "区\\e[2J\\e[31m"\n', encoding="utf-8")
    result = run(reference_engine, path, mapping=mapping, now=T0)
    assert result.rejected == 3
    text = "\n".join(result.summary_lines())
    assert "unknown district (district_code)" in text and repr(col) in text and "\x1b" not in text
    assert all("\x1b" not in r["message"] and repr(col) in r["message"] for r in rejects(path))
