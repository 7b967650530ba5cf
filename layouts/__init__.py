"""Page layouts and component factories. Pure presentation: no SQL, no KPI arithmetic."""
from __future__ import annotations

import dash


def register_pages(settings, *, district_codes, build_id, scope) -> None:
    """Explicit page registration (`use_pages=True, pages_folder=""`).
    `district_codes()` -> [(code, short Chinese name, English name)]; `build_id()` -> str;
    `scope()` -> the request's dashboard.scope.Scope (what it may see)."""
    from layouts import home
    from layouts.wall import page as wall

    user = signed_in(settings, scope)
    dash.register_page("home", path="/", title=settings["DASHBOARD_TITLE"],
                       name="home", layout=home.layout_factory(settings, user))
    dash.register_page("wall", path="/wall", title=settings["DASHBOARD_TITLE"], name="wall",
                       layout=wall.layout_factory(settings, district_codes, build_id, scope))
    register_browse_pages(settings, user)
    register_snapshot_pages(settings, user)


def signed_in(settings, scope):
    """The navigation bar's `user()`: the signed-in person's name, or None (logins off)."""
    if not settings["AUTH_ENABLED"]:
        return None
    return lambda: scope().name or None


def register_browse_pages(settings, user=None) -> None:
    """/browse (cases), /browse/enterprise, /browse/parking and /case/<id or external id>."""
    from layouts import browse

    title = settings["DASHBOARD_TITLE"]
    for page, path in browse.PAGES.items():
        dash.register_page(f"browse-{page}", path=path, title=title, name=f"browse-{page}",
                           layout=browse.layout_factory(settings, page, user))
    dash.register_page("case", path_template="/case/<case_ref>", title=title, name="case",
                       layout=browse.case_layout_factory(settings, user))


def register_snapshot_pages(settings, user=None) -> None:
    """/snapshots: the weekly reports' archive."""
    from layouts import snapshots

    dash.register_page("snapshots", path="/snapshots", title=settings["DASHBOARD_TITLE"], name="snapshots",
                       layout=snapshots.layout_factory(settings, user))
