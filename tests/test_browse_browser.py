"""The browsing pages in a real Chromium: filtering, drilling from the city to one case, and
exports read back and compared with SQL. No console errors, nothing fetched from outside."""
import csv
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from dashboard import browse as B
from dashboard import create_app
from dashboard import browse_state as bs
from datasource.engine import make_engine
from tests.conftest import BACKLOG, FIXED_NOW, only_local, seeded_store_url, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    url = seeded_store_url("sqlite", request, tmp_path_factory.mktemp("browser"), profile=BACKLOG, seed=13,
                           total_cases=3000, now=FIXED_NOW, occupancy_days=1)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def site(store, serve):
    url, engine = store
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False})
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    return serve(app), engine


def sql(engine, query, **params):
    with engine.connect() as conn:
        return conn.execute(text(query), params).all()


def year_start():
    from zoneinfo import ZoneInfo
    w = bs.window(bs.ViewState(period="year"), FIXED_NOW, ZoneInfo("Asia/Shanghai"))
    return w.start.replace(tzinfo=None).isoformat(sep=" ")


def cell(page, key, metric):
    return page.locator(f"tr[data-key='{key}'] td[data-metric='{metric}']").get_attribute("data-value")


def wait_for_search(page, pattern):
    wait_until(page, "p => new RegExp(p).test(window.location.search)", arg=pattern, timeout=15_000)


def pick(page, control, label):
    page.click(f"#{control}")
    page.get_by_role("option", name=label, exact=True).first.click()


