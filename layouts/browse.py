"""The browsing pages for a desk screen: /browse (cases), /browse/enterprise, /browse/parking.

Pure presentation: the layout is a skeleton (filters, notices, an empty body) and the
builders below turn what dashboard/browse.py computed into components. Every link
inside the page is a button whose pattern id carries the target query string
({"type": BROWSE_NAV, "to": "?..."}); the state callback puts it in the URL, so the URL
is the whole state. Same dark palette as the wall, sized for a desk.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

import dash_ag_grid as dag
from dash import dcc, html

from layouts import ids
from layouts.i18n import pick_language, t, t_or
from layouts.nav import nav_bar

PAGES = {"cases": "/browse", "enterprise": "/browse/enterprise", "parking": "/browse/parking"}
PRESETS = ("today", "week", "last_week", "month", "year", "custom")
LISTS = ("reported", "filed", "closed", "open", "overdue")
PTYPES = ("hiring", "licence", "tax", "financing", "infrastructure", "safety", "other")
METRICS = ("reported", "filed", "closed", "closure_rate", "on_time_closure_rate", "handling_rate",
           "on_time_handling_rate", "rework_rate", "extension_rate", "avg_handle_hours",
           "avg_close_hours", "open", "overdue")
RATES = {"closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate", "rework_rate",
         "extension_rate"}
HOURS = {"avg_handle_hours", "avg_close_hours"}
# which way is better for a metric's delta (None: neither, e.g. how many were reported)
BETTER = {"closure_rate": 1, "on_time_closure_rate": 1, "handling_rate": 1, "on_time_handling_rate": 1,
          "rework_rate": -1, "extension_rate": -1, "avg_handle_hours": -1, "avg_close_hours": -1,
          "closed": 1, "open": -1, "overdue": -1}
NEXT_LEVEL = {"district": "district", "street": "street", "grid": "grid"}
# (control id, URL parameter, which pages show it)
FILTERS = (
    ("browse-period", "period", "cep"), ("browse-from", "from", "cep"), ("browse-to", "to", "cep"),
    ("browse-compare", "compare", "ce"), ("browse-cfrom", "cfrom", "ce"), ("browse-cto", "cto", "ce"),
    ("browse-district", "district", "cep"), ("browse-street", "street", "c"), ("browse-grid", "grid", "c"),
    ("browse-category", "category", "c"), ("browse-source", "source", "c"), ("browse-list", "list", "c"),
    ("browse-egrid", "egrid", "e"), ("browse-ptype", "ptype", "e"), ("browse-facility", "facility", "p"),
)
LABELS = {"period": "f_period", "from": "f_from", "to": "f_to", "compare": "f_compare", "cfrom": "f_from",
          "cto": "f_to", "district": "f_district", "street": "f_street", "grid": "f_grid",
          "category": "f_category", "source": "f_source", "list": "f_list", "egrid": "f_egrid",
          "ptype": "f_ptype", "facility": "f_facility"}


# --- formats -------------------------------------------------------------------------
def fmt_count(v) -> str:
    return "—" if v is None else f"{v:,.0f}"


def fmt_rate(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def fmt_hours(v) -> str:
    return "—" if v is None else f"{v:,.1f}"


def fmt_value(metric: str, v) -> str:
    return fmt_rate(v) if metric in RATES else fmt_hours(v) if metric in HOURS else fmt_count(v)


def fmt_delta(metric: str, d) -> str:
    if d is None:
        return "—"
    if metric in RATES:
        return f"{100 * d:+.1f} pt" if round(100 * d, 1) else "±0 pt"
    if metric in HOURS:
        return f"{d:+.1f}" if round(d, 1) else "±0"
    return f"{d:+,.0f}" if d else "±0"


def fmt_time(value, tz, seconds: bool = False) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def fmt_span(start, end, tz) -> str:
    """[start, end) as local times; a whole-day end is shown as the last day included."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    if e.hour == 0 and e.minute == 0 and e.second == 0:
        last = (e - dt.timedelta(days=1)).strftime("%Y-%m-%d")
        return s.strftime("%Y-%m-%d") + ("" if last == s.strftime("%Y-%m-%d") else f" ~ {last}")
    return f"{s.strftime('%Y-%m-%d %H:%M')} ~ {e.strftime('%Y-%m-%d %H:%M')}"


