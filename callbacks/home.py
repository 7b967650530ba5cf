"""Wiring of `/`: read open cases per district on every interval tick."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs

from dash import Input, Output, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from dashboard.metrics import count_refresh
from dashboard.services import services
from layouts import ids
from layouts.home import open_cases_body
from layouts.i18n import pick_language, t

log = logging.getLogger(__name__)


def register(app) -> None:
    @app.callback(
        Output(ids.HOME_BODY, "children"),
        Output(ids.HOME_NOTICE, "children"),
        Input(ids.HOME_INTERVAL, "n_intervals"),
        Input(ids.HOME_LOCATION, "search"),
    )
    def refresh(_n, search):
        svc = services()
        count_refresh(svc.cache)
        requested = parse_qs((search or "").lstrip("?")).get("lang", [None])[0]
        lang, warning = pick_language(requested, svc.settings["DASHBOARD_LANGUAGE"])
        notice = [html.Span(warning, className="warning")] if warning else []
        try:
            data = svc.open_cases()
        except SQLAlchemyError as exc:
            log.warning("store unreachable: %s", exc.__class__.__name__)
            # keep what the screen shows and say why it is not moving
            return no_update, notice + [html.Span(t("store_error", lang), className="error")]
        return open_cases_body(data, lang, svc.settings.tz), notice
