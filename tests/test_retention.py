"""Retention (`python -m dashboard prune`): what goes, what stays, and that no figure of a
retained period moves (docs/retention.md)."""
import copy
import dataclasses
import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from dashboard import retention
from dashboard.cache import Cache, FileStore
from dashboard.kpis.cases import compute_cases
from dashboard.kpis.incremental import IncrementalCases
from dashboard.kpis.sections import SECTIONS
from dashboard.metrics import SnapshotCollector
from dashboard.poller import to_json_data
from dashboard.settings import Settings
from dashboard.weekly.archive import Archive
from dashboard.weekly.compute import compute_week
from dashboard.weekly.weeks import parse_week
from datasource import browse_queries as bq
from datasource import kpi_queries as kq
from datasource import kpi_state, schema
from datasource import weekly_queries as wq
from datasource.demo.city import load_profile
from datasource.sqlfuncs import utc_hour
from tests.conftest import FIXED_NOW, seeded_engine

TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
R, H, C, E = schema.OccupancyReading, schema.OccupancyHourly, schema.Case, schema.CaseEvent
S, RU = schema.KpiCaseState, schema.KpiRollup
RAW_DAYS = 5  # the cutoff falls inside 2026-W47, the last finished week at FIXED_NOW
OCC_CUTOFF = dt.datetime(2026, 11, 21, 4, 0, tzinfo=UTC)  # FIXED_NOW - 5 days, on the hour
KPI_CUTOFF = dt.datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 1 January 2025 in Shanghai
WEEK = "2026-W47"


def _settings(tmp_path, **over) -> Settings:
    values = {"OCCUPANCY_RAW_DAYS": str(RAW_DAYS), "CASE_RETENTION_DAYS": "", "REPORT_VERSIONS_KEPT": "3",
              "PRUNE_BATCH_ROWS": "700", "REPORTS_DIR": str(tmp_path / "reports"), "REDIS_URL": "",
              "LOCAL_CACHE_DIR": str(tmp_path / "cache"), "DASHBOARD_TIMEZONE": "Asia/Shanghai"}
    values.update(over)
    return Settings.from_env(values)


@pytest.fixture
def city(backend, request, tmp_path):
    """A small city: 3,000 cases over 800 days (back before 1 January of last year) and
    five parking facilities a district with half-hourly readings over 20 days."""
    profile = copy.deepcopy(load_profile())
    for d in profile["districts"].values():
        d["facilities"] = 5
    return seeded_engine(backend, request, tmp_path, profile=profile, seed=5, now=FIXED_NOW, total_cases=3000,
                         occupancy_days=20, history_days=800)


def _count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _figures(engine) -> dict:
    """Every figure a screen or a report shows for the retained periods."""
    out = {name: to_json_data(fn(engine, FIXED_NOW, TZ)) for name, fn in SECTIONS.items()}
    week = compute_week(engine, parse_week(WEEK, TZ))
    out["weekly"] = to_json_data({f.name: getattr(week, f.name) for f in dataclasses.fields(week)
                                  if f.name != "week"})
    fid = _count(engine, schema.ParkingFacility) // 2  # some facility
    start = FIXED_NOW - dt.timedelta(days=15)
    out["history"] = to_json_data(bq.occupancy_history(engine, fid, start, FIXED_NOW))
    out["history_old"] = to_json_data(bq.occupancy_history(engine, fid, start, OCC_CUTOFF - dt.timedelta(days=1)))
    out["by_hour"] = to_json_data(sorted(kq.occupancy_by_hour(engine, start, OCC_CUTOFF - dt.timedelta(microseconds=1)),
                                         key=lambda r: (r["hour"], r["district"])))
    out["readings"] = sorted((r["district"], r["readings"]) for r in wq.readings_between(engine, start, FIXED_NOW))
    # at the end of an hour the newest reading is that hour's last, folded or not
    at = OCC_CUTOFF - dt.timedelta(days=2, microseconds=1)
    out["now_old"] = to_json_data(sorted(kq.occupancy_now(engine, at - dt.timedelta(minutes=90), at),
                                         key=lambda r: r["district"]))
    flt = bq.CaseFilter()
    year = (dt.datetime(2025, 12, 31, 16, tzinfo=UTC), FIXED_NOW)
    out["browse_cases"] = to_json_data(bq.case_kpis(engine, "district", flt, year,
                                                    (KPI_CUTOFF, year[0])))
    out["browse_count"] = bq.count_cases(engine, flt, "closed", year)
    return out


