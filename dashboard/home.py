"""The arithmetic of `/`, a leader's morning page: the snapshot's figures for the
viewer's scope, with their comparisons and threshold levels, and what moved since
yesterday. Pure functions of the snapshot's sections (dicts as in Section.to_dict), the
reference and the scope; the page never asks the store anything. docs/browsing.md ("The
morning page") says what each figure means.

A scope of one district reads that district's own figures; the city reads the city's;
several districts (a scope the type allows) are summed, and their rates recomputed from
the numerators their cohorts imply. A figure that cannot be known is None: shown as "—",
with no level, never as 0.
"""
from __future__ import annotations

from dashboard import thresholds
from dashboard.scope import Scope

# the period of the rates and the enterprise figures (docs/browsing.md says why)
RATE_PERIOD = "week"
TOP_MOVERS = 5  # categories listed under "what changed"
NEWLY_OVERDUE_SHOWN = 8


def _data(sections: dict, name: str):
    s = sections.get(name)
    return None if s is None else s.get("data")


def _status(sections: dict, name: str) -> str:
    s = sections.get(name)
    return "waiting" if s is None else s["status"]


def scope_districts(ref, scope: Scope) -> list[str]:
    """The scope's district codes, in the reference's order (those the reference knows)."""
    return [d.code for d in ref.districts if scope.allows(d.code)]


def scope_label(ref, scope: Scope) -> dict:
    """What the scope's totals are called: the city, one district (by its name), or the
    viewer's several districts."""
    codes = scope_districts(ref, scope)
    if scope.city_wide:
        return {"kind": "city", "code": None}
    if len(codes) == 1:
        return {"kind": "district", "code": codes[0]}
    return {"kind": "several", "code": None}


# --- summing a scope's figures -----------------------------------------------------------
def _fig(block: dict | None, key: str) -> dict:
    """A figure as value, prev, delta; a side marked not recorded is None whatever it holds."""
    f = (block or {}).get(key) or {}
    value = None if f.get("not_recorded") else f.get("value")
    prev = None if f.get("prev_not_recorded") else f.get("prev")
    return {"value": value, "prev": prev, "delta": f.get("delta") if value is not None and prev is not None else None}


def _delta(value, prev):
    return None if value is None or prev is None else value - prev


def _sum(values):
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def _summed(blocks: list[dict], key: str) -> dict:
    """A count summed over districts (None if any district's is unknown)."""
    value = _sum(_fig(b, key)["value"] for b in blocks)
    prev = _sum(_fig(b, key)["prev"] for b in blocks)
    return {"value": value, "prev": prev, "delta": _delta(value, prev)}


def _weighted(blocks: list[dict], key: str, weight: str) -> dict:
    """A rate over several districts from each one's rate and its denominator (rate ×
    denominator is its numerator): exact, and None when a district with a denominator has
    no rate (not recorded) or when there is nothing to divide by."""
    out = {}
    for part in ("value", "prev"):
        num = den = 0.0
        known = True
        for b in blocks:
            w, r = _fig(b, weight)[part], _fig(b, key)[part]
            if w is None:
                known = False
                break
            if w:
                if r is None:
                    known = False
                    break
                num, den = num + r * w, den + w
        out[part] = num / den if known and den else None
    out["delta"] = _delta(out["value"], out["prev"])
    return out


def _blocks(period: dict, codes: list[str], city_wide: bool) -> list[dict]:
    if city_wide:
        return [period.get("city") or {}]
    return [(period.get("by_district") or {}).get(c) or {} for c in codes]


def _figure(blocks: list[dict], key: str, weight: str | None = None) -> dict:
    if len(blocks) == 1:  # the city's or one district's own figure, as computed
        return _fig(blocks[0], key)
    return _weighted(blocks, key, weight) if weight else _summed(blocks, key)


# --- the headline cards --------------------------------------------------------------------
def _card(key: str, kind: str, fig: dict, vs: str, status: str, link: dict, *, level: str | None = None,
          better: bool | None = None, sub: dict | None = None) -> dict:
    return {"key": key, "kind": kind, "value": fig["value"], "prev": fig["prev"], "delta": fig["delta"],
            "vs": vs, "level": level, "better": better, "status": status, "link": link, "sub": sub}


