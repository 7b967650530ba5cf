"""Parking KPIs (郑好停), per district: capacity, occupancy now and through today, the
programme's spaces added / revitalised / shared this year."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from dashboard.kpis.common import CITY, ratio
from dashboard.periods import all_periods, parse_hour_key
from datasource import kpi_queries as q

KINDS = ("on_street", "off_street", "shared", "non_motor")
PROGRAMMES = ("added", "revitalised", "shared")
# a facility whose newest reading is older than this does not count in "occupied now"
STALE_AFTER = dt.timedelta(minutes=90)
CLOCK_SKEW = dt.timedelta(minutes=5)  # readings stamped slightly in the future still count


def compute_parking(engine, now: dt.datetime, tz: ZoneInfo) -> dict:
    """The "parking" section of the snapshot."""
    districts = [d["code"] for d in q.districts(engine)]
    zero = lambda: {"facilities": 0, "capacity": 0, "demo_sites": 0,  # noqa: E731
                    **{f"{k}_facilities": 0 for k in KINDS}, **{f"{k}_capacity": 0 for k in KINDS}}
    cap = defaultdict(zero)
    for r in q.facilities_by_kind(engine):
        for key in (r["district"], CITY):
            c = cap[key]
            c["facilities"] += r["facilities"]
            c["demo_sites"] += r["demo_sites"] or 0
            c[f"{r['kind']}_facilities"] += r["facilities"]
            c[f"{r['kind']}_capacity"] += r["capacity"] or 0
            if r["kind"] != "non_motor":  # motor-vehicle spaces; non-motor points are counted apart
                c["capacity"] += r["capacity"] or 0

    year = all_periods(now, tz)["year"]
    programme = defaultdict(lambda: {p: 0 for p in PROGRAMMES})
    for r in q.programme_since(engine, year.start.astimezone(tz).date()):
        for key in (r["district"], CITY):
            programme[key][r["programme"]] += r["spaces"] or 0

    now_rows = q.occupancy_now(engine, now - STALE_AFTER, now + CLOCK_SKEW)
    occ = defaultdict(lambda: {"reporting": 0, "reporting_capacity": 0, "occupied": 0, "out_of_range": 0})
    for r in now_rows:
        for key in (r["district"], CITY):
            o = occ[key]
            o["reporting"] += r["reporting"]
            o["reporting_capacity"] += r["capacity"] or 0
            o["occupied"] += r["occupied"] or 0
            o["out_of_range"] += r["out_of_range"] or 0

    today = all_periods(now, tz)["today"]
    curve: dict[str, dict[int, dict]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    for r in q.occupancy_by_hour(engine, today.start, now + CLOCK_SKEW):
        hour = parse_hour_key(r["hour"]).astimezone(tz).hour
        for key in (r["district"], CITY):
            cell = curve[key][hour]
            cell[0] += float(r["occupied"] or 0)
            cell[1] += r["capacity"] or 0

    def district_block(key):
        c, o = cap[key], occ[key]
        all_facilities = c["facilities"]
        return {
            **c,
            "non_motor_points": c["non_motor_facilities"],
            "reporting_facilities": o["reporting"],
            # motor-vehicle facilities with no reading in the last STALE_AFTER
            "stale_facilities": all_facilities - c["non_motor_facilities"] - o["reporting"],
            "out_of_range_readings": o["out_of_range"],
            "occupied_now": o["occupied"],
            "occupancy_now": ratio(o["occupied"], o["reporting_capacity"]),
            "programme_this_year": dict(programme[key]),
            "today_curve": [{"hour": h, "occupancy": ratio(v[0], v[1])}
                            for h, v in sorted(curve[key].items())],
        }

    return {"districts": districts, "stale_after_minutes": STALE_AFTER.total_seconds() / 60,
            "city": district_block(CITY), "by_district": {d: district_block(d) for d in districts}}
