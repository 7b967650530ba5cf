"""Wiring of `/`: open cases per district from the snapshot, redrawn only when it changes.

Like the wall, the page never queries the store: it reads the cache's head on every
tick and the snapshot only when its version differs from what the page shows.
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qs

from dash import Input, Output, State, html, no_update

from dashboard.metrics import count_refresh
from dashboard.scope import current_scope
from dashboard.services import services
from layouts import ids
from layouts.home import open_cases_body
from layouts.i18n import pick_language, t

log = logging.getLogger(__name__)


def _rows(snap, ref, scope) -> list[dict] | None:
    section = snap.sections.get("cases")
    if section is None or section.data is None:
        return None
    by = section.data["open"]["by_district"]
    return [{"code": d.code, "short_zh": d.short_zh, "name_en": d.name_en,
             "open_cases": by.get(d.code, {}).get("total", 0)} for d in ref.districts if scope.allows(d.code)]


def register(app) -> None:
    @app.callback(
        Output(ids.HOME_BODY, "children"),
        Output(ids.HOME_NOTICE, "children"),
        Output(ids.HOME_SHOWN, "data"),
        Input(ids.HOME_INTERVAL, "n_intervals"),
        Input(ids.HOME_LOCATION, "search"),
        State(ids.HOME_SHOWN, "data"),
    )
    def refresh(_n, search, shown):
        svc = services()
        count_refresh(svc.cache)
        requested = parse_qs((search or "").lstrip("?")).get("lang", [None])[0]
        lang, warning = pick_language(requested, svc.settings["DASHBOARD_LANGUAGE"])
        notice = [html.Span(warning, className="warning")] if warning else []
        snap = svc.cache.get()
        if snap is None:
            return html.P(t("loading", lang)), notice, no_update
        scope = current_scope()
        key = f"{snap.version}|{lang}|{scope.key()}|{snap.computed_at.isoformat()}"
        if shown == key:
            return no_update, no_update, no_update
        status = snap.sections["cases"].status if "cases" in snap.sections else "error"
        if status in ("stale", "error"):  # keep the last figures and say why they do not move
            notice = notice + [html.Span(t("store_error", lang), className="error")]
        rows = _rows(snap, svc.reference.get(), scope)
        if rows is None:
            return no_update, notice, key
        body = open_cases_body(rows, snap.data_as_of, snap.computed_at, lang, svc.settings.tz)
        return body, notice, key
