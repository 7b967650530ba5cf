"""Wiring of `/snapshots`: the archive's weeks and downloads, the week-over-week view,
"export now", and the download route (files of the archive only).

What a person sees is narrowed to their scope (dashboard.scope): a district leader gets
their district's reports only, downloads included; "export now" is for city-wide admins.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from urllib.parse import parse_qs

from dash import Input, Output, State, no_update
from flask import abort, send_file

from dashboard.auth import report_policy
from dashboard.guard import BadInput
from dashboard.scope import current_scope
from dashboard.services import EXTENSION, services
from dashboard.weekly.archive import MANIFEST, SCOPE_RE, Archive, file_name
from dashboard.weekly.report import KINDS
from dashboard.weekly.weeks import WEEK_RE, last_finished, parse_week
from layouts import snapshots as ly
from layouts.i18n import pick_language
from layouts.weekly.html import script_hashes

log = logging.getLogger(__name__)
FILES_URL = "/snapshots/files"


def can_export(scope) -> bool:
    """Who may trigger "export now": a city-wide administrator (every request while logins
    are off). The roles come from the login issue's accounts."""
    return scope.city_wide and scope.role == "admin"


def visible_scopes(scope, codes: list[str]) -> list[str]:
    """The report scopes a person may open: the city and every district when city-wide,
    else their own districts."""
    return (["city"] if scope.city_wide else []) + scope.filter(codes)


def _allows(scope, report_scope: str) -> bool:
    return scope.allows(None if report_scope == "city" else report_scope)


def _report_scope(value) -> str | None:
    """A report scope from the page's dropdown: "city", a district code, or None."""
    if value is not None and not (isinstance(value, str) and SCOPE_RE.fullmatch(value)):
        raise BadInput("scope: not a report scope")
    return value


def _week(value) -> str | None:
    """A week label (2026-W47) from a week dropdown, or None when none is chosen."""
    if value in (None, ""):
        return None
    if not (isinstance(value, str) and WEEK_RE.fullmatch(value)):
        raise BadInput("week: not an ISO week")
    return value


def _lang(search) -> tuple[str, str | None]:
    requested = parse_qs((search or "").lstrip("?")).get("lang", [None])[0]
    return pick_language(requested, services().settings["DASHBOARD_LANGUAGE"])


def _archive() -> Archive:
    return Archive(services().settings.reports_dir)


def _scope_options(lang: str) -> list[dict]:
    svc = services()
    districts = svc.reference.get().districts
    names = {d.code: (d.name_en if lang == "en" else d.short_zh) for d in districts}
    names["city"] = ly.t("city", lang)
    return [{"label": names.get(s, s), "value": s}
            for s in visible_scopes(current_scope(), [d.code for d in districts])]


def _rows(archive: Archive, report_scope: str, tz) -> list[dict]:
    rows = []
    for week in archive.weeks():
        w = parse_week(week, tz)
        manifest = archive.manifest(week, report_scope)
        files = None
        if manifest is not None:
            base = f"{FILES_URL}/{week}/{report_scope}"
            files = {ext: f"{base}/{file_name(week, report_scope, ext)}" for ext in ly.FILE_ORDER
                     if file_name(week, report_scope, ext) in manifest.get("files", {})}
            files["manifest"] = f"{base}/{MANIFEST}"
        run = archive.run(week)
        if run is not None and report_scope not in (run.get("attempts") or [{}])[-1].get("scopes", [report_scope]) \
                and files is not None:
            run = None  # the last run was about other scopes: this one's report stands as it is
        since = None
        if run and run.get("started_at"):
            since = dt.datetime.fromisoformat(run["started_at"]).astimezone(tz).strftime("%m-%d %H:%M")
        rows.append({"week": week, "first": w.monday.isoformat(), "last": w.sunday.isoformat(), "run": run,
                     "since": since, "files": files, "versions": len(archive.versions(week, report_scope))})
    return rows


