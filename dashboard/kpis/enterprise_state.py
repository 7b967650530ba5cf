"""The poller's in-memory copy of visits and problems, kept up to date by watermark.

Enterprise KPIs need distinct enterprises per period, which hourly rollups cannot add
up. Visits and problems are few next to cases (a district makes about 10,000 visits a
year), so the poller keeps one small row per visit and per problem in numpy arrays and
answers each period from them: the same rows, in the same shape, as the SQL queries in
datasource.kpi_queries, at a cost that does not touch the store.

Visits are kept in time order, each with the time of the previous visit to the same
enterprise (and district): a period is a slice, and a visit is its enterprise's first in
the period exactly when that previous visit is older than the period's start, so
distinct enterprises are counted without sorting or masking every visit.
"""
from __future__ import annotations

import datetime as dt
import time

import numpy as np

from dashboard.kpis.enterprise import compute_enterprise
from dashboard.metrics import report_rows_changed
from dashboard.periods import HOUR_US, epoch_us
from datasource import kpi_queries as q

OVERLAP = dt.timedelta(seconds=30)
VERIFY_EVERY = 600.0
NONE = np.iinfo(np.int64).min  # "no time" in the int64 microsecond arrays


# a visit inserted before the newest one touches every visit a few times (1.5 ms at 370k
# visits): past this many visit-touches in one poll, sorting them all once is cheaper
INSERT_BUDGET = 50_000_000
LOG_AT_MOST = 20_000  # logged change times kept before the arrays are built afresh
HEADS_KEPT = 32  # windows whose whole hours' figures are kept (a poll asks about 8)


def _us(t: dt.datetime | None) -> int:
    return NONE if t is None else epoch_us(t)


