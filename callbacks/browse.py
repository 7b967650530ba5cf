"""Wiring of the browsing pages, the case page and their exports.

The URL is the state. Three callbacks per browsing page:
- `navigate`: URL, filter controls and in-page buttons -> the URL (a new query string)
  and the controls (values and the options the scope allows), plus the notices;
- `render`: URL -> summary, body (KPI table / enterprise / parking) and the case list;
- `case_rows`: the case grid's request for a block of rows -> those rows and the count.
Each one re-reads the query string and resolves it against the request's scope on the
server (dashboard.browse.resolve), so a hand-made request can ask for anything and still
gets only what its scope allows. The export route (`/browse/export.csv|xlsx?<query>&what=`)
does the same.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from urllib.parse import quote, unquote

from dash import ALL, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from flask import Response, abort, request
from sqlalchemy.exc import SQLAlchemyError

from dashboard import browse as B
from dashboard import browse_state as bs
from dashboard.export import to_csv, to_xlsx
from dashboard.guard import BadInput, parsing
from layouts import browse as L
from layouts import ids
from layouts.i18n import pick_language, t, t_or

log = logging.getLogger(__name__)
CONTROL_IDS = [cid for cid, _ in ids.BROWSE_CONTROLS]
PARAM_OF = {cid: param for cid, param, _ in L.FILTERS}
MAX_GRIDS = 4  # case grids one request may name (a page shows one)
EXPORT_LANG = "zh-CN"  # exports carry Chinese headers and names


class Names:
    """District and category names in a language, from the reference data."""

    def __init__(self, ref, lang: str):
        self.ref, self.lang = ref, lang

    def district(self, code) -> str:
        return self.ref.district_name(code, self.lang) if code else "—"

    def category(self, code) -> str:
        return self.ref.category_name(code, self.lang) if code else "—"

    def source(self, code) -> str:
        return self.ref.source_name(code, self.lang) if code else "—"


def _lang(search: str | None) -> str:
    requested = bs.query_dict(search).get("lang")
    return pick_language(requested, B.browse().svc.settings["DASHBOARD_LANGUAGE"])[0]


def _other(lang: str) -> str:
    return "en" if lang != "en" else "zh-CN"


def _lang_notice(search: str | None) -> list:
    b = B.browse()
    _, warning = pick_language(bs.query_dict(search).get("lang"), b.svc.settings["DASHBOARD_LANGUAGE"])
    return [warning] if warning else []


# --- the controls ----------------------------------------------------------------------
def _local_dates(start: dt.datetime, end: dt.datetime, tz) -> tuple[str, str]:
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    first = start.astimezone(tz).date()
    return first.isoformat(), max(first, last).isoformat()


def control_values(view: B.View, tz) -> list:
    s, w = view.state, view.window
    fr, to = _local_dates(w.start, w.end, tz)
    cfr, cto = _local_dates(w.prev_start, w.prev_end, tz)
    return [s.period, fr, to, s.compare, cfr, cto, s.district, s.street, s.grid, s.category, s.source,
            s.list, s.egrid, s.ptype, s.facility]


def control_options(view: B.View, lang: str) -> list:
    ref = view.lookup._ref
    scope = view.scope
    districts = [{"label": d.name(lang), "value": d.code} for d in ref.districts if scope.allows(d.code)]
    s = view.state
    streets = []
    if s.district is not None:
        streets = [{"label": (r["name_en"] or r["name_zh"]) if lang == "en" else r["name_zh"], "value": r["id"]}
                   for r in view.lookup.streets().values() if r["district"] == s.district]
    grids = []
    if s.street is not None:
        grids = [{"label": g["name_zh"], "value": g["id"]} for g in B.street_grids(view, s.street)]
    cats = []
    for code, c in sorted(ref.categories.items()):
        name = c["name_en"] if lang == "en" else c["name_zh"]
        cats.append({"label": (name if not c["parent"] else "　" + name) + f" ({code})", "value": code})
    ds = B.districts_of(view) if s.district is not None else (
        None if scope.city_wide else scope.filter([d.code for d in ref.districts]))
    egrids = [{"label": g["name_zh"], "value": g["id"]} for g in B.exclusive_grid_names(view, ds)]
    facilities = [{"label": f["name"], "value": f["id"]} for f in B.facility_names(view, ds)]
    sources = [{"label": ref.source_name(code, lang), "value": code} for code in ref.sources]
    return [districts, streets, grids, cats, egrids, facilities, sources]


def query_from_controls(values: dict, changed: str, search: str | None) -> dict:
    """The query a change of one control asks for (a lower level resets what hangs under it)."""
    p = {PARAM_OF[cid]: v for cid, v in values.items()}
    q = {}
    lang = bs.query_dict(search).get("lang")
    if lang:
        q["lang"] = lang
    param = PARAM_OF[changed]
    period = p["period"] or bs.DEFAULT_PERIOD
    if param in ("from", "to"):
        period = "custom"
    q["period"] = period
    if period == "custom":
        q["from"], q["to"] = p["from"] or "", p["to"] or ""
    compare = p["compare"] or "prev"
    if param in ("cfrom", "cto"):
        compare = "custom"
    if compare == "custom":
        q.update(compare="custom", cfrom=p["cfrom"] or "", cto=p["cto"] or "")
    resets = {"district": ("street", "grid", "egrid", "facility"), "street": ("grid",)}
    for name in ("district", "street", "grid", "category", "source", "list", "egrid", "ptype", "facility"):
        if p.get(name) not in (None, "") and name not in resets.get(param, ()):
            q[name] = str(p[name])
    old = bs.query_dict(search)
    for keep in ("sort", "csort"):
        if old.get(keep):
            q[keep] = old[keep]
    return q


# --- the page body -------------------------------------------------------------------
def _to(view: B.View, lang: str):
    def to(**changes) -> str:
        return view.state.replace(**changes).search(lang) or "?"
    return to


def _crumbs(view: B.View, lang: str) -> list:
    s = view.state
    ref = view.lookup._ref
    to = _to(view, lang)
    trail = [(t("crumb_city", lang), to(district=None, street=None, grid=None))]
    if s.district:
        trail.append((ref.district_name(s.district, lang), to(street=None, grid=None)))
    if s.street is not None:
        st = view.lookup.street(s.street) or {}
        trail.append(((st.get("name_en") or st.get("name_zh")) if lang == "en" else st.get("name_zh", ""),
                      to(grid=None)))
    if s.grid is not None:
        g = view.lookup.grid(s.grid) or {}
        trail.append((g.get("name_zh", str(s.grid)), to()))
    trail[-1] = (trail[-1][0], None)
    return L.crumbs(trail)


def cases_body(view: B.View, lang: str) -> list:
    table = B.kpi_table(view, lang)
    s = view.state
    to = _to(view, lang)

    def drill_to(key):
        if key is None:
            return None
        if table["level"] == "district":
            return to(district=key, street=None, grid=None)
        if table["level"] == "street":
            return to(street=key, grid=None)
        return None if s.grid is not None else to(grid=key)

    query = {**s.params(), "lang": lang}
    return [L.kpi_table(table, s.sort, lang, drill_to, lambda sort: to(sort=sort)),
            L.export_links(query, [("kpis", "export_table"), ("cases", "export_cases")], lang)]


def _case_key(view: B.View, lang: str) -> str:
    """Names what the case list shows, all but its sort (which the grid changes itself)."""
    raw = (view.state.replace(sort=None, csort=None).search() or "?") + "|" + lang
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _page(page) -> str:
    """The browsing page a callback serves (a value of the page's own store)."""
    if not isinstance(page, str) or page not in L.PAGES:
        raise BadInput("page: not a browsing page")
    return page


def register(app) -> None:
    controls = [Input(cid, prop) for cid, prop in ids.BROWSE_CONTROLS]

    @app.callback(
        Output(ids.BROWSE_LOCATION, "search"),
        [Output(cid, prop) for cid, prop in ids.BROWSE_CONTROLS],
        [Output(cid, "options") for cid in ids.BROWSE_OPTIONS],
        Output(ids.BROWSE_NOTICES, "children"),
        Input(ids.BROWSE_LOCATION, "search"),
        controls,
        Input({"type": ids.BROWSE_NAV, "to": ALL}, "n_clicks"),
    )
    def navigate(search, *args):
        values = dict(zip(CONTROL_IDS, args[:len(CONTROL_IDS)]))
        nav_hits = [x for x in ctx.triggered if x["prop_id"].startswith("{")]
        clicked = [x for x in nav_hits if x.get("value")]
        changed = [x["prop_id"].rsplit(".", 1)[0] for x in ctx.triggered]
        new_search = no_update
        if clicked:  # an in-page button: its id carries the query to go to
            with parsing("button id"):
                target = json.loads(clicked[0]["prop_id"].rsplit(".", 1)[0])["to"]
            if not isinstance(target, str):
                raise BadInput("button id: expected a query")
            query = bs.query_dict(target)
            lang = bs.query_dict(search).get("lang")
            if lang and "lang" not in query:
                query["lang"] = lang
        elif nav_hits:
            raise PreventUpdate  # buttons that just appeared with a new body
        elif len(changed) == 1 and changed[0] in values:  # one control changed
            query = query_from_controls(values, changed[0], search)
        else:  # the URL (first load, back/forward, a hand-edited address)
            query = bs.query_dict(search)
        url_driven = not clicked and not (len(changed) == 1 and changed[0] in values)
        view = B.resolve(query)
        lang = pick_language(query.get("lang"), B.browse().svc.settings["DASHBOARD_LANGUAGE"])[0]
        if not url_driven:
            new_search = view.state.search(query.get("lang")) or "?"
            if new_search == (search or "?"):
                new_search = no_update
        tz = B.browse().tz
        return (new_search, *control_values(view, tz), *control_options(view, lang),
                L.notices(view.notices, lang) + [L.html.Div(w, className="browse-notice")
                                                for w in _lang_notice(search)])

    @app.callback(
        Output(ids.BROWSE_SUMMARY, "children"),
        Output(ids.BROWSE_BODY, "children"),
        Output(ids.BROWSE_CASES, "children"),
        Output(ids.BROWSE_CASES_KEY, "data"),
        Input(ids.BROWSE_LOCATION, "search"),
        State(ids.BROWSE_PAGE, "data"),
        State(ids.BROWSE_CASES_KEY, "data"),
    )
    def render(search, page, shown_key):
        _page(page)
        try:
            return _render(search, page, shown_key)
        except SQLAlchemyError as exc:  # the store is unreachable: say so, keep the page
            log.warning("browse query failed: %s", exc.__class__.__name__)
            lang = _lang(search)
            return (no_update, L.html.Div(t("query_failed", lang), className="browse-notice not-found"),
                    no_update, no_update)

    def _render(search, page, shown_key):
        view = B.resolve(search)
        lang = _lang(search)
        b = B.browse()
        names = Names(view.lookup._ref, lang)
        crumbs = _crumbs(view, lang) if page == "cases" else L.crumbs([(t(f"nav_{page}", lang), None)])
        summary = L.summary(view.window, b.tz, lang, crumbs)
        query = {**view.state.params(), "lang": lang}
        if page == "enterprise":
            body = L.enterprise_body(B.enterprise_view(view), names, lang, b.tz, _to(view, lang)) + \
                [L.export_links(query, [("egrids", "e_grids_title"), ("problems", "e_open_title")], lang)]
            return summary, body, [], None
        if page == "parking":
            body = L.parking_body(B.parking_view(view), names, lang, b.tz, _to(view, lang)) + \
                [L.export_links(query, [("facilities", "p_title")], lang)]
            return summary, body, [], None
        body = cases_body(view, lang)
        key = _case_key(view, lang)
        if key == shown_key:
            return summary, body, no_update, no_update
        grid = L.case_grid(key, B.case_count(view), view.state.csort, lang)
        return summary, body, grid, key

    @app.callback(
        Output({"type": ids.BROWSE_GRID, "key": ALL}, "getRowsResponse"),
        Output(ids.BROWSE_LOCATION, "search", allow_duplicate=True),
        Input({"type": ids.BROWSE_GRID, "key": ALL}, "getRowsRequest"),
        State(ids.BROWSE_LOCATION, "search"),
        prevent_initial_call=True,
    )
    def case_rows(requests, search):
        if not requests or not any(requests):
            raise PreventUpdate
        # checked before any query: a page's grid or two, one answer per grid, whole blocks,
        # bounded rows in all
        if len(requests) > MAX_GRIDS:
            raise BadInput(f"getRowsRequest: more than {MAX_GRIDS} grids")
        if len(ctx.outputs_list[0]) != len(requests):
            raise BadInput("outputs: one per grid")
        max_rows = B.browse().svc.settings["MAX_ROWS_PER_REQUEST"]
        blocks = [bs.grid_block(req, max_rows) if req else None for req in requests]
        if sum(b[1] for b in blocks if b) > max_rows:
            raise BadInput(f"getRowsRequest: more than {max_rows} rows in all")
        view = B.resolve(search)
        lang = _lang(search)
        b = B.browse()
        names = Names(view.lookup._ref, lang)
        out = []
        new_search = no_update
        for block in blocks:
            if block is None:
                out.append(no_update)
                continue
            start, count, sort = block
            rows = B.case_rows(view, start, count, sort if sort else "-reported_at")
            back = view.state.search(lang).lstrip("?")  # the case page links back to this list
            out.append({"rowData": [L.case_cells(r, names, lang, b.tz, back) for r in rows],
                        "rowCount": B.case_count(view)})
            wanted = None if sort in (None, "-reported_at") else sort
            if wanted != view.state.csort:
                new_search = view.state.replace(csort=wanted).search(bs.query_dict(search).get("lang")) or "?"
        return out, new_search

    @app.callback(
        Output(ids.BROWSE_OTHER_LANG, "href"),
        Input(ids.BROWSE_LOCATION, "search"),
        State(ids.BROWSE_PAGE, "data"),
    )
    def other_language(search, page):
        """The language link keeps the filters and the drill (re-encoded from the parsed state)."""
        view = B.resolve(search)
        return L.PAGES[_page(page)] + (view.state.search(_other(_lang(search))) or "?")

    @app.callback(
        Output(ids.CASE_BODY, "children"),
        Output(ids.BROWSE_OTHER_LANG, "href", allow_duplicate=True),
        Input(ids.CASE_LOCATION, "pathname"),
        Input(ids.CASE_LOCATION, "search"),
        prevent_initial_call="initial_duplicate",
    )
    def case_page(pathname, search):
        ref = unquote((pathname or "").rstrip("/").rsplit("/", 1)[-1])
        lang = _lang(search)
        b = B.browse()
        # the list this case was opened from, parsed and re-encoded: only known parameters
        back_query = bs.query_dict(search).get("back")
        state = B.resolve(back_query).state if back_query else None
        back, back_other = (state.search(lang).lstrip("?"), state.search(_other(lang)).lstrip("?")) \
            if state else ("", "")
        other = L.case_href(ref, _other(lang), back_other)
        try:
            detail = B.case_detail(ref)
        except SQLAlchemyError as exc:
            log.warning("case query failed: %s", exc.__class__.__name__)
            return L.html.Div(t("query_failed", lang), className="browse-notice not-found"), other
        return L.case_view(detail, ref, Names(b.svc.reference.get(), lang), lang, b.tz, back), other

    app.server.add_url_rule("/browse/export.<fmt>", "browse_export", export_view)


# --- exports -------------------------------------------------------------------------
def export_view(fmt: str):
    if fmt not in ("csv", "xlsx"):
        abort(404)
    args = {k: v for k, v in request.args.items()}
    what = args.pop("what", "kpis")
    builders = {"kpis": kpi_export, "cases": cases_export, "egrids": egrids_export,
                "problems": problems_export, "facilities": facilities_export}
    if what not in builders:
        abort(404)
    view = B.resolve(args)  # the request's scope, checked on the server
    try:
        title, headers, rows = builders[what](view)
    except B.ExportTooLarge as exc:
        lang = "en" if str(args.get("lang", "")).startswith("en") else "zh-CN"
        return Response(t("export_too_large", lang, limit=f"{exc.limit:,}"), status=413,
                        content_type="text/plain; charset=utf-8")
    stamp = view.now.astimezone(B.browse().tz).strftime("%Y%m%d-%H%M")
    name = f"{title}-{stamp}.{fmt}"
    if fmt == "csv":
        body, mime = to_csv(headers, rows), "text/csv; charset=utf-8"
    else:
        body, mime = to_xlsx(headers, rows, title), \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ascii_name = f"{what}-{stamp}.{fmt}"
    # content_type, not mimetype: Flask would add a second "; charset=utf-8" to the CSV's
    return Response(body, content_type=mime, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})


