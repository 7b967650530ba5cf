"""Snapshot -> everything the wall draws, as plain JSON keyed by "component-id.prop".

`PANELS` is the one list of the wall's panels: the page layout places them, the refresh
callback declares one output per (panel, part), and `render` fills them. A panel whose
builder fails shows a message instead; the wall is never blank.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Callable

import plotly.io.json as pio_json

from layouts.i18n import t
from layouts.wall import figures as fg
from layouts.wall import panels as pn
from layouts.wall import style as st
from layouts.wall.figures import PERIOD

log = logging.getLogger(__name__)

KPI_SECTION = {"open_cases": "cases", "overdue": "cases", "closure_rate": "cases",
               "on_time_closure_rate": "cases", "occupancy": "parking", "visits": "enterprise",
               "resolution_rate": "enterprise"}
RATE_KPIS = {"closure_rate", "on_time_closure_rate", "occupancy", "resolution_rate"}
TICKER_ROWS = {"ov": 8, "cs": 8}


@dataclass(frozen=True)
class Panel:
    id: str  # DOM id prefix; "<id>-head" holds the title and badge, "<id>-body" the content
    page: str
    section: str | None  # the snapshot section it shows (None: several, e.g. the cards)
    kind: str  # "graph" (body is a dcc.Graph) or "html"
    title: Callable[[object], str]
    build: Callable[..., object]  # (data, ctx) -> figure dict or components

    @property
    def outputs(self) -> list[tuple[str, str]]:
        return [(f"{self.id}-head", "children"),
                (f"{self.id}-body", "figure" if self.kind == "graph" else "children")]


@dataclass(frozen=True)
class Context:
    ref: object
    view: object
    rules: object  # dashboard.thresholds (levels and which way is better)
    tz: object
    sections: dict  # name -> section dict (status, since, error, data)

    def data(self, name: str):
        s = self.sections.get(name)
        return None if s is None else s.get("data")


def _period(view) -> str:
    return t(f"period_{PERIOD}", view.lang)


def map_values(kpi: str, ctx: Context) -> dict:
    data = ctx.data(KPI_SECTION[kpi])
    if kpi == "open_cases":
        return {c: v["total"] for c, v in data["open"]["by_district"].items()}
    if kpi == "overdue":  # without deadlines in the city's data: no value to colour
        missing = data["overdue"].get("not_recorded")
        return {c: (None if missing else n) for c, n in data["overdue"]["by_district"].items()}
    if kpi in ("closure_rate", "on_time_closure_rate"):
        return fg.values_of(data["periods_kpis"][PERIOD]["by_district"], kpi)
    if kpi == "occupancy":
        return fg.values_of(data["by_district"], "occupancy_now")
    return fg.values_of(data["periods"][PERIOD]["by_district"], kpi)


def _map(_data, ctx: Context) -> dict:
    kpi = ctx.view.kpi
    return fg.district_map(map_values(kpi, ctx), ctx.ref, ctx.view, t(f"kpi_{kpi}", ctx.view.lang),
                           kpi in RATE_KPIS)


def _ticker(prefix: str):
    def build(data, ctx: Context):
        return pn.ticker(pn.merge_ticker(data, ctx.view.district), ctx.ref, ctx.view.lang, ctx.tz,
                         TICKER_ROWS.get(prefix, 12))
    return build


def _trend_title(view) -> str:
    return t("panel_trend" if view.district is None else "panel_trend_city", view.lang)


def _types_title(view) -> str:  # the snapshot has problem types for the city only
    return t("panel_ent_types" if view.district is None else "panel_ent_types_city", view.lang,
             period=_period(view))


def _title(key: str, period: bool = False):
    return lambda v: t(key, v.lang, period=_period(v)) if period else t(key, v.lang)


def _chart(fn):  # a figure of one section's data
    return lambda d, ctx: fn(d, ctx.ref, ctx.view)


def _judged(fn):  # a figure that also shows threshold levels
    return lambda d, ctx: fn(d, ctx.ref, ctx.view, ctx.rules)


def _panels() -> list[Panel]:
    P = Panel
    out = [P("ov-cards", "overview", None, "html", lambda v: "", lambda _d, ctx: cards(ctx))]
    for prefix, page in (("ov", "overview"), ("cs", "cases")):
        out += [P(f"{prefix}-open-stage", page, "cases", "graph", _title("panel_open_stage"), _chart(fg.open_by_stage)),
                P(f"{prefix}-closure-rank", page, "cases", "graph", _title("panel_closure_rank", True),
                  _judged(fg.closure_rank)),
                P(f"{prefix}-trend", page, "cases", "graph", _trend_title, _chart(fg.trend))]
    summary = lambda fn: lambda d, ctx: fn(d, ctx.view)  # noqa: E731
    out += [
        P("ov-map", "overview", "map", "graph", lambda v: t("panel_map", v.lang, kpi=t(f"kpi_{v.kpi}", v.lang)), _map),
        P("ov-ticker", "overview", "ticker", "html", _title("panel_ticker"), _ticker("ov")),
        P("ov-ent", "overview", "enterprise", "html", _title("panel_ent_summary", True), summary(pn.enterprise_summary)),
        P("ov-park-rank", "overview", "parking", "graph", _title("panel_park_now"), _judged(fg.occupancy_rank)),
        P("cs-categories", "cases", "cases", "graph", _title("panel_categories"), _chart(fg.categories)),
        P("cs-ageing", "cases", "cases", "graph", _title("panel_ageing"), _chart(fg.ageing)),
        P("cs-rates", "cases", "cases", "html", _title("panel_rates", True), _judged(pn.rates_table)),
        P("en-summary", "enterprise", "enterprise", "html", _title("panel_ent_summary", True),
          summary(pn.enterprise_summary)),
        P("en-visits", "enterprise", "enterprise", "graph", _title("panel_ent_visits", True),
          _chart(fg.enterprise_by_district)),
        P("en-types", "enterprise", "enterprise", "graph", _types_title, _chart(fg.problem_types)),
        P("en-resolution", "enterprise", "enterprise", "graph", _title("panel_ent_resolution", True),
          _judged(fg.resolution_rank)),
        P("en-grids", "enterprise", "enterprise", "graph", _title("panel_ent_grids", True), _chart(fg.grid_coverage)),
        P("pk-summary", "parking", "parking", "html", _title("panel_park_summary"), summary(pn.parking_summary)),
        P("pk-occupancy", "parking", "parking", "graph", _title("panel_park_now"), _judged(fg.occupancy_rank)),
        P("pk-curve", "parking", "parking", "graph", _title("panel_park_curve"), _chart(fg.occupancy_curve)),
        P("pk-capacity", "parking", "parking", "graph", _title("panel_park_capacity"), _chart(fg.capacity)),
        P("pk-programme", "parking", "parking", "graph", _title("panel_park_programme"), _chart(fg.programme)),
    ]
    return out


PANELS: list[Panel] = _panels()
OUTPUTS: list[tuple[str, str]] = [o for p in PANELS for o in p.outputs]


# --- the stat cards -----------------------------------------------------------------
def _cmp(block, name):
    c = (block or {}).get(name) or {}
    return c.get("value"), c.get("delta")


def cards(ctx: Context) -> list:
    view, rules, lang = ctx.view, ctx.rules, ctx.view.lang
    d = view.district
    out = []
    cases_s = ctx.sections.get("cases")
    cases = ctx.data("cases")
    status = lambda s: "waiting" if s is None else s["status"]  # noqa: E731
    if cases is not None:
        today = cases["periods_kpis"]["today"]
        month = cases["periods_kpis"][PERIOD]
        today_b = today["city"] if d is None else today["by_district"].get(d)
        month_b = month["city"] if d is None else month["by_district"].get(d)
        open_n = cases["open"]["total"] if d is None else cases["open"]["by_district"].get(d, {}).get("total", 0)
        overdue_n = cases["overdue"]["total"] if d is None else cases["overdue"]["by_district"].get(d, 0)
        first = cases["overdue"]["ageing"][0] if cases["overdue"]["ageing"] else {"n": 0, "by_district": {}}
        new_overdue = first["n"] if d is None else first["by_district"].get(d, 0)
        filed, _ = _cmp(today_b, "filed")
        closed, closed_delta = _cmp(today_b, "closed")
        reported, reported_delta = _cmp(today_b, "reported")
        share = overdue_n / open_n if open_n else None
        st_c = status(cases_s)
        out += [
            pn.card("open_cases", t("card_open", lang), st.count(open_n), open_n, lang,
                    sub=t("today_flow", lang, filed=st.count(filed), closed=st.count(closed)), status=st_c),
            pn.card("overdue", t("card_overdue", lang), st.count(overdue_n), overdue_n, lang,
                    sub=t("overdue_new", lang, n=st.count(new_overdue)), level=rules.level("overdue_share", share),
                    status=st_c, not_recorded=bool(cases["overdue"].get("not_recorded"))),
            pn.card("reported_today", t("card_reported", lang), st.count(reported), reported, lang,
                    delta=st.signed(reported_delta, "count"), vs=t("vs_yesterday", lang), status=st_c),
            pn.card("closed_today", t("card_closed", lang), st.count(closed), closed, lang,
                    delta=st.signed(closed_delta, "count"), vs=t("vs_yesterday", lang),
                    better=None if not closed_delta else closed_delta > 0, status=st_c,
                    not_recorded=bool(((today_b or {}).get("closed") or {}).get("not_recorded"))),
        ]
        for key, label in (("closure_rate", "card_closure"), ("on_time_closure_rate", "card_on_time")):
            value, delta = _cmp(month_b, key)
            missing = bool(((month_b or {}).get(key) or {}).get("not_recorded"))
            out.append(pn.card(key, t(label, lang), st.percent(value), value, lang,
                               delta=st.signed(delta, "rate"), vs=f"{_period(view)} {t('vs_last_month', lang)}",
                               better=rules.better(key, delta), level=rules.level(key, value), status=st_c,
                               not_recorded=missing))
    else:
        out += [pn.card(k, t(label, lang), "—", None, lang, status=status(cases_s))
                for k, label in (("open_cases", "card_open"), ("overdue", "card_overdue"),
                                 ("reported_today", "card_reported"), ("closed_today", "card_closed"),
                                 ("closure_rate", "card_closure"), ("on_time_closure_rate", "card_on_time"))]
    ent_s, ent = ctx.sections.get("enterprise"), ctx.data("enterprise")
    if ent is not None:
        block = ent["periods"][PERIOD]["city"] if d is None else ent["periods"][PERIOD]["by_district"].get(d)
        visits, visits_delta = _cmp(block, "visits")
        rate, rate_delta = _cmp(block, "resolution_rate")
        out += [pn.card("visits", t("card_visits", lang), st.count(visits), visits, lang,
                        delta=st.signed(visits_delta, "count"), vs=f"{_period(view)} {t('vs_last_month', lang)}",
                        better=None if not visits_delta else visits_delta > 0, status=status(ent_s)),
                pn.card("resolution_rate", t("card_resolution", lang), st.percent(rate), rate,
                        lang, delta=st.signed(rate_delta, "rate"), vs=f"{_period(view)} {t('vs_last_month', lang)}",
                        better=rules.better("resolution_rate", rate_delta),
                        level=rules.level("resolution_rate", rate), status=status(ent_s))]
    else:
        out += [pn.card(k, t(label, lang), "—", None, lang, status=status(ent_s))
                for k, label in (("visits", "card_visits"), ("resolution_rate", "card_resolution"))]
    park_s, park = ctx.sections.get("parking"), ctx.data("parking")
    if park is not None:
        b = park["city"] if d is None else park["by_district"].get(d, {})
        occ = b.get("occupancy_now")
        curve = b.get("today_curve") or []
        prev = curve[-2]["occupancy"] if len(curve) >= 2 else None
        delta = occ - prev if occ is not None and prev is not None else None
        out.append(pn.card("occupancy", t("card_occupancy", lang), st.percent(occ), occ, lang,
                           delta=st.signed(delta, "rate"), vs=t("vs_last_hour", lang),
                           better=rules.better("occupancy", delta), level=rules.level("occupancy", occ),
                           status=status(park_s)))
    else:
        out.append(pn.card("occupancy", t("card_occupancy", lang), "—", None, lang, status=status(park_s)))
    return out


# --- rendering ----------------------------------------------------------------------
def plain(value) -> object:
    """Components and figures as the JSON the browser receives (cached as is)."""
    return json.loads(pio_json.to_json_plotly(value))


def _section_for(panel: Panel, ctx: Context) -> str | None:
    return KPI_SECTION[ctx.view.kpi] if panel.section == "map" else panel.section


def render(sections: dict, ref, view, rules, tz) -> dict[str, object]:
    """Every output of the wall for one snapshot's sections (dicts as in Snapshot.to_dict)."""
    ctx = Context(ref, view, rules, tz, sections)
    out: dict[str, object] = {}
    for panel in PANELS:
        (head_id, head_prop), (body_id, body_prop) = panel.outputs
        name = _section_for(panel, ctx)
        section = sections.get(name) if name else None
        out[f"{head_id}.{head_prop}"] = plain(pn.head(panel.title(view), section, view.lang, tz)
                                              if name else [])
        data = section.get("data") if section else None
        if name and data is None:
            status = "waiting" if section is None else section["status"]
            text = t(f"status_{status}", view.lang, since=pn.local_hm((section or {}).get("since"), tz)) \
                if status in ("stale", "error") else t(f"status_{status}", view.lang)
            body = st.message_figure(text) if panel.kind == "graph" else pn.message(text, status)
        else:
            try:
                body = panel.build(data, ctx)
            except Exception:  # a shape the builder did not expect: say so, keep the rest
                log.exception("wall panel %s failed to render", panel.id)
                msg = t("render_failed", view.lang)
                body = st.message_figure(msg) if panel.kind == "graph" else pn.message(msg, "error")
        out[f"{body_id}.{body_prop}"] = plain(body)
    return out
