"""Enterprise-service KPIs (助企): visits, problems, resolution, by district, exclusive grid
and problem type, each period against its previous equal period."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from dashboard.kpis.common import CITY, compare, ratio, totals_by
from dashboard.periods import all_periods
from datasource import kpi_queries as q

PROBLEM_FIELDS = ("raised", "resolved", "resolve_days")
WINDOWS = "_windows"  # the memo's entry for per-window stats (the others are periods)


def _problem_stats(rows: list[dict], key: str) -> dict[str, dict]:
    """raised, resolved (now), resolution rate and mean days to resolve, per `key` and city."""
    sums = totals_by(rows, key, PROBLEM_FIELDS)
    return {k: {"raised": v["raised"], "resolved": v["resolved"],
                "resolution_rate": ratio(v["resolved"], v["raised"]),
                "avg_resolve_days": ratio(v["resolve_days"], v["resolved"])}
            for k, v in sums.items()}


class SqlSource:
    """Visits and problems straight from the store (the full computation)."""

    def __init__(self, engine):
        self.engine = engine

    def visits_summary(self, start, end):
        return q.visits_summary(self.engine, start, end)

    def problems_raised(self, start, end):
        return q.problems_raised(self.engine, start, end)

    def problems_resolved_in(self, start, end):
        return q.problems_resolved_in(self.engine, start, end)

    def problems_open(self):
        return q.problems_open(self.engine)

    def exclusive_grids(self, start, end):
        return q.visits_by_exclusive_grid(self.engine, start, end)

    def enterprise_counts(self):
        return q.enterprise_counts(self.engine)


def _period_stats(source, start: dt.datetime, end: dt.datetime) -> dict:
    visits = totals_by(source.visits_summary(start, end), "district", ("visits", "enterprises"))
    problems = source.problems_raised(start, end)
    resolved_in = totals_by(source.problems_resolved_in(start, end), "district", ("resolved",))
    return {"visits": visits, "by_district": _problem_stats(problems, "district"),
            "by_type": _problem_stats(problems, "type"), "resolved_in": resolved_in}


def _compare_block(cur: dict, prev: dict, keys: list[str]) -> dict:
    def one(k):
        cv, pv = cur["visits"].get(k, {}), prev["visits"].get(k, {})
        cp, pp = cur["by_district"].get(k, {}), prev["by_district"].get(k, {})
        return {
            "visits": compare(cv.get("visits", 0), pv.get("visits", 0)),
            # distinct enterprises: counted in SQL per district; the city figure is the
            # district sum (an enterprise belongs to one district)
            "enterprises_visited": compare(cv.get("enterprises", 0), pv.get("enterprises", 0)),
            "problems_raised": compare(cp.get("raised", 0), pp.get("raised", 0)),
            "problems_resolved": compare(cur["resolved_in"].get(k, {}).get("resolved", 0),
                                         prev["resolved_in"].get(k, {}).get("resolved", 0)),
            "resolution_rate": compare(cp.get("resolution_rate"), pp.get("resolution_rate")),
            "avg_resolve_days": compare(cp.get("avg_resolve_days"), pp.get("avg_resolve_days")),
        }
    return {"city": one(CITY), "by_district": {k: one(k) for k in keys}}


def _window_stats(source, window: tuple, key, kept: dict | None, now: dict | None) -> tuple[dict, list]:
    """A window's period stats and exclusive-grid rows: from this poll's windows (`now`),
    else from the last poll's (`kept`) while its key holds, else computed; noted in `now`."""
    if now is None:
        return _period_stats(source, *window), source.exclusive_grids(*window)
    assert kept is not None  # a memo gives both
    if key not in now:
        now[key] = kept[key] if key in kept else (_period_stats(source, *window), source.exclusive_grids(*window))
    return now[key]


