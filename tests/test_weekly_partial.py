"""Weekly reports for a city that records only some subjects (its city profile says which),
and for a week without a case: complete-or-refuse applies to the recorded subjects only."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from dashboard import profile as city
from dashboard.weekly.archive import Archive, file_name
from dashboard.weekly.compute import IncompleteReport, compute_week
from dashboard.weekly.report import NOT_RECORDED, build_report
from dashboard.weekly.runner import export_week
from dashboard.weekly.weeks import parse_week
from datasource.engine import make_engine
from layouts.weekly.html import render_report
from dashboard.weekly.report import KINDS
from tests.conftest import new_store_url
from tests.import_helpers import run, write_csv
from tests.weekly_helpers import embedded_report, settings_for

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = "2026-W47"  # Monday 16 to Sunday 22 November 2026
START = dt.datetime(2026, 11, 9, tzinfo=BERLIN)  # readings from the week before
END = dt.datetime(2026, 11, 23, 6, tzinfo=BERLIN)  # to Monday morning
MONDAY_9AM = dt.datetime(2026, 11, 23, 9, tzinfo=BERLIN)
FACILITIES = [("P1", "1", 200, 50), ("P2", "1", 80, 60), ("P3", "2", 120, 30)]  # id, district, capacity, occupied


def parking_city(engine, tmp_path, subjects=("parking",)):
    """Districts, three car parks and their hourly readings; nothing else."""
    city.store(engine, city.parse_profile({"name": "Parkstadt", "timezone": "Europe/Berlin",
                                           "subjects": list(subjects)}, "test"))
    run(engine, write_csv(tmp_path / "districts.csv", ["code", "name"], [["1", "Mitte"], ["2", "Nord"]]),
        "districts")
    run(engine, write_csv(tmp_path / "facilities.csv", ["id", "name", "district", "kind", "capacity"],
                          [[f, f"Car park {f}", d, "off_street", str(c)] for f, d, c, _ in FACILITIES]), "facilities")
    hours = int((END - START).total_seconds() // 3600)
    readings = [[f, (START + dt.timedelta(hours=h)).isoformat(), str(occ)]
                for h in range(hours) for f, _, _, occ in FACILITIES]
    result = run(engine, write_csv(tmp_path / "occupancy.csv", ["facility", "observed_at", "occupied"], readings),
                 "occupancy")
    assert result.inserted == len(readings)


@pytest.fixture
def sqlite_store(request, tmp_path):
    url = new_store_url("sqlite", request, tmp_path)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def test_a_parking_only_city_gets_its_report_with_the_rest_not_recorded(engine, tmp_path):
    parking_city(engine, tmp_path)
    week = parse_week(WEEK, BERLIN)
    figures = compute_week(engine, week)  # the old code: "the store has no cases"
    assert figures.subjects == ("parking",)
    report = build_report(figures, "city", generated_at="now", app_version="test")
    assert report["recorded"] == ["parking"]
    assert report["cases"] == {"recorded": False} and report["enterprise"] == {"recorded": False}
    # parking as the store says: each car park's constant count over its capacity
    expected = sum(o for *_, o in FACILITIES) / sum(c for _, _, c, _ in FACILITIES)
    assert report["parking"]["kpis"]["occupancy_week"]["value"] == pytest.approx(expected)
    assert report["parking"]["kpis"]["facilities"] == 3
    assert report["tables"]["cases"]["rows"] == [{"not_recorded": NOT_RECORDED}]
    page = render_report(report, kinds=KINDS, title="Parkstadt", categories={}, tz=BERLIN, lang="en")
    html = page.html()
    assert html.count('data-not-recorded="1"') == 4  # summary: cases, enterprise; their pages
    assert embedded_report(html)["cases"] == {"recorded": False}
    assert '"f-occupancy"' in page.figures and '"f-daily"' not in page.figures


def test_a_recorded_subject_without_data_is_refused(engine, tmp_path):
    parking_city(engine, tmp_path, subjects=("cases", "parking"))
    with pytest.raises(IncompleteReport, match="the store has no cases"):
        compute_week(engine, parse_week(WEEK, BERLIN))
    # a parking feed that stops before the week's end
    city.store(engine, city.parse_profile({"name": "Parkstadt", "timezone": "Europe/Berlin",
                                           "subjects": ["parking"]}, "test"))
    with pytest.raises(IncompleteReport, match="newest occupancy reading .* before the last hour of 2026-W48"):
        compute_week(engine, parse_week("2026-W48", BERLIN))


def test_a_week_without_a_case_is_a_valid_week(engine, tmp_path):
    parking_city(engine, tmp_path, subjects=("cases", "parking"))
    # one case, reported the week before and closed after the week: no case in the week
    run(engine, write_csv(tmp_path / "cases.csv", ["id", "district", "reported_at", "filed_at", "closed_at"],
                          [["C1", "1", "2026-11-10 09:00", "2026-11-10 10:00", "2026-11-23 08:00"]]), "cases")
    figures = compute_week(engine, parse_week(WEEK, BERLIN))
    report = build_report(figures, "city", generated_at="now", app_version="test")
    assert report["recorded"] == ["cases", "parking"] and report["enterprise"] == {"recorded": False}
    assert report["cases"]["kpis"]["reported"]["value"] == 0
    assert report["cases"]["kpis"]["open_at_end"]["value"] == 1  # filed on the 10th, open at the week's end


@pytest.mark.slow
def test_the_export_of_a_parking_only_city(sqlite_store, tmp_path):
    url, engine = sqlite_store
    parking_city(engine, tmp_path)
    settings = settings_for(url, tmp_path / "reports")  # DASHBOARD_TIMEZONE stays Asia/Shanghai
    result = export_week(settings, WEEK, scope="all", now=MONDAY_9AM)
    assert result.status == "ok", result.error
    archive = Archive(settings.reports_dir)
    folder = archive.scope_dir(WEEK, "city")
    report = embedded_report((folder / file_name(WEEK, "city", "html")).read_text(encoding="utf-8"))
    # the week in the profile's zone, not DASHBOARD_TIMEZONE's
    assert (report["start"], report["timezone"]) == ("2026-11-16T00:00:00+01:00", "Europe/Berlin")
    assert report["cases"] == {"recorded": False}
    book = load_workbook(folder / file_name(WEEK, "city", "xlsx"))
    assert [c.value for c in next(book.worksheets[0].iter_rows(min_row=2, max_row=2))] == [NOT_RECORDED]
    assert archive.manifest(WEEK, "1")["tables"]["parking"]["rows"][0]["code"] == "1"
