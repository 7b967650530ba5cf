"""What the browsing pages show, computed from the store through the ad-hoc cache.

Callbacks and the export route call these functions with the request's scope
(dashboard.scope.current_scope()); every query is narrowed to it here, whatever the
state asks for. SQL is in datasource/browse_queries.py, the state in
dashboard/browse_state.py; here are the arithmetic (rates, deltas, occupancy) and the
shapes the layouts and exports read. See docs/browsing.md.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

from flask import current_app

from dashboard import browse_state as bs
from dashboard.adhoc import AdhocCache
from dashboard.kpis.cases import STOCK_NEEDS, compare_cohorts
from dashboard.kpis.common import compare, delta, ratio
from dashboard.scope import Scope, current_scope
from dashboard.services import EXTENSION as SERVICES
from dashboard.services import Services
from datasource import browse_queries as q
from datasource import stages

EXTENSION = "command_center_browse"
REFERENCE_TTL = 300.0  # names of streets, grids, facilities: they change rarely
OPEN_PROBLEMS_LIMIT = 500
EXPORT_MAX_ROWS = 100_000
RUNNING = set(q.RUNNING_STATUSES)
COUNT_METRICS = ("reported", "filed", "closed")
RATE_METRICS = ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate",
                "rework_rate", "extension_rate")
HOUR_METRICS = ("avg_handle_hours", "avg_close_hours")
STOCK_METRICS = ("open", "overdue")
METRICS = COUNT_METRICS + RATE_METRICS + HOUR_METRICS + STOCK_METRICS
PARKING_FRESH = dt.timedelta(minutes=90)  # docs/kpis.md: a reading younger than this counts
PARKING_SKEW = dt.timedelta(minutes=5)


class Browse:
    """One per app: the store, the cache and the clock the browsing pages share."""

    def __init__(self, svc: Services):
        self.svc = svc
        self.engine = svc.engine
        self.tz = svc.settings.tz
        self.ttl = float(svc.settings["POLL_SECONDS"])
        self.cache = AdhocCache(svc.cache, ttl=self.ttl)
        self.clock = time.time  # seconds since the epoch; tests and benchmarks may pin it

    def now(self) -> dt.datetime:
        """The clock quantised to the cache's ttl, so that identical questions asked within
        one poll interval are the same question (and share a cached answer)."""
        t = self.clock()
        return dt.datetime.fromtimestamp(t - t % self.ttl, dt.timezone.utc)

    def cached(self, name: str, params: Any, scope: Scope, compute, ttl: float | None = None):
        return self.cache.get(name, params, scope.key(), compute, ttl)


_create_lock = threading.Lock()


def browse(server=None) -> Browse:
    """The Browse of `server` (default: the current request's Flask app), made on first use."""
    server = current_app if server is None else server
    ext = server.extensions
    if EXTENSION not in ext:
        with _create_lock:
            if EXTENSION not in ext:
                ext[EXTENSION] = Browse(ext[SERVICES])
    return ext[EXTENSION]


# --- codes a URL may name ------------------------------------------------------------
class StoreLookup:
    """bs.Lookup over the store, through the cache (reference lists, long ttl)."""

    def __init__(self, b: Browse):
        self.b = b
        self._ref = b.svc.reference.get()

    def _all(self, name, compute):
        return self.b.cache.get("ref:" + name, None, "all", compute, REFERENCE_TTL)

    def district_codes(self) -> list[str]:
        return [d.code for d in self._ref.districts]

    def streets(self) -> dict[int, dict]:
        rows = self._all("streets", lambda: q.streets(self.b.engine, None))
        return {r["id"]: r for r in rows}

    def street(self, street_id: int) -> dict | None:
        return self.streets().get(street_id)

    def grid(self, grid_id: int) -> dict | None:
        return self.b.cache.get("ref:grid", grid_id, "all",
                                lambda: q.grid_by_id(self.b.engine, grid_id, None), REFERENCE_TTL)

    def categories(self) -> Mapping[str, str | None]:
        return {code: c["parent"] for code, c in self._ref.categories.items()}

    def sources(self) -> Mapping[str, dict]:
        return self._ref.sources

    def facility(self, facility_id: int) -> dict | None:
        return self.b.cache.get("ref:facility", facility_id, "all",
                                lambda: q.facility(self.b.engine, facility_id, None), REFERENCE_TTL)


@dataclass(frozen=True)
class View:
    """A request's resolved view: who asks, what they asked for, and when."""
    state: bs.ViewState
    notices: list
    window: bs.Window
    scope: Scope
    now: dt.datetime
    lookup: StoreLookup


def resolve(query: Mapping[str, str] | str | None, scope: Scope | None = None) -> View:
    """Parse a query string (or dict) against the store and the request's scope."""
    b = browse()
    scope = current_scope() if scope is None else scope
    if query is None or isinstance(query, str):
        query = bs.query_dict(query)
    lookup = StoreLookup(b)
    now = b.now()
    state, notices = bs.parse(query, scope=scope, lookup=lookup, now=now, tz=b.tz)
    return View(state, notices, bs.window(state, now, b.tz), scope, now, lookup)


def districts_of(view: View) -> list[str] | None:
    """The districts a view reads: its district, else every district of its scope (None:
    all, for a city-wide scope). Checked against the scope again, whatever the state says."""
    scope, d = view.scope, view.state.district
    if d is not None:
        return [d] if scope.allows(d) else []
    return None if scope.city_wide else scope.filter(view.lookup.district_codes())


def case_filter(view: View) -> q.CaseFilter:
    s = view.state
    cats = None
    if s.category is not None:
        parents = view.lookup.categories()
        cats = tuple(sorted(c for c, p in parents.items() if c == s.category or p == s.category))
    ds = districts_of(view)
    return q.CaseFilter(districts=None if ds is None else tuple(ds), street_id=s.street, grid_id=s.grid,
                        categories=cats, source=s.source)


def _window_params(view: View) -> dict:
    w = view.window
    return {"cur": [w.start, w.end], "prev": [w.prev_start, w.prev_end]}


def _filter_params(flt: q.CaseFilter) -> dict:
    return {"d": flt.districts, "st": flt.street_id, "g": flt.grid_id, "c": flt.categories, "s": flt.source}


# --- the case KPI table ----------------------------------------------------------------
def level_of(state: bs.ViewState) -> str:
    """Which rows the KPI table has: districts, a district's streets, a street's grids."""
    if state.district is None:
        return "district"
    if state.street is None:
        return "street"
    return "grid"


def _cohort(counts: dict, suffix: str) -> dict:
    """One window's cohort sums, in the shape dashboard.kpis.cases reads."""
    def g(name):
        return counts.get(name + suffix) or 0
    return {"closed": g("closed_c"), **{f: g(f) for f in q.COHORT_FIELDS if f != "closed"}}


def recorded_inputs() -> frozenset[str]:
    """The inputs the city records (datasource/stages.py), asked once per poll interval
    whoever browses: it is a fact about the whole store, not a scope's."""
    b = browse()
    return b.cache.get("stages", None, "all", lambda: sorted(stages.recorded_inputs(b.engine)), b.ttl)


def _sum_into(target: dict, row: dict, rename: Mapping[str, str] = {}) -> None:
    for k, v in row.items():
        if k == "key" or v is None:
            continue
        k = rename.get(k, k)
        target[k] = target.get(k, 0) + float(v)


def _table_rows(raw: dict[str, list[dict]]) -> dict:
    """Merge the four statements' rows per key (+ a total), as metrics with deltas."""
    sums: dict[Any, dict] = {}
    total: dict = {}
    # the cohort's "closed" (closed now, of those filed) is not the window's closed count
    rename = {f"closed{s}": f"closed_c{s}" for s in ("_cur", "_prev")}
    for part, rows in raw.items():
        for r in rows:
            for tgt in (sums.setdefault(r["key"], {}), total):
                _sum_into(tgt, r, rename if part == "cohort" else {})
    return {"keys": sums, "total": total}


def _compare(counts: dict, recorded) -> dict:
    """Every metric of the two windows from the queries' sums: counts, rates and average
    hours (those whose inputs the city does not record marked, as on the wall)."""
    def g(name, suffix):
        return counts.get(name + suffix) or 0
    cohorts = compare_cohorts(_cohort(counts, "_cur"), _cohort(counts, "_prev"), recorded,
                              (g("closed", "_cur"), g("closed", "_prev")))
    out = {"reported": compare(g("reported", "_cur"), g("reported", "_prev")), **cohorts}
    for m in STOCK_METRICS:  # overdue needs deadlines
        out[m] = compare(g(m, "_cur"), g(m, "_prev")) if STOCK_NEEDS[m] <= recorded else \
            compare(None, None, True, True)
    return {m: out[m] for m in METRICS}


def _ints(m: dict) -> dict:
    for name in COUNT_METRICS + STOCK_METRICS:
        for f in ("value", "prev", "delta"):
            if m[name][f] is not None:
                m[name][f] = int(round(m[name][f]))
    return m


def kpi_table(view: View, lang: str) -> dict:
    """{"level", "rows": [{"key", "name", "metrics": {m: {value, prev, delta}}}], "total"}:
    every member of the level (zero rows included), sorted as the state asks."""
    b = browse()
    level = level_of(view.state)
    flt = case_filter(view)
    params = {"level": level, **_filter_params(flt), **_window_params(view)}
    raw = b.cached("case_kpis", params, view.scope,
                   lambda: q.case_kpis(b.engine, level, flt, view.window.cur, view.window.prev))
    merged = _table_rows(raw)
    recorded = frozenset(recorded_inputs())
    members = _members(view, level, lang)
    rows = []
    seen = set()
    for key, name in members:
        seen.add(key)
        rows.append({"key": key, "name": name,
                     "metrics": _ints(_compare(merged["keys"].get(key, {}), recorded))})
    for key, counts in merged["keys"].items():  # cases without a street or grid, or unknown ones
        if key not in seen:
            rows.append({"key": key, "name": _unassigned(key, lang),
                         "metrics": _ints(_compare(counts, recorded))})
    rows = sort_rows(rows, view.state.sort)
    return {"level": level, "rows": rows, "total": _ints(_compare(merged["total"], recorded)),
            "recorded": sorted(recorded)}


def _unassigned(key, lang) -> str:
    if key is None:
        return "（未分配）" if lang != "en" else "(unassigned)"
    return str(key)


def _members(view: View, level: str, lang: str) -> list[tuple[Any, str]]:
    """(key, name) of every district / street / grid the table lists."""
    ref = view.lookup._ref
    s = view.state
    if level == "district":
        allowed = districts_of(view)
        return [(d.code, d.name(lang)) for d in ref.districts if allowed is None or d.code in allowed]
    if level == "street":
        return [(r["id"], (r["name_en"] or r["name_zh"]) if lang == "en" else r["name_zh"])
                for r in view.lookup.streets().values() if r["district"] == s.district]
    grids = street_grids(view, s.street)
    if s.grid is not None:
        grids = [g for g in grids if g["id"] == s.grid]
    return [(g["id"], g["name_zh"]) for g in grids]


def street_grids(view: View, street_id: int) -> list[dict]:
    b = browse()
    ds = districts_of(view)
    return b.cached("grids", {"street": street_id, "d": ds}, view.scope,
                    lambda: q.grids(b.engine, ds, street_id), REFERENCE_TTL)


def exclusive_grid_names(view: View, ds: list[str] | None) -> list[dict]:
    """The exclusive grids a filter may offer (`ds` already narrowed to the scope)."""
    b = browse()
    return b.cached("ref:egrids", {"d": ds}, view.scope,
                    lambda: q.grids(b.engine, ds, kind="exclusive"), REFERENCE_TTL)


def facility_names(view: View, ds: list[str] | None) -> list[dict]:
    b = browse()
    return b.cached("ref:facilities", {"d": ds}, view.scope, lambda: q.facility_names(b.engine, ds),
                    REFERENCE_TTL)


def sort_rows(rows: list[dict], sort: str | None) -> list[dict]:
    """Sort by a metric's value (or the name); rows without a value go last either way."""
    if not sort:
        return rows
    name, desc = sort.lstrip("-"), sort.startswith("-")
    if name == "name":
        return sorted(rows, key=lambda r: r["name"], reverse=desc)
    have = [r for r in rows if r["metrics"][name]["value"] is not None]
    missing = [r for r in rows if r["metrics"][name]["value"] is None]
    return sorted(have, key=lambda r: r["metrics"][name]["value"], reverse=desc) + missing


# --- the case list -------------------------------------------------------------------
def case_count(view: View) -> int:
    b = browse()
    flt = case_filter(view)
    w = (view.window.start, view.window.end)
    params = {"list": view.state.list, **_filter_params(flt), "w": list(w)}
    return b.cached("case_count", params, view.scope,
                    lambda: q.count_cases(b.engine, flt, view.state.list, w))


def parse_sort(raw: str | None) -> tuple[str, bool]:
    if raw and raw.lstrip("-") in q.CASE_SORTS:
        return raw.lstrip("-"), raw.startswith("-")
    return "reported_at", True


def case_rows(view: View, offset: int, limit: int, sort: str | None = None) -> list[dict]:
    """One page of the view's case list, sorted in SQL (default: newest report first)."""
    b = browse()
    flt = case_filter(view)
    col, desc = parse_sort(sort if sort is not None else view.state.csort)
    offset, limit = max(0, int(offset)), max(1, min(int(limit), 1000))
    w = (view.window.start, view.window.end)
    params = {"list": view.state.list, **_filter_params(flt), "w": list(w), "sort": col, "desc": desc,
              "o": offset, "l": limit}
    rows = b.cached("case_page", params, view.scope,
                    lambda: q.case_page(b.engine, flt, view.state.list, w, sort=col, descending=desc,
                                        offset=offset, limit=limit))
    return [_case_flags(r, view.now) for r in rows]


class ExportTooLarge(ValueError):
    """An export would be cut short: it is refused instead, with the numbers."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit:,} cases")
        self.limit = limit


def export_case_rows(view: View) -> list[dict]:
    """The view's whole case list in its sort (not cached: one read per export). More than
    EXPORT_MAX_ROWS is refused, never silently cut: a partial file would look complete."""
    col, desc = parse_sort(view.state.csort)
    rows = q.case_page(browse().engine, case_filter(view), view.state.list, view.window.cur, sort=col,
                       descending=desc, offset=0, limit=EXPORT_MAX_ROWS + 1)
    if len(rows) > EXPORT_MAX_ROWS:
        raise ExportTooLarge(EXPORT_MAX_ROWS)
    return [_case_flags(r, view.now) for r in rows]


def _parse_time(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def _case_flags(row: dict, now: dt.datetime) -> dict:
    """Overdue now (running open case past its deadline), and by how many hours."""
    deadline = _parse_time(row.get("deadline_at"))
    overdue = row.get("stage", row["status"]) in RUNNING and deadline is not None and deadline < now
    return {**row, "overdue": overdue,
            "overdue_hours": (now - deadline).total_seconds() / 3600 if overdue else None}


# --- one case ------------------------------------------------------------------------
def case_detail(ref: str, scope: Scope | None = None) -> dict | None:
    """A case with its lifecycle, or None when it does not exist or is outside the scope."""
    b = browse()
    scope = current_scope() if scope is None else scope
    ref = (ref or "").strip()
    if not ref or len(ref) > 64 or not ref.isprintable():
        return None  # no external id looks like that (and PostgreSQL refuses NUL bytes)
    allowed = None if scope.city_wide else scope.filter(StoreLookup(b).district_codes())
    now = b.now()

    def compute():
        case = q.case_by_ref(b.engine, ref, allowed)
        if case is None:
            return None
        return {"case": case, "events": q.case_events(b.engine, case["id"])}

    found = b.cached("case_detail", {"ref": ref, "d": allowed}, scope, compute)
    if found is None or not scope.allows(found["case"]["district"]):
        return None
    case = _case_flags(found["case"], now)
    events = found["events"]
    return {"case": case, "events": events, "now": now.isoformat(),
            "reworks": sum(1 for e in events if e["to_status"] == "rework")}


# --- enterprise drill ----------------------------------------------------------------
def enterprise_view(view: View) -> dict:
    b = browse()
    ds = districts_of(view)
    w = view.window
    params = {"d": ds, **_window_params(view)}
    grids = b.cached("egrids", params, view.scope,
                     lambda: q.exclusive_grid_kpis(b.engine, ds, w.cur, w.prev))
    for g in grids:
        g["coverage"] = ratio(g["visited_cur"], g["members"])
        g["coverage_prev"] = ratio(g["visited_prev"], g["members"])
        g["coverage_delta"] = delta(g["coverage"], g["coverage_prev"])
        g["visits_delta"] = g["visits_cur"] - g["visits_prev"]
    egrid = view.state.egrid
    types = b.cached("ptypes", {**params, "g": egrid}, view.scope,
                     lambda: q.problems_by_type(b.engine, ds, egrid, w.cur, w.prev))
    for t in types:
        t["resolution_rate"] = ratio(t["resolved_cur"], t["raised_cur"])
        t["resolution_prev"] = ratio(t["resolved_prev"], t["raised_prev"])
        t["resolution_delta"] = delta(t["resolution_rate"], t["resolution_prev"])
    n_open, problems = b.cached(
        "open_problems", {"d": ds, "g": egrid, "t": view.state.ptype}, view.scope,
        lambda: q.open_problems(b.engine, ds, egrid, view.state.ptype, OPEN_PROBLEMS_LIMIT))
    members = None
    if egrid is not None:
        members = b.cached("egrid_members", {"g": egrid, "d": ds, "cur": list(w.cur)}, view.scope,
                           lambda: q.grid_enterprises(b.engine, egrid, ds, w.cur))
    return {"grids": grids, "types": types, "open_total": n_open, "open_problems": problems,
            "members": members}


# --- parking drill -------------------------------------------------------------------
def parking_view(view: View) -> dict:
    b = browse()
    ds = districts_of(view)
    now = view.now
    rows = b.cached("facilities", {"d": ds, "now": now}, view.scope,
                    lambda: q.facilities(b.engine, ds, now - PARKING_FRESH, now + PARKING_SKEW))
    for r in rows:
        cap = r["capacity"] or 0
        occ = r["occupied"]
        r["stale"] = occ is None
        r["out_of_range"] = occ is not None and (occ < 0 or occ > cap)
        r["occupied_clamped"] = None if occ is None else max(0, min(cap, occ))
        r["occupancy"] = None if occ is None else ratio(r["occupied_clamped"], cap)
    history = None
    if view.state.facility is not None:
        fid = view.state.facility
        w = view.window
        if districts_of(view) is None or any(r["id"] == fid for r in rows):
            fac = next((r for r in rows if r["id"] == fid), None) or view.lookup.facility(fid)
            hours = b.cached("occupancy_history", {"f": fid, "cur": list(w.cur)}, view.scope,
                             lambda: q.occupancy_history(b.engine, fid, w.start, w.end))
            cap = fac["capacity"] if fac else 0
            history = {"facility": fac, "hours": [
                {**h, "occupancy": ratio(h["occupied"], cap)} for h in hours]}
    return {"facilities": rows, "history": history}
