"""The poller's in-memory copy of visits and problems, kept up to date by watermark.

Enterprise KPIs need distinct enterprises per period, which hourly rollups cannot add
up. Visits and problems are few next to cases (a district makes about 10,000 visits a
year), so the poller keeps one small row per visit and per problem in numpy arrays and
answers each period with vectorised masks: the same rows, in the same shape, as the SQL
queries in datasource.kpi_queries, at a cost that does not touch the store.
"""
from __future__ import annotations

import datetime as dt
import time

import numpy as np

from dashboard.kpis.enterprise import compute_enterprise
from dashboard.metrics import report_rows_changed
from datasource import kpi_queries as q

OVERLAP = dt.timedelta(seconds=30)
VERIFY_EVERY = 600.0
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
NONE = np.iinfo(np.int64).min  # "no time" in the int64 microsecond arrays


def _us(t: dt.datetime | None) -> int:
    return NONE if t is None else (t - EPOCH) // dt.timedelta(microseconds=1)


class EnterpriseState:
    """A source for dashboard.kpis.enterprise: visits_summary, problems_raised,
    problems_resolved_in and problems_open over [start, end)."""

    def __init__(self, verify_every: float = VERIFY_EVERY):
        self.visits: dict[int, tuple] = {}     # id -> (enterprise, district, visited_us)
        self.problems: dict[int, tuple] = {}   # id -> (district, type, status, raised_us, resolved_us)
        self.wm_visits: dt.datetime | None = None
        self.wm_problems: dt.datetime | None = None
        self.loaded = False
        self.verify_every = verify_every
        self._verified_at = 0.0
        self._dirty = True
        self.last_changed = 0
        self.reloads = 0
        self._fingerprint = None  # of the enterprises table, for exclusive-grid memberships
        self.grids: list[dict] = []
        self.member_of: dict[int, int] = {}

    # -- keeping up with the store ----------------------------------------------------
    def _take(self, rows, store: dict, watermark: str, value) -> int:
        """Put rows (id first, updated_at last) into `store`; count the ones that differ."""
        changed = 0
        for row in rows:
            v = value(row)
            if store.get(row[0]) != v:
                store[row[0]] = v
                changed += 1
            if getattr(self, watermark) is None or row[-1] > getattr(self, watermark):
                setattr(self, watermark, row[-1])
        return changed

    def _take_visits(self, rows) -> int:
        # (id, enterprise, district, visited_at, updated_at)
        return self._take(rows, self.visits, "wm_visits", lambda r: (r[1], r[2], _us(r[3])))

    def _take_problems(self, rows) -> int:
        # (id, district, type, status, raised_at, resolved_at, updated_at)
        return self._take(rows, self.problems, "wm_problems",
                          lambda r: (r[1], r[2], r[3], _us(r[4]), _us(r[5])))

    def _reload(self, engine) -> None:
        self.visits, self.problems = {}, {}
        self.wm_visits = self.wm_problems = None
        self._take_visits(q.visit_rows(engine))
        self._take_problems(q.problem_rows(engine))
        self.loaded, self._dirty = True, True
        self._verified_at = time.monotonic()
        self.reloads += 1

    def _memberships(self, engine) -> None:
        fingerprint = q.enterprises_fingerprint(engine)
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self.grids = q.exclusive_grid_list(engine)
            self.member_of = q.memberships(engine)
            self._dirty = True

    def refresh(self, engine) -> int:
        """Read what changed since the watermarks; returns how many rows changed."""
        self._memberships(engine)
        if not self.loaded:
            self._reload(engine)
            return len(self.visits) + len(self.problems)
        if time.monotonic() - self._verified_at > self.verify_every:
            self._verified_at = time.monotonic()
            if q.enterprise_row_counts(engine) != (len(self.visits), len(self.problems)):
                self._reload(engine)  # rows were deleted: start again
                return len(self.visits) + len(self.problems)
        changed = self._take_visits(q.visit_rows(
            engine, self.wm_visits - OVERLAP if self.wm_visits else None))
        changed += self._take_problems(q.problem_rows(
            engine, self.wm_problems - OVERLAP if self.wm_problems else None))
        self._dirty = self._dirty or bool(changed)
        self.last_changed = changed
        return changed

    # -- arrays -------------------------------------------------------------------------
    def _arrays(self) -> None:
        if not self._dirty:
            return
        self.districts = sorted({v[1] for v in self.visits.values()} | {p[0] for p in self.problems.values()})
        self.types = sorted({p[1] for p in self.problems.values()})
        di = {d: i for i, d in enumerate(self.districts)}
        ti = {t: i for i, t in enumerate(self.types)}
        v = list(self.visits.values())
        ent = np.fromiter((x[0] for x in v), dtype=np.int64, count=len(v))
        vd = np.fromiter((di[x[1]] for x in v), dtype=np.int64, count=len(v))
        vt = np.fromiter((x[2] for x in v), dtype=np.int64, count=len(v))
        order = np.lexsort((vt, ent, vd))  # by district, then enterprise, then time
        self.v_ent, self.v_dist, self.v_t = ent[order], vd[order], vt[order]
        gi = {g["grid_id"]: i for i, g in enumerate(self.grids)}
        self.v_grid = np.fromiter((gi.get(self.member_of.get(int(e), -1), -1) for e in self.v_ent),
                                  dtype=np.int64, count=len(self.v_ent))
        self.g_members = np.bincount([gi[g] for g in self.member_of.values() if g in gi],
                                     minlength=len(self.grids))
        p = list(self.problems.values())
        self.p_dist = np.fromiter((di[x[0]] for x in p), dtype=np.int64, count=len(p))
        self.p_type = np.fromiter((ti[x[1]] for x in p), dtype=np.int64, count=len(p))
        self.p_open = np.fromiter((x[2] == "open" for x in p), dtype=bool, count=len(p))
        self.p_raised = np.fromiter((x[3] for x in p), dtype=np.int64, count=len(p))
        self.p_resolved = np.fromiter((x[4] for x in p), dtype=np.int64, count=len(p))
        self._dirty = False

    # -- the queries, answered from memory ------------------------------------------------
    def visits_summary(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        self._arrays()
        m = (self.v_t >= _us(start)) & (self.v_t < _us(end))
        d, e = self.v_dist[m], self.v_ent[m]
        first = np.ones(len(d), dtype=bool)  # rows are sorted: a new (district, enterprise) starts here
        first[1:] = (d[1:] != d[:-1]) | (e[1:] != e[:-1])
        n = len(self.districts)
        visits = np.bincount(d, minlength=n)
        distinct = np.bincount(d[first], minlength=n)
        return [{"district": self.districts[i], "visits": int(visits[i]), "enterprises": int(distinct[i])}
                for i in range(n) if visits[i]]

    def problems_raised(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        self._arrays()
        m = (self.p_raised >= _us(start)) & (self.p_raised < _us(end))
        nt = max(len(self.types), 1)
        key = self.p_dist[m] * nt + self.p_type[m]
        resolved = self.p_resolved[m] != NONE
        days = np.where(resolved, (self.p_resolved[m] - self.p_raised[m]) / 86_400e6, 0.0)
        size = len(self.districts) * nt
        raised = np.bincount(key, minlength=size)
        res = np.bincount(key, weights=resolved, minlength=size)
        rdays = np.bincount(key, weights=days, minlength=size)
        return [{"district": self.districts[k // nt], "type": self.types[k % nt], "raised": int(raised[k]),
                 "resolved": int(res[k]), "resolve_days": float(rdays[k])}
                for k in np.flatnonzero(raised)]

    def problems_resolved_in(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        self._arrays()
        m = (self.p_resolved >= _us(start)) & (self.p_resolved < _us(end))
        counts = np.bincount(self.p_dist[m], minlength=len(self.districts))
        return [{"district": self.districts[i], "resolved": int(c)} for i, c in enumerate(counts) if c]

    def exclusive_grids(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        self._arrays()
        m = (self.v_t >= _us(start)) & (self.v_t < _us(end)) & (self.v_grid >= 0)
        grid, ent = self.v_grid[m], self.v_ent[m]
        visits = np.bincount(grid, minlength=len(self.grids))
        pairs = np.unique(grid * (int(ent.max()) + 1 if len(ent) else 1) + ent)  # distinct (grid, enterprise)
        distinct = np.bincount(pairs // (int(ent.max()) + 1) if len(ent) else pairs, minlength=len(self.grids))
        return [{**g, "members": int(self.g_members[i]), "visits": int(visits[i]),
                 "enterprises_visited": int(distinct[i])} for i, g in enumerate(self.grids)]

    def problems_open(self) -> list[dict]:
        self._arrays()
        nt = max(len(self.types), 1)
        key = self.p_dist[self.p_open] * nt + self.p_type[self.p_open]
        counts = np.bincount(key, minlength=len(self.districts) * nt)
        return [{"district": self.districts[k // nt], "type": self.types[k % nt], "open": int(counts[k])}
                for k in np.flatnonzero(counts)]


class IncrementalEnterprise(EnterpriseState):
    """Callable section: (engine, now, tz) -> the "enterprise" payload from memory."""

    def __call__(self, engine, now: dt.datetime, tz) -> dict:
        report_rows_changed(self.refresh(engine))
        return compute_enterprise(engine, now, tz, source=self)