def fmt_duration(seconds: float, lang: str) -> str:
    h = seconds / 3600
    if h < 1:
        return f"{seconds / 60:.0f} 分钟" if lang != "en" else f"{seconds / 60:.0f} min"
    if h < 48:
        return f"{h:.1f} 小时" if lang != "en" else f"{h:.1f} h"
    return f"{h / 24:.1f} 天" if lang != "en" else f"{h / 24:.1f} d"


# --- navigation ----------------------------------------------------------------------
def nav(label, to: str, cls: str = "nav-btn", title: str | None = None, **attrs) -> html.Button:
    """A button that puts `to` (a query string) in the URL through the state callback."""
    return html.Button(label, id={"type": ids.BROWSE_NAV, "to": to}, className=cls, n_clicks=0,
                       title=title, **attrs)


# --- the page --------------------------------------------------------------------------
def layout_factory(settings, page: str, user=None):
    default_lang = settings["DASHBOARD_LANGUAGE"]

    def layout(lang=None, **_query):
        lang, _ = pick_language(lang if isinstance(lang, str) else None, default_lang)
        return html.Div([
            dcc.Location(id=ids.BROWSE_LOCATION, refresh=False),
            dcc.Store(id=ids.BROWSE_PAGE, data=page),
            dcc.Store(id=ids.BROWSE_CASES_KEY),
            header(settings, page, lang, user),
            html.Div(id=ids.BROWSE_NOTICES, className="browse-notices", role="status"),
            filter_bar(page, lang),
            html.Div(id=ids.BROWSE_SUMMARY, className="browse-summary"),
            dcc.Loading(html.Main(id=ids.BROWSE_BODY, className="browse-body"), type="dot",
                        color="#22d3ee", delay_show=300),
            html.Div(id=ids.BROWSE_CASES, className="browse-cases"),
        ], className=f"browse-page app-page browse-{page}", lang=lang)

    return layout


def header(settings, page: str, lang: str, user=None, here: str | None = None) -> html.Header:
    """The shared bar with 浏览 marked, the browsing pages' own links (cases, enterprises,
    parking) under it; the language link keeps the filters (callbacks/browse.py)."""
    sub = [html.A(t(f"nav_{name}", lang), href=f"{path}?lang={lang}",
                  className="app-subnav-link" + (" active" if name == page else ""),
                  **({"aria-current": "page"} if name == page else {}))
           for name, path in PAGES.items()]
    return nav_bar(settings, "browse", lang, here=here or PAGES.get(page, "/browse"), user=user,
                   lang_id=ids.BROWSE_OTHER_LANG, sub=sub)


def filter_bar(page: str, lang: str) -> html.Div:
    """Every page carries every control (the state callback lists them all); those a page
    does not use are hidden."""
    letter = page[0]
    items = []
    for cid, param, pages in FILTERS:
        items.append(html.Label([html.Span(t(LABELS[param], lang), className="f-label"), _control(cid, param, lang)],
                                className=f"f-item f-{param}" + ("" if letter in pages else " hidden"),
                                htmlFor=cid))
    return html.Div(items, className="browse-filters")


