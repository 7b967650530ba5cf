"""Page layouts and component factories. Pure presentation: no SQL, no KPI arithmetic."""
from __future__ import annotations

import dash


def register_pages(settings, *, district_codes, build_id, scope) -> None:
    """Explicit page registration (`use_pages=True, pages_folder=""`).
    `district_codes()` -> [(code, short Chinese name, English name)]; `build_id()` -> str;
    `scope()` -> the request's dashboard.scope.Scope (what it may see)."""
    from layouts import home
    from layouts.wall import page as wall

    dash.register_page("home", path="/", title=settings["DASHBOARD_TITLE"],
                       name="home", layout=home.layout_factory(settings))
    dash.register_page("wall", path="/wall", title=settings["DASHBOARD_TITLE"], name="wall",
                       layout=wall.layout_factory(settings, district_codes, build_id, scope))
    register_browse_pages(settings)
    register_snapshot_pages(settings)


def register_browse_pages(settings) -> None:
    """/browse (cases), /browse/enterprise, /browse/parking and /case/<id or external id>."""
    from layouts import browse

    title = settings["DASHBOARD_TITLE"]
    for page, path in browse.PAGES.items():
        dash.register_page(f"browse-{page}", path=path, title=title, name=f"browse-{page}",
                           layout=browse.layout_factory(settings, page))
    dash.register_page("case", path_template="/case/<case_ref>", title=title, name="case",
                       layout=browse.case_layout_factory(settings))


def register_snapshot_pages(settings) -> None:
    """/snapshots: the weekly reports' archive."""
    from layouts import snapshots

    dash.register_page("snapshots", path="/snapshots", title=settings["DASHBOARD_TITLE"], name="snapshots",
                       layout=snapshots.layout_factory(settings))