def _pct(v):
    return None if v is None else round(100 * v, 2)


def _num(v, digits=2):
    return None if v is None else round(v, digits)


def kpi_export(view: B.View):
    lang = EXPORT_LANG
    table = B.kpi_table(view, lang)
    level = table["level"]
    headers = [t(f"level_{level}", lang), "代码"]
    for m in L.METRICS:
        name = t(f"m_{m}", lang)
        if m in L.RATES:
            headers += [f"{name}(%)", f"{name}对比期(%)", f"{name}变化(百分点)"]
        else:
            headers += [name, f"{name}对比期", f"{name}变化"]

    missing = t("not_recorded", lang)  # a figure the city's data has no input for: said, not left blank

    def cells(metrics):
        out = []
        for m in L.METRICS:
            v = metrics[m]
            f = _pct if m in L.RATES else _num if m in L.HOURS else (lambda x: x)
            out += [missing if v.get("not_recorded") else f(v["value"]),
                    missing if v.get("prev_not_recorded") else f(v["prev"]), f(v["delta"])]
        return out

    rows = [[r["name"], "" if r["key"] is None else str(r["key"])] + cells(r["metrics"]) for r in table["rows"]]
    rows.append([t("total_row", lang), ""] + cells(table["total"]))
    return "案件指标", headers, rows