def _link(path: str, codes: list[str], city_wide: bool, **params) -> dict:
    """A browsing URL's path and filters: one district's code when the scope is one district."""
    query = {k: v for k, v in params.items() if v is not None}
    if not city_wide and len(codes) == 1:
        query["district"] = codes[0]
    return {"path": path, "query": query}


def _overdue_recorded(cases: dict) -> bool:
    """False when the city records no deadlines (the overdue block is then marked
    not_recorded and its zeros mean nothing)."""
    return not cases["overdue"].get("not_recorded")


def _stock_now(cases: dict, codes: list[str], city_wide: bool) -> tuple[int, int | None]:
    overdue = _overdue_recorded(cases)
    if city_wide:
        return cases["open"]["total"], cases["overdue"]["total"] if overdue else None
    return (sum(cases["open"]["by_district"].get(c, {}).get("total", 0) for c in codes),
            sum(cases["overdue"]["by_district"].get(c, 0) for c in codes) if overdue else None)


def _stock_start(start: dict | None, codes: list[str], city_wide: bool) -> tuple[int | None, int | None]:
    if start is None:
        return None, None
    if city_wide:
        return start["open"], start["overdue"]
    by = start["by_district"]
    return (sum(by.get(c, {}).get("open", 0) for c in codes), sum(by.get(c, {}).get("overdue", 0) for c in codes))


def case_cards(sections: dict, codes: list[str], city_wide: bool) -> list[dict]:
    cases, start = _data(sections, "cases"), _data(sections, "day_start")
    status, start_status = _status(sections, "cases"), _status(sections, "day_start")
    link = lambda path="/browse", **p: _link(path, codes, city_wide, **p)  # noqa: E731
    none = {"value": None, "prev": None, "delta": None}
    if cases is None:
        return [_card(k, kind, none, vs, status, lk) for k, kind, vs, lk in (
            ("open_cases", "count", "vs_day_start", link(period="today", list="open")),
            ("overdue", "count", "vs_day_start", link(period="today", list="overdue")),
            ("reported_today", "count", "vs_yesterday_so_far", link(period="today")),
            ("closed_today", "count", "vs_yesterday_so_far", link(period="today", list="closed")),
            ("closure_rate", "rate", "vs_last_week_so_far", link(period=RATE_PERIOD)),
            ("on_time_closure_rate", "rate", "vs_last_week_so_far", link(period=RATE_PERIOD)))]
    open_n, overdue_n = _stock_now(cases, codes, city_wide)
    open_0, overdue_0 = _stock_start(start, codes, city_wide)
    open_f = {"value": open_n, "prev": open_0, "delta": _delta(open_n, open_0)}
    overdue_f = {"value": overdue_n, "prev": overdue_0, "delta": _delta(overdue_n, overdue_0)}
    share = overdue_n / open_n if open_n and overdue_n is not None else None
    first = (cases["overdue"]["ageing"] or [{"n": 0, "by_district": {}}])[0]
    new_overdue = None if overdue_n is None else \
        first["n"] if city_wide else sum(first["by_district"].get(c, 0) for c in codes)
    today = _blocks(cases["periods_kpis"]["today"], codes, city_wide)
    week = _blocks(cases["periods_kpis"][RATE_PERIOD], codes, city_wide)
    reported, filed, closed = _figure(today, "reported"), _figure(today, "filed"), _figure(today, "closed")
    # a stock's comparison comes from another section: its status is the worse of the two
    stock_status = status if start_status in ("fresh", "empty") else start_status
    out = [
        _card("open_cases", "count", open_f, "vs_day_start", stock_status, link(period="today", list="open"),
              sub={"key": "today_flow", "filed": filed["value"], "closed": closed["value"]}),
        _card("overdue", "count", overdue_f, "vs_day_start", stock_status, link(period="today", list="overdue"),
              level=thresholds.level("overdue_share", share),
              better=thresholds.better("overdue_share", overdue_f["delta"]),
              sub={"key": "overdue_new", "n": new_overdue}),
        _card("reported_today", "count", reported, "vs_yesterday_so_far", status, link(period="today")),
        _card("closed_today", "count", closed, "vs_yesterday_so_far", status, link(period="today", list="closed"),
              better=None if not closed["delta"] else closed["delta"] > 0),
    ]
    for key in ("closure_rate", "on_time_closure_rate"):
        fig = _figure(week, key, weight="filed")
        out.append(_card(key, "rate", fig, "vs_last_week_so_far", status, link(period=RATE_PERIOD),
                         level=thresholds.level(key, fig["value"]), better=thresholds.better(key, fig["delta"])))
    return out