def assert_same(a, b, path="$"):
    """Equal; floats to 1e-12 (SQLite sums doubles in the order it reads rows)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def _raw_hours(engine, before) -> dict:
    """(facility, hour) -> (readings, newest observed_at) of the raw readings before `before`."""
    hour = utc_hour(R.observed_at)
    with engine.connect() as conn:
        return {(f, h): (n, last) for f, h, n, last in conn.execute(
            select(R.facility_id, hour, func.count(), func.max(R.observed_at))
            .where(R.observed_at < before).group_by(R.facility_id, hour))}


def test_prune_keeps_every_figure_of_the_retained_periods(city, tmp_path):
    engine, settings = city, _settings(tmp_path)
    poller = IncrementalCases()
    first = poller(engine, FIXED_NOW, TZ)  # the poller's state and rollups, saved in the store
    before = _figures(engine)
    old_hours = _raw_hours(engine, OCC_CUTOFF)
    readings = _count(engine, R)
    assert old_hours and _count(engine, S, kpi_state.retirable(retention.cutoffs(settings, FIXED_NOW).kpi_hour))

    report = retention.prune(settings, engine, now=FIXED_NOW)

    # beyond retention: gone, and the hourly table holds exactly the folded hours
    assert report.cutoffs.occupancy == OCC_CUTOFF and report.cutoffs.kpi == KPI_CUTOFF
    assert _count(engine, R, R.observed_at < OCC_CUTOFF) == 0
    assert report.removed["occupancy_readings"] == sum(n for n, _ in old_hours.values())
    assert _count(engine, R) == readings - report.removed["occupancy_readings"]
    with engine.connect() as conn:
        folded = {(f, h): (n, last) for f, h, n, last in conn.execute(
            select(H.facility_id, H.hour, H.readings, H.last_observed_at))}
    assert folded == old_hours
    assert report.removed["kpi_case_state"] > 0 and report.removed["kpi_rollup"] > 0
    assert _count(engine, S, kpi_state.retirable("2025-01-01 00")) == 0
    assert _count(engine, RU, RU.hour < "2024-12-31 16", RU.due == 0) == 0
    assert report.removed["cases"] == 0 and _count(engine, C) == 3000  # cases are kept by default

    # nothing any retained period shows has moved
    assert_same(_figures(engine), before)
    # the poller goes on, and a new one (a leader taking over) loads the pruned state
    # without finding it incomplete (no rebuild)
    assert_same(poller(engine, FIXED_NOW, TZ), first)
    cases, state = kpi_state.counts(engine, kpi_state.watermark(engine))
    assert cases == state
    fresh = IncrementalCases()
    assert_same(fresh(engine, FIXED_NOW, TZ), first)
    assert fresh.rebuilds == 0
    later = FIXED_NOW + dt.timedelta(minutes=7)
    assert_same(fresh(engine, later, TZ), compute_cases(engine, later, TZ))

    # a second prune finds nothing more
    again = retention.prune(settings, engine, now=FIXED_NOW)
    assert sum(again.removed.values()) == 0


AT_THE_END = {"occupancy_at_end", "occupied_now", "occupancy_now", "reporting_facilities", "reporting_capacity",
              "stale_facilities", "out_of_range_readings", "out_of_range_today", "today_curve"}


def _without_at_end(value):
    """A report without the figures of the parking at the week's end (occupancy then, and
    the wall's curve of that day), which take readings up to 5 minutes past the end: only
    raw readings give those (docs/retention.md)."""
    if isinstance(value, dict):
        return {k: _without_at_end(v) for k, v in value.items() if k not in AT_THE_END}
    if isinstance(value, list):
        return [_without_at_end(v) for v in value]
    return value


def test_a_week_wholly_folded_is_still_built_with_the_same_figures(city, tmp_path):
    engine, week = city, parse_week("2026-W46", TZ)
    assert week.end < OCC_CUTOFF
    before = compute_week(engine, week)
    retention.prune(_settings(tmp_path), engine, now=FIXED_NOW)
    assert _count(engine, R, R.observed_at < week.end) == 0
    after = compute_week(engine, week)
    for part in ("cases", "enterprise", "parking", "wall_sections"):
        assert_same(_without_at_end(to_json_data(getattr(after, part))),
                    _without_at_end(to_json_data(getattr(before, part))))
    assert after.parking["city"]["readings"] == before.parking["city"]["readings"] > 0


def test_a_late_reading_of_a_folded_hour_is_added_to_it(city, tmp_path):
    engine, settings = city, _settings(tmp_path)
    retention.prune(settings, engine, now=FIXED_NOW)
    with engine.connect() as conn:
        fid, hour, n, last, occ = conn.execute(select(H.facility_id, H.hour, H.readings, H.last_observed_at,
                                                      H.last_occupied).order_by(H.hour).limit(1)).one()
    start = dt.datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    history = bq.occupancy_history(engine, fid, start, start + dt.timedelta(hours=1))
    late = last + dt.timedelta(minutes=10)
    with engine.begin() as conn:
        conn.execute(insert(R).values(facility_id=fid, observed_at=late, occupied=3, received_at=FIXED_NOW))
    # counted at once (the queries add both tables up), and once only after the next prune
    for _ in range(2):
        got = bq.occupancy_history(engine, fid, start, start + dt.timedelta(hours=1))
        assert got[0]["readings"] == history[0]["readings"] + 1
        retention.prune(settings, engine, now=FIXED_NOW)
    with engine.connect() as conn:
        assert tuple(conn.execute(select(H.readings, H.last_observed_at, H.last_occupied)
                                  .where(H.facility_id == fid, H.hour == hour)).one()) == (n + 1, late, 3)


def test_case_retention_deletes_old_closed_cases_with_their_events_never_open_ones(city, tmp_path):
    engine = city
    old = FIXED_NOW - dt.timedelta(days=700)
    with engine.begin() as conn:  # open for two years: stays, whatever its age
        conn.execute(insert(C).values(external_id="OLD-OPEN", source="app", category_code="S01-01",
                                      district_code="410105", status="dispatched", reported_at=old,
                                      filed_at=old, deadline_at=old + dt.timedelta(days=2), updated_at=old))
    poller = IncrementalCases(verify_every=0)
    poller(engine, FIXED_NOW, TZ)
    settings = _settings(tmp_path, CASE_RETENTION_DAYS="120")
    cutoff = FIXED_NOW - dt.timedelta(days=120)
    done = C.status.in_(("closed", "voided"))
    open_before = _count(engine, C, C.status.not_in(("closed", "voided")))
    kept_closed = _count(engine, C, done, C.updated_at >= cutoff)
    doomed = _count(engine, C, done, C.updated_at < cutoff)
    assert doomed > 0 and _count(engine, C, C.external_id == "OLD-OPEN") == 1

    report = retention.prune(settings, engine, now=FIXED_NOW)

    assert report.removed["cases"] == doomed
    assert _count(engine, C, done, C.updated_at < cutoff) == 0
    assert _count(engine, C, done) == kept_closed
    assert _count(engine, C, C.status.not_in(("closed", "voided"))) == open_before
    assert _count(engine, C, C.external_id == "OLD-OPEN") == 1
    assert report.removed["case_events"] > 0
    assert _count(engine, E, E.case_id.not_in(select(C.id))) == 0  # no orphan event
    # the poller's figures follow the deleted cases (its periodic check rebuilds)
    assert_same(poller(engine, FIXED_NOW, TZ), compute_cases(engine, FIXED_NOW, TZ))


def _version(archive: Archive, week: str, name: str) -> None:
    (archive.root / week / "versions" / name).mkdir(parents=True)
    (archive.root / week / "versions" / name / "manifest.json").write_text("{}")


def test_report_versions_beyond_the_kept_number_are_deleted(engine, tmp_path):
    settings = _settings(tmp_path, REPORT_VERSIONS_KEPT="2")
    archive = Archive(settings.reports_dir)
    (archive.root / WEEK / "city").mkdir(parents=True)
    (archive.root / WEEK / "city" / "manifest.json").write_text("{}")  # the published report
    city = ["city-20261123T080000Z", "city-20261124T080000Z", "city-20261124T080000Z-1a2b",
            "city-20261125T093000Z"]
    for name in city + ["410105-20261123T080000Z", "410105-20261124T080000Z"]:
        _version(archive, WEEK, name)
    _version(archive, "2026-W46", "city-20261116T080000Z")
    cache = Cache(FileStore(tmp_path / "metrics"))

    report = retention.prune(settings, engine, now=FIXED_NOW, cache=cache)

    assert report.versions == [f"{WEEK}/versions/{n}" for n in city[:2]]
    assert archive.versions(WEEK, "city") == city[2:]  # the newest two stay
    assert archive.versions(WEEK, "410105") == ["410105-20261123T080000Z", "410105-20261124T080000Z"]
    assert archive.versions("2026-W46", "city") == ["city-20261116T080000Z"]
    assert archive.exists(WEEK, "city")
    pruned = {s.labels["table"]: s.value for m in SnapshotCollector(cache).collect()
              if m.name == "cc_pruned_rows" for s in m.samples}
    assert pruned == {"report_versions": 2.0}


def test_pruned_rows_are_counted_in_metrics(city, tmp_path):
    cache = Cache(FileStore(tmp_path / "metrics"))
    report = retention.prune(_settings(tmp_path), city, now=FIXED_NOW, cache=cache)
    pruned = {s.labels["table"]: s.value for m in SnapshotCollector(cache).collect()
              if m.name == "cc_pruned_rows" for s in m.samples}
    assert pruned == {t: float(n) for t, n in report.removed.items() if n}
    assert pruned["occupancy_readings"] > 700  # several batches, added up


def test_prune_command_prints_what_it_removed(city, tmp_path, monkeypatch, capsys):
    from dashboard.cli import main

    for k, v in {"DATABASE_URL": city.url.render_as_string(hide_password=False), "OCCUPANCY_RAW_DAYS": str(RAW_DAYS), "REPORTS_DIR": str(tmp_path / "r"),
                 "LOCAL_CACHE_DIR": str(tmp_path / "c"), "REDIS_URL": ""}.items():
        monkeypatch.setenv(k, v)
    moved = _count(city, R, R.observed_at < OCC_CUTOFF)
    assert main(["prune", "--now", "2026-11-26T12:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert f"observed before 2026-11-21 12:00 CST: {moved} folded into occupancy_hourly" in out
    assert "cases and events: all kept" in out


def test_the_report_scheduler_runs_the_prune_daily(tmp_path):
    from dashboard.weekly.schedule import PRUNE_ID, ReportScheduler

    for cron, expected in (("30 3 * * *", dt.datetime(2026, 11, 27, 3, 30, tzinfo=TZ)), ("", None)):
        scheduler = ReportScheduler(_settings(tmp_path, PRUNE_CRON=cron))
        scheduler.start()
        try:
            job = scheduler._scheduler.get_job(PRUNE_ID)
            if expected is None:
                assert job is None
            else:
                assert job.trigger.get_next_fire_time(None, FIXED_NOW.astimezone(TZ)) == expected
        finally:
            scheduler.stop()