def register(app) -> None:
    @app.callback(
        Output(ly.SCOPE, "options"), Output(ly.SCOPE, "value"), Output(ly.NOTICE, "children"),
        Input(ly.LOCATION, "search"), State(ly.SCOPE, "value"),
    )
    def frame(search, chosen):
        """The page's words are in its layout; this fills what depends on the viewer."""
        lang, warning = _lang(search)
        options = _scope_options(lang)
        values = [o["value"] for o in options]
        value = chosen if chosen in values else (values[0] if values else None)
        return options, value, warning or ""

    @app.callback(
        Output(ly.TABLE, "children"), Output(ly.WEEK_A, "options"), Output(ly.WEEK_B, "options"),
        Output(ly.WEEK_A, "value"), Output(ly.WEEK_B, "value"),
        Input(ly.INTERVAL, "n_intervals"), Input(ly.SCOPE, "value"), Input(ly.LOCATION, "search"),
        State(ly.WEEK_A, "value"), State(ly.WEEK_B, "value"),
    )
    def weeks(_n, report_scope, search, week_a, week_b):
        report_scope = _report_scope(report_scope)
        lang, _ = _lang(search)
        if report_scope is None:
            return no_update, [], [], None, None
        if not _allows(current_scope(), report_scope):
            return ly.t("not_allowed", lang), [], [], None, None
        archive = _archive()
        rows = _rows(archive, report_scope, services().settings.tz)
        done = [r["week"] for r in rows if r["files"]]
        options = [{"label": w, "value": w} for w in done]
        week_a = week_a if week_a in done else (done[1] if len(done) > 1 else (done[0] if done else None))
        week_b = week_b if week_b in done else (done[0] if done else None)
        return ly.weeks_table(rows, lang), options, options, week_a, week_b

    @app.callback(
        Output(ly.COMPARE, "children"),
        Input(ly.WEEK_A, "value"), Input(ly.WEEK_B, "value"), Input(ly.SCOPE, "value"), Input(ly.LOCATION, "search"),
    )
    def compare(week_a, week_b, report_scope, search):
        week_a, week_b, report_scope = _week(week_a), _week(week_b), _report_scope(report_scope)
        lang, _ = _lang(search)
        if report_scope is None or not _allows(current_scope(), report_scope):
            return ""
        archive = _archive()
        first = archive.report_data(week_a, report_scope) if week_a else None
        second = archive.report_data(week_b, report_scope) if week_b else None
        return ly.compare_table(first, second, (week_a or "", week_b or ""), KINDS, lang)

    @app.callback(
        Output(ly.EXPORT_STATUS, "children"),
        Input(ly.EXPORT, "n_clicks"), State(ly.LOCATION, "search"),
        prevent_initial_call=True,
    )
    def export_now(n_clicks, search):
        lang, _ = _lang(search)
        if not n_clicks:
            return no_update
        if not can_export(current_scope()):
            return ly.t("export_denied", lang)
        settings = services().settings
        week = last_finished(dt.datetime.now(settings.tz), settings.tz)
        threading.Thread(target=_export_in_background, args=(settings, week), daemon=True,
                         name=f"export-{week.label}").start()
        return ly.t("export_started", lang, week=week.label)

    def download(week: str, scope: str, name: str):
        archive = Archive(app.server.extensions[EXTENSION].settings.reports_dir)
        if not WEEK_RE.match(week) or not _allows(current_scope(), scope):
            abort(404)
        path = archive.file_path(week, scope, name)
        if path is None:
            abort(404)
        response = send_file(path, as_attachment=not name.endswith((".html", ".png", ".pdf")), download_name=name)
        if name.endswith(".html"):
            # the report runs its own inline plotly.js: its own policy (those scripts by hash,
            # sandboxed), never the app's; a report older than the hashes in its manifest
            # gets the hashes of the scripts this version writes
            hashes = (archive.manifest(week, scope) or {}).get("html_script_hashes") or script_hashes()
            response.headers["Content-Security-Policy"] = report_policy(hashes)
        return response

    app.server.add_url_rule(f"{FILES_URL}/<week>/<scope>/<name>", "snapshot_file", download)


def _export_in_background(settings, week) -> None:
    from dashboard.weekly.runner import export_week

    try:
        result = export_week(settings, week, scope="all", trigger="page")
        log.info("export now of %s: %s", week.label, result.status)
    except Exception:
        log.exception("export now of %s failed", week.label)
