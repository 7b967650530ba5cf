"""The weekly export on real stores: every file opened and its figures checked against the
store (openpyxl for the workbook, pdftotext for the PDF, the embedded JSON for the HTML,
the PNG decoded), on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import json

import pytest
from openpyxl import load_workbook

from dashboard.build import build_id
from dashboard.weekly.archive import Archive, file_name
from dashboard.weekly.compute import compute_week
from dashboard.weekly.runner import export_week
from dashboard.weekly.weeks import WeekError, last_finished, parse_week
from datasource.engine import make_engine
from tests.weekly_helpers import (MONDAY_8AM, TZ, WEEK, WEEK_END, district_names, embedded_report, oracle,
                                  pdf_pages, pdf_text, png_decoded, seeded_store, settings_for)

pytestmark = pytest.mark.slow
DISTRICT = "410105"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def exported(request, tmp_path_factory):
    """One export of the week per backend: every scope on PostgreSQL, the city and one
    district on SQLite (the same code; fewer browser runs)."""
    folder = tmp_path_factory.mktemp(f"weekly-{request.param}")
    url = seeded_store(request.param, request, folder)
    settings = settings_for(url, folder / "reports")
    scopes = ["all"] if request.param == "postgresql" else ["city", DISTRICT]
    results = [export_week(settings, WEEK, scope=s, now=MONDAY_8AM) for s in scopes]
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    engine = make_engine(url)
    yield settings, engine, Archive(settings.reports_dir), request.param
    engine.dispose()


def _scope_files(archive, scope):
    folder = archive.scope_dir(WEEK, scope)
    return {ext: folder / file_name(WEEK, scope, ext) for ext in ("html", "pdf", "png", "xlsx", "json")}


def test_week_parsing_and_bounds():
    week = parse_week("2026-W47", TZ)
    assert (week.start.isoformat(), week.end.isoformat()) == ("2026-11-16T00:00:00+08:00", "2026-11-23T00:00:00+08:00")
    assert week.previous.label == "2026-W46" and parse_week("2027-W01", TZ).previous.label == "2026-W53"
    assert last_finished(MONDAY_8AM, TZ).label == WEEK
    for bad in ("2026-48", "2026W48", "2026-W54", "2026-W00", "", "2026-W48x"):
        with pytest.raises(WeekError):
            parse_week(bad, TZ)


def test_html_embeds_the_stores_figures_and_fetches_nothing(exported):
    settings, engine, archive, _ = exported
    for scope in archive.scopes(WEEK):
        html = _scope_files(archive, scope)["html"].read_text(encoding="utf-8")
        report = embedded_report(html)
        truth = oracle(engine, None if scope == "city" else scope)
        cases = report["cases"]["kpis"]
        assert (report["week"], report["scope"], report["data_as_of"]) == (WEEK, scope, WEEK_END.isoformat())
        assert cases["reported"]["value"] == truth["reported"]
        assert cases["closed"]["value"] == truth["closed"]
        assert cases["filed"]["value"] == truth["filed"]
        assert cases["closure_rate"]["value"] == pytest.approx(truth["filed_closed_by_end"] / truth["filed"])
        assert cases["open_at_end"]["value"] == truth["open_at_end"]
        assert report["enterprise"]["kpis"]["visits"]["value"] == truth["visits"]
        assert sum(d["reported"] for d in report["cases"]["daily"]) == truth["reported"]
        # self-contained: plotly.js inlined, no external script, style or fetch
        assert "<script src" not in html and "<link" not in html and "Plotly.newPlot" in html
        assert len(html) > 3_000_000
        if scope != "city":  # a district's report holds that district only
            assert [d["code"] for d in report["districts"]] == [scope]
            assert list(report["cases"]["by_district"]) == [scope]


def test_workbook_has_a_sheet_per_table_with_deltas(exported):
    settings, engine, archive, _ = exported
    wb = load_workbook(_scope_files(archive, "city")["xlsx"])
    assert wb.sheetnames == ["各区案件指标", "助企服务", "停车治理"]
    cases = wb["各区案件指标"]
    headers = [c.value for c in cases[1]]
    assert headers[:5] == ["代码", "区域", "上报", "上报(上周)", "上报(较上周)"]
    rows = {r[0]: dict(zip(headers, r)) for r in cases.iter_rows(min_row=2, values_only=True)}
    names = district_names(engine, "name_zh")
    assert set(rows) == set(names) | {"city"}
    for code, row in rows.items():
        truth = oracle(engine, None if code == "city" else code)
        assert row["上报"] == truth["reported"] and row["结案"] == truth["closed"]
        assert row["周末在办"] == truth["open_at_end"]
        assert row["上报(较上周)"] == row["上报"] - row["上报(上周)"]
        if code != "city":
            assert row["区域"] == names[code]
    ent = wb["助企服务"]
    eh = [c.value for c in ent[1]]
    erows = {r[0]: dict(zip(eh, r)) for r in ent.iter_rows(min_row=2, values_only=True)}
    assert erows["city"]["走访"] == oracle(engine)["visits"]
    assert all(erows[c]["走访"] == oracle(engine, c)["visits"] for c in names)
    park = wb["停车治理"]
    ph = [c.value for c in park[1]]
    assert "本周平均占用率" in ph and "本周平均占用率(较上周)" in ph
    assert park.max_row == len(names) + 2


def test_pdf_is_a4_landscape_pages_with_chinese_text_and_the_figures(exported):
    settings, engine, archive, _ = exported
    for scope in ("city", DISTRICT):
        path = _scope_files(archive, scope)["pdf"]
        assert pdf_pages(path) >= 5
        text = pdf_text(path)
        truth = oracle(engine, None if scope == "city" else scope)
        for word in ("城市运行周报", "案件处置", "结案率", "助企服务", "停车治理", "超期案件", WEEK):
            assert word in text, word
        assert str(truth["reported"]) in text and f"{truth['open_at_end']:,}" in text
        names = district_names(engine)
        shown = names.values() if scope == "city" else [names[scope]]
        assert all(n in text for n in shown)
        report = json.loads(_scope_files(archive, scope)["json"].read_text(encoding="utf-8"))
        if report["cases"]["top_overdue"]:
            assert report["cases"]["top_overdue"][0]["external_id"] in text
    import subprocess
    info = subprocess.run(["pdfinfo", str(_scope_files(archive, "city")["pdf"])], capture_output=True, text=True).stdout
    assert "841.92 x 594.96" in info or "842 x 595" in info  # A4 landscape, in points


def test_png_is_the_wall_at_1920x1080(exported):
    _, _, archive, _ = exported
    for scope in archive.scopes(WEEK):
        assert png_decoded(_scope_files(archive, scope)["png"]) == (1920, 1080)


def test_manifest_names_every_file_with_its_checksum_and_the_rows(exported):
    settings, engine, archive, backend = exported
    expected = ["city", *district_names(engine)] if backend == "postgresql" else ["city", DISTRICT]
    assert sorted(archive.scopes(WEEK)) == sorted(expected)
    for scope in archive.scopes(WEEK):
        manifest = archive.manifest(WEEK, scope)
        assert (manifest["week"], manifest["scope"], manifest["data_as_of"]) == (WEEK, scope, WEEK_END.isoformat())
        assert manifest["app_version"] == build_id(settings)
        assert manifest["generated_at"]
        files = _scope_files(archive, scope)
        assert set(manifest["files"]) == {p.name for p in files.values()}
        for path in files.values():
            assert manifest["files"][path.name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        report = json.loads(files["json"].read_text(encoding="utf-8"))
        assert manifest["tables"] == report["tables"]
        assert manifest["tables"]["cases"]["rows"][0]["reported"] == oracle(
            engine, manifest["tables"]["cases"]["rows"][0]["code"])["reported"]
    assert archive.run(WEEK)["status"] == "ok"
    assert not any((archive.root / ".tmp").iterdir())  # nothing left behind


def test_open_and_overdue_are_as_of_the_weeks_end(exported):
    """A case closed after the week's end still counts as open at the end; the figures do
    not move when the store changes after the week."""
    settings, engine, archive, _ = exported
    week = parse_week(WEEK, TZ)
    before = compute_week(engine, week).cases["kpis"]["city"]["open_at_end"]["value"]
    report = json.loads(_scope_files(archive, "city")["json"].read_text(encoding="utf-8"))
    assert report["cases"]["kpis"]["open_at_end"]["value"] == before == oracle(engine)["open_at_end"]
