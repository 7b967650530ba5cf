"""Parking KPIs (郑好停), per district: capacity, occupancy now and through today, the
programme's spaces added / revitalised / shared this year."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from dashboard.kpis.common import CITY, Overlap, ratio
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


def compute_parking(engine, now: dt.datetime, tz: ZoneInfo, hour_rows: list[dict] | None = None,
                    now_rows: list[dict] | None = None, facility_rows: tuple[list, list] | None = None) -> dict:
    """The "parking" section of the snapshot. The poller's IncrementalParking may pass what
    it keeps: `hour_rows` (today's occupancy per district and hour), `now_rows` (rows of
    kpi_queries.occupancy_now) and `facility_rows` (facilities_by_kind and
    programme_since rows); anything not passed is read from the store."""
    districts = [d["code"] for d in q.districts(engine)]
    year = all_periods(now, tz)["year"]
    if facility_rows is None:
        facility_rows = (q.facilities_by_kind(engine), q.programme_since(engine, year.start.astimezone(tz).date()))
    by_kind, programme_rows = facility_rows
    zero = lambda: {"facilities": 0, "capacity": 0, "demo_sites": 0,  # noqa: E731
                    **{f"{k}_facilities": 0 for k in KINDS}, **{f"{k}_capacity": 0 for k in KINDS}}
    cap: dict[str, dict] = defaultdict(zero)
    for r in by_kind:
        for key in (r["district"], CITY):
            c = cap[key]
            c["facilities"] += r["facilities"]
            c["demo_sites"] += r["demo_sites"] or 0
            c[f"{r['kind']}_facilities"] += r["facilities"]
            c[f"{r['kind']}_capacity"] += r["capacity"] or 0
            if r["kind"] != "non_motor":  # motor-vehicle spaces; non-motor points are counted apart
                c["capacity"] += r["capacity"] or 0

    programme: dict[str, dict] = defaultdict(lambda: {p: 0 for p in PROGRAMMES})
    for r in programme_rows:
        for key in (r["district"], CITY):
            programme[key][r["programme"]] += r["spaces"] or 0

    if now_rows is None:
        now_rows = q.occupancy_now(engine, now - STALE_AFTER, now + CLOCK_SKEW)
    occ: dict[str, dict] = defaultdict(lambda: {"reporting": 0, "reporting_capacity": 0, "occupied": 0, "out_of_range": 0})
    for r in now_rows:
        for key in (r["district"], CITY):
            o = occ[key]
            o["reporting"] += r["reporting"]
            o["reporting_capacity"] += r["capacity"] or 0
            o["occupied"] += r["occupied"] or 0
            o["out_of_range"] += r["out_of_range"] or 0

    curve: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    clamped_today: dict[str, int] = defaultdict(int)
    rows = today_hours(engine, now, tz) if hour_rows is None else hour_rows
    # in one order whatever the rows came from, so that the city's float sums are the same
    for r in sorted(rows, key=lambda r: (r["hour"], r["district"])):
        hour = parse_hour_key(r["hour"]).astimezone(tz).hour
        for key in (r["district"], CITY):
            cell = curve[key][hour]
            cell[0] += float(r["occupied"] or 0)
            cell[1] += r["capacity"] or 0
            clamped_today[key] += r.get("out_of_range") or 0

    def district_block(key):
        c, o = cap[key], occ[key]
        all_facilities = c["facilities"]
        return {
            **c,
            "non_motor_points": c["non_motor_facilities"],
            "reporting_facilities": o["reporting"],
            # motor-vehicle facilities with no reading in the last STALE_AFTER
            "stale_facilities": all_facilities - c["non_motor_facilities"] - o["reporting"],
            # newest readings below 0 or above capacity, clamped in occupied_now
            "out_of_range_readings": o["out_of_range"],
            # today's readings below 0 or above capacity, clamped in today's curve
            "out_of_range_today": clamped_today[key],
            "occupied_now": o["occupied"],
            "reporting_capacity": o["reporting_capacity"],
            "occupancy_now": ratio(o["occupied"], o["reporting_capacity"]),
            "programme_this_year": dict(programme[key]),
            "today_curve": [{"hour": h, "occupancy": ratio(v[0], v[1])}
                            for h, v in sorted(curve[key].items())],
        }

    return {"districts": districts, "stale_after_minutes": STALE_AFTER.total_seconds() / 60,
            "city": district_block(CITY), "by_district": {d: district_block(d) for d in districts}}


def _clamp(occupied: int, capacity: int) -> int:
    return 0 if occupied < 0 else capacity if occupied > capacity else occupied


def occupancy_now_rows(facilities: dict[int, tuple[str, int]], newest: dict[int, tuple],
                       since: dt.datetime) -> list[dict]:
    """Rows of kpi_queries.occupancy_now from each facility's newest reading (observed_at,
    occupied), for the motor-vehicle `facilities` (id -> (district, capacity))."""
    out: dict[str, dict] = {}
    for fid, (observed, occupied) in newest.items():
        if fid not in facilities or observed < since:
            continue
        district, capacity = facilities[fid]
        o = out.setdefault(district, {"district": district, "reporting": 0, "capacity": 0, "occupied": 0,
                                      "out_of_range": 0})
        o["reporting"] += 1
        o["capacity"] += capacity
        o["occupied"] += _clamp(occupied, capacity)
        o["out_of_range"] += occupied < 0 or occupied > capacity
    return list(out.values())


class IncrementalParking:
    """Callable section: the parking payload from what changed since the last poll.

    The store is asked which readings were written since the last poll (by `received_at`,
    re-reading a short overlap for late commits). Each facility's newest reading is kept
    for "occupied now", readings stamped ahead of `now` wait until `now` reaches them, and
    today's curve keeps its hours, re-reading only the hours a new reading fell in. The
    facilities' rows are kept while their fingerprint (count, newest update, capacity)
    holds; a change, or a new day, starts everything again.
    """

    def __init__(self):
        self.key: tuple | None = None  # (day start, facilities fingerprint) the state belongs to
        self.resets = 0

    def _reset(self, engine, key, now: dt.datetime, tz: ZoneInfo) -> None:
        day_start, until = key[0], now + CLOCK_SKEW
        self.key, self.resets = key, self.resets + 1
        self.received_wm = q.newest_reading_received(engine)  # first: later writes are read again
        year = all_periods(now, tz)["year"]
        self.facility_rows = (q.facilities_by_kind(engine),
                              q.programme_since(engine, year.start.astimezone(tz).date()))
        self.facilities = {fid: (d, cap) for fid, d, cap in q.motor_facilities(engine)}
        self.newest = {fid: (t, occ) for fid, t, occ in q.newest_readings(engine, now - STALE_AFTER, until)}
        self.ahead = {(fid, t): occ for fid, t, occ in q.readings_observed_after(engine, until)}
        self.seen = Overlap(ident=lambda key: key[0])  # (facility, observed_at) by received_at
        self.hours: dict[str, list[dict]] = {}  # hour key -> rows of that hour
        self.dirty_from: dt.datetime | None = day_start
        self.until = until
        self._now_rows: tuple | None = None  # (rows, the oldest reading they count)

    def _take(self, fid: int, observed: dt.datetime, occupied: int) -> None:
        """A reading observed by now (`self.until`): the facility's newest if none is newer,
        and its hour of today's curve is read again."""
        if fid not in self.newest or observed >= self.newest[fid][0]:
            self.newest[fid] = (observed, occupied)
            self._now_rows = None
        assert self.key is not None  # set by _reset
        if observed >= self.key[0]:
            hour = floor_hour(observed)
            self.dirty_from = hour if self.dirty_from is None else min(self.dirty_from, hour)

    def _read_new(self, engine) -> None:
        """Readings written since the last poll: those past the watermark, then (one
        aggregate per received_at tells) any that committed late inside the overlap."""
        if self.received_wm is None:
            self._take_rows(q.readings_received_after(engine, None))
            return
        wm, after = self.received_wm, self.received_wm - RECEIVED_OVERLAP
        self.seen.forget_until(after)
        stamps = q.reading_stamps_after(engine, after)
        if any(stamp > wm for stamp, _, _ in stamps):
            self._take_rows(q.readings_received_after(engine, wm))
        first = self.seen.first_unseen(stamps, until=wm)
        if first is not None:
            self._take_rows(q.readings_received_after(engine, first - dt.timedelta(microseconds=1)))

    def _take_rows(self, rows) -> None:
        for fid, observed, occupied, received in rows:
            if self.seen.seen((fid, observed), received):
                continue
            self.seen.add((fid, observed), received)
            self.received_wm = max(self.received_wm or received, received)
            if observed > self.until:
                self.ahead[(fid, observed)] = occupied
            else:
                self.ahead.pop((fid, observed), None)
                self._take(fid, observed, occupied)

    def _advance(self, until: dt.datetime) -> None:
        """`now` moved on: readings stamped ahead that it reached now count."""
        for key in [k for k in self.ahead if k[1] <= until]:
            self._take(key[0], key[1], self.ahead.pop(key))
        self.until = until

    def _curve_rows(self, engine, now: dt.datetime) -> list[dict]:
        if self.dirty_from is not None:
            for key in [k for k in self.hours if parse_hour_key(k) >= self.dirty_from]:
                del self.hours[key]
            for r in q.occupancy_by_hour(engine, self.dirty_from, now + CLOCK_SKEW):
                self.hours.setdefault(r["hour"], []).append(r)
            self.dirty_from = None
        return [r for rs in self.hours.values() for r in rs]

    def __call__(self, engine, now: dt.datetime, tz: ZoneInfo) -> dict:
        key = (all_periods(now, tz)["today"].start, q.facilities_fingerprint(engine))
        if key != self.key or now + CLOCK_SKEW < self.until:  # (a clock set back: start again)
            self._reset(engine, key, now, tz)
        else:
            self._read_new(engine)
            self._advance(now + CLOCK_SKEW)
        return compute_parking(engine, now, tz, hour_rows=self._curve_rows(engine, now),
                               now_rows=self._occupancy_now(now - STALE_AFTER), facility_rows=self.facility_rows)

    def _occupancy_now(self, since: dt.datetime) -> list[dict]:
        """occupancy_now_rows, kept until a reading changes or the oldest one counted ages out."""
        if self._now_rows is None or since > self._now_rows[1]:
            counted = [t for fid, (t, _) in self.newest.items() if fid in self.facilities and t >= since]
            self._now_rows = (occupancy_now_rows(self.facilities, self.newest, since),
                              min(counted, default=dt.datetime.max.replace(tzinfo=dt.timezone.utc)))
        return self._now_rows[0]
