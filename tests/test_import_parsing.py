"""The importer's pure parts: value parsers, file reading, mapping validation (no store)."""
from __future__ import annotations

import csv
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from datasource.importer import ImportError_
from datasource.importer.kinds import KINDS
from datasource.importer.mapping import load_mapping
from datasource.importer.readers import open_source
from datasource.importer.values import TimeParser, parse_bool, parse_float, parse_int

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
NINE_O_FIVE = dt.datetime(2026, 11, 26, 1, 5, tzinfo=UTC)  # 09:05 in Shanghai


@pytest.mark.parametrize("text", [
    "2026-11-26T09:05:00+08:00", "2026-11-26T01:05:00Z", "2026-11-26T01:05:00+00:00",
    "2026/11/26 9:05", "2026-11-26 09:05:00", "2026-11-26 09:05", "20261126090500",
    "202611260905", "1795655100", "1795655100000", "1795655100.0", "2026年11月26日 9时05分",
    "2026年11月26日 09:05:00", "2026.11.26 09:05", "2026-11-26 09:05:00 +0800",
    "2026-11-26 01:05 UTC", " 2026-11-26 09:05:00 ",
])
def test_time_shapes(text):
    assert TimeParser(SH)(text) == NINE_O_FIVE


def test_naive_times_take_the_given_zone():
    assert TimeParser(ZoneInfo("UTC"))("2026-11-26 09:05") == NINE_O_FIVE + dt.timedelta(hours=8)
    assert TimeParser(SH)("2026-11-26").astimezone(SH) == dt.datetime(2026, 11, 26, tzinfo=SH)
    assert TimeParser(SH)("20261126") == TimeParser(SH)("2026-11-26")


def test_epoch_times_are_utc_whatever_the_zone():
    assert TimeParser(ZoneInfo("America/New_York"))("1795655100") == NINE_O_FIVE


def test_mapping_time_formats_come_first():
    # 26/11/2026 would be nonsense to the built-in shapes
    parse = TimeParser(SH, ("%d/%m/%Y %H:%M",))
    assert parse("26/11/2026 09:05") == NINE_O_FIVE
    with pytest.raises(ValueError):
        TimeParser(SH)("26/11/2026 09:05")


@pytest.mark.parametrize("text", ["garbage", "2026-13-01", "2026-02-30 10:00", "12345", "1e10",
                                  "9999999999999", "1900-01-01", "2026-11-26 25:00", "--",
                                  "2026-11-26 09:05 +25:00"])
def test_unparseable_times(text):
    with pytest.raises(ValueError):
        TimeParser(SH)(text)


