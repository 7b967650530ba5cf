"""The live simulator: moves the demo city forward in real time.

Each tick (about a second) it writes, in one short transaction: new case reports,
lifecycle moves of recent open cases (voiding, rework and extension included),
enterprise visits and problems, and - every few tens of seconds - one occupancy
reading per parking facility. It is the store's only writer in the demo, which keeps
SQLite's single-writer rule.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select, update

from datasource import schema
from datasource.demo.cases import (CENTER, PROBLEM_DEPT, PROBLEM_TYPES, PROBLEM_WEIGHTS, PROBLEM_ZH,
                                   SOURCE_ACTOR, VERIFIER, intake_per_second)
from datasource.demo.city import load_profile, occupancy_curve

log = logging.getLogger(__name__)

# (from status, to status, mean seconds a case spends in the from-status)
MOVES = (
    ("reported", "filed", 60),
    ("filed", "dispatched", 90),
    ("dispatched", "handled", 900),
    ("rework", "handled", 900),
    ("handled", "verified", 180),
    ("verified", "closed", 60),
)
# at the city's own pace (no rate given) cases dwell as long as in the seeded history,
# so the cases in flight when the simulator starts neither freeze nor close in a burst
CITY_MOVES = (
    ("reported", "filed", 12 * 60),
    ("filed", "dispatched", 8 * 60),
    ("dispatched", "handled", 5 * 3600),
    ("rework", "handled", 5 * 3600),
    ("handled", "verified", 90 * 60),
    ("verified", "closed", 40 * 60),
)
SLOW_EVERY = 8      # one case in 8 is slow to handle (x20), so some run past their deadline
MIN_DWELL = 5       # seconds a case stays in a status at least
RECENT = dt.timedelta(days=2)  # only recent cases move; the historic backlog stays as seeded


@dataclass
class TickReport:
    reported: int = 0
    moved: int = 0
    visits: int = 0
    problems: int = 0
    resolved: int = 0
    readings: int = 0


class Simulator:
    def __init__(self, engine: Engine, *, rate: float | None = None, occupancy_seconds: float = 60.0,
                 tz: str = "Asia/Shanghai", seed: int | None = None, moves_per_second: float | None = None):
        """`rate`: new reports a second city-wide, with quick lifecycle moves (tests and
        benchmarks); None: the city's own pace, the intake of its profile by hour, weekday
        and season (the seeded history's), and dwell times like the history's.
        `moves_per_second` caps the lifecycle moves (on average): without it every recent
        open case moves with its dwell-time chance, so a bigger store moves more cases a tick;
        benchmarks set it to write the same amount into stores of every size."""
        self.engine = engine
        self.rate = rate
        self.moves = MOVES if rate is not None else CITY_MOVES
        self.moves_per_second = moves_per_second
        self.occupancy_seconds = occupancy_seconds
        self.tz = tz
        self.rng = np.random.default_rng(seed)
        self.profile = load_profile()
        self._last_readings: float | None = None
        self._counter = 0
        self._load_city()

    def _load_city(self) -> None:
        with self.engine.connect() as conn:
            self.districts = [r[0] for r in conn.execute(
                select(schema.District.code).order_by(schema.District.sort_order))]
            cats = conn.execute(select(schema.CaseCategory).where(
                schema.CaseCategory.parent_code.is_not(None))).all()
            grids = conn.execute(select(schema.Grid.id, schema.Grid.district_code,
                                        schema.Grid.street_id, schema.Grid.center_lon,
                                        schema.Grid.center_lat, schema.Grid.name_zh)
                                 .where((schema.Grid.level == 2) | (schema.Grid.kind == "exclusive"))).all()
            self.enterprises = conn.execute(select(schema.Enterprise.id, schema.Enterprise.district_code,
                                                   schema.Enterprise.grid_id,
                                                   schema.Enterprise.exclusive_grid_id)).all()
            self.facilities = conn.execute(select(schema.ParkingFacility.id, schema.ParkingFacility.kind,
                                                  schema.ParkingFacility.capacity)).all()
            streets = dict(conn.execute(select(schema.Street.id, schema.Street.name_zh)).all())
        if not self.districts or not cats or not grids:
            raise RuntimeError("the store has no city to simulate: run `python -m dashboard seed` first")
        self.categories = [c[0] for c in cats]
        weights = np.array([self.profile["districts"].get(d, {"cases_per_year": 1})["cases_per_year"]
                            for d in self.districts], dtype=float)
        self.district_p = weights / weights.sum()
        self.grids_by_district = {d: [g for g in grids if g.district_code == d] for d in self.districts}
        self.street_names = streets
        self.ent_by_district = {d: [e for e in self.enterprises if e.district_code == d]
                                for d in self.districts}

    # -- one tick --------------------------------------------------------------------
    def tick(self, now: dt.datetime, seconds: float) -> TickReport:
        rep = TickReport()
        expected = self.rate_at(now) * seconds
        with self.engine.begin() as conn:
            rep.reported = self._report(conn, now, int(self.rng.poisson(expected)))
            budget = None if self.moves_per_second is None else \
                int(self.rng.poisson(self.moves_per_second * seconds))
            # under a cap, no stage goes first every tick
            order = range(len(self.moves)) if budget is None else self.rng.permutation(len(self.moves))
            for i in order:
                frm, to, mean_s = self.moves[i]
                moved = self._advance(conn, now, frm, to, min(1.0, seconds / mean_s), budget)
                rep.moved += moved
                budget = None if budget is None else budget - moved
            ratio = sum(p["visits_per_year"] for p in self.profile["districts"].values()) / \
                sum(p["cases_per_year"] for p in self.profile["districts"].values())
            rep.visits, rep.problems = self._visits(conn, now, int(self.rng.poisson(expected * ratio)))
            rep.resolved = self._resolve(conn, now, int(self.rng.poisson(expected * ratio * 0.33)))
            if self._last_readings is None or \
                    now.timestamp() - self._last_readings >= self.occupancy_seconds:
                rep.readings = self._readings(conn, now)
                self._last_readings = now.timestamp()
        return rep

    def rate_at(self, now: dt.datetime) -> float:
        """New reports a second at `now`."""
        if self.rate is not None:
            return self.rate
        per_year = sum(p["cases_per_year"] for p in self.profile["districts"].values())
        return intake_per_second(per_year, now.astimezone(ZoneInfo(self.tz)))

    def _report(self, conn, now: dt.datetime, n: int) -> int:
        if n <= 0:
            return 0
        cats = conn.execute(select(schema.CaseCategory.code, schema.CaseCategory.name_zh,
                                   schema.CaseCategory.department)
                            .where(schema.CaseCategory.code.in_(self.categories))).all()
        sources = list(self.profile["sources"])
        sp = np.array(list(self.profile["sources"].values()))
        rows = []
        for _ in range(n):
            d = self.districts[self.rng.choice(len(self.districts), p=self.district_p)]
            g = self.grids_by_district[d][int(self.rng.integers(len(self.grids_by_district[d])))]
            c = cats[int(self.rng.integers(len(cats)))]
            src = sources[self.rng.choice(len(sources), p=sp / sp.sum())]
            street = self.street_names.get(g.street_id, "")
            self._counter += 1
            rows.append({
                "external_id": f"ZZ{d}-L{int(now.timestamp() * 1000)}-{self._counter}",
                "source": src, "category_code": c.code, "district_code": d,
                "street_id": g.street_id, "grid_id": g.id,
                "lat": round(g.center_lat + self.rng.normal(0, 0.0025), 6),
                "lon": round(g.center_lon + self.rng.normal(0, 0.003), 6),
                "address": f"{street}{g.name_zh}附近",
                "summary": f"{c.name_zh}：{street}群众反映，请及时处置",
                "department": c.department, "status": "reported", "reported_at": now,
                "rework_count": 0, "extended": False, "voided": False, "updated_at": now,
            })
        conn.execute(insert(schema.Case), rows)
        ids = conn.execute(select(schema.Case.id, schema.Case.source).where(
            schema.Case.external_id.in_([r["external_id"] for r in rows]))).all()
        conn.execute(insert(schema.CaseEvent), [
            {"case_id": i, "from_status": None, "to_status": "reported", "at": now,
             "actor": SOURCE_ACTOR.get(src)} for i, src in ids])
        return n

    def _advance(self, conn, now: dt.datetime, frm: str, to: str, p: float, limit: int | None = None) -> int:
        """Move each eligible recent case on with probability p (slow cases p/20); at most
        `limit` of them when given."""
        C = schema.Case
        eligible = conn.execute(
            select(C.id, C.category_code, C.department, C.deadline_at, C.rework_count)
            .where(C.status == frm, C.reported_at >= now - RECENT,
                   C.updated_at <= now - dt.timedelta(seconds=MIN_DWELL))
            .limit(5000)).all()
        if not eligible:
            return 0
        slow = np.array([c.id % SLOW_EVERY == 0 and frm in ("dispatched", "rework") for c in eligible])
        chance = np.where(slow, p / 20, p)
        picked = [c for c, go in zip(eligible, self.rng.random(len(eligible)) < chance) if go]
        if limit is not None and len(picked) > limit:
            picked = [picked[i] for i in sorted(self.rng.choice(len(picked), max(limit, 0), replace=False))]
        if not picked:
            return 0
        limits = dict(conn.execute(select(schema.CaseCategory.code, schema.CaseCategory.time_limit_hours)).all())
        events = []
        for case in picked:
            target, values, actor, note = to, {}, CENTER, None
            if frm == "reported":
                if self.rng.random() < self.profile["void_share"]:
                    target, values = "voided", {"voided": True}
                else:
                    values = {"filed_at": now, "deadline_at": now + dt.timedelta(
                        hours=limits.get(case.category_code) or 24)}
            elif to == "dispatched":
                values = {"dispatched_at": now}
                if self.rng.random() < self.profile["extension_share"] * 3:
                    limit = dt.timedelta(hours=limits.get(case.category_code) or 24)
                    values.update(extended=True, deadline_at=(case.deadline_at or now) + limit)
                    note = "延期"
            elif to == "handled":
                values, actor = {"handled_at": now}, case.department
            elif to == "verified":
                actor = VERIFIER
                if self.rng.random() < self.profile["rework_share"] * 3:
                    target, values = "rework", {"rework_count": case.rework_count + 1}
                else:
                    values = {"verified_at": now}
            elif to == "closed":
                values = {"closed_at": now}
            conn.execute(update(schema.Case).where(schema.Case.id == case.id)
                         .values(status=target, updated_at=now, **values))
            events.append({"case_id": case.id, "from_status": frm, "to_status": target, "at": now,
                           "actor": actor, "note": note})
        conn.execute(insert(schema.CaseEvent), events)
        return len(picked)

    def _visits(self, conn, now: dt.datetime, n: int) -> tuple[int, int]:
        problems = 0
        for _ in range(n):
            d = self.districts[self.rng.choice(len(self.districts), p=self.district_p)]
            ent = self.ent_by_district[d][int(self.rng.integers(len(self.ent_by_district[d])))]
            self._counter += 1
            stamp = f"{int(now.timestamp() * 1000)}-{self._counter}"
            visit_id = conn.execute(insert(schema.EnterpriseVisit).values(
                external_id=f"V{d}L{stamp}", enterprise_id=ent.id, district_code=d,
                grid_id=ent.exclusive_grid_id or ent.grid_id, visited_at=now,
                liaison=f"网格联络员{ent.grid_id % 97 + 1:02d}号", note="走访了解经营情况",
                updated_at=now).returning(schema.EnterpriseVisit.id)).scalar_one()
            if self.rng.random() < self.profile["problems_per_visit"]:
                ptype = str(self.rng.choice(PROBLEM_TYPES, p=PROBLEM_WEIGHTS))
                conn.execute(insert(schema.EnterpriseProblem).values(
                    external_id=f"Q{d}L{stamp}", enterprise_id=ent.id, visit_id=visit_id,
                    district_code=d, problem_type=ptype, summary=PROBLEM_ZH[ptype],
                    department=PROBLEM_DEPT[ptype], status="open", raised_at=now, updated_at=now))
                problems += 1
        return n, problems

    def _resolve(self, conn, now: dt.datetime, n: int) -> int:
        if n <= 0:
            return 0
        P = schema.EnterpriseProblem
        ids = [r[0] for r in conn.execute(select(P.id).where(
            P.status == "open", P.raised_at <= now - dt.timedelta(seconds=60))
            .order_by(P.raised_at).limit(n))]
        if ids:
            conn.execute(update(P).where(P.id.in_(ids)).values(status="resolved", resolved_at=now,
                                                               updated_at=now))
        return len(ids)

    def _readings(self, conn, now: dt.datetime) -> int:
        if not self.facilities:
            return 0
        local = pd.Timestamp(now).tz_convert(self.tz)
        kind = np.array([f.kind for f in self.facilities])
        cap = np.array([f.capacity for f in self.facilities])
        hour = np.full(len(kind), local.hour + local.minute / 60)
        share = occupancy_curve(kind, hour, np.full(len(kind), local.weekday()))
        share = np.clip(share + self.rng.normal(0, 0.05, len(kind)), 0, 1)
        observed = now.replace(microsecond=0)
        keep = self.rng.random(len(kind)) >= 0.02  # a few sensors miss a reading
        rows = [{"facility_id": f.id, "observed_at": observed, "occupied": int(round(s * c)),
                 "received_at": now}
                for f, s, c, k in zip(self.facilities, share, cap, keep) if k]
        conn.execute(insert(schema.OccupancyReading), rows)
        return len(rows)

    # -- the loop --------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, interval: float = 1.0,
            max_ticks: int | None = None) -> None:
        stop = stop or threading.Event()
        last = time.monotonic()
        ticks = 0
        while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
            start = time.monotonic()
            try:
                rep = self.tick(dt.datetime.now(dt.timezone.utc), max(start - last, interval))
                log.debug("tick %s", rep)
            except Exception:  # a failed tick is logged and the next one tries again
                log.exception("simulator tick failed")
            last = start
            ticks += 1
            stop.wait(max(0.0, interval - (time.monotonic() - start)))
