"""Parking KPIs (郑好停), per district: capacity, occupancy now and through today, the
programme's spaces added / revitalised / shared this year."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from dashboard.kpis.common import CITY, ratio
from dashboard.periods import all_periods, floor_hour, parse_hour_key
from datasource import kpi_queries as q

KINDS = ("on_street", "off_street", "shared", "non_motor")
PROGRAMMES = ("added", "revitalised", "shared")
# a facility whose newest reading is older than this does not count in "occupied now"
STALE_AFTER = dt.timedelta(minutes=90)
CLOCK_SKEW = dt.timedelta(minutes=5)  # readings stamped slightly in the future still count
RECEIVED_OVERLAP = dt.timedelta(seconds=30)  # late commits of readings


def today_hours(engine, now: dt.datetime, tz: ZoneInfo) -> list[dict]:
    """occupancy_by_hour rows for today so far (the full computation)."""
    return q.occupancy_by_hour(engine, all_periods(now, tz)["today"].start, now + CLOCK_SKEW)


def compute_parking(engine, now: dt.datetime, tz: ZoneInfo, hour_rows: list[dict] | None = None) -> dict:
    """The "parking" section of the snapshot. `hour_rows` (today's occupancy per district
    and hour) may come from the poller's cache of completed hours."""
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
    for r in (today_hours(engine, now, tz) if hour_rows is None else hour_rows):
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


class IncrementalParking:
    """Callable section: today's curve keeps the hours already computed and recomputes
    only the current hour and the hours that late readings have reached since the last
    poll (found through `received_at`), so a poll at 23:00 does not re-read the day."""

    def __init__(self):
        self.day_start: dt.datetime | None = None
        self.fingerprint = None
        self.hours: dict[str, list[dict]] = {}  # hour key -> rows of that hour
        self.received_wm: dt.datetime | None = None

    def __call__(self, engine, now: dt.datetime, tz: ZoneInfo) -> dict:
        day_start = all_periods(now, tz)["today"].start
        fingerprint = q.facilities_fingerprint(engine)  # capacities feed the clamp and the sums
        if day_start != self.day_start or fingerprint != self.fingerprint:
            self.day_start, self.fingerprint, self.hours = day_start, fingerprint, {}
            self.received_wm = None
        newest = q.newest_reading_received(engine)
        if not self.hours:
            dirty_from = day_start
        else:
            touched = q.hours_received_since(engine, self.received_wm - RECEIVED_OVERLAP, day_start) \
                if self.received_wm else []
            current = floor_hour(now)
            dirty_from = min([parse_hour_key(h) for h in touched] + [current])
        for key in [k for k in self.hours if parse_hour_key(k) >= dirty_from]:
            del self.hours[key]
        for r in q.occupancy_by_hour(engine, max(dirty_from, day_start), now + CLOCK_SKEW):
            self.hours.setdefault(r["hour"], []).append(r)
        self.received_wm = newest
        rows = [r for rs in self.hours.values() for r in rs]
        return compute_parking(engine, now, tz, hour_rows=rows)