def _control(cid: str, param: str, lang: str):
    if param in ("from", "to", "cfrom", "cto"):
        return dcc.Input(id=cid, type="date", debounce=True, className="f-date")
    static = {"period": [{"label": t(f"preset_{p}", lang), "value": p} for p in PRESETS],
              "compare": [{"label": t(f"compare_{c}", lang), "value": c} for c in ("prev", "custom")],
              "list": [{"label": t(f"list_{k}", lang), "value": k} for k in LISTS],
              "ptype": [{"label": t(f"ptype_{p}", lang), "value": p} for p in PTYPES]}
    clearable = param not in ("period", "compare", "list")
    return dcc.Dropdown(id=cid, options=static.get(param, []), clearable=clearable, searchable=True,
                        placeholder=t("f_all", lang), className="f-dropdown")


def notices(items: list[tuple], lang: str) -> list:
    out = []
    for key, values in items:
        values = dict(values)
        if "which" in values:
            values["which"] = t(f"which_{values['which']}", lang)
        out.append(html.Div(t(key, lang, **values), className="browse-notice"))
    return out


def summary(window, tz, lang: str, crumbs: list) -> list:
    return [html.Div(crumbs, className="crumbs"),
            html.Div(t("period_span", lang, cur=fmt_span(window.start, window.end, tz),
                       prev=fmt_span(window.prev_start, window.prev_end, tz)), className="span")]


def crumbs(trail: list[tuple[str, str | None]]) -> list:
    """[(label, target query or None for the current place)] -> breadcrumb buttons."""
    out = []
    for i, (label, to) in enumerate(trail):
        if i:
            out.append(html.Span("›", className="crumb-sep"))
        out.append(nav(label, to, "crumb") if to is not None else html.Span(label, className="crumb here"))
    return out


# --- the KPI table -------------------------------------------------------------------
def _delta_cell(metric: str, m: dict) -> html.Span:
    d = m["delta"]
    better = BETTER.get(metric)
    cls = "delta"
    arrow = ""
    if d:
        arrow = "▲ " if d > 0 else "▼ "
        if better:
            cls += " good" if d * better > 0 else " bad"
    return html.Span(arrow + fmt_delta(metric, d), className=cls)


def kpi_table(table: dict, sort: str | None, lang: str, drill_to, sort_to) -> html.Div:
    """The district / street / grid table. `drill_to(key)` -> query or None;
    `sort_to(sort)` -> query."""
    level = table["level"]
    head = [html.Th(nav(t(f"level_{level}", lang) + _arrow("name", sort), sort_to(_toggle("name", sort)),
                        "sort-btn", title=t("sort_by", lang, name=t(f"level_{level}", lang))),
                    className="name")]
    for m in METRICS:
        head.append(html.Th(nav(t(f"m_{m}", lang) + _arrow(m, sort), sort_to(_toggle(m, sort)), "sort-btn",
                                title=t("sort_by", lang, name=t(f"m_{m}", lang))),
                            className="num", **{"data-metric": m}))
    body = []
    for r in table["rows"]:
        to = drill_to(r["key"])
        name = nav(r["name"], to, "drill", title=t("drill_to", lang, name=r["name"])) if to else r["name"]
        body.append(_row(r, name, {"data-key": "" if r["key"] is None else str(r["key"])}, lang=lang))
    body.append(_row({"metrics": table["total"]}, t("total_row", lang), {"data-key": "total"}, "total-row",
                     lang=lang))
    missing = any(v.get("not_recorded") for r in table["rows"] + [{"metrics": table["total"]}]
                  for v in r["metrics"].values())
    legend = [html.Div(t("not_recorded_legend", lang), className="not-recorded-legend")] if missing else []
    return html.Div([html.Table([html.Thead(html.Tr(head)), html.Tbody(body)], className="kpi-table"), *legend],
                    className="kpi-wrap")