def enterprise_cards(sections: dict, codes: list[str], city_wide: bool) -> list[dict]:
    ent, status = _data(sections, "enterprise"), _status(sections, "enterprise")
    link = _link("/browse/enterprise", codes, city_wide, period=RATE_PERIOD)
    none = {"value": None, "prev": None, "delta": None}
    if ent is None:
        return [_card(k, kind, none, "vs_last_week_so_far", status, link)
                for k, kind in (("visits", "count"), ("problems_raised", "count"), ("resolution_rate", "rate"))]
    blocks = _blocks(ent["periods"][RATE_PERIOD], codes, city_wide)
    visits = _figure(blocks, "visits")
    raised = _figure(blocks, "problems_raised")
    rate = _figure(blocks, "resolution_rate", weight="problems_raised")
    problems = ent["open_problems"]
    open_problems = problems["total"] if city_wide else sum(problems["by_district"].get(c, 0) for c in codes)
    return [
        _card("visits", "count", visits, "vs_last_week_so_far", status, link,
              better=None if not visits["delta"] else visits["delta"] > 0),
        _card("problems_raised", "count", raised, "vs_last_week_so_far", status, link,
              sub={"key": "problems_open_now", "n": open_problems}),
        _card("resolution_rate", "rate", rate, "vs_last_week_so_far", status, link,
              level=thresholds.level("resolution_rate", rate["value"]),
              better=thresholds.better("resolution_rate", rate["delta"])),
    ]


def parking_card(sections: dict, codes: list[str], city_wide: bool) -> dict:
    park, status = _data(sections, "parking"), _status(sections, "parking")
    link = _link("/browse/parking", codes, city_wide)
    fig = {"value": None, "prev": None, "delta": None}
    if park is not None:
        blocks = [park["city"]] if city_wide else [park["by_district"].get(c) or {} for c in codes]
        if len(blocks) == 1:
            b = blocks[0]
            curve = b.get("today_curve") or []
            # the hour before the current one on today's curve (as the wall's card)
            fig = {"value": b.get("occupancy_now"), "prev": curve[-2]["occupancy"] if len(curve) >= 2 else None}
        else:  # several districts: occupied over the reporting capacity; no summed curve
            occupied = _sum(b.get("occupied_now") for b in blocks)
            capacity = _sum(b.get("reporting_capacity") for b in blocks)
            fig = {"value": occupied / capacity if occupied is not None and capacity else None, "prev": None}
        fig["delta"] = _delta(fig["value"], fig["prev"])
    return _card("occupancy", "rate", fig, "vs_last_hour", status, link,
                 level=thresholds.level("occupancy", fig["value"]),
                 better=thresholds.better("occupancy", fig["delta"]))


# --- what changed since yesterday ---------------------------------------------------------
def district_moves(sections: dict, codes: list[str]) -> list[dict]:
    """Per district of the scope: open and overdue now and their change since 00:00, today's
    reported and closed with their change against yesterday to the same time; the
    districts that moved most first (overdue, then open), then in the reference's order."""
    cases, start = _data(sections, "cases"), _data(sections, "day_start")
    if cases is None:
        return []
    today = cases["periods_kpis"]["today"]["by_district"]
    rows = []
    for i, c in enumerate(codes):
        open_n = cases["open"]["by_district"].get(c, {}).get("total", 0)
        overdue_n = cases["overdue"]["by_district"].get(c, 0) if _overdue_recorded(cases) else None
        s = (start or {}).get("by_district", {}).get(c) if start else None
        rows.append({"code": c, "order": i,
                     "open": open_n, "open_delta": None if s is None else open_n - s["open"],
                     "overdue": overdue_n, "overdue_delta": _delta(overdue_n, None if s is None else s["overdue"]),
                     "reported": _fig(today.get(c), "reported"), "closed": _fig(today.get(c), "closed")})
    rows.sort(key=lambda r: (-abs(r["overdue_delta"] or 0), -abs(r["open_delta"] or 0), r["order"]))
    return rows


