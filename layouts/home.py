"""`/`: open cases per district, live, with a link to the wall (which has its own module)."""
from __future__ import annotations

from dash import dcc, html

from layouts import ids
from layouts.i18n import district_name, pick_language, t
from layouts.nav import nav_bar


def layout_factory(settings, user=None):
    refresh_ms = int(settings["PAGE_REFRESH_SECONDS"] * 1000)
    default_lang = settings["DASHBOARD_LANGUAGE"]

    def layout(lang=None, **_query):
        lang, _ = pick_language(lang if isinstance(lang, str) else None, default_lang)
        return html.Div([
            dcc.Location(id=ids.HOME_LOCATION, refresh=False),
            dcc.Interval(id=ids.HOME_INTERVAL, interval=refresh_ms),
            dcc.Store(id=ids.HOME_SHOWN),
            nav_bar(settings, "home", lang, here="/", user=user),
            html.Div(id=ids.HOME_NOTICE, className="notice", role="status"),
            html.Main(id=ids.HOME_BODY, className="home-body"),
        ], className="home-page app-page", lang=lang)

    return layout


def _fmt_time(ts, tz) -> str:
    return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if ts else "—"


def open_cases_body(rows: list[dict], data_as_of, computed_at, lang: str, tz) -> html.Div:
    """The district table; each count carries data-district for tests and automation."""
    total = sum(r["open_cases"] for r in rows)
    top = max([r["open_cases"] for r in rows] + [1])
    rows = [html.Tr([
        html.Td(district_name(r, lang), className="name"),
        html.Td(html.Div(className="bar", style={"width": f"{100 * r['open_cases'] / top:.1f}%"}),
                className="bar-cell"),
        html.Td(f"{r['open_cases']:,}", className="count", **{"data-district": r["code"]}),
    ]) for r in rows]
    rows.append(html.Tr([html.Td(t("total", lang), className="name"), html.Td(),
                         html.Td(f"{total:,}", className="count total",
                                 **{"data-district": "total"})], className="total-row"))
    return html.Div([
        html.H2(t("open_cases_title", lang)),
        html.Table([html.Thead(html.Tr([html.Th(t("district", lang)), html.Th(),
                                        html.Th(t("open_cases", lang))])),
                    html.Tbody(rows)], className="district-table"),
        html.P([f"{t('data_as_of', lang)} {_fmt_time(data_as_of, tz)} · ",
                f"{t('read_at', lang)} {_fmt_time(computed_at, tz)}"],
               className="freshness"),
    ])
