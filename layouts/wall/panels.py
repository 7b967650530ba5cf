"""The wall's HTML pieces: stat cards, panel headings with their freshness badge, the
ticker and small tables. Every number carries `data-*` attributes naming what it is,
so tests and automation read the screen without parsing text.
"""
from __future__ import annotations

import datetime as dt

from dash import html

from layouts.i18n import t
from layouts.wall import style as st
from layouts.wall.figures import PERIOD

VS = {"today": "vs_yesterday", "week": "vs_last_week", "month": "vs_last_month", "year": "vs_last_year"}


def local_hm(iso: str | None, tz) -> str:
    if not iso:
        return "—"
    when = dt.datetime.fromisoformat(iso).astimezone(tz)
    return when.strftime("%H:%M") if when.date() == dt.datetime.now(tz).date() else when.strftime("%m-%d %H:%M")


def badge(section, lang: str, tz) -> html.Span:
    """Fresh, stale since T, error, empty, or waiting: each with its own word and shape."""
    if section is None:
        status, text = "waiting", t("status_waiting", lang)
    else:
        status = section["status"]
        text = t(f"status_{status}", lang, since=local_hm(section.get("since"), tz)) \
            if status in ("stale", "error") else t(f"status_{status}", lang)
    icon = {"fresh": "●", "stale": "◐", "error": "✕", "empty": "○", "waiting": "…"}[status]
    props = {"title": section["error"]} if section and section.get("error") else {}
    return html.Span([html.Span(icon, className="badge-icon"), text], className=f"badge badge-{status}",
                     **{"data-status": status}, **props)


def head(title: str, section, lang: str, tz) -> list:
    return [html.Span(title, className="panel-title"), badge(section, lang, tz)]


# --- stat cards ---------------------------------------------------------------------
def not_recorded_attrs(lang: str) -> dict:
    """What marks a value the city does not record: a tooltip, and a data attribute."""
    return {"title": t("not_recorded_hint", lang), "data-not-recorded": "true"}


def card(key: str, label: str, value: str, raw, lang: str, *, sub: str | None = None,
         delta: str | None = None, vs: str | None = None, better: bool | None = None,
         level: str | None = None, status: str = "fresh", not_recorded: bool = False) -> html.Div:
    """A stat card. `not_recorded`: the value is "—" because the city's data lacks its
    inputs, said in words under it (a wall has no mouse for a tooltip) and never judged."""
    arrow = "" if delta in (None, "—") else ("▲" if delta.startswith("+") else "▼" if delta.startswith("-") else "")
    trend = "up-good" if better else "up-bad" if better is False else "neutral"
    marks = not_recorded_attrs(lang) if not_recorded else {}
    if not_recorded:
        value, raw, level, sub, delta = "—", None, None, t("not_recorded", lang), None
    children = [html.Div(label, className="card-label"),
                html.Div(value, className="card-value", **{"data-kpi": key, "data-value": _raw(raw)}, **marks)]
    if delta is not None:
        children.append(html.Div([html.Span(f"{arrow}{delta}", className=f"delta {trend}",
                                            **{"data-delta": key}), html.Span(vs or "", className="vs")],
                                 className="card-delta"))
    if sub is not None:
        children.append(html.Div(sub, className="card-sub"))
    if level:
        children.append(html.Div(f"{st.LEVEL_ICONS[level]} {t('level_' + level, lang)}",
                                 className=f"card-level level-{level}", **{"data-level": level}))
    return html.Div(children, className=f"stat-card level-{level or 'none'} status-{status}"
                    + (" not-recorded" if not_recorded else ""), id=f"card-{key}")


def _raw(value) -> str:
    return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)


def ticker(items: list[dict], ref, lang: str, tz, limit: int) -> html.Ul:
    rows = []
    for item in items[:limit]:
        kind = item["kind"]
        when = item["deadline_at"] if kind == "overdue" else item["reported_at"]
        rows.append(html.Li([
            html.Span(t("newly_overdue" if kind == "overdue" else "new_case", lang), className=f"tag tag-{kind}"),
            html.Span(local_hm(when, tz), className="when"),
            html.Span(ref.district_name(item["district"], lang), className="where"),
            html.Span(ref.category_name(item["category"], lang), className="what"),
            html.Span(item.get("address") or "", className="addr"),
        ], className=f"ticker-item ticker-{kind}", **{"data-case": item["external_id"]}))
    if not rows:
        rows = [html.Li(t("no_items", lang), className="ticker-empty")]
    return html.Ul(rows, className="ticker-list")


def merge_ticker(ticker_data: dict, district: str | None) -> list[dict]:
    """Newest cases and newly overdue ones, newest first, each case once (a case both new
    and overdue is shown as overdue, the more urgent of the two)."""
    seen: dict[str, dict] = {}
    for item in ticker_data.get("newly_overdue", []):
        seen.setdefault(item["external_id"], {**item, "kind": "overdue",
                                              "at": item["deadline_at"]})
    for item in ticker_data.get("newest", []):
        seen.setdefault(item["external_id"], {**item, "kind": "new", "at": item["reported_at"]})
    items = [i for i in seen.values() if district is None or i["district"] == district]
    items.sort(key=lambda i: (dt.datetime.fromisoformat(i["at"]), i["external_id"]), reverse=True)
    return items


