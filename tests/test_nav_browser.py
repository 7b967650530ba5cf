"""The desk pages' shared navigation bar in a real Chromium: the same four sections on
`/`, `/browse...`, `/case/<id>` and `/snapshots`, the current one marked, links that keep
the language, the user and 退出 when logins are on, chrome in one language (zh-CN: no
English word; en: no Chinese), and dark controls on the dark theme."""
from __future__ import annotations

import re

import pytest

from dashboard import create_app
from dashboard.accounts import hash_password
from dashboard.services import EXTENSION
from datasource import users
from datasource.demo.seed import seed
from tests.conftest import BACKLOG, FIXED_NOW, LiveServer, new_store_url, only_local
from tests.lang_helpers import chrome_text, foreign

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
USER = "王主任"  # a name is data: shown as it is in both languages
LABELS = {"zh-CN": ["首页", "浏览", "大屏", "周报"], "en": ["Home", "Browse", "Wall", "Weekly"]}
# (path, the section the bar marks)
PAGES = [("/", "home"), ("/browse", "browse"), ("/browse/enterprise", "browse"), ("/browse/parking", "browse"),
         ("/case/1", "browse"), ("/snapshots", "weekly")]


@pytest.fixture(scope="module")
def apps(request, tmp_path_factory):
    """The same store served twice: logins off (as in tests) and on (as in production)."""
    folder = tmp_path_factory.mktemp("nav")
    url = new_store_url("sqlite", request, folder)
    common = {"DATABASE_URL": url, "POLLER_ENABLED": False, "REPORTS_DIR": str(folder / "reports"),
              "LOCAL_CACHE_DIR": str(folder / "cache"), "REDIS_URL": ""}
    open_app = create_app(common)
    engine = open_app.server.extensions[EXTENSION].engine
    seed(engine, profile=BACKLOG, seed=5, total_cases=1500, now=FIXED_NOW, occupancy_days=1)
    users.create_user(engine, USER, hash_password(PASSWORD), "city_leader", None)
    secured = create_app({**common, "AUTH_ENABLED": True, "SECRET_KEY": "nav-test-" + "n" * 30,
                          "DASHBOARD_ENV": "demo"})
    servers = {"open": LiveServer(open_app), "secured": LiveServer(secured)}
    yield servers
    for s in servers.values():
        s.stop()


def _href(path: str, lang: str) -> str:
    return path if lang == "zh-CN" else f"{path}?lang=en"


def _open(page, url: str):
    page.goto(url)
    page.wait_for_selector("header.app-header nav.app-nav a")


def _check_bar(page, lang: str, section: str, *, user: str | None):
    links = page.locator("nav.app-nav a.app-nav-link")
    assert links.all_inner_texts() == LABELS[lang]
    current = page.locator("nav.app-nav a[aria-current='page']")
    assert current.count() == 1 and current.get_attribute("data-section") == section
    assert "active" in current.get_attribute("class")
    # each section in the page's language
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs == [_href(p, lang) for p in ("/", "/browse", "/wall", "/snapshots")]
    # chrome in one language; the user's name is data
    text = chrome_text(page, "header.app-header", skip=".app-user")
    assert foreign(text, lang) == [], text
    if user is None:
        assert page.locator(".app-user, .app-signout").count() == 0
    else:
        assert page.inner_text(".app-user") == user
        signout = page.locator("a.app-signout")
        assert signout.inner_text() == ("退出" if lang == "zh-CN" else "Sign out")
        assert signout.get_attribute("href") == "/logout"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_desk_page_has_the_bar_in_its_language(apps, page, lang):
    base = apps["open"].url
    for path, section in PAGES:
        _open(page, base + _href(path, lang))
        _check_bar(page, lang, section, user=None)
        # the other language is one click away, on the same page
        switch = page.locator("a.app-lang")
        other = "en" if lang == "zh-CN" else "zh-CN"
        assert switch.get_attribute("hreflang") == other
        assert switch.get_attribute("href").split("?")[0] == path
        assert f"lang={other}" in switch.get_attribute("href")
    # the page headings and controls of the archive are in the page's language too
    _open(page, base + _href("/snapshots", lang))
    page.wait_for_selector("#snap-scope .dash-dropdown-value-item")
    text = chrome_text(page, "main.snap-body h1, main.snap-body h2, main.snap-body label, main.snap-body button")
    assert foreign(text, lang) == [], text
    assert page.console_errors == []
    assert only_local(page.requested) == []


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_signed_in_the_bar_names_the_user_and_signs_out(apps, page, lang):
    base = apps["secured"].url
    page.goto(base + _href("/snapshots", lang))
    assert "/login" in page.url
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    for path, section in PAGES:
        _open(page, base + _href(path, lang))
        _check_bar(page, lang, section, user=USER)
    page.click("a.app-signout")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(base + "/")
    assert "/login" in page.url  # the session ended
    assert page.console_errors == []
    assert only_local(page.requested) == []


def _luminance(css_colour: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_controls_are_dark_on_the_dark_theme(apps, page):
    """Dash's dropdowns are white by default: on the archive and the browsing pages they
    take the dark theme (dark field, light text), their open menu too."""
    base = apps["open"].url
    for path, control in (("/snapshots", "#snap-scope"), ("/browse", "#browse-period")):
        _open(page, base + path)
        page.wait_for_selector(control)
        target = page.locator(control)  # Dash 4: the dropdown's field is the element with its id
        colours = target.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
        assert _luminance(colours[0]) < 0.3 and _luminance(colours[1]) > 0.7, (path, colours)
        target.click()
        menu = page.locator("[role='listbox']").first
        menu.wait_for()
        bg = menu.evaluate("e => { let n = e; while (n && getComputedStyle(n).backgroundColor === 'rgba(0, 0, 0, 0)')"
                           " n = n.parentElement; return n ? getComputedStyle(n).backgroundColor : ''; }")
        assert _luminance(bg) < 0.3, (path, bg)
        page.keyboard.press("Escape")
    assert page.console_errors == []
