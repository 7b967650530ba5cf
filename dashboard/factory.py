"""The app factory: `create_app(settings=None)` builds one Dash app with its services."""
from __future__ import annotations

import weakref
from typing import Any, Mapping

import dash
from flask import Response, jsonify
from sqlalchemy.pool import NullPool

from dashboard import auth, guard, health, heap, logs, metrics
from dashboard.build import build_id
from dashboard.poller import Poller, Sections
from dashboard.profile import with_profile
from dashboard.scope import current_scope
from dashboard.services import EXTENSION, Services
from dashboard.settings import PROJECT_ROOT, Settings

ASSETS = PROJECT_ROOT / "assets"


def create_app(settings: Settings | Mapping[str, Any] | None = None, *,
               sections: Sections | None = None) -> dash.Dash:
    """Build the app. `settings` may be a Settings or a mapping of overrides (tests);
    `sections` replaces the poller's section registry (default: dashboard.kpis.sections.make_sections):
    a mapping name -> callable(engine, now, tz), or a function returning one."""
    if not isinstance(settings, Settings):
        settings = Settings.from_env(settings)
    logs.configure(settings)  # time, level, host, PID, logger, message (LOG_FORMAT)
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        title=settings["DASHBOARD_TITLE"],
        serve_locally=True,
        suppress_callback_exceptions=False,
    )
    auth.guard_server(app.server, settings)  # refuses unsafe production settings; trusted proxies
    svc = Services.from_settings(settings)
    # the city profile's time zone, title and language win over the settings (dashboard/profile.py);
    # read on an engine of its own, disposed at once: the app's pool stays empty until used
    settings = svc.settings = with_profile(settings)
    app.title = settings["DASHBOARD_TITLE"]
    app.server.extensions[EXTENSION] = svc

    # layouts and callbacks are imported here, after the app exists (Dash's page rule)
    from callbacks import register_callbacks
    from layouts import register_pages

    register_pages(settings, build_id=lambda: build_id(settings), scope=current_scope,
                   district_codes=lambda: [(d.code, d.short_zh, d.name_en)
                                           for d in svc.reference.get().districts])
    app.layout = _root_layout
    register_callbacks(app)

    @app.server.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    icon = (ASSETS / "favicon.ico").read_bytes()

    @app.server.get("/favicon.ico")
    def favicon():
        # browsers ask for it on their own; without this route the pages' catch-all sent HTML
        return Response(icon, mimetype="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})

    health.register(app.server, svc)
    metrics.register(app.server, svc.cache, allow=settings["METRICS_ALLOW"], token=settings["METRICS_TOKEN"],
                     reports_dir=settings.reports_dir)
    if settings["AUTH_ENABLED"]:
        from layouts.login import login_page, refused_page

        auth.install(app, svc, settings, login_page=login_page, refused_page=refused_page)
    guard.install(app, settings)  # after the login's hooks: a stranger is turned away unparsed
    auth.security_headers(app, settings)  # after every callback exists: it hashes inline scripts

    if settings["POLLER_ENABLED"]:
        # Its own engine without a pool: one connection every few seconds costs nothing,
        # and none is left open when the app is thrown away or the store goes away.
        engine = settings.engine(poolclass=NullPool)
        svc.poller = Poller(settings, engine=engine, cache=svc.cache, sections=sections)
        svc.poller.ensure_started()
        # a no-op after the first call; starts a poller in a worker forked after create_app
        app.server.before_request(svc.poller.ensure_started)
        # an app that is thrown away (tests build many) stops its poller; the rest stop at exit
        weakref.finalize(app.server, svc.poller.stop, wait=False)

    heap.freeze_once("app")  # what the app is built from lives as long as the process
    return app


def _root_layout():
    return dash.html.Div([dash.page_container], className="app-root")
