"""`/`: a leader's morning page for their scope, drawn from the plain data of
dashboard/home.py `morning()` (the callback passes it in: this module does no arithmetic
and imports nothing of dashboard/).

Every figure carries `data-*` attributes naming what it is (`data-kpi`, `data-value`,
`data-delta`, `data-level`, `data-district`), so tests and automation read the page
without parsing text. Names of districts and categories and case addresses come from a
city's data: they are passed to Dash as text, never as HTML.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from dash import dcc, html

from layouts import ids
from layouts.i18n import pick_language, t
from layouts.nav import nav_bar

LEVEL_ICONS = {"good": "✓", "watch": "!", "alert": "✕"}
LABELS = {"open_cases": "h_open_cases", "overdue": "h_overdue", "reported_today": "h_reported_today",
          "closed_today": "h_closed_today", "closure_rate": "h_closure_rate",
          "on_time_closure_rate": "h_on_time_closure_rate", "visits": "h_visits",
          "problems_raised": "h_problems_raised", "resolution_rate": "h_resolution_rate",
          "occupancy": "h_occupancy"}


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
            html.Main(html.P(t("loading", lang)), id=ids.HOME_BODY, className="home-body"),
            html.P(id=ids.HOME_FRESHNESS, className="freshness"),
        ], className="home-page app-page", lang=lang)

    return layout


# --- formats -----------------------------------------------------------------------------
def _raw(value) -> str:
    return "" if value is None else repr(float(value)) if isinstance(value, float) else str(value)


def fmt_value(value, kind: str) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if kind == "rate" else f"{value:,.0f}"


def fmt_delta(delta, kind: str, lang: str) -> str:
    """A change with its sign: counts as whole numbers, rates in percentage points."""
    if delta is None:
        return "—"
    if kind == "rate":
        return t("points", lang, value=f"{100 * delta:+.1f}" if round(100 * delta, 1) else "±0")
    return f"{delta:+,.0f}" if delta else "±0"


def _fmt_time(ts, tz) -> str:
    return ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if ts else "—"


def _local(iso: str | None, tz) -> str:
    if not iso:
        return "—"
    when = dt.datetime.fromisoformat(iso).astimezone(tz)
    today = dt.datetime.now(tz).date()
    return when.strftime("%H:%M") if when.date() == today else when.strftime("%m-%d %H:%M")


def _date_line(now: dt.datetime, lang: str) -> str:
    day = t("weekday", lang).split(",")[now.weekday()]
    if lang == "en":
        return f"{day} {now.day} {now.strftime('%B')} {now.year}"
    return f"{now.year}年{now.month}月{now.day}日 {day}"


def href(link: dict, lang: str, default_lang: str) -> str:
    query = dict(link["query"])
    if lang != default_lang:
        query["lang"] = lang
    return link["path"] + ("?" + urlencode(query) if query else "")


def case_href(case_id, lang: str) -> str:
    return f"/case/{quote(str(case_id), safe='')}?" + urlencode({"lang": lang})


# --- names -------------------------------------------------------------------------------
def scope_name(scope: dict, ref, lang: str) -> str:
    if scope["kind"] == "city":
        return t("scope_city", lang)
    if scope["kind"] == "several":
        return t("scope_several", lang)
    d = ref.district(scope["code"])
    if d is None:
        return scope["code"]
    return d.name_en if lang == "en" else d.name_zh


def total_label(scope: dict, ref, lang: str) -> str:
    if scope["kind"] == "district":
        return t("total_district", lang, name=scope_name(scope, ref, lang))
    return t(f"total_{scope['kind']}", lang)


def category_label(code: str, ref, lang: str, shown: list[str]) -> str:
    """A top-level category's name, with its kind (部件 / 事件) when another top-level
    category shown beside it has the same name (市容环境 is both)."""
    name = ref.category_name(code, lang)
    kind = (ref.categories.get(code) or {}).get("kind")
    twins = [c for c in shown if c != code and ref.category_name(c, lang) == name]
    if twins and kind in ("component", "event"):
        word = t(f"kind_{kind}", lang)
        return f"{name}（{word}）" if lang != "en" else f"{name} ({word})"
    return name


# --- pieces ------------------------------------------------------------------------------
def _trend(better) -> str:
    return "good" if better else "bad" if better is False else "neutral"


def _arrow(delta) -> str:
    return "" if not delta else "▲" if delta > 0 else "▼"


def delta_span(delta, kind: str, lang: str, better=None, **attrs) -> html.Span:
    text = fmt_delta(delta, kind, lang)
    props = {"title": t("no_comparison", lang)} if delta is None else {}
    return html.Span(f"{_arrow(delta)}{text}", className=f"home-delta {_trend(better)}",
                     **{"data-delta-value": _raw(delta)}, **attrs, **props)


def _sub(sub: dict | None, lang: str) -> str | None:
    if not sub:
        return None
    values = {k: fmt_value(v, "count") for k, v in sub.items() if k != "key"}
    return t(sub["key"], lang, **values)


def card(c: dict, lang: str, default_lang: str) -> html.A:
    value_props = {"title": t("not_recorded", lang)} if c["value"] is None else {}
    children = [
        html.Div(t(LABELS[c["key"]], lang), className="home-card-label"),
        html.Div(fmt_value(c["value"], c["kind"]), className="home-card-value",
                 **{"data-kpi": c["key"], "data-value": _raw(c["value"])}, **value_props),
        html.Div([delta_span(c["delta"], c["kind"], lang, c["better"], **{"data-delta": c["key"]}),
                  html.Span(t(c["vs"], lang), className="home-vs")], className="home-card-delta"),
    ]
    sub = _sub(c.get("sub"), lang)
    if sub is not None:
        children.append(html.Div(sub, className="home-card-sub"))
    if c["level"]:
        children.append(html.Div(f"{LEVEL_ICONS[c['level']]} {t('level_' + c['level'], lang)}",
                                 className=f"home-card-level level-{c['level']}", **{"data-level": c["level"]}))
    if c["status"] in ("stale", "error", "waiting"):
        children.append(html.Div(t(f"card_{c['status']}", lang), className="home-card-status",
                                 **{"data-status": c["status"]}))
    return html.A(children, href=href(c["link"], lang, default_lang), id=f"home-card-{c['key']}",
                  className=f"home-card level-{c['level'] or 'none'} status-{c['status']}",
                  title=t("open_in_browse", lang), **{"data-card": c["key"]})


def _count_cells(value, delta, col: str, lang: str, better=None) -> list:
    return [html.Td(fmt_value(value, "count"), className="num", **{"data-col": col, "data-value": _raw(value)}),
            html.Td(delta_span(delta, "count", lang, better), className="num change",
                    **{"data-col": f"{col}_delta", "data-value": _raw(delta)})]


def _row_cells(r: dict, lang: str) -> list:
    return (_count_cells(r["open"], r["open_delta"], "open", lang)
            + _count_cells(r["overdue"], r["overdue_delta"], "overdue", lang,
                           None if not r["overdue_delta"] else r["overdue_delta"] < 0)
            + _count_cells(r["reported"]["value"], r["reported"]["delta"], "reported", lang)
            + _count_cells(r["closed"]["value"], r["closed"]["delta"], "closed", lang,
                           None if not r["closed"]["delta"] else r["closed"]["delta"] > 0))


def district_table(model: dict, ref, lang: str, default_lang: str) -> html.Table:
    head = html.Tr([html.Th(t("district", lang))]
                   + [html.Th(x, className="num") for col in ("col_open", "col_overdue", "col_reported", "col_closed")
                      for x in (t(col, lang), t("col_change", lang))])
    rows = []
    for r in model["moves"]:
        link = {"path": "/browse", "query": {"period": "today", "district": r["code"]}}
        rows.append(html.Tr([html.Td(html.A(ref.district_name(r["code"], lang), href=href(link, lang, default_lang)),
                                     className="name", **{"data-district": r["code"]})] + _row_cells(r, lang),
                            **{"data-row": r["code"]}))
    total = model["moves_total"]
    if total is not None and (len(model["moves"]) > 1 or model["scope"]["kind"] == "city"):
        rows.append(html.Tr([html.Td(total_label(model["scope"], ref, lang), className="name",
                                     **{"data-district": "total"})] + _row_cells(total, lang),
                            className="total-row", **{"data-row": "total"}))
    return html.Div(html.Table([html.Thead(head), html.Tbody(rows)], className="home-table moves-table"),
                    className="home-scroll")


def category_list(model: dict, ref, lang: str, default_lang: str) -> html.Div:
    if model["day_start_at"] is None:
        return html.P(t("day_start_missing", lang), className="muted")
    cats = model["categories"]
    if not cats:
        return html.P(t("no_category_moves", lang), className="muted")
    shown = [c["code"] for c in cats]
    district = model["districts"][0] if model["scope"]["kind"] == "district" else None
    rows = []
    for c in cats:
        query = {"period": "today", "list": "open", "category": c["code"], **({"district": district} if district else {})}
        rows.append(html.Tr([
            html.Td(html.A(category_label(c["code"], ref, lang, shown), href=href({"path": "/browse", "query": query},
                                                                                     lang, default_lang)),
                    className="name"),
            html.Td(fmt_value(c["open"], "count"), className="num", **{"data-col": "open", "data-value": _raw(c["open"])}),
            html.Td(delta_span(c["delta"], "count", lang), className="num change",
                    **{"data-col": "open_delta", "data-value": _raw(c["delta"])}),
        ], **{"data-category": c["code"]}))
    head = html.Tr([html.Th(t("col_category", lang)), html.Th(t("col_open", lang), className="num"),
                    html.Th(t("col_change", lang), className="num")])
    return html.Table([html.Thead(head), html.Tbody(rows)], className="home-table category-table")


def overdue_list(model: dict, ref, lang: str, tz) -> html.Div:
    items = model["newly_overdue"]
    total = model["newly_overdue_total"]
    note = html.P(t("newly_overdue_count", lang, n=fmt_value(total, "count"), shown=len(items)),
                  className="muted", **{"data-total": _raw(total), "data-shown": str(len(items))})
    if not items:
        return html.Div([note, html.P(t("no_items", lang), className="muted")])
    head = html.Tr([html.Th(t("col_case", lang)), html.Th(t("col_due", lang)), html.Th(t("district", lang)),
                    html.Th(t("col_category", lang)), html.Th(t("col_address", lang))])
    rows = [html.Tr([
        html.Td(html.A(r["external_id"], href=case_href(r["id"], lang)), className="case-no"),
        html.Td(_local(r["deadline_at"], tz), className="when"),
        html.Td(ref.district_name(r["district"], lang), className="where"),
        html.Td(ref.category_name(r["category"], lang), className="what"),
        html.Td(r.get("address") or "", className="addr"),
    ], **{"data-case": r["external_id"], "data-district": r["district"]}) for r in items]
    return html.Div([note, html.Div(html.Table([html.Thead(head), html.Tbody(rows)],
                                               className="home-table overdue-table"), className="home-scroll")])


def freshness(lang: str, tz, data_as_of, computed_at) -> list:
    """The line under the page: the day, how new the data is and when it was read."""
    day = _date_line(computed_at.astimezone(tz), lang)
    return [html.Span(day, className="home-date"), " · ",
            f"{t('data_as_of', lang)} {_fmt_time(data_as_of, tz)} · ",
            f"{t('read_at', lang)} {_fmt_time(computed_at, tz)}"]


def morning_body(model: dict, ref, lang: str, default_lang: str, tz) -> html.Div:
    scope = model["scope"]
    if scope["kind"] == "none":
        return html.Div(html.P(t("scope_none", lang), className="muted", **{"data-scope": "none"}))
    links = model["links"]
    return html.Div([
        html.H1(t("home_title", lang, scope=scope_name(scope, ref, lang)), className="home-title",
                **{"data-scope": scope["kind"], "data-scope-code": scope["code"] or ""}),
        html.Section([card(c, lang, default_lang) for c in model["cards"]], className="home-cards",
                     **{"aria-label": t("home_title", lang, scope=scope_name(scope, ref, lang))}),
        html.Div([
            html.Section([html.H2(t("h_changes", lang)),
                          html.H3(t("h_district_moves", lang)),
                          district_table(model, ref, lang, default_lang),
                          html.H3(t("h_category_moves", lang)),
                          category_list(model, ref, lang, default_lang)],
                         className="home-panel home-changes"),
            html.Section([html.H2(t("h_newly_overdue", lang)), overdue_list(model, ref, lang, tz)],
                         className="home-panel home-overdue"),
        ], className="home-columns"),
        html.Nav([html.Span(t("h_links", lang), className="home-links-title")]
                 + [html.A(t(f"link_{k}", lang), href=href(links[k], lang, default_lang), className="home-link",
                           **{"data-link": k})
                    for k in ("browse_today", "browse_week", "wall", "archive")],
                 className="home-links", **{"aria-label": t("h_links", lang)}),
    ])