def _previous(times: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """For rows in time order: the time of the previous row with the same keys (NONE for
    the first)."""
    order = np.lexsort((np.arange(len(times)),) + keys[::-1])  # by keys, then by position
    same = np.ones(max(len(order) - 1, 0), dtype=bool)
    for k in keys:
        same &= k[order[1:]] == k[order[:-1]]
    prev = np.full(len(times), NONE, dtype=np.int64)
    prev[order[1:][same]] = times[order[:-1][same]]
    return prev


def _link(times: np.ndarray, prev: np.ndarray, same: np.ndarray, at: int, t: int) -> int:
    """A row of time `t` goes in at position `at` among the rows `same` (one enterprise):
    the next of them now follows it; returns the time of the one before it."""
    after = np.flatnonzero(same[at:])
    if len(after):
        prev[at + after[0]] = t
    before = np.flatnonzero(same[:at])
    return int(times[before[-1]]) if len(before) else NONE


class EnterpriseState:
    """A source for dashboard.kpis.enterprise: visits_summary, problems_raised,
    problems_resolved_in and problems_open over [start, end)."""

    # set by _build (the problem times by name, with setattr)
    raised_sorted: np.ndarray  # every problem's raised time, sorted
    raised_order: np.ndarray  # ... and the problems' positions in that order
    resolved_sorted: np.ndarray
    resolved_order: np.ndarray
    _log_np: tuple[np.ndarray, np.ndarray]

    def __init__(self, verify_every: float = VERIFY_EVERY):
        self.visits: dict[int, tuple] = {}     # id -> (enterprise, district, visited_us)
        self.problems: dict[int, tuple] = {}   # id -> (district, type, status, raised_us, resolved_us)
        self.wm_visits: dt.datetime | None = None
        self.wm_problems: dt.datetime | None = None
        self.loaded = False
        self.verify_every = verify_every
        self._verified_at = 0.0
        self._rebuild = True          # arrays must be built from the dicts
        self._new_visits: list = []   # ids to insert into the built arrays
        self._new_problems: list = []
        self._changed_problems: list = []
        self.builds = 0
        self.last_changed = 0
        self.reloads = 0
        self.generation = 0  # moves when the arrays are built again (every answer may change)
        self._log_t: list[int] = []  # times touched by each change since the build, in order
        self._log_seq: list[int] = []  # ... and each change's number
        self._seq = 0
        self.memo: dict = {}  # period name -> (key, block) for compute_enterprise
        self._last: tuple = (None, None)  # the last window's figures
        self._fingerprint: tuple | None = None  # of the enterprises table, for exclusive-grid memberships
        self.grids: list[dict] = []
        self.member_of: dict[int, int] = {}
        self.counts: list[dict] = []

    # -- keeping up with the store ----------------------------------------------------
    def _take(self, rows, store: dict, watermark: str, value, new: list, modified: list | None) -> int:
        """Put rows (id first, updated_at last) into `store`; count the ones that differ.
        New ids go to `new`, changed ones to `modified` (or, without it, force a rebuild)."""
        changed = 0
        for row in rows:
            v = value(row)
            old = store.get(row[0])
            if old != v:
                if old is None:
                    new.append(row[0])
                elif modified is not None:
                    modified.append(row[0])
                else:
                    self._rebuild = True
                store[row[0]] = v
                changed += 1
            if getattr(self, watermark) is None or row[-1] > getattr(self, watermark):
                setattr(self, watermark, row[-1])
        return changed

    def _take_visits(self, rows) -> int:
        # (id, enterprise, district, visited_at in us, updated_at)
        return self._take(rows, self.visits, "wm_visits", lambda r: (r[1], r[2], r[3]), self._new_visits, None)

    def _take_problems(self, rows) -> int:
        # (id, district, type, status, raised_at and resolved_at in us, updated_at)
        return self._take(rows, self.problems, "wm_problems",
                          lambda r: (r[1], r[2], r[3], r[4], NONE if r[5] is None else r[5]), self._new_problems,
                          self._changed_problems)

    def _reload(self, engine) -> None:
        visits, problems = q.visit_rows(engine), q.problem_rows(engine)
        # (the same values as _take_visits / _take_problems, built at once: a reload reads every row)
        self.visits = {r[0]: (r[1], r[2], r[3]) for r in visits}
        self.problems = {r[0]: (r[1], r[2], r[3], r[4], NONE if r[5] is None else r[5]) for r in problems}
        self.wm_visits = max((r[-1] for r in visits), default=None)
        self.wm_problems = max((r[-1] for r in problems), default=None)
        self._new_visits, self._new_problems, self._changed_problems = [], [], []
        self.loaded, self._rebuild = True, True
        self._verified_at = time.monotonic()
        self.reloads += 1

    def _memberships(self, engine) -> None:
        fingerprint = q.enterprises_fingerprint(engine)
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self.grids = q.exclusive_grid_list(engine)
            self.member_of = q.memberships(engine)
            self.counts = q.enterprise_counts(engine)
            self._rebuild = True

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
        self.last_changed = changed
        return changed

    # -- arrays -------------------------------------------------------------------------
    def _arrays(self) -> None:
        """Build the arrays, or bring them up to date with the rows added since: a poll
        inserts its few new visits at their sorted place and appends its new problems,
        instead of rebuilding arrays of every visit and problem."""
        if not self._rebuild and (
                any(self.visits[i][1] not in self._di for i in self._new_visits)
                or any(self.problems[i][0] not in self._di or self.problems[i][1] not in self._ti
                       for i in self._new_problems + self._changed_problems)):
            self._rebuild = True  # a district or problem type not seen before
        if not (self._rebuild or self._new_visits or self._new_problems or self._changed_problems):
            return
        if self._rebuild or len(self._log_t) > LOG_AT_MOST:
            self._build()
        else:
            self._insert_visits(self._new_visits)
            self._append_problems(self._new_problems)
            self._update_problems(self._changed_problems)
        self._new_visits, self._new_problems, self._changed_problems = [], [], []
        self._rebuild = False

    def _touch(self, *times: int) -> None:
        """Log a change at these times: windows that hold one of them answer differently."""
        self._seq += 1
        for t in times:
            if t != NONE:
                self._log_t.append(t)
                self._log_seq.append(self._seq)

    def window_key(self, start: dt.datetime, end: dt.datetime) -> tuple:
        """What every answer for [start, end) depends on: the build, the start (first visits
        are those whose previous visit is older), how many visits, raised and resolved
        problems fall inside, and the last change that touched a time inside. A change
        elsewhere (a visit now, for last month's window) leaves the key as it was, and so
        does a moving end that passes nothing. The same key gives the same answers."""
        self._arrays()
        return self._key(_us(start), _us(end))

    def _key(self, s: int, e: int) -> tuple:
        inside = [int(np.searchsorted(a, e, side="left") - np.searchsorted(a, s, side="left"))
                  for a in (self.v_t, self.raised_sorted, self.resolved_sorted)]
        if len(self._log_np[0]) != len(self._log_t):  # the log as arrays, once per change
            self._log_np = (np.array(self._log_t, dtype=np.int64), np.array(self._log_seq, dtype=np.int64))
        log_t, log_seq = self._log_np
        hit = (log_t >= s) & (log_t < e)
        return (self.generation, s, *inside, int(log_seq[hit].max()) if hit.any() else 0)

    def _grid_of(self, ent: np.ndarray) -> np.ndarray:
        """Index (in self.grids) of each enterprise's exclusive grid, -1 for none."""
        pos = np.clip(np.searchsorted(self.m_ids, ent), 0, max(len(self.m_ids) - 1, 0))
        if not len(self.m_ids):
            return np.full(len(ent), -1, dtype=np.int64)
        return np.where(self.m_ids[pos] == ent, self.m_grid[pos], -1)

    # the visit columns: rows of one buffer with room to grow, so that a visit appended
    # in time order costs a write, not a copy of every column
    v_id = property(lambda self: self._vbuf[0, :self._vn])
    v_t = property(lambda self: self._vbuf[1, :self._vn])
    v_ent = property(lambda self: self._vbuf[2, :self._vn])
    v_dist = property(lambda self: self._vbuf[3, :self._vn])
    v_grid = property(lambda self: self._vbuf[4, :self._vn])
    v_prev_de = property(lambda self: self._vbuf[5, :self._vn])  # previous visit, same district and enterprise
    v_prev_e = property(lambda self: self._vbuf[6, :self._vn])  # previous visit, same enterprise

    def _build(self) -> None:
        self.builds += 1
        self.generation += 1
        self._log_t, self._log_seq = [], []
        self._log_np = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        self._heads: dict[int, tuple] = {}
        self.districts = sorted({v[1] for v in self.visits.values()} | {p[0] for p in self.problems.values()})
        self.types = sorted({p[1] for p in self.problems.values()})
        self._di = {d: i for i, d in enumerate(self.districts)}
        self._ti = {t: i for i, t in enumerate(self.types)}
        gi = {g["grid_id"]: i for i, g in enumerate(self.grids)}
        members = sorted((e, gi[g]) for e, g in self.member_of.items() if g in gi)
        self.m_ids = np.array([e for e, _ in members], dtype=np.int64)
        self.m_grid = np.array([g for _, g in members], dtype=np.int64)
        self.g_members = np.bincount(self.m_grid, minlength=len(self.grids))
        v = list(self.visits.values())
        n = len(v)
        ids = np.fromiter(self.visits, dtype=np.int64, count=n)
        ent = np.fromiter((x[0] for x in v), dtype=np.int64, count=n)
        vd = np.fromiter((self._di[x[1]] for x in v), dtype=np.int64, count=n)
        vt = np.fromiter((x[2] for x in v), dtype=np.int64, count=n)
        order = np.lexsort((ids, vt))  # by time, ties by id
        self._vbuf, self._vn = np.empty((7, max(2 * n, 1024)), dtype=np.int64), n
        self._vbuf[0, :n], self._vbuf[1, :n], self._vbuf[2, :n], self._vbuf[3, :n] = \
            ids[order], vt[order], ent[order], vd[order]
        self._vbuf[4, :n] = self._grid_of(self.v_ent)
        self._vbuf[5, :n] = _previous(self.v_t, self.v_dist, self.v_ent)
        self._vbuf[6, :n] = _previous(self.v_t, self.v_ent)
        # the latest visit time of each enterprise (and district): the previous visit of
        # one appended after every other
        self._last_e = dict(zip(self.v_ent.tolist(), self.v_t.tolist()))  # later visits overwrite
        self._last_de = dict(zip(zip(self.v_dist.tolist(), self.v_ent.tolist()), self.v_t.tolist()))
        self.p_pos = {pid: i for i, pid in enumerate(self.problems)}
        p = list(self.problems.values())
        self.p_dist = np.fromiter((self._di[x[0]] for x in p), dtype=np.int64, count=len(p))
        self.p_type = np.fromiter((self._ti[x[1]] for x in p), dtype=np.int64, count=len(p))
        self.p_open = np.fromiter((x[2] == "open" for x in p), dtype=bool, count=len(p))
        self.p_raised = np.fromiter((x[3] for x in p), dtype=np.int64, count=len(p))
        self.p_resolved = np.fromiter((x[4] for x in p), dtype=np.int64, count=len(p))
        # each problem time sorted, with the problem's position: a window is a slice
        positions = np.arange(len(p), dtype=np.int64)
        for name, times in (("raised", self.p_raised), ("resolved", self.p_resolved)):
            order = np.lexsort((positions, times))
            setattr(self, f"{name}_sorted", times[order])
            setattr(self, f"{name}_order", order.astype(np.int64))

    def _insert_visits(self, ids: list) -> None:
        if len(ids) * len(self.v_t) > INSERT_BUDGET:  # a bulk load
            self._build()
            return
        for vid in ids:
            ent, district, t = self.visits[vid]
            d = self._di[district]
            n = self._vn
            lo, hi = np.searchsorted(self.v_t, t, side="left"), np.searchsorted(self.v_t, t, side="right")
            at = int(lo + np.searchsorted(self.v_id[lo:hi], vid))  # time order, ties by id
            if at == n:  # after every other visit: the common case
                prev_de, prev_e = self._last_de.get((d, ent), NONE), self._last_e.get(ent, NONE)
            else:
                prev_de = _link(self.v_t, self.v_prev_de, (self.v_dist == d) & (self.v_ent == ent), at, t)
                prev_e = _link(self.v_t, self.v_prev_e, self.v_ent == ent, at, t)
            if n == self._vbuf.shape[1]:
                grown = np.empty((7, 2 * n), dtype=np.int64)
                grown[:, :n] = self._vbuf[:, :n]
                self._vbuf = grown
            self._vbuf[:, at + 1:n + 1] = self._vbuf[:, at:n].copy()  # the later visits move up one
            self._vbuf[:, at] = (vid, t, ent, d, self._grid_of(np.array([ent]))[0], prev_de, prev_e)
            self._vn = n + 1
            self._last_e[ent] = max(t, self._last_e.get(ent, NONE))
            self._last_de[(d, ent)] = max(t, self._last_de.get((d, ent), NONE))
            self._touch(t)  # (a visit before a window changes nothing in it: see window_key)

    def _update_problems(self, ids: list) -> None:
        for pid in ids:
            i, (district, ptype, status, raised, resolved) = self.p_pos[pid], self.problems[pid]
            self._touch(int(self.p_raised[i]), int(self.p_resolved[i]), raised, resolved)
            self._sorted_times(i, -1)
            self.p_dist[i], self.p_type[i] = self._di[district], self._ti[ptype]
            self.p_open[i], self.p_raised[i], self.p_resolved[i] = status == "open", raised, resolved
            self._sorted_times(i, +1)

    def _sorted_times(self, i: int, sign: int) -> None:
        """Put problem i's times into (or, sign -1, take them out of) the sorted times and
        their positions (ordered by time, then position)."""
        for name, times in (("raised", self.p_raised), ("resolved", self.p_resolved)):
            values, order, t = getattr(self, f"{name}_sorted"), getattr(self, f"{name}_order"), int(times[i])
            lo, hi = int(np.searchsorted(values, t, side="left")), int(np.searchsorted(values, t, side="right"))
            if sign > 0:
                at = lo + int(np.searchsorted(order[lo:hi], i))
                setattr(self, f"{name}_sorted", np.insert(values, at, t))
                setattr(self, f"{name}_order", np.insert(order, at, i))
            else:
                at = lo + int(np.flatnonzero(order[lo:hi] == i)[0])
                setattr(self, f"{name}_sorted", np.delete(values, at))
                setattr(self, f"{name}_order", np.delete(order, at))

    def _append_problems(self, ids: list) -> None:
        if not ids:
            return
        rows = [self.problems[i] for i in ids]
        first = len(self.p_dist)
        for i, pid in enumerate(ids):
            self.p_pos[pid] = first + i
        self.p_dist = np.append(self.p_dist, [self._di[r[0]] for r in rows])
        self.p_type = np.append(self.p_type, [self._ti[r[1]] for r in rows])
        self.p_open = np.append(self.p_open, [r[2] == "open" for r in rows])
        self.p_raised = np.append(self.p_raised, np.array([r[3] for r in rows], dtype=np.int64))
        self.p_resolved = np.append(self.p_resolved, np.array([r[4] for r in rows], dtype=np.int64))
        for i, r in enumerate(rows):
            self._sorted_times(first + i, +1)
            self._touch(r[3], r[4])

    # -- the queries, answered from memory ------------------------------------------------
    def _count(self, since: int, a: int, b: int) -> dict[str, np.ndarray]:
        """Every figure of the rows in [a, b), a visit counted as its enterprise's first
        when its previous visit is older than `since`: figures that add up over adjacent
        spans of one window."""
        window = slice(*np.searchsorted(self.v_t, [a, b], side="left"))
        nd, ng, nt = len(self.districts), len(self.grids) + 1, max(len(self.types), 1)
        d, grid = self.v_dist[window], self.v_grid[window] + 1  # grid bin 0: no exclusive grid
        raised = self.raised_order[slice(*np.searchsorted(self.raised_sorted, [a, b], side="left"))]
        resolved_in = self.resolved_order[slice(*np.searchsorted(self.resolved_sorted, [a, b], side="left"))]
        key = self.p_dist[raised] * nt + self.p_type[raised]
        done = self.p_resolved[raised] != NONE
        days = np.where(done, (self.p_resolved[raised] - self.p_raised[raised]) / 86_400e6, 0.0)
        return {"visits": np.bincount(d, minlength=nd),
                "enterprises": np.bincount(d[self.v_prev_de[window] < since], minlength=nd),
                # an enterprise is in one grid: its first visit in the window counts it there
                "grid_visits": np.bincount(grid, minlength=ng),
                "grid_enterprises": np.bincount(grid[self.v_prev_e[window] < since], minlength=ng),
                "raised": np.bincount(key, minlength=nd * nt),
                "resolved": np.bincount(key, weights=done, minlength=nd * nt),
                "resolve_days": np.bincount(key, weights=days, minlength=nd * nt),
                "resolved_in": np.bincount(self.p_dist[resolved_in], minlength=nd)}

    def _window(self, start: dt.datetime, end: dt.datetime) -> dict[str, np.ndarray]:
        """The figures of [start, end): those of its whole hours, kept while their key holds
        (see window_key), plus those of the part-hour at its end. A current window whose
        end moves and takes in each new visit recounts that hour, not the year."""
        self._arrays()
        s, e = _us(start), _us(end)
        m = e - (e % HOUR_US)
        if (s, e, self._seq, self.generation) == self._last[0]:
            return self._last[1]  # the four questions about one window come in a row
        if m <= s:
            counts = self._count(s, s, e)
        else:
            key = (m, self._key(s, m))
            head = self._heads.get(s)
            if head is None or head[0] != key:
                head = self._heads[s] = (key, self._count(s, s, m))
                while len(self._heads) > HEADS_KEPT:
                    del self._heads[next(iter(self._heads))]  # the oldest
            counts = {k: v + w for (k, v), w in zip(head[1].items(), self._count(s, m, e).values())}
        self._last = ((s, e, self._seq, self.generation), counts)
        return counts

    def visits_summary(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        c = self._window(start, end)
        visits, distinct = c["visits"], c["enterprises"]
        return [{"district": self.districts[i], "visits": int(visits[i]), "enterprises": int(distinct[i])}
                for i in range(len(self.districts)) if visits[i]]

    def problems_raised(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        c = self._window(start, end)
        nt = max(len(self.types), 1)
        raised, res, rdays = c["raised"], c["resolved"], c["resolve_days"]
        return [{"district": self.districts[k // nt], "type": self.types[k % nt], "raised": int(raised[k]),
                 "resolved": int(res[k]), "resolve_days": float(rdays[k])}
                for k in np.flatnonzero(raised)]

    def problems_resolved_in(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        counts = self._window(start, end)["resolved_in"]
        return [{"district": self.districts[i], "resolved": int(c)} for i, c in enumerate(counts) if c]

    def exclusive_grids(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        c = self._window(start, end)
        visits, distinct = c["grid_visits"][1:], c["grid_enterprises"][1:]
        return [{**g, "members": int(self.g_members[i]), "visits": int(visits[i]),
                 "enterprises_visited": int(distinct[i])} for i, g in enumerate(self.grids)]

    def enterprise_counts(self) -> list[dict]:
        """Enterprises per district, read again when the enterprises' fingerprint moves."""
        return self.counts

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
        return compute_enterprise(engine, now, tz, source=self, memo=self.memo)