def _row(r: dict, name, attrs: dict, cls: str = "", lang: str = "zh-CN") -> html.Tr:
    cells = [html.Td(name, className="name")]
    for m in METRICS:
        v = r["metrics"][m]
        marks = {"title": t("not_recorded_hint", lang), "data-not-recorded": "true"} if v.get("not_recorded") else {}
        cells.append(html.Td([html.Span(fmt_value(m, v["value"]), className="value"), _delta_cell(m, v)],
                             className="num" + (" not-recorded" if marks else ""),
                             **{"data-metric": m, "data-value": "" if v["value"] is None
                                else repr(v["value"])}, **marks))
    return html.Tr(cells, className=cls, **attrs)


def _toggle(metric: str, sort: str | None) -> str:
    """Clicking a header: sort by it descending, then ascending (names: ascending first)."""
    first = metric if metric == "name" else "-" + metric
    second = "-name" if metric == "name" else metric
    return second if sort == first else first


def _arrow(metric: str, sort: str | None) -> str:
    if sort == metric:
        return " ↑"
    if sort == "-" + metric:
        return " ↓"
    return ""


def export_links(query: dict, whats: list[tuple[str, str]], lang: str) -> html.Div:
    links = [html.Span(t("export", lang) + "：", className="export-label")]
    for what, label_key in whats:
        for fmt in ("csv", "xlsx"):
            href = f"/browse/export.{fmt}?" + urlencode({**query, "what": what})
            links.append(html.A(f"{t(label_key, lang)} {fmt.upper()}", href=href, download="",
                                className=f"export-link export-{what}-{fmt}"))
    return html.Div(links, className="browse-exports", id=ids.BROWSE_EXPORTS)


# --- the case list -------------------------------------------------------------------
CASE_COLUMNS = (  # (field, sortable, width)
    ("external_id", True, 190), ("reported_at", True, 150), ("district", True, 100), ("street", False, 130),
    ("grid", False, 170), ("category", True, 150), ("source", True, 110), ("status", True, 100),
    ("deadline_at", True, 150), ("closed_at", True, 150), ("overdue", False, 90), ("rework_count", True, 90),
    ("extended", False, 80), ("address", False, 260),
)


def case_grid(key: str, total: int, csort: str | None, lang: str) -> html.Div:
    """The case list: AG Grid's infinite row model, each block of rows fetched from the
    server (sorted and counted in SQL)."""
    sort_col, desc = (csort.lstrip("-"), csort.startswith("-")) if csort else ("reported_at", True)
    cols = []
    for field, sortable, width in CASE_COLUMNS:
        col = {"field": field, "colId": field, "headerName": t(f"c_{field}", lang), "sortable": sortable,
               "width": width}
        if field == sort_col:
            col["sort"] = "desc" if desc else "asc"
        if field == "external_id":
            # the id as text, linked to the page the app builds (assets/browse.js); never
            # markdown or HTML, whatever the city's id holds
            col["cellRenderer"] = "CaseLink"
        cols.append(col)
    return html.Div([
        html.Div(t("case_total", lang, n=f"{total:,}"), className="case-total", **{"data-total": str(total)}),
        dag.AgGrid(
            id={"type": ids.BROWSE_GRID, "key": key},
            rowModelType="infinite",
            columnDefs=cols,
            defaultColDef={"resizable": True, "sortingOrder": ["desc", "asc"]},
            dashGridOptions={"cacheBlockSize": 100, "maxBlocksInCache": 20, "infiniteInitialRowCount": 1,
                             "rowBuffer": 0, "suppressMultiSort": True, "animateRows": False},
            className="browse-grid",
            style={"height": "560px", "width": "100%"},
        ),
    ], className="case-list")


def case_href(case_id, lang: str, back: str = "") -> str:
    """A case's page; `back` is the list's query string, for the page's way back to it."""
    return f"/case/{quote(str(case_id), safe='')}?" + urlencode({"lang": lang, **({"back": back} if back else {})})


