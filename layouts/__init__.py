"""Page layouts and component factories. Pure presentation: no SQL, no KPI arithmetic."""
from __future__ import annotations

import dash


def register_pages(settings) -> None:
    """Explicit page registration (`use_pages=True, pages_folder=""`)."""
    from layouts import home

    dash.register_page("home", path="/", title=settings["DASHBOARD_TITLE"],
                       name="home", layout=home.layout_factory(settings))
