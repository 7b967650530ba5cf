"""Parking readings out of range are kept, clamped and counted (docs/kpis.md), so a full
car park stays on its curve; and a city whose readings are its only export gets its
facilities from them. On SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.kpis.parking import IncrementalParking, compute_parking
from datasource import browse_queries as bq
from datasource.importer.rejects import read_rejects
from datasource.schema import OccupancyReading, ParkingFacility
from layouts.wall import panels
from tests.import_helpers import T0, run, write_csv

TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 26, 18, 40, tzinfo=TZ).astimezone(UTC)
CAPACITY = 100
HOURS = 67
ROOT = Path(__file__).resolve().parent.parent


def _full(i: int) -> bool:
    return i % 5 in (0, 2)  # 27 of the 67 hours


@pytest.fixture
def full_car_park(reference_engine, tmp_path):
    """One car park of 100 spaces, two readings an hour for 67 hours up to NOW; in 27 of
    the hours it is full and the feed says 101 and 103, as real feeds do."""
    fac = write_csv(tmp_path / "facilities.csv", ["external_id", "name", "district", "kind", "capacity"],
                    [["CP-1", "花园路停车楼", "金水", "off_street", str(CAPACITY)]])
    assert run(reference_engine, fac, "facilities", now=T0).inserted == 1
    first = NOW.replace(minute=0) - dt.timedelta(hours=HOURS - 1)
    rows = []
    for i in range(HOURS):
        hour = first + dt.timedelta(hours=i)
        counts = (101, 103) if _full(i) else (40, 60)
        for minute, n in zip((5, 35), counts):
            rows.append(["CP-1", (hour + dt.timedelta(minutes=minute)).isoformat(), str(n)])
    path = write_csv(tmp_path / "occupancy.csv", ["facility", "observed_at", "occupied"], rows)
    result = run(reference_engine, path, "occupancy", now=NOW)
    return reference_engine, result, first


def test_readings_above_capacity_are_kept_and_counted_at_import(full_car_park):
    engine, result, _ = full_car_park
    full_hours = sum(_full(i) for i in range(HOURS))
    assert full_hours == 27
    assert (result.inserted, result.rejected) == (2 * HOURS, 0)
    assert (f"  readings out of range, stored as read and clamped to [0, capacity] in the KPIs: "
            f"{2 * full_hours} above capacity, 0 below zero") in result.summary_lines()
    with engine.connect() as conn:
        stored = sorted(conn.execute(select(OccupancyReading.occupied)).scalars())
    assert stored.count(103) == stored.count(101) == full_hours  # as read, not cut


def test_a_full_car_park_stays_on_its_curve(full_car_park):
    engine, _, first = full_car_park
    with engine.connect() as conn:
        fid = conn.execute(select(ParkingFacility.id)).scalar_one()
    hours = bq.occupancy_history(engine, fid, first, NOW + dt.timedelta(hours=1))
    assert len(hours) == HOURS
    for i, h in enumerate(hours):
        assert float(h["occupied"]) == (CAPACITY if _full(i) else 50), i
        assert h["out_of_range"] == (2 if _full(i) else 0)


@pytest.mark.parametrize("how", ["full", "incremental"])
def test_todays_curve_keeps_the_full_hours_and_counts_what_was_clamped(full_car_park, how):
    engine, _, first = full_car_park
    got = compute_parking(engine, NOW, TZ) if how == "full" else IncrementalParking()(engine, NOW, TZ)
    midnight = NOW.astimezone(TZ).replace(hour=0, minute=0)
    today = [i for i in range(HOURS) if first + dt.timedelta(hours=i) >= midnight]
    local_hours = [(first + dt.timedelta(hours=i)).astimezone(TZ).hour for i in today]
    for block in (got["city"], got["by_district"]["410105"]):
        curve = {p["hour"]: p["occupancy"] for p in block["today_curve"]}
        assert sorted(curve) == local_hours == list(range(19))
        for i, h in zip(today, local_hours):
            assert curve[h] == pytest.approx(1.0 if _full(i) else 0.5), h
        assert block["out_of_range_today"] == 2 * sum(_full(i) for i in today) > 0
        newest_full = _full(HOURS - 1)
        assert block["out_of_range_readings"] == (1 if newest_full else 0)
        assert block["occupied_now"] == (CAPACITY if newest_full else 60)


def test_the_wall_shows_how_many_readings_were_clamped_today(full_car_park):
    engine = full_car_park[0]
    park = compute_parking(engine, NOW, TZ)
    for lang, label in (("zh-CN", "今日越界读数（已截断）"), ("en", "Out-of-range readings today (clamped)")):
        grid = panels.parking_summary(park, SimpleNamespace(lang=lang, district=None))
        tiles = {t.children[1].to_plotly_json()["props"]["data-kpi"]: t for t in grid.children}
        tile = tiles["out_of_range_today"]
        assert tile.children[0].children == label
        assert tile.children[1].children == f"{park['city']['out_of_range_today']:,}"
        assert park["city"]["out_of_range_today"] > 0


# --- facilities from the readings ------------------------------------------------------
def _doc_mapping() -> str:
    """The mapping docs/import.md shows for a readings-only export."""
    doc = (ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    section = doc.split("**Facilities from the readings.**", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


HEADER = ["carpark_id", "carpark_name", "total_spaces", "council_district", "reading_time", "occupied_spaces"]


def _facilities(engine) -> dict:
    with engine.connect() as conn:
        return {r.external_id: r for r in conn.execute(select(
            ParkingFacility.external_id, ParkingFacility.name, ParkingFacility.capacity,
            ParkingFacility.district_code, ParkingFacility.kind, ParkingFacility.updated_at))}


def test_facilities_come_from_the_readings(reference_engine, tmp_path):
    mapping = tmp_path / "carparks.yaml"
    mapping.write_text(_doc_mapping(), encoding="utf-8")
    path = write_csv(tmp_path / "readings.csv", HEADER, [
        ["CP-A", "Garden Road", "200", "金水", "2026-11-26 09:00", "150"],
        ["CP-A", "Garden Road", "200", "金水", "2026-11-26 09:30", "205"],   # full: kept as read
        ["CP-B", "", "80", "Erqi", "2026-11-26 09:00", "10"],               # no name: named by its id
        ["CP-C", "Nameless", "", "金水", "2026-11-26 09:00", "5"],            # no capacity: cannot create
    ])
    result = run(reference_engine, path, "occupancy", mapping=mapping, now=T0)
    assert (result.inserted, result.rejected) == (3, 1)
    lines = result.summary_lines()
    assert "  facilities from the rows: 2 inserted, 0 updated" in lines
    assert ("  readings out of range, stored as read and clamped to [0, capacity] in the KPIs: "
            "1 above capacity, 0 below zero") in lines
    got = _facilities(reference_engine)
    assert set(got) == {"CP-A", "CP-B"}
    assert (got["CP-A"].name, got["CP-A"].capacity, got["CP-A"].district_code, got["CP-A"].kind) == \
        ("Garden Road", 200, "410105", "off_street")
    assert (got["CP-B"].name, got["CP-B"].capacity, got["CP-B"].district_code) == ("CP-B", 80, "410103")
    (reject,) = read_rejects(tmp_path / "readings.rej.csv")
    assert (reject["line"], reject["field"], reject["reason"]) == ("5", "facility", "unknown_facility")
    assert "it has no capacity (give columns.capacity:)" in reject["message"]

    # the same file again: nothing written, no facility touched
    again = run(reference_engine, path, "occupancy", mapping=mapping, now=T0 + dt.timedelta(hours=1))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert not any("facilities from the rows" in line for line in again.summary_lines())
    assert _facilities(reference_engine) == got

    # a later export: CP-A grew; a reading that carries only its facility id works too
    later = write_csv(tmp_path / "later.csv", HEADER, [
        ["CP-A", "Garden Road", "220", "金水", "2026-11-26 10:00", "210"],
        ["CP-B", "", "", "", "2026-11-26 10:00", "12"]])
    third = run(reference_engine, later, "occupancy", mapping=mapping, now=T0 + dt.timedelta(hours=2))
    assert (third.inserted, third.rejected) == (2, 0)
    assert "  facilities from the rows: 0 inserted, 1 updated" in third.summary_lines()
    now = _facilities(reference_engine)
    assert now["CP-A"].capacity == 220 and now["CP-B"] == got["CP-B"]
    with reference_engine.connect() as conn:
        assert conn.execute(select(OccupancyReading.occupied).where(
            OccupancyReading.observed_at == dt.datetime(2026, 11, 26, 2, tzinfo=UTC),
            OccupancyReading.facility_id == select(ParkingFacility.id).where(
                ParkingFacility.external_id == "CP-A").scalar_subquery())).scalar_one() == 210


def test_a_new_facility_without_a_kind_names_the_default_to_give(reference_engine, tmp_path):
    path = write_csv(tmp_path / "readings.csv", ["facility", "facility_name", "capacity", "district",
                                                 "observed_at", "occupied"],
                     [["CP-K", "Kiosk Lot", "30", "金水", "2026-11-26 09:00", "3"]])
    result = run(reference_engine, path, "occupancy", now=T0)
    assert (result.inserted, result.rejected) == (0, 1)
    (reject,) = read_rejects(tmp_path / "readings.rej.csv")
    assert reject["reason"] == "unknown_facility"
    assert "it has no facility_kind (give defaults.facility_kind:)" in reject["message"]
    assert _facilities(reference_engine) == {}
