"""The navigation bar every desk page shares (`/`, `/browse...`, `/case/<ref>`, `/snapshots`):
the title, 首页 / 浏览 / 大屏 / 周报 with the current page marked, the other language, and
the signed-in user with 退出 when logins are on. Its words come from layouts/i18n.py only,
so a page's chrome is all in the page's language. The wall has its own header.
"""
from __future__ import annotations

from typing import Callable
from urllib.parse import urlencode

from dash import html

from layouts.i18n import t

# (key, path): the order of the bar
SECTIONS = (("home", "/"), ("browse", "/browse"), ("wall", "/wall"), ("weekly", "/snapshots"))


def title_for(settings, lang: str) -> str:
    """The deployment's title in the page's language (DASHBOARD_TITLE_EN for English pages,
    when set)."""
    if lang == "en" and settings["DASHBOARD_TITLE_EN"]:
        return settings["DASHBOARD_TITLE_EN"]
    return settings["DASHBOARD_TITLE"]


def lang_href(path: str, lang: str, default_lang: str) -> str:
    """`path` in `lang`: no parameter for the default language, `?lang=` otherwise."""
    return path if lang == default_lang else f"{path}?{urlencode({'lang': lang})}"


def other(lang: str) -> str:
    return "zh-CN" if lang == "en" else "en"


def nav_bar(settings, current: str, lang: str, *, here: str, user: Callable[[], str | None] | None = None,
            lang_id: str | None = None, sub: list | None = None) -> html.Header:
    """`current`: the section shown (home, browse, wall, weekly); `here`: this page's path,
    for the language link (`lang_id` names that link when a callback keeps it up to date,
    e.g. with the page's filters); `user()`: the signed-in person's name, or None when
    logins are off; `sub`: a second row of links (the browsing pages' own)."""
    default = settings["DASHBOARD_LANGUAGE"]
    links = []
    for key, path in SECTIONS:
        attrs = {"aria-current": "page"} if key == current else {}
        links.append(html.A(t(f"nav_{key}", lang), href=lang_href(path, lang, default),
                            className="app-nav-link" + (" active" if key == current else ""),
                            **{"data-section": key}, **attrs))
    to = other(lang)
    tools = [html.A(t("other_lang", lang), href=f"{here}?{urlencode({'lang': to})}", hrefLang=to,
                    className="app-lang", **({"id": lang_id} if lang_id else {}))]
    name = user() if user is not None else None
    if name is not None:
        tools += [html.Span(name, className="app-user", title=t("signed_in_as", lang)),
                  html.A(t("sign_out", lang), href="/logout", className="app-signout")]
    rows = [html.Div([html.Div(title_for(settings, lang), className="app-title"),
                      html.Nav(links, className="app-nav", **{"aria-label": t("nav_label", lang)}),
                      html.Div(tools, className="app-tools")], className="app-bar")]
    if sub:
        rows.append(html.Nav(sub, className="app-subnav", **{"aria-label": t("subnav_label", lang)}))
    return html.Header(rows, className="app-header")