def case_cells(r: dict, names, lang: str, tz, back: str = "") -> dict:
    """One case as the grid shows it (names and local times, formatted on the server)."""
    return {
        "external_id": r["external_id"], "case_href": case_href(r["id"], lang, back),
        "reported_at": fmt_time(r["reported_at"], tz), "district": names.district(r["district"]),
        "street": r.get("street_name") or "—", "grid": r.get("grid_name") or "—",
        "category": names.category(r["category"]), "source": names.source(r["source"]),
        "status": t_or(f"status_{r['status']}", lang, r["status"]),
        "deadline_at": fmt_time(r["deadline_at"], tz), "closed_at": fmt_time(r["closed_at"], tz),
        "overdue": t("yes", lang) if r["overdue"] else "", "rework_count": r["rework_count"],
        "extended": t("yes", lang) if r["extended"] else "", "address": r.get("address") or "",
    }


# --- one case ------------------------------------------------------------------------
def case_layout_factory(settings, user=None):
    default_lang = settings["DASHBOARD_LANGUAGE"]

    def layout(case_ref=None, lang=None, **_query):
        lang, _ = pick_language(lang if isinstance(lang, str) else None, default_lang)
        return html.Div([
            dcc.Location(id=ids.CASE_LOCATION, refresh=False),
            header(settings, "case", lang, user, here=case_href(case_ref or "", lang).split("?")[0]),
            html.Main(id=ids.CASE_BODY, className="case-body"),
        ], className="browse-page app-page case-page", lang=lang)

    return layout


def case_view(detail: dict | None, ref: str, names, lang: str, tz, back: str = "") -> list:
    """`back`: the query string of the list the case was opened from (default: the list)."""
    back = html.A(t("case_back", lang), href="/browse?" + (back or urlencode({"lang": lang})),
                  className="nav-link back")
    if detail is None:
        return [back, html.Div(t("case_not_found", lang, ref=ref), className="browse-notice not-found")]
    c = detail["case"]
    facts = [
        ("c_status", t_or(f"status_{c['status']}", lang, c["status"])),
        ("c_district", names.district(c["district"])), ("c_street", c.get("street_name") or "—"),
        ("c_grid", c.get("grid_name") or "—"), ("c_category", names.category(c["category"])),
        ("c_source", names.source(c["source"])),
        ("c_department", c.get("department") or "—"), ("c_address", c.get("address") or "—"),
        ("c_reported_at", fmt_time(c["reported_at"], tz, True)), ("c_filed_at", fmt_time(c["filed_at"], tz, True)),
        ("c_deadline_at", fmt_time(c["deadline_at"], tz, True)),
        ("c_handled_at", fmt_time(c["handled_at"], tz, True)), ("c_closed_at", fmt_time(c["closed_at"], tz, True)),
    ]
    badges = []
    if c["overdue"]:
        badges.append(html.Span("✕ " + t("case_overdue_by", lang, h=f"{c['overdue_hours']:,.1f}"),
                                className="badge bad case-overdue"))
    elif c["status"] == "closed" and c["closed_at"] and c["deadline_at"]:
        on_time = _when(c["closed_at"]) <= _when(c["deadline_at"])
        badges.append(html.Span(("✓ " if on_time else "! ") + t("case_closed_on_time" if on_time
                                                                else "case_closed_late", lang),
                                className="badge " + ("good" if on_time else "warn")))
    else:
        badges.append(html.Span(t("case_not_overdue", lang), className="badge neutral"))
    if c["rework_count"]:
        badges.append(html.Span("↺ " + t("case_reworks", lang, n=c["rework_count"]), className="badge warn"))
    if c["extended"]:
        badges.append(html.Span("⏱ " + t("case_extended", lang), className="badge warn"))
    return [
        back,
        html.H2(t("case_title", lang, ref=c["external_id"]), className="case-title"),
        html.Div(badges, className="badges"),
        html.P(c.get("summary") or "", className="case-summary"),
        html.Dl([x for key, value in facts for x in (html.Dt(t(key, lang)), html.Dd(value))], className="facts"),
        html.H3(t("case_timeline", lang)),
        timeline(detail["events"], c, lang, tz),
    ]


