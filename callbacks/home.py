"""Wiring of `/`: the morning page from the snapshot, redrawn only when it changes.

Like the wall, the page never queries the store: each tick reads the cache's snapshot
(parsed once per process and version), and the body is rebuilt and sent only when what
it shows differs from what the browser has (the snapshot's version, the names, the
language, the scope); otherwise only the freshness line moves, once per poll.
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qs

from dash import Input, Output, State, html, no_update

from dashboard.home import morning
from dashboard.metrics import count_refresh
from dashboard.scope import current_scope
from dashboard.services import services
from layouts import ids
from layouts.home import freshness, morning_body
from layouts.i18n import pick_language, t

log = logging.getLogger(__name__)


def refresh_outputs(search: str | None, shown) -> tuple:
    """(body, freshness, notice, shown) for one tick of one page."""
    svc = services()
    count_refresh(svc.cache)
    default_lang = svc.settings["DASHBOARD_LANGUAGE"]
    requested = parse_qs(search.lstrip("?") if isinstance(search, str) else "").get("lang", [None])[0]
    lang, warning = pick_language(requested, default_lang)
    notice = [html.Span(warning, className="warning")] if warning else []
    snap = svc.cache.get()
    if snap is None:  # no poll has finished yet
        return html.P(t("loading", lang)), no_update, notice, no_update
    scope = current_scope()
    ref = svc.reference.get()
    failing = [name for name, s in snap.sections.items() if s.status in ("stale", "error")]
    if failing:  # keep the last figures and say why they do not move
        notice = notice + [html.Span(t("store_error", lang), className="error",
                                     **{"data-sections": ",".join(sorted(failing))})]
    shown = shown if isinstance(shown, dict) else {}
    key = f"{snap.version}|{ref.version}|{lang}|{scope.key()}"
    when = snap.computed_at.isoformat()
    if shown.get("k") == key and shown.get("c") == when:
        return no_update, no_update, no_update, no_update
    line = freshness(lang, svc.settings.tz, snap.data_as_of, snap.computed_at)
    if shown.get("k") == key:  # the same figures, a newer poll: only the freshness line moves
        return no_update, line, no_update, {"k": key, "c": when}
    sections = {name: s.to_dict() for name, s in snap.sections.items()}
    body = morning_body(morning(sections, ref, scope), ref, lang, default_lang, svc.settings.tz)
    return body, line, notice, {"k": key, "c": when}


def register(app) -> None:
    app.callback(
        Output(ids.HOME_BODY, "children"),
        Output(ids.HOME_FRESHNESS, "children"),
        Output(ids.HOME_NOTICE, "children"),
        Output(ids.HOME_SHOWN, "data"),
        Input(ids.HOME_INTERVAL, "n_intervals"),
        Input(ids.HOME_LOCATION, "search"),
        State(ids.HOME_SHOWN, "data"),
    )(lambda _n, search, shown: refresh_outputs(search, shown))
