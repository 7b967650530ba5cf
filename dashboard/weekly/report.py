"""The report of one scope (the city or a district): the week's figures cut to that scope,
and the tables behind the workbook and the manifest.

A scope is "city" or a district code. A district's report holds that district only, so
that a district leader can be given it alone (see scopes.py). A subject the city does not
record (its city profile, dashboard/profile.py) is `{"recorded": false}` in the report and
one "not recorded" cell in its table: never a column of zeros.
"""
from __future__ import annotations

from dashboard.kpis.common import CITY
from dashboard.weekly.compute import SUBJECTS, TOP_OVERDUE, WeekFigures

FORMAT = 1  # of the report's JSON; bump on an incompatible change

CASE_METRICS = ("reported", "filed", "closed", "closure_rate", "on_time_closure_rate", "handling_rate",
                "on_time_handling_rate", "rework_rate", "extension_rate", "avg_handle_hours",
                "avg_close_hours", "open_at_end", "overdue_at_end")
ENTERPRISE_METRICS = ("visits", "enterprises_visited", "problems_raised", "problems_resolved",
                      "resolution_rate", "avg_resolve_days")
PARKING_METRICS = ("occupancy_week", "added_spaces_week", "revitalised_spaces_week", "shared_spaces_week")
# how each metric is written: count, rate (a fraction) or number (one decimal)
KINDS = {**{m: "count" for m in ("reported", "filed", "closed", "open_at_end", "overdue_at_end", "visits",
                                  "enterprises_visited", "problems_raised", "problems_resolved",
                                  "added_spaces_week", "revitalised_spaces_week", "shared_spaces_week",
                                  "facilities", "capacity", "open_problems_at_end")},
         **{m: "rate" for m in ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate",
                                 "rework_rate", "extension_rate", "resolution_rate", "occupancy_week",
                                 "occupancy_at_end")},
         **{m: "number" for m in ("avg_handle_hours", "avg_close_hours", "avg_resolve_days")}}


def scope_codes(figures: WeekFigures, scope: str) -> list[str]:
    if scope == CITY:
        return figures.codes
    if scope not in figures.codes:
        raise ValueError(f"scope {scope!r} is neither 'city' nor a district code of the store")
    return [scope]


def scope_name(figures: WeekFigures, scope: str, lang: str = "zh-CN") -> str:
    if scope == CITY:
        return "全市" if lang != "en" else "City"
    d = next(d for d in figures.districts if d["code"] == scope)
    return d["name_en"] if lang == "en" else d["name_zh"]


def _block(per: dict, scope: str) -> dict:
    return per["city"] if scope == CITY else per["by_district"][scope]


def _table(keyed_rows: list[tuple[str, str, dict]], metrics: tuple,
           extra: tuple = ()) -> dict:
    """A table with a row per district (and the city): for each metric its week value, the
    previous week's and the change; `extra` metrics are plain values."""
    cols = [{"key": "code", "kind": "text"}, {"key": "name", "kind": "text"}]
    cols += [{"key": m, "kind": KINDS[m]} for m in extra]
    for m in metrics:
        cols += [{"key": m, "kind": KINDS[m]}, {"key": f"{m}_prev", "kind": KINDS[m]},
                 {"key": f"{m}_delta", "kind": KINDS[m]}]
    rows = []
    for code, name, block in keyed_rows:
        row = {"code": code, "name": name}
        for m in extra:
            row[m] = block.get(m)
        missing = []  # the columns whose figure the city's data does not record (None, said in words)
        for m in metrics:
            c = block.get(m) or {}
            row[m], row[f"{m}_prev"], row[f"{m}_delta"] = c.get("value"), c.get("prev"), c.get("delta")
            missing += [m] * bool(c.get("not_recorded")) + [f"{m}_prev"] * bool(c.get("prev_not_recorded"))
        if missing:
            row["not_recorded"] = missing
        rows.append(row)
    return {"columns": cols, "rows": rows}


NOT_RECORDED = "未记录 / not recorded"