def _when(value) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def timeline(events: list[dict], case: dict, lang: str, tz) -> html.Ol:
    if not events:
        return html.P(t("case_no_events", lang), className="muted")
    items = []
    prev_at = None
    deadline = _when(case.get("deadline_at"))
    for e in events:
        at = _when(e["at"])
        took = html.Span(t("after", lang, d=fmt_duration((at - prev_at).total_seconds(), lang)),
                         className="took") if prev_at else None
        late = deadline is not None and at > deadline and e["to_status"] in ("handled", "closed")
        frm = t_or(f"status_{e['from_status']}", lang, e["from_status"]) if e["from_status"] else ""
        items.append(html.Li([
            html.Span(fmt_time(e["at"], tz, True), className="at"),
            html.Span([frm + " → " if frm else "", html.B(t_or(f"status_{e['to_status']}", lang, e["to_status"]))],
                      className="step"),
            html.Span(e.get("actor") or "", className="actor"),
            html.Span(e.get("note") or "", className="note"),
            took,
        ], className=f"event to-{e['to_status']}" + (" late" if late else ""),
            **{"data-status": e["to_status"]}))
        prev_at = at
    return html.Ol(items, className="timeline")


# --- enterprise drill ----------------------------------------------------------------
def _table(headers: list[str], rows: list[list], cls: str, row_attrs: list[dict] | None = None) -> html.Table:
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in headers])),
                       html.Tbody([html.Tr([html.Td(c) for c in r], **(row_attrs[i] if row_attrs else {}))
                                   for i, r in enumerate(rows)])], className="plain-table " + cls)


def enterprise_body(data: dict, names, lang: str, tz, to) -> list:
    """`to(**changes)` -> query string of the current state with `changes`."""
    grid_rows, attrs = [], []
    for g in data["grids"]:
        grid_rows.append([nav(g["name_zh"], to(egrid=g["grid_id"]), "drill"), g.get("host_unit") or "—",
                          names.district(g["district"]), fmt_count(g["members"]), fmt_count(g["above_scale"]),
                          html.Span([fmt_count(g["visits_cur"]), " ", _delta_cell("visits", {"delta": g["visits_delta"]})]),
                          fmt_count(g["visited_cur"]),
                          html.Span([fmt_rate(g["coverage"]), " ",
                                     _delta_cell("closure_rate", {"delta": g["coverage_delta"]})]),
                          fmt_count(g["raised"]), fmt_count(g["open_problems"])])
        attrs.append({"data-key": str(g["grid_id"])})
    out = [html.H2(t("e_grids_title", lang)),
           _table([t(k, lang) for k in ("e_grid", "e_host", "f_district", "e_members", "e_above_scale",
                                        "e_visits", "e_visited", "e_coverage", "e_raised", "e_open")],
                  grid_rows, "egrid-table", attrs)]
    if data.get("members") is not None:
        out += [html.H2(t("e_members_title", lang)),
                _table([t(k, lang) for k in ("e_enterprise", "e_above_scale", "e_industry", "e_visits",
                                             "e_last_visit", "e_problems", "e_open")],
                       [[m["name"], t("yes", lang) if m["above_scale"] else "", m.get("industry") or "",
                         fmt_count(m["visits"]), fmt_time(m["last_visit"], tz), fmt_count(m["problems"]),
                         fmt_count(m["open_problems"])] for m in data["members"]], "member-table")]
    out += [html.H2(t("e_types_title", lang)),
            _table([t(k, lang) for k in ("e_type", "e_raised", "e_resolved", "e_resolution", "e_open")],
                   [[nav(t_or(f"ptype_{r['problem_type']}", lang, r["problem_type"]), to(ptype=r["problem_type"]),
                         "drill"), fmt_count(r["raised_cur"]), fmt_count(r["resolved_cur"]),
                     html.Span([fmt_rate(r["resolution_rate"]), " ",
                                _delta_cell("closure_rate", {"delta": r["resolution_delta"]})]),
                     fmt_count(r["open_now"])] for r in data["types"]], "ptype-table",
                   [{"data-key": r["problem_type"]} for r in data["types"]])]
    shown = len(data["open_problems"])
    out += [html.H2(t("e_open_title", lang)),
            html.P(t("e_open_more", lang, n=f"{data['open_total']:,}", shown=shown), className="muted",
                   **{"data-total": str(data["open_total"])}),
            _table([t(k, lang) for k in ("e_raised_at", "e_enterprise", "f_district", "e_type", "e_summary",
                                         "e_department")],
                   [[fmt_time(p["raised_at"], tz), p["enterprise"], names.district(p["district"]),
                     t_or(f"ptype_{p['problem_type']}", lang, p["problem_type"]), p.get("summary") or "",
                     p.get("department") or ""] for p in data["open_problems"]], "problem-table")]
    return out