def rates_table(cases: dict, ref, view, rules) -> list:
    """Per district: the six rates and the average time to close, with threshold words;
    a legend under it when a value is not recorded."""
    lang = view.lang
    cols = ("closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate",
            "rework_rate", "extension_rate")
    block = cases["periods_kpis"][PERIOD]
    head_row = html.Tr([html.Th(t("district", lang))] + [html.Th(t(c, lang)) for c in cols]
                       + [html.Th(t("avg_close_hours", lang))])
    body = []
    missing = False
    for code in [d.code for d in ref.districts if d.code in block["by_district"]] + ["city"]:
        kpis = block["city"] if code == "city" else block["by_district"][code]
        cells = [html.Td(t("city", lang) if code == "city" else ref.district_name(code, lang))]
        for c in cols:
            cmp = kpis.get(c) or {}
            v = cmp.get("value")
            nr = bool(cmp.get("not_recorded"))
            missing |= nr
            lv = None if nr else rules.level(c, v)
            cells.append(html.Td([st.percent(v), html.Span(f" {st.LEVEL_ICONS[lv]}" if lv else "",
                                                           className="lv")],
                                 className=f"level-{lv or 'none'}" + (" not-recorded" if nr else ""),
                                 **{"data-kpi": c, "data-district": code, "data-value": _raw(v)},
                                 **(not_recorded_attrs(lang) if nr else {})))
        hours_cmp = kpis.get("avg_close_hours") or {}
        hours = hours_cmp.get("value")
        nr = bool(hours_cmp.get("not_recorded"))
        missing |= nr
        cells.append(html.Td(st.number(hours), **{"data-kpi": "avg_close_hours", "data-district": code,
                                                   "data-value": _raw(hours)},
                             **(not_recorded_attrs(lang) if nr else {})))
        cls = "city-row" if code == "city" else "focus-row" if code == view.district else None
        body.append(html.Tr(cells, className=cls))
    out = [html.Table([html.Thead(head_row), html.Tbody(body)], className="wall-table")]
    if missing:
        out.append(html.Div(t("not_recorded_legend", lang), className="not-recorded-legend"))
    return out


def stat_grid(items: list[tuple[str, str, object]]) -> html.Div:
    """Label/value tiles: (key, label, formatted value, raw value)."""
    return html.Div([html.Div([html.Div(label, className="tile-label"),
                               html.Div(text, className="tile-value", **{"data-kpi": key, "data-value": _raw(raw)})],
                              className="tile") for key, label, text, raw in items], className="tile-grid")


def enterprise_summary(ent: dict, view) -> html.Div:
    lang = view.lang
    scope = "city" if view.district is None else view.district
    block = ent["periods"][PERIOD]["city"] if scope == "city" else ent["periods"][PERIOD]["by_district"].get(scope, {})
    open_n = ent["open_problems"]["total"] if scope == "city" else ent["open_problems"]["by_district"].get(scope, 0)
    grids = [g for g in ent.get("exclusive_grids", []) if scope == "city" or g["district"] == scope]
    stats = ent["periods"][PERIOD]["by_exclusive_grid"]
    visited = sum(1 for g in grids if ((stats.get(str(g["grid_id"])) or {}).get("visits") or {}).get("value"))
    v = lambda k: (block.get(k) or {}).get("value")  # noqa: E731
    return stat_grid([
        ("visits", t("visits", lang), st.count(v("visits")), v("visits")),
        ("enterprises_visited", t("enterprises_visited", lang), st.count(v("enterprises_visited")), v("enterprises_visited")),
        ("problems_raised", t("problems_raised", lang), st.count(v("problems_raised")), v("problems_raised")),
        ("problems_resolved", t("problems_resolved", lang), st.count(v("problems_resolved")), v("problems_resolved")),
        ("problems_open", t("problems_open", lang), st.count(open_n), open_n),
        ("resolution_rate", t("resolution_rate", lang), st.percent(v("resolution_rate")), v("resolution_rate")),
        ("avg_resolve_days", t("avg_resolve_days", lang), st.number(v("avg_resolve_days")), v("avg_resolve_days")),
        ("grids_visited", t("grids_visited", lang), f"{visited} / {len(grids)}", visited),
    ])


def parking_summary(park: dict, view) -> html.Div:
    lang = view.lang
    b = park["city"] if view.district is None else park["by_district"].get(view.district, {})
    prog = b.get("programme_this_year") or {}
    return stat_grid([
        ("facilities", t("facilities", lang), st.count(b.get("facilities")), b.get("facilities")),
        ("capacity", t("capacity", lang), st.count(b.get("capacity")), b.get("capacity")),
        ("occupied_now", t("occupied_now", lang), st.count(b.get("occupied_now")), b.get("occupied_now")),
        ("occupancy_now", t("occupancy", lang), st.percent(b.get("occupancy_now")), b.get("occupancy_now")),
        ("added", t("added", lang), st.count(prog.get("added")), prog.get("added")),
        ("revitalised", t("revitalised", lang), st.count(prog.get("revitalised")), prog.get("revitalised")),
        ("shared", t("shared", lang), st.count(prog.get("shared")), prog.get("shared")),
        ("non_motor_points", t("non_motor_points", lang), st.count(b.get("non_motor_points")), b.get("non_motor_points")),
        ("demo_sites", t("demo_sites", lang), st.count(b.get("demo_sites")), b.get("demo_sites")),
        ("stale_facilities", t("stale_facilities", lang), st.count(b.get("stale_facilities")), b.get("stale_facilities")),
        # readings below 0 or above capacity: kept as read, clamped in the figures above (docs/kpis.md)
        ("out_of_range_today", t("out_of_range_today", lang), st.count(b.get("out_of_range_today")),
         b.get("out_of_range_today")),
    ])


def message(text: str, status: str) -> html.Div:
    """What an HTML panel shows instead of data: its status in words, never a blank box."""
    return html.Div(text, className=f"panel-message status-{status}", **{"data-status": status})