def cases_export(view: B.View):
    lang = EXPORT_LANG
    b = B.browse()
    names = Names(view.lookup._ref, lang)
    rows = B.export_case_rows(view)
    fields = ("external_id", "reported_at", "filed_at", "handled_at", "closed_at", "deadline_at", "district",
              "street", "grid", "category", "source", "status", "overdue", "rework_count", "extended", "address")
    headers = [t(f"c_{f}", lang) for f in fields]
    out = []
    for r in rows:
        out.append([r["external_id"], *[L.fmt_time(r[k], b.tz, True) if r[k] else None
                                        for k in ("reported_at", "filed_at", "handled_at", "closed_at",
                                                  "deadline_at")],
                    names.district(r["district"]), r.get("street_name"), r.get("grid_name"),
                    names.category(r["category"]), names.source(r["source"]),
                    t_or(f"status_{r['status']}", lang, r["status"]), "是" if r["overdue"] else "否",
                    r["rework_count"], "是" if r["extended"] else "否", r.get("address")])
    return "案件清单", headers, out


def egrids_export(view: B.View):
    lang = EXPORT_LANG
    names = Names(view.lookup._ref, lang)
    data = B.enterprise_view(view)
    headers = ["专属网格", "依托单位", "区域", "成员企业", "规上企业", "走访家次", "走访家次对比期", "走访企业数",
               "走访企业数对比期", "走访覆盖率(%)", "走访覆盖率对比期(%)", "本期收集问题", "待解决问题"]
    rows = [[g["name_zh"], g.get("host_unit"), names.district(g["district"]), g["members"], g["above_scale"],
             g["visits_cur"], g["visits_prev"], g["visited_cur"], g["visited_prev"], _pct(g["coverage"]),
             _pct(g["coverage_prev"]), g["raised"], g["open_problems"]] for g in data["grids"]]
    return "专属网格", headers, rows