# --- parking drill -------------------------------------------------------------------
def parking_body(data: dict, names, lang: str, tz, to) -> list:
    rows, attrs = [], []
    for f in data["facilities"]:
        occ = "—" if f["stale"] else fmt_count(f["occupied_clamped"])
        flag = [html.Span(" ⚠", title=t("p_out_of_range", lang), className="warn")] if f["out_of_range"] else []
        rows.append([nav(f["name"], to(facility=f["id"]), "drill"), names.district(f["district"]),
                     t_or(f["kind"], lang, t_or(f"kind_{f['kind']}", lang, f["kind"])),
                     fmt_count(f["capacity"]), html.Span([occ] + flag),
                     fmt_rate(f["occupancy"]) if not f["stale"] else html.Span(t("p_stale", lang), className="muted"),
                     fmt_time(f["observed_at"], tz),
                     t_or(f["programme"], lang, f["programme"]) if f["programme"] else "",
                     t("yes", lang) if f["demo_site"] else ""])
        attrs.append({"data-key": str(f["id"])})
    out = []
    h = data.get("history")
    if h is not None:
        name = (h["facility"] or {}).get("name", "")
        out += [html.H2(t("p_history", lang, name=name))]
        if h["hours"]:
            out.append(dcc.Graph(figure=history_figure(h["hours"], tz), config={"displayModeBar": False},
                                 className="history-graph"))
        else:
            out.append(html.P(t("p_history_empty", lang), className="muted"))
    else:
        out.append(html.P(t("p_pick", lang), className="muted"))
    out += [html.H2(t("p_title", lang)),
            _table([t(k, lang) for k in ("p_facility", "f_district", "p_kind", "p_capacity", "p_occupied",
                                         "p_occupancy", "p_observed", "p_programme", "p_demo")],
                   rows, "facility-table", attrs)]
    return out


def history_figure(hours: list[dict], tz) -> dict:
    xs = [dt.datetime.strptime(h["hour"], "%Y-%m-%d %H").replace(tzinfo=dt.timezone.utc).astimezone(tz)
          .strftime("%Y-%m-%d %H:00") for h in hours]
    ys = [None if h["occupancy"] is None else round(100 * h["occupancy"], 1) for h in hours]
    return {"data": [{"type": "scatter", "mode": "lines", "x": xs, "y": ys, "line": {"color": "#22d3ee"},
                      "hovertemplate": "%{x}<br>%{y:.1f}%<extra></extra>"}],
            "layout": {"paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "height": 300,
                       "margin": {"l": 48, "r": 16, "t": 8, "b": 40},
                       "font": {"family": '"Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif',
                                "color": "#e6f0ff"},
                       "yaxis": {"range": [0, 100], "ticksuffix": "%", "gridcolor": "rgba(120,160,220,0.18)"},
                       "xaxis": {"gridcolor": "rgba(120,160,220,0.18)"}}}