def not_recorded_table() -> dict:
    """The table of a subject the city does not record: one cell that says so."""
    return {"columns": [{"key": "not_recorded", "kind": "text"}], "rows": [{"not_recorded": NOT_RECORDED}]}


def build_tables(figures: WeekFigures, scope: str) -> dict:
    """The rows behind the workbook's sheets (and the manifest): districts, then the city."""
    codes = scope_codes(figures, scope)
    names = {d["code"]: d["name_zh"] for d in figures.districts}
    keys = [(c, names[c]) for c in codes] + ([(CITY, "全市")] if scope == CITY else [])
    cases = _table([(k, n, _block(figures.cases["kpis"], k)) for k, n in keys], CASE_METRICS)
    ent_rows = []
    for k, n in keys:
        block = dict(_block(figures.enterprise["kpis"], k))
        block["open_problems_at_end"] = figures.enterprise["open_problems_at_end"].get(k, 0)
        ent_rows.append((k, n, block))
    enterprise = _table(ent_rows, ENTERPRISE_METRICS, extra=("open_problems_at_end",))
    parking = _table([(k, n, {**_block(figures.parking, k)}) for k, n in keys], PARKING_METRICS,
                     extra=("facilities", "capacity", "occupancy_at_end"))
    tables = {"cases": cases, "enterprise": enterprise, "parking": parking}
    return {k: v if k in figures.subjects else not_recorded_table() for k, v in tables.items()}


def build_report(figures: WeekFigures, scope: str, *, generated_at: str, app_version: str) -> dict:
    """The report of one scope as plain JSON: what the HTML embeds and draws, the PDF
    prints, and the archive page compares week with week."""
    codes = scope_codes(figures, scope)
    week = figures.week
    key = CITY if scope == CITY else scope
    cases, ent, park = figures.cases, figures.enterprise, figures.parking
    open_b, overdue_b = cases["open"], cases["overdue"]
    top = [r for r in cases["top_overdue"] if scope == CITY or r["district"] == scope][:TOP_OVERDUE]
    grids = [g for g in ent["exclusive_grids"] if scope == CITY or g["district"] == scope]
    report = {
        "format": FORMAT,
        "week": week.label, "scope": scope, "scope_name": scope_name(figures, scope),
        "start": week.start.isoformat(), "end": week.end.isoformat(),
        "previous_week": week.previous.label, "days": [d.isoformat() for d in week.days()],
        "data_as_of": week.end.isoformat(), "store_as_of": figures.store_as_of,
        "generated_at": generated_at, "app_version": app_version, "timezone": week.tz.key,
        "districts": [d for d in figures.districts if d["code"] in codes],
        "cases": {
            "kpis": _block(cases["kpis"], key),
            "by_district": {c: cases["kpis"]["by_district"][c] for c in codes},
            "daily": cases["daily"][key],
            "open_by_stage": open_b["by_stage"] if scope == CITY else
            {s: n for s, n in open_b["by_district"].get(scope, {}).items() if s != "total"},
            "overdue_ageing": [{"min_hours": b["min_hours"], "max_hours": b["max_hours"],
                                "n": b["n"] if scope == CITY else b["by_district"].get(scope, 0)}
                               for b in overdue_b["ageing"]],
            "top_overdue": top,
        },
        "enterprise": {
            "kpis": _block(ent["kpis"], key),
            "by_district": {c: ent["kpis"]["by_district"][c] for c in codes},
            "open_problems_at_end": ent["open_problems_at_end"].get(key, 0),
            "by_type": ent["by_type"] if scope == CITY else {},
            "exclusive_grids": [{**g, **ent["by_exclusive_grid"].get(str(g["grid_id"]), {})} for g in grids],
            "daily_visits": ent["daily_visits"][key],
        },
        "parking": {"kpis": _block(park, key), "by_district": {c: park["by_district"][c] for c in codes}},
        "tables": build_tables(figures, scope),
        "recorded": [s for s in SUBJECTS if s in figures.subjects],
    }
    for subject in SUBJECTS:  # what the city does not record is said, never shown as zeros
        report[subject] = {**report[subject], "recorded": True} if subject in figures.subjects else \
            {"recorded": False}
    return report
