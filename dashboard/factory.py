"""The app factory: `create_app(settings=None)` builds one Dash app with its services."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import dash
from flask import jsonify

from dashboard.services import EXTENSION, Services
from dashboard.settings import PROJECT_ROOT, Settings

ASSETS = PROJECT_ROOT / "assets"


def create_app(settings: Settings | Mapping[str, Any] | None = None) -> dash.Dash:
    """Build the app. `settings` may be a Settings or a mapping of overrides (tests)."""
    if not isinstance(settings, Settings):
        settings = Settings.from_env(settings)
    logging.basicConfig(level=settings["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        title=settings["DASHBOARD_TITLE"],
        serve_locally=True,
        suppress_callback_exceptions=False,
    )
    app.server.extensions[EXTENSION] = Services.from_settings(settings)

    # layouts and callbacks are imported here, after the app exists (Dash's page rule)
    from callbacks import register_callbacks
    from layouts import register_pages

    register_pages(settings)
    app.layout = _root_layout
    register_callbacks(app)

    @app.server.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    return app


def _root_layout():
    return dash.html.Div([dash.page_container], className="app-root")