def problems_export(view: B.View):
    lang = EXPORT_LANG
    b = B.browse()
    names = Names(view.lookup._ref, lang)
    data = B.enterprise_view(view)
    headers = ["问题编号", "提出时间", "企业", "区域", "问题类型", "问题描述", "承办部门"]
    rows = [[p["external_id"], L.fmt_time(p["raised_at"], b.tz, True), p["enterprise"],
             names.district(p["district"]), t_or(f"ptype_{p['problem_type']}", lang, p["problem_type"]),
             p.get("summary"), p.get("department")] for p in data["open_problems"]]
    return "待解决问题", headers, rows


def facilities_export(view: B.View):
    lang = EXPORT_LANG
    b = B.browse()
    names = Names(view.lookup._ref, lang)
    data = B.parking_view(view)
    headers = ["设施编号", "设施", "区域", "类型", "泊位", "当前占用", "占用率(%)", "读数时间", "读数越界", "项目", "示范点"]
    rows = [[f["external_id"], f["name"], names.district(f["district"]),
             t_or(f["kind"], lang, t_or(f"kind_{f['kind']}", lang, f["kind"])), f["capacity"],
             f["occupied_clamped"], _pct(f["occupancy"]),
             L.fmt_time(f["observed_at"], b.tz, True) if f["observed_at"] else None,
             "是" if f["out_of_range"] else "否", t_or(f["programme"], lang, f["programme"]) if f["programme"] else None,
             "是" if f["demo_site"] else "否"] for f in data["facilities"]]
    return "停车设施", headers, rows