def test_numbers_and_booleans():
    assert parse_int("1,234") == 1234
    assert parse_int(" 12 ") == 12
    assert parse_int("12.0") == 12
    assert parse_int("1 000") == 1000
    assert parse_float("113.660617") == 113.660617
    assert parse_float("１２.５") == 12.5  # full-width digits from Chinese input methods
    for bad in ("12.5", "abc", "", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_int(bad)
    for bad in ("nan", "inf", "-inf", "1.2.3"):
        with pytest.raises(ValueError):
            parse_float(bad)
    for yes in ("是", "Y", "y", "true", "TRUE", "1", "yes", "√"):
        assert parse_bool(yes) is True
    for no in ("否", "N", "false", "0", "no", "×"):
        assert parse_bool(no) is False
    with pytest.raises(ValueError):
        parse_bool("maybe")


# -- reading files ------------------------------------------------------------------
def _rows(path, fmt=None, **kw):
    opts = dict(encoding=None, errors="strict", delimiter=None, header_line=1) | kw
    source = open_source(path, fmt, opts["encoding"], opts["errors"], opts["delimiter"], opts["header_line"])
    return source, list(source.rows())


def test_gbk_csv_is_decoded_and_lines_are_counted_like_an_editor(tmp_path):
    path = tmp_path / "export.csv"
    text = '案件编号,问题描述\r\nA1,井盖丢失\r\n\r\nA2,"两行\r\n描述"\r\nA3,最后\r\n'
    path.write_bytes(text.encode("gbk"))
    source, rows = _rows(path)
    assert source.encoding == "gb18030" and source.columns == ["案件编号", "问题描述"]
    # header = line 1; the blank line 3 is skipped; A2 spans lines 4-5
    assert [(r.line, r.cells["案件编号"]) for r in rows] == [(2, "A1"), (4, "A2"), (6, "A3")]
    assert rows[1].cells["问题描述"] == "两行\r\n描述"
    assert rows[1].raw == 'A2,"两行\r\n描述"'


def test_utf8_bom_tab_delimiter_and_title_lines(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text("郑州市数字城管案件导出\n导出时间：2026-11-26\nid\tname\nA1\t金水\n", encoding="utf-8-sig")
    source, rows = _rows(path, header_line=3)
    assert source.delimiter == "\t" and source.columns == ["id", "name"]
    assert [(r.line, r.cells) for r in rows] == [(4, {"id": "A1", "name": "金水"})]


def test_semicolon_is_sniffed_and_ragged_rows_are_flagged(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a;b\n1;2\n3;4;5\n6\n7;8;;\n", encoding="utf-8")
    _, rows = _rows(path)
    assert [r.problem is None for r in rows] == [True, False, False, True]
    assert rows[2].problem.startswith("truncated: 1 cells")  # never padded into an update


def test_a_file_cut_mid_line_rejects_its_last_row(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes(b"id,address,district\nA1,Main St,14\nA2,Elm St,1")  # complete, no newline
    _, rows = _rows(path)
    assert [r.problem for r in rows] == [None, None]
    path.write_bytes(b"id,address,district\nA1,Main St,14\nA2,Elm S")  # cut inside a cell
    _, rows = _rows(path)
    assert rows[0].problem is None
    assert rows[1].problem == "truncated: 2 cells but the header has 3 columns (the file ends mid-line)"


def test_repeated_column_names_get_a_suffix(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,备注,备注,备注\nA1,a,b,c\n", encoding="utf-8")
    source, rows = _rows(path)
    assert source.columns == ["id", "备注", "备注.2", "备注.3"]
    assert rows[0].cells == {"id": "A1", "备注": "a", "备注.2": "b", "备注.3": "c"}


def test_a_record_the_csv_reader_refuses_is_a_malformed_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,note\nA1,short\nA2,%s\nA3,short\n" % ("x" * 50), encoding="utf-8")
    old = csv.field_size_limit(20)
    try:
        _, rows = _rows(path)
    finally:
        csv.field_size_limit(old)
    assert [(r.line, r.problem is not None) for r in rows] == [(2, False), (3, True), (4, False)]
    assert rows[1].raw == "A2," + "x" * 50 and "field larger than field limit" in rows[1].problem


def test_undecodable_file_is_fatal_and_names_it(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,name\nA1,\xff\xfe\xfa\n")
    with pytest.raises(ImportError_, match=r"bad\.csv.*cannot decode"):
        _rows(path)
    _, rows = _rows(path, errors="replace")  # the mapping can accept damaged bytes
    assert rows[0].cells["id"] == "A1"


def test_json_lines_and_json_arrays(tmp_path):
    jl = tmp_path / "x.ndjson"
    jl.write_text('{"id": "A1", "lat": 34.8, "ok": true}\n\nnot json\n[1]\n', encoding="utf-8")
    source, rows = _rows(jl)
    assert source.format == "jsonl"
    assert rows[0].cells == {"id": "A1", "lat": "34.8", "ok": "true"} and rows[0].line == 1
    assert [(r.line, r.problem is not None) for r in rows[1:]] == [(3, True), (4, True)]

    arr = tmp_path / "requests.json"
    arr.write_text(json.dumps([{"service_request_id": "1"}, {"service_request_id": "2"}], indent=2))
    source, rows = _rows(arr)
    assert source.format == "open311"
    assert [r.line for r in rows] == [2, 5]  # where each object's brace is
    plain = tmp_path / "plain.json"
    plain.write_text('[{"id": 1}]')
    assert _rows(plain)[0].format == "json"


@pytest.mark.parametrize("name,content,message", [
    ("missing.csv", None, "no such file"),
    ("empty.csv", "", "empty"),
    ("broken.json", "[{", "not valid JSON"),
    ("scalar.json", "3", "JSON array"),
    ("data.xlsx", "x", "cannot tell the format"),
])
def test_unreadable_files_are_fatal(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportError_, match=message):
        _rows(path)


def test_unknown_format_is_fatal(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    with pytest.raises(ImportError_, match="unknown format 'xml'"):
        _rows(path, fmt="xml")


# -- mapping validation -------------------------------------------------------------
CASE_FIELDS = KINDS["cases"].field_map


def _mapping(tmp_path, text, suffix=".yaml"):
    path = tmp_path / f"m{suffix}"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path, CASE_FIELDS, tuple(KINDS))


def test_yaml_mapping_keeps_codes_and_words_as_written(tmp_path):
    m = _mapping(tmp_path, """
columns: {external_id: 案件编号, reported_at: [上报时间, 发现时间]}
values:
  status: {已结案: closed, 处置中: dispatched, 01: filed, yes: closed}
  category_code: {0101: B01-01}
defaults: {source: hotline, extended: N}
delimiter: tab
header_line: 2
time_formats: "%d/%m/%Y %H:%M"
""")
    assert m.columns == {"external_id": ("案件编号",), "reported_at": ("上报时间", "发现时间")}
    assert m.values["status"] == {"已结案": "closed", "处置中": "dispatched", "01": "filed", "yes": "closed"}
    assert m.values["category_code"] == {"0101": "B01-01"}  # not the octal number 65
    assert m.defaults == {"source": "hotline", "extended": "N"}
    assert (m.delimiter, m.header_line, m.time_formats) == ("\t", 2, ("%d/%m/%Y %H:%M",))


def test_json_mapping(tmp_path):
    m = _mapping(tmp_path, json.dumps({"columns": {"external_id": "编号"}, "defaults": {"rework_count": 0}}),
                 ".json")
    assert m.columns == {"external_id": ("编号",)} and m.defaults == {"rework_count": "0"}


@pytest.mark.parametrize("text,key", [
    ("columns: {case_number: 编号}", "columns.case_number"),
    ("columns: {external_id: {a: b}}", "columns.external_id"),
    ("values: {status: {已结案: finished}}", "values.status.已结案"),
    ("values: {statu: {a: closed}}", "values.statu"),
    ("values: {status: [closed]}", "values.status"),
    # (a source is reference data now: `defaults.source` is checked against the store, tests/test_reference_import.py)
    ("defaults: {district_code: {a: b}}", "defaults.district_code"),
    ("defaults: {reported_at: yesterday}", "defaults.reported_at"),
    ("defaults: {extended: perhaps}", "defaults.extended"),
    ("defaults: {rework_count: many}", "defaults.rework_count"),
    ("timezone: Mars/Olympus", "timezone"),
    ("encoding: klingon", "encoding"),
    ("delimiter: ',,'", "delimiter"),
    ("header_line: 0", "header_line"),
    ("time_formats: [YYYY-MM-DD]", "time_formats[0]"),
    ("time_formats: ['%Y-%Q']", "time_formats[0]"),
    ("kind: parcels", "kind"),
    ("format: xml", "format"),
    ("colums: {}", "colums"),
    ("columns: [external_id]", "columns"),
])
def test_bad_mapping_is_fatal_and_names_the_key(tmp_path, text, key):
    with pytest.raises(ImportError_) as exc:
        _mapping(tmp_path, text)
    assert f"`{key}`" in str(exc.value)


def test_unparseable_mapping_file_is_fatal(tmp_path):
    with pytest.raises(ImportError_, match="not valid YAML"):
        _mapping(tmp_path, "columns: [unclosed")
    with pytest.raises(ImportError_, match="not valid JSON"):
        _mapping(tmp_path, "{", ".json")
    with pytest.raises(ImportError_, match="expected a mapping"):
        _mapping(tmp_path, "- a\n- b\n")