def test_filters_live_in_the_url(site, page):
    server, engine = site
    page.goto(server.url + "/browse?period=year")
    page.wait_for_selector("tr[data-key='410105']")
    pick(page, "browse-district", "金水")
    wait_for_search(page, "district=410105")
    page.wait_for_selector("tr[data-key='total'] td[data-metric='reported']")
    wait_until(page, "() => document.querySelector(\"th.name\").innerText.includes('街道')")
    reported = sql(engine, "SELECT COUNT(*) FROM cases WHERE district_code = '410105' AND reported_at >= :s",
                   s=year_start())[0][0]
    assert float(cell(page, "total", "reported")) == reported
    pick(page, "browse-source", "12345热线")
    wait_for_search(page, "source=hotline")
    hotline = sql(engine, "SELECT COUNT(*) FROM cases WHERE district_code = '410105' AND source = 'hotline' "
                          "AND reported_at >= :s", s=year_start())[0][0]
    wait_until(page, "n => document.querySelector(\"tr[data-key='total'] td[data-metric='reported']\")"
                           ".dataset.value == n", arg=str(hotline))
    # the link reproduces the view
    url = page.url
    page.goto("about:blank")
    page.goto(url)
    wait_until(page, "n => document.querySelector(\"tr[data-key='total'] td[data-metric='reported']\")"
                           "?.dataset.value == n", arg=str(hotline))
    assert page.locator(".case-total").get_attribute("data-total") == str(hotline)
    # a hand-edited URL: a clear message, and a valid view instead
    page.goto(server.url + "/browse?period=custom&from=2026-13-45&to=yesterday&district=999999&lang=en")
    page.wait_for_selector(".browse-notice")
    notices = page.inner_text(".browse-notices")
    assert "2026-13-45" in notices and "999999" in notices
    page.wait_for_selector("tr[data-key='410105']")  # the default view (this week, every district)
    assert "Jinshui" in page.inner_text(".kpi-table")
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_drill_from_the_city_to_one_case(site, page):
    server, engine = site
    page.goto(server.url + "/browse?period=year")
    page.click("tr[data-key='410105'] td.name button")
    wait_for_search(page, "district=410105")
    wait_until(page, "() => document.querySelector(\"th.name\").innerText.includes('街道')")
    # the street with most reports this year
    street, n_street = sql(engine, "SELECT street_id, COUNT(*) n FROM cases WHERE district_code = '410105' "
                                   "AND reported_at >= :s GROUP BY street_id ORDER BY n DESC LIMIT 1",
                           s=year_start())[0]
    assert float(cell(page, str(street), "reported")) == n_street
    page.click(f"tr[data-key='{street}'] td.name button")
    wait_for_search(page, f"street={street}")
    grid, n_grid = sql(engine, "SELECT grid_id, COUNT(*) n FROM cases WHERE street_id = :st "
                               "AND reported_at >= :s GROUP BY grid_id ORDER BY n DESC LIMIT 1",
                       st=street, s=year_start())[0]
    page.wait_for_selector(f"tr[data-key='{grid}']")
    assert float(cell(page, str(grid), "reported")) == n_grid
    page.click(f"tr[data-key='{grid}'] td.name button")
    wait_for_search(page, f"grid={grid}")
    wait_until(page, "n => document.querySelector('.case-total')?.dataset.total == n", arg=str(n_grid))
    newest = sql(engine, "SELECT id, external_id FROM cases WHERE grid_id = :g AND reported_at >= :s "
                         "ORDER BY reported_at DESC, id DESC LIMIT 1", g=grid, s=year_start())[0]
    link = page.locator(".browse-grid a", has_text=newest.external_id)
    link.wait_for(timeout=15_000)
    assert page.locator(".browse-grid .ag-row").count() >= 1
    link.click()
    page.wait_for_url(re.compile(rf"/case/{newest.id}"))
    page.wait_for_selector(".timeline")
    events = sql(engine, "SELECT to_status FROM case_events WHERE case_id = :c ORDER BY at, id", c=newest.id)
    shown = page.locator(".timeline .event")
    assert shown.count() == len(events)
    assert [shown.nth(i).get_attribute("data-status") for i in range(shown.count())] == [e[0] for e in events]
    assert newest.external_id in page.inner_text(".case-title")
    # the other language keeps the way back to this list
    wait_until(page, "g => document.querySelector('#browse-other-lang').href.includes('grid%3D' + g)", arg=str(grid))
    assert "lang=en" in page.get_attribute("#browse-other-lang", "href")
    # the page's own back link returns to the list with its filters and drill
    page.click("a.back")
    page.wait_for_url(re.compile(rf"/browse\?.*grid={grid}"))
    wait_until(page, "n => document.querySelector('.case-total')?.dataset.total == n", arg=str(n_grid))
    # and so does the browser's
    page.go_back()
    page.wait_for_url(re.compile(rf"/case/{newest.id}"))
    page.go_back()
    wait_until(page, "n => document.querySelector('.case-total')?.dataset.total == n", arg=str(n_grid))
    # the language link keeps the filters and the drill
    wait_until(page, "g => document.querySelector('#browse-other-lang').href.includes('grid=' + g)", arg=str(grid))
    page.click("#browse-other-lang")
    page.wait_for_url(re.compile(rf"/browse\?.*grid={grid}.*lang=en"))
    wait_until(page, "n => document.querySelector('.case-total')?.dataset.total == n", arg=str(n_grid))
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_sorting_the_case_list_by_a_header(site, page):
    """A header click sorts in SQL (the first rows are the extremes), writes `csort` into
    the URL, and the link brings the same order back."""
    server, engine = site
    page.goto(server.url + "/browse?period=year&district=410105")
    header = page.locator(".browse-grid .ag-header-cell[col-id='rework_count'] .ag-header-cell-label")
    header.wait_for(timeout=15_000)
    most, fewest = sql(engine, "SELECT MAX(rework_count), MIN(rework_count) FROM cases "
                               "WHERE district_code = '410105' AND reported_at >= :s", s=year_start())[0]
    assert most > fewest  # the seed has reworked cases: the order can show
    first = ".browse-grid .ag-row[row-index='0'] [col-id='rework_count']"
    header.click()  # descending first (sortingOrder)
    wait_for_search(page, "csort=-rework_count")
    wait_until(page, "([sel, n]) => document.querySelector(sel)?.innerText.trim() == n", arg=[first, str(most)])
    header.click()
    wait_for_search(page, "csort=rework_count")
    wait_until(page, "([sel, n]) => document.querySelector(sel)?.innerText.trim() == n", arg=[first, str(fewest)])
    header.click()
    wait_for_search(page, "csort=-rework_count")
    url = page.url
    page.goto("about:blank")
    page.goto(url)
    wait_until(page, "([sel, n]) => document.querySelector(sel)?.innerText.trim() == n", arg=[first, str(most)])
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_exports_match_sql(site, page):
    server, engine = site
    page.goto(server.url + "/browse?period=year&district=410105&list=closed")
    page.wait_for_selector("a.export-kpis-csv")
    with page.expect_download() as dl:
        page.click("a.export-kpis-csv")
    with open(dl.value.path(), encoding="utf-8-sig") as fh:
        rows = list(csv.reader(io.StringIO(fh.read())))
    header = rows[0]
    assert header[:3] == ["街道", "代码", "上报"] and "结案率(%)" in header
    by_street = {int(r[1]): r for r in rows[1:-1] if r[1]}
    expected = dict(sql(engine, "SELECT street_id, COUNT(*) FROM cases WHERE district_code = '410105' "
                                "AND reported_at >= :s GROUP BY street_id", s=year_start()))
    for street, n in expected.items():
        assert int(by_street[street][2]) == n
    total = rows[-1]
    assert total[0] == "合计" and int(total[2]) == sum(expected.values())
    filed, closed = sql(engine, "SELECT COUNT(*), SUM(CASE WHEN closed_at IS NOT NULL THEN 1 ELSE 0 END) "
                                "FROM cases WHERE district_code = '410105' AND filed_at >= :s AND NOT voided",
                        s=year_start())[0]
    assert float(total[header.index("结案率(%)")]) == round(100 * closed / filed, 2)

    with page.expect_download() as dl:
        # a DOM click: once in a full-suite run Playwright's actionability wait for this
        # link ("visible, enabled and stable") ran out after the first download (30 s)
        page.dispatch_event("a.export-cases-xlsx", "click")
    with open(dl.value.path(), "rb") as fh:
        wb = load_workbook(io.BytesIO(fh.read()), read_only=True)
    got = list(wb.active.iter_rows(values_only=True))
    wb.close()
    assert got[0][0] == "案件编号" and "结案时间" in got[0]
    expected = sql(engine, "SELECT external_id FROM cases WHERE district_code = '410105' AND closed_at >= :s "
                           "ORDER BY reported_at DESC, id DESC", s=year_start())
    assert [r[0] for r in got[1:]] == [e[0] for e in expected]
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_a_district_leader_browses_under_the_login_and_its_csp(request, tmp_path, serve, page):
    """With login on (and the app's Content-Security-Policy): a 410105 leader sees the case
    grid and the case page, only of 410105, with no console errors (a CSP refusal is one)."""
    from dashboard.accounts import hash_password
    from dashboard.services import EXTENSION
    from datasource import users

    url = seeded_store_url("sqlite", request, tmp_path, profile=BACKLOG, seed=4, total_cases=2000, now=FIXED_NOW,
                           occupancy_days=1)
    app = create_app({"DATABASE_URL": url, "AUTH_ENABLED": True, "SECRET_KEY": "browse-test-" + "z" * 20,
                      "DASHBOARD_ENV": "demo", "POLLER_ENABLED": False})
    svc = app.server.extensions[EXTENSION]
    users.create_user(svc.engine, "jinshui", hash_password("correct horse battery"), "district_leader", "410105")
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    server = serve(app)
    page.goto(server.url + "/browse?period=year&district=410102")
    assert "/login" in page.url
    page.fill("#username", "jinshui")
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_selector(".browse-grid .ag-row a")
    page.goto(server.url + "/browse?period=year&district=410102")
    page.wait_for_selector(".browse-notice")
    page.wait_for_selector(".browse-grid .ag-row a")
    assert "410102" in page.inner_text(".browse-notices")  # asked for, refused, said so
    links = page.locator(".browse-grid .ag-row a")
    assert all(t.startswith("ZZ410105-") for t in links.all_inner_texts())
    links.first.click()
    page.wait_for_selector(".timeline")
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_enterprise_drill_in_the_browser(site, page):
    """Every exclusive grid listed, with its member count from the store; drill into one."""
    server, engine = site
    page.goto(server.url + "/browse/enterprise?district=410105&period=month")
    wait_until(page, "() => document.querySelectorAll('.egrid-table tbody tr').length > 0", timeout=20)
    expected = dict(sql(engine, "SELECT g.id, COUNT(e.id) FROM grids g LEFT JOIN enterprises e "
                                "ON e.exclusive_grid_id = g.id WHERE g.kind = 'exclusive' AND "
                                "g.district_code = '410105' GROUP BY g.id"))
    rows = page.evaluate("() => Array.from(document.querySelectorAll('.egrid-table tbody tr'))"
                         ".map(r => [r.dataset.key, r.children[3].innerText])")
    assert {int(k): int(v.replace(",", "")) for k, v in rows} == expected
    first = rows[0][0]
    page.click(f".egrid-table tr[data-key='{first}'] button")
    wait_until(page, "() => new URLSearchParams(window.location.search).get('egrid') !== null")
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_parking_drill_in_the_browser(site, page):
    """Every facility of the district listed with its capacity; a facility can be picked."""
    server, engine = site
    page.goto(server.url + "/browse/parking?district=410105")
    wait_until(page, "() => document.querySelectorAll('.facility-table tbody tr').length > 0", timeout=20)
    expected = dict(sql(engine, "SELECT id, capacity FROM parking_facilities WHERE district_code = '410105'"))
    rows = page.evaluate("() => Array.from(document.querySelectorAll('.facility-table tbody tr'))"
                         ".map(r => [r.dataset.key, r.children[3].innerText])")
    assert {int(k): int(v.replace(",", "")) for k, v in rows} == expected
    page.click(f".facility-table tr[data-key='{rows[0][0]}'] button")
    wait_until(page, "() => new URLSearchParams(window.location.search).get('facility') !== null")
    assert page.console_errors == []
    assert only_local(page.requested) == []