def moves_total(rows: list[dict], sections: dict, city_wide: bool) -> dict | None:
    """The scope's total row of the district table (the city's own figures when city-wide)."""
    cases, start = _data(sections, "cases"), _data(sections, "day_start")
    if cases is None or not rows:
        return None
    codes = [r["code"] for r in rows]
    open_n, overdue_n = _stock_now(cases, codes, city_wide)
    open_0, overdue_0 = _stock_start(start, codes, city_wide)
    today = _blocks(cases["periods_kpis"]["today"], codes, city_wide)
    return {"open": open_n, "open_delta": _delta(open_n, open_0), "overdue": overdue_n,
            "overdue_delta": _delta(overdue_n, overdue_0),
            "reported": _figure(today, "reported"), "closed": _figure(today, "closed")}


def category_moves(sections: dict, ref, codes: list[str], city_wide: bool, limit: int = TOP_MOVERS) -> list[dict]:
    """The top-level categories whose open cases moved most since 00:00 in the scope (open
    now against the day_start section's count at 00:00); none when either is missing."""
    cases, start = _data(sections, "cases"), _data(sections, "day_start")
    if cases is None or start is None:
        return []
    parent = lambda code: (ref.categories.get(code) or {}).get("parent") or code  # noqa: E731
    now: dict[str, int] = {}
    if city_wide:
        now = dict(cases["open"]["by_category"])
        then = dict(start["by_category"])
    else:
        allowed = set(codes)
        for d, cat, _stage, n in cases["open"]["by_district_category_stage"]:
            if d in allowed:
                now[parent(cat)] = now.get(parent(cat), 0) + n
        then = {}
        for c in codes:
            for cat, n in start["by_district"].get(c, {}).get("by_category", {}).items():
                then[cat] = then.get(cat, 0) + n
    rows = [{"code": cat, "open": now.get(cat, 0), "delta": now.get(cat, 0) - then.get(cat, 0)}
            for cat in set(now) | set(then)]
    rows = [r for r in rows if r["delta"]]
    rows.sort(key=lambda r: (-abs(r["delta"]), -r["open"], r["code"]))
    return rows[:limit]


def newly_overdue(sections: dict, codes: list[str], city_wide: bool,
                  limit: int = NEWLY_OVERDUE_SHOWN) -> list[dict]:
    """The latest newly overdue cases of the scope (the snapshot keeps the city's latest 20)."""
    ticker = _data(sections, "ticker")
    if ticker is None:
        return []
    allowed = set(codes)
    return [r for r in ticker["newly_overdue"] if city_wide or r["district"] in allowed][:limit]


def morning(sections: dict, ref, scope: Scope) -> dict:
    """Everything `/` shows for one scope, as plain data (layouts/home.py draws it)."""
    codes = scope_districts(ref, scope)
    city_wide = scope.city_wide
    if not city_wide and not codes:  # a scope with no district: nothing to show, not zeros
        return {"scope": {"kind": "none", "code": None}, "districts": []}
    moves = district_moves(sections, codes)
    cases = _data(sections, "cases")
    first = ((cases or {}).get("overdue", {}).get("ageing") or [{"n": 0, "by_district": {}}])[0]
    return {
        "scope": scope_label(ref, scope),
        "districts": codes,
        "cards": case_cards(sections, codes, city_wide) + enterprise_cards(sections, codes, city_wide)
        + [parking_card(sections, codes, city_wide)],
        "moves": moves,
        "moves_total": moves_total(moves, sections, city_wide),
        "moves_status": {"cases": _status(sections, "cases"), "day_start": _status(sections, "day_start")},
        "day_start_at": (_data(sections, "day_start") or {}).get("at"),
        "categories": category_moves(sections, ref, codes, city_wide),
        "newly_overdue": newly_overdue(sections, codes, city_wide),
        "newly_overdue_total": None if cases is None or not _overdue_recorded(cases) else
        first["n"] if city_wide else sum(first["by_district"].get(c, 0) for c in codes),
        "ticker_status": _status(sections, "ticker"),
        "links": {
            "browse_today": _link("/browse", codes, city_wide, period="today"),
            "browse_week": _link("/browse", codes, city_wide, period="week"),
            "wall": {"path": "/wall", "query": {}},
            "archive": {"path": "/snapshots", "query": {}},
        },
    }