def _period_block(cur_stats: tuple, prev_stats: tuple, districts: list[str]) -> tuple[dict, list]:
    """One period against its previous equal period (each window's stats and grid rows);
    also returns the current window's exclusive-grid rows (they carry each grid's members)."""
    (cur, g_cur), (prev, g_prev_rows) = cur_stats, prev_stats
    block = _compare_block(cur, prev, districts)
    g_prev = {g["grid_id"]: g for g in g_prev_rows}
    block["by_exclusive_grid"] = {
        str(g["grid_id"]): {
            "visits": compare(g["visits"], g_prev.get(g["grid_id"], {}).get("visits", 0)),
            "enterprises_visited": compare(g["enterprises_visited"],
                                           g_prev.get(g["grid_id"], {}).get("enterprises_visited", 0)),
            "coverage": compare(ratio(g["enterprises_visited"], g["members"]),
                                ratio(g_prev.get(g["grid_id"], {}).get("enterprises_visited", 0), g["members"])),
        } for g in g_cur}
    types = sorted(set(cur["by_type"]) | set(prev["by_type"]) - {CITY})
    block["by_type"] = {t: {"raised": compare(cur["by_type"].get(t, {}).get("raised", 0),
                                              prev["by_type"].get(t, {}).get("raised", 0)),
                            "resolution_rate": compare(cur["by_type"].get(t, {}).get("resolution_rate"),
                                                       prev["by_type"].get(t, {}).get("resolution_rate"))}
                        for t in types if t != CITY}
    return block, g_cur


def compute_enterprise(engine, now: dt.datetime, tz: ZoneInfo, source=None, memo: dict | None = None) -> dict:
    """The "enterprise" section of the snapshot. `source` answers the visit and problem
    questions: the store by default, or the poller's EnterpriseState, which also keys
    each window's answers (`window_key`): with a `memo`, a period whose windows' keys
    have not changed since the last poll keeps its block."""
    source = source or SqlSource(engine)
    districts = [d["code"] for d in q.districts(engine)]
    out: dict = {"districts": districts, "periods": {}}
    grids_meta = None
    # with a memo: each window's stats are kept while its key holds (last month's window
    # outlives today's visits), and a period whose two keys hold keeps its whole block
    previous = memo.get(WINDOWS, {}) if memo is not None else None
    windows_now: dict | None = {} if memo is not None else None
    for name, p in all_periods(now, tz).items():
        windows = ((p.start, p.end + dt.timedelta(microseconds=1)), (p.prev_start, p.prev_end))
        keys = None if memo is None else tuple(source.window_key(*w) for w in windows)
        if keys is None or memo is None or memo.get(name, (None,))[0] != (*keys, tuple(districts)):
            stats = [_window_stats(source, w, k, previous, windows_now)
                     for w, k in zip(windows, keys or (None, None))]
            block, g_cur = _period_block(stats[0], stats[1], districts)
            if memo is not None and keys is not None:
                memo[name] = ((*keys, tuple(districts)), (block, g_cur))
        else:
            assert windows_now is not None and previous is not None  # as memo is not None
            block, g_cur = memo[name][1]
            windows_now.update({k: previous[k] for k in keys if k in previous})
        grids_meta = grids_meta or g_cur
        out["periods"][name] = block
    if memo is not None:
        memo[WINDOWS] = windows_now  # only the windows of this poll's periods stay
    open_rows = source.problems_open()
    open_by_district: dict[str, int] = {d: 0 for d in districts}
    open_by_type: dict[str, int] = defaultdict(int)
    for r in open_rows:
        open_by_district[r["district"]] = open_by_district.get(r["district"], 0) + r["open"]
        open_by_type[r["type"]] += r["open"]
    out["open_problems"] = {"total": sum(open_by_district.values()), "by_district": open_by_district,
                            "by_type": dict(sorted(open_by_type.items()))}
    ents = totals_by(source.enterprise_counts(), "district", ("enterprises", "above_scale",
                                                              "in_exclusive_grids"))
    out["enterprises"] = ents
    # the exclusive grids themselves (专属网格): host unit and members; figures per period above
    out["exclusive_grids"] = [{k: g[k] for k in ("grid_id", "district", "name_zh", "host_unit", "host_kind",
                                                 "members")} for g in grids_meta or []]
    return out
