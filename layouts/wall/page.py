"""`/wall`: the 1920x1080 big-screen canvas, scaled to any screen.

The layout is the frame only: header, pages and empty panels. The refresh callback
fills the panels from the snapshot; assets/wall.js scales the canvas, keeps the clock
and the freshness light, rotates the pages and reloads the page when the server's
build changes or at the daily reload time.
"""
from __future__ import annotations

import dataclasses

from dash import dcc, html

from layouts import ids
from layouts.i18n import t
from layouts.wall.render import PANELS
from layouts.wall.view import PAGES, parse_view

GRAPH_CONFIG = {"displayModeBar": False, "responsive": True, "scrollZoom": False,
                "doubleClick": False, "showTips": False, "displaylogo": False}
CLIENT_STRINGS = ("light_fresh", "light_stale", "light_error", "light_waiting", "updated_ago",
                  "data_as_of", "reload_notice")


def _panel(panel, lang: str):
    if panel.kind == "graph":
        body = dcc.Graph(id=f"{panel.id}-body", config=GRAPH_CONFIG, className="panel-graph",
                         figure={"data": [], "layout": {"paper_bgcolor": "rgba(0,0,0,0)",
                                                        "plot_bgcolor": "rgba(0,0,0,0)",
                                                        "xaxis": {"visible": False},
                                                        "yaxis": {"visible": False}}})
    else:
        body = html.Div(t("status_waiting", lang), id=f"{panel.id}-body", className="panel-body")
    return html.Section([html.Div(id=f"{panel.id}-head", className="panel-head"), body],
                        className=f"panel panel-{panel.kind} area-{panel.id}")


def _page(name: str, lang: str):
    return html.Div([_panel(p, lang) for p in PANELS if p.page == name],
                    id=f"wall-page-{name}", className=f"wall-page page-{name}",
                    **{"data-page": name})


def layout_factory(settings, district_codes, build_id, scope):
    """`district_codes()` lists the valid codes; `build_id()` names the server's build;
    `scope()` says which districts this viewer may see (a district's wall is forced to it)."""
    refresh_ms = int(settings["PAGE_REFRESH_SECONDS"] * 1000)
    title = settings["DASHBOARD_TITLE"]

    def layout(**query):
        allowed = scope()
        codes = [c for c in district_codes() if allowed.allows(c[0])]
        view, warnings = parse_view(query, [c for c, _zh, _en in codes], settings["DASHBOARD_LANGUAGE"],
                                    settings["WALL_MAP_KPI"])
        if not allowed.allows(view.district):  # a district's viewer sees its own wall
            view = dataclasses.replace(view, district=allowed.default_district())
        names = {c: (zh, en) for c, zh, en in codes}
        heading = title
        if view.district is not None:
            zh, en = names[view.district]
            heading = f"{title} · {en if view.lang == 'en' else zh}"
        config = {"lang": view.lang, "district": view.district, "kpi": view.kpi, "rotate": view.rotate,
                  "page": view.page, "pages": list(PAGES), "tz": settings["DASHBOARD_TIMEZONE"],
                  "build": build_id(), "reload_at": settings["WALL_RELOAD_AT"],
                  "stale_after": settings.ready_max_age,
                  "strings": {k: t(k, view.lang) for k in CLIENT_STRINGS},
                  "page_names": {p: t(f"page_{p}", view.lang) for p in PAGES}}
        return html.Div([
            dcc.Interval(id=ids.WALL_REFRESH, interval=refresh_ms),
            dcc.Interval(id=ids.WALL_TICK, interval=1000),
            dcc.Store(id=ids.WALL_CONFIG, data=config),
            dcc.Store(id=ids.WALL_SHOWN, data=None),
            dcc.Store(id=ids.WALL_HEAD, data=None),
            html.Div([
                html.Header([
                    html.Div([html.Div(id=ids.WALL_DATE, className="hdr-date"),
                              html.Div(id=ids.WALL_CLOCK, className="hdr-clock")], className="hdr-left"),
                    html.Div([html.H1(heading, className="wall-title"),
                              html.Div([html.Span(t(f"page_{p}", view.lang), className="page-dot",
                                                  **{"data-page": p}) for p in PAGES],
                                       id=ids.WALL_DOTS, className="page-dots")], className="hdr-centre"),
                    html.Div([html.Div([html.Span(className="light-lamp"),
                                        html.Span(t("light_waiting", view.lang), className="light-text")],
                                       id=ids.WALL_LIGHT, className="light light-waiting",
                                       **{"data-light": "waiting"}),
                              html.Div(id=ids.WALL_ASOF, className="hdr-asof")], className="hdr-right"),
                ], className="wall-header"),
                html.Div([html.Div(w, className="wall-notice") for w in warnings], id=ids.WALL_NOTICES,
                         className="wall-notices", role="alert"),
                html.Div([_page(p, view.lang) for p in PAGES], id=ids.WALL_PAGES, className="wall-pages"),
            ], id=ids.WALL_CANVAS, className="wall-canvas"),
        ], id=ids.WALL_ROOT, className="wall-root", lang=view.lang)

    return layout
