"""`/`, the morning page, in a real Chromium: the headline figures are the snapshot's
(open and overdue also an independent SQL count, now and at 00:00), with their deltas and
threshold levels; the cards and links open the browsing pages on the filters they name;
zh-CN with no English word and English with no Chinese; a district leader sees their
district alone, its total under its own name; the page follows a new snapshot; a store
that goes away keeps the figures with a notice; names and addresses from the store are
shown as text.

The read-only tests share one store and one snapshot computed at FIXED_NOW (the browsing
pages' clock is pinned there too), so every figure is exact."""
from __future__ import annotations

import datetime as dt
import re
import urllib.request
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, text

from dashboard import browse as B
from dashboard import create_app, thresholds
from dashboard.accounts import hash_password
from dashboard.home import RATE_PERIOD
from dashboard.kpis.sections import make_sections
from dashboard.poller import to_json_data
from dashboard.services import EXTENSION
from dashboard.snapshot import Section, Snapshot
from datasource import schema, users
from datasource.demo.seed import seed
from tests.conftest import BACKLOG, FIXED_NOW, LiveServer, new_store_url, only_local, wait_until
from tests.lang_helpers import chrome_text, foreign

pytestmark = pytest.mark.browser
TZ = ZoneInfo("Asia/Shanghai")
MIDNIGHT = dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # FIXED_NOW's day
JINSHUI = "410105"
PASSWORD = "correct horse battery"
OPEN_SQL = "status IN ('filed','dispatched','handled','verified','rework','parked')"
RUNNING_SQL = "status IN ('filed','dispatched','handled','verified','rework')"
DATA = ".case-no, .addr"
AGES = 10 * 365 * 86400.0  # a city's data (case numbers, addresses): left out of language checks


def _planted() -> list[dict]:
    """Cases that make the comparisons move: two fall overdue this morning (one in 金水,
    one in 中原), one is filed today in 金水."""
    yesterday = FIXED_NOW - dt.timedelta(hours=26)
    rows = []
    for i, district in enumerate((JINSHUI, "410102")):
        rows.append(dict(external_id=f"PLANT-OVERDUE-{i}", source="hotline", category_code="B02-01",
                         district_code=district, status="dispatched", reported_at=yesterday, filed_at=yesterday,
                         deadline_at=FIXED_NOW - dt.timedelta(hours=2, minutes=i), address=f"测试路{i}号",
                         voided=False, updated_at=FIXED_NOW))
    rows.append(dict(external_id="PLANT-NEW", source="app", category_code="S05-01", district_code=JINSHUI,
                     status="filed", reported_at=FIXED_NOW - dt.timedelta(hours=1),
                     filed_at=FIXED_NOW - dt.timedelta(hours=1), deadline_at=FIXED_NOW + dt.timedelta(hours=20),
                     address="测试路9号", voided=False, updated_at=FIXED_NOW))
    return rows


def publish_at(svc, now: dt.datetime) -> Snapshot:
    """A snapshot of every section computed at `now`, published as the poller would."""
    sections = {name: Section("fresh", to_json_data(fn(svc.engine, now, svc.settings.tz)))
                for name, fn in make_sections().items()}
    snap = Snapshot(computed_at=now.astimezone(svc.settings.tz), data_as_of=now, sections=sections)
    svc.cache.publish(snap)
    return snap


@pytest.fixture(scope="module")
def city(request, tmp_path_factory):
    """One seeded store served twice (logins off, and on with a 金水 district leader), with
    the snapshot at FIXED_NOW in both caches."""
    folder = tmp_path_factory.mktemp("home")
    url = new_store_url("sqlite", request, folder)
    # the snapshot is of FIXED_NOW, long past: served as published, not as stale
    common = {"DATABASE_URL": url, "POLLER_ENABLED": False, "REDIS_URL": "", "READY_MAX_AGE_SECONDS": AGES,
              "LOCAL_CACHE_DIR": str(folder / "cache"), "REPORTS_DIR": str(folder / "reports")}
    open_app = create_app(common)
    svc = open_app.server.extensions[EXTENSION]
    seed(svc.engine, profile=BACKLOG, seed=3, total_cases=2000, now=FIXED_NOW, occupancy_days=1)
    with svc.engine.begin() as conn:
        conn.execute(insert(schema.Case), _planted())
    users.create_user(svc.engine, "jinshui", hash_password(PASSWORD), "district_leader", JINSHUI)
    secured = create_app({**common, "AUTH_ENABLED": True, "SECRET_KEY": "home-test-" + "h" * 30,
                          "LOCAL_CACHE_DIR": str(folder / "cache-secured")})
    snap = publish_at(svc, FIXED_NOW)
    publish_at(secured.server.extensions[EXTENSION], FIXED_NOW)
    servers = {}
    for name, app in (("open", open_app), ("secured", secured)):
        B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
        servers[name] = LiveServer(app)
    yield servers, snap, svc.engine
    for s in servers.values():
        s.stop()


def sql_stock(engine, at: dt.datetime, district: str | None = None) -> tuple[int, int]:
    """Open and overdue cases at `at`, straight from the rows (docs/browsing.md's definition)."""
    where = "AND district_code = :d" if district else ""
    at = at.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT SUM(CASE WHEN filed_at < :t AND NOT voided AND (" + OPEN_SQL + " OR closed_at >= :t) "
            "THEN 1 ELSE 0 END), SUM(CASE WHEN filed_at < :t AND NOT voided AND (" + OPEN_SQL + " OR closed_at >= :t) "
            "AND deadline_at < :t AND status <> 'parked' THEN 1 ELSE 0 END) FROM cases WHERE 1 = 1 " + where),
            {"t": at, "d": district}).one()
    return int(row[0] or 0), int(row[1] or 0)


def sql_now(engine, district: str | None = None) -> tuple[int, int]:
    """Open and overdue cases as the wall counts them (status now, deadline before FIXED_NOW)."""
    where = "AND district_code = :d" if district else ""
    now = FIXED_NOW.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    with engine.connect() as conn:
        open_n = conn.execute(text(f"SELECT COUNT(*) FROM cases WHERE {OPEN_SQL} {where}"), {"d": district}).scalar()
        overdue = conn.execute(text(f"SELECT COUNT(*) FROM cases WHERE {RUNNING_SQL} AND deadline_at < :t {where}"),
                               {"t": now, "d": district}).scalar()
    return open_n, overdue


def _open(page, url: str):
    page.goto(url)
    page.wait_for_selector("#home-card-open_cases [data-kpi][data-value]")


def cards(page) -> dict:
    """data-kpi -> (value, delta, level or None, href) of each headline card."""
    return page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('a.home-card')).map(a => {
        const v = a.querySelector('[data-kpi]'), d = a.querySelector('[data-delta]'), l = a.querySelector('[data-level]');
        return [v.dataset.kpi, [v.dataset.value, d.dataset.deltaValue, l ? l.dataset.level : null, a.getAttribute('href')]];
    }))""")


def _num(raw: str):
    return None if raw == "" else float(raw)


def expected_cards(snap: Snapshot, district: str | None) -> dict:
    """Each card's (value, delta, level) read from the snapshot's sections by hand."""
    s = {name: sec.data for name, sec in snap.sections.items()}
    pick = (lambda block: block["city"]) if district is None else (lambda block: block["by_district"][district])
    cases, start = s["cases"], s["day_start"]
    open_n = cases["open"]["total"] if district is None else cases["open"]["by_district"][district]["total"]
    overdue = cases["overdue"]["total"] if district is None else cases["overdue"]["by_district"][district]
    start_b = start if district is None else start["by_district"][district]
    today, week = pick(cases["periods_kpis"]["today"]), pick(cases["periods_kpis"][RATE_PERIOD])
    ent = pick(s["enterprise"]["periods"][RATE_PERIOD])
    park = pick(s["parking"])
    occ, prev = park["occupancy_now"], park["today_curve"][-2]["occupancy"]
    out = {"open_cases": (open_n, open_n - start_b["open"], None),
           "overdue": (overdue, overdue - start_b["overdue"], thresholds.level("overdue_share", overdue / open_n)),
           "reported_today": (today["reported"]["value"], today["reported"]["delta"], None),
           "closed_today": (today["closed"]["value"], today["closed"]["delta"], None),
           "visits": (ent["visits"]["value"], ent["visits"]["delta"], None),
           "problems_raised": (ent["problems_raised"]["value"], ent["problems_raised"]["delta"], None),
           "occupancy": (occ, occ - prev, thresholds.level("occupancy", occ))}
    for key, fig in (("closure_rate", week), ("on_time_closure_rate", week), ("resolution_rate", ent)):
        out[key] = (fig[key]["value"], fig[key]["delta"], thresholds.level(key, fig[key]["value"]))
    return out


def check_cards(shown: dict, want: dict):
    assert set(shown) == set(want)
    for key, (value, delta, level) in want.items():
        got_value, got_delta, got_level, _href = shown[key]
        assert _num(got_value) == pytest.approx(value), key
        assert _num(got_delta) == pytest.approx(delta), key
        assert got_level == level, key


def _query(href: str) -> tuple[str, dict]:
    parts = urlparse(href)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_city_morning_in_both_languages(city, page, lang):
    servers, snap, engine = city
    _open(page, servers["open"].url + ("/" if lang == "zh-CN" else "/?lang=en"))
    shown = cards(page)
    check_cards(shown, expected_cards(snap, None))
    assert page.locator(".notice .error, .home-card-status").count() == 0  # fresh figures say nothing more
    # open and overdue: an independent count over the rows, now and at 00:00
    open_n, overdue = sql_now(engine)
    open_0, overdue_0 = sql_stock(engine, MIDNIGHT)
    assert (int(_num(shown["open_cases"][0])), int(_num(shown["overdue"][0]))) == (open_n, overdue)
    assert (int(_num(shown["open_cases"][1])), int(_num(shown["overdue"][1]))) == (open_n - open_0, overdue - overdue_0)
    assert int(_num(shown["overdue"][1])) >= 2  # the two planted this morning
    assert sql_stock(engine, FIXED_NOW) == (open_n, overdue)  # one definition, two ways to count it
    # levels show as a word beside the colour
    level = shown["overdue"][2]
    assert level is not None
    assert page.inner_text("#home-card-overdue .home-card-level").endswith(
        {"zh-CN": {"good": "良好", "watch": "关注", "alert": "告警"}, "en": {"good": "Good", "watch": "Watch",
                                                                          "alert": "Alert"}}[lang][level])
    # the cards open the browsing pages on what they count
    suffix = {} if lang == "zh-CN" else {"lang": "en"}
    assert _query(shown["open_cases"][3]) == ("/browse", {"period": "today", "list": "open", **suffix})
    assert _query(shown["overdue"][3]) == ("/browse", {"period": "today", "list": "overdue", **suffix})
    assert _query(shown["closure_rate"][3]) == ("/browse", {"period": "week", **suffix})
    assert _query(shown["visits"][3]) == ("/browse/enterprise", {"period": "week", **suffix})
    assert _query(shown["occupancy"][3]) == ("/browse/parking", suffix)
    links = {a.get_attribute("data-link"): _query(a.get_attribute("href")) for a in page.locator("a.home-link").all()}
    assert links == {"browse_today": ("/browse", {"period": "today", **suffix}),
                     "browse_week": ("/browse", {"period": "week", **suffix}),
                     "wall": ("/wall", suffix), "archive": ("/snapshots", suffix)}
    # every district in the table, the city's total under the city's name
    rows = page.locator("tr[data-row]")
    assert rows.count() == 9
    assert page.inner_text("tr[data-row='total'] td.name") == ("全市合计" if lang == "zh-CN" else "City total")
    assert int(page.get_attribute("tr[data-row='total'] td[data-col='open']", "data-value")) == open_n
    # the planted cases are the newest overdue ones, each linking to its page
    newest = page.locator("tr[data-case]")
    assert newest.nth(0).get_attribute("data-case") == "PLANT-OVERDUE-0"
    assert newest.nth(1).get_attribute("data-case") == "PLANT-OVERDUE-1"
    assert re.fullmatch(r"/case/\d+\?lang=" + ("zh-CN" if lang == "zh-CN" else "en"),
                        newest.nth(0).locator("a").get_attribute("href"))
    # the page's words are all in its language (case numbers and addresses are data)
    words = chrome_text(page, "main.home-body, #home-freshness", skip=DATA)
    assert foreign(words, lang) == [], foreign(words, lang)
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_the_cards_open_browsing_on_their_filters(city, page):
    servers, snap, _engine = city
    _open(page, servers["open"].url + "/")
    shown = cards(page)
    for key, listed in (("open_cases", "open"), ("overdue", "overdue")):
        page.click(f"#home-card-{key}")
        page.wait_for_url(re.compile(r"/browse\?"))
        assert _query(page.url)[1] == {"period": "today", "list": listed}
        # the list behind the card holds as many cases as the card says
        page.wait_for_selector(".case-total[data-total]")
        wait_until(page, "n => document.querySelector('.case-total').dataset.total === n",
                   arg=str(int(_num(shown[key][0]))), timeout=15_000)
        page.go_back()
        page.wait_for_selector(f"#home-card-{key} [data-value]")
    assert page.console_errors == []


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_district_leader_sees_their_district_under_its_name(city, page, lang):
    servers, snap, engine = city
    base = servers["secured"].url
    page.goto(base + "/login")
    page.fill("#username", "jinshui")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/(\?.*)?$"))
    _open(page, base + ("/" if lang == "zh-CN" else "/?lang=en"))
    shown = cards(page)
    check_cards(shown, expected_cards(snap, JINSHUI))
    assert (int(_num(shown["open_cases"][0])), int(_num(shown["overdue"][0]))) == sql_now(engine, JINSHUI)
    open_0, overdue_0 = sql_stock(engine, MIDNIGHT, JINSHUI)
    assert int(_num(shown["overdue"][1])) == int(_num(shown["overdue"][0])) - overdue_0
    assert int(_num(shown["open_cases"][1])) == int(_num(shown["open_cases"][0])) - open_0
    # the total is the district's, by its name; nothing is called the city's
    body = page.inner_text("main.home-body")
    title = page.inner_text("h1.home-title")
    assert title.startswith("金水区" if lang == "zh-CN" else "Jinshui")
    assert ("全市" if lang == "zh-CN" else "City") not in body
    ref = servers["secured"].app.server.extensions[EXTENSION].reference.get()
    for d in ref.districts:
        if d.code != JINSHUI:
            assert (d.short_zh if lang == "zh-CN" else d.name_en) not in body, d.code
    assert [r.get_attribute("data-row") for r in page.locator("tr[data-row]").all()] == [JINSHUI]
    assert [r.get_attribute("data-case") for r in page.locator("tr[data-case]").all()] == ["PLANT-OVERDUE-0"]
    # its links carry its district
    suffix = {} if lang == "zh-CN" else {"lang": "en"}
    assert _query(shown["overdue"][3]) == ("/browse", {"period": "today", "list": "overdue", "district": JINSHUI,
                                                       **suffix})
    links = {a.get_attribute("data-link"): _query(a.get_attribute("href")) for a in page.locator("a.home-link").all()}
    assert links["browse_today"] == ("/browse", {"period": "today", "district": JINSHUI, **suffix})
    words = chrome_text(page, "main.home-body, #home-freshness", skip=DATA)
    assert foreign(words, lang) == [], foreign(words, lang)
    assert page.console_errors == []


def test_a_bad_language_is_explained(city, page):
    servers, _snap, _engine = city
    _open(page, servers["open"].url + "/?lang=xx")
    assert "xx" in page.inner_text(".notice")
    assert page.inner_text("h1.home-title").startswith("全市")


@pytest.fixture
def live_store(engine):
    seed(engine, profile=BACKLOG, seed=3, total_cases=1000, occupancy_days=1)  # history up to the real "now"
    return engine


def test_the_page_follows_the_snapshot(live_store, store_url, serve, page):
    app = create_app({"DATABASE_URL": store_url, "PAGE_REFRESH_SECONDS": 0.5, "POLL_SECONDS": 0.5})
    server = serve(app)
    _open(page, server.url + "/")
    before = cards(page)
    open_n = sql_now_real(live_store)
    assert int(_num(before["open_cases"][0])) == open_n
    # a new open case: the card and its change since 00:00 move without a reload
    now = dt.datetime.now(dt.timezone.utc)
    with live_store.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id="LIVE-1", source="hotline", category_code="S01-01", district_code=JINSHUI,
            status="filed", reported_at=now, filed_at=now, updated_at=now)])
    wait_until(page, "n => document.querySelector(\"#home-card-open_cases [data-kpi]\").dataset.value === n",
               arg=str(open_n + 1), timeout=10_000)
    after = cards(page)
    assert _num(after["open_cases"][1]) == _num(before["open_cases"][1]) + 1
    row = f"tr[data-row='{JINSHUI}'] td[data-col='open']"
    assert page.get_attribute(row, "data-value") == str(
        app.server.extensions[EXTENSION].cache.get().sections["cases"].data["open"]["by_district"][JINSHUI]["total"])
    assert page.console_errors == []
    assert only_local(page.requested) == []
    metrics = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
    count = float(next(line.split()[-1] for line in metrics.splitlines()
                       if line.startswith("cc_refresh_requests_total")))
    assert count >= 2


def sql_now_real(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM cases WHERE {OPEN_SQL}")).scalar()


def test_store_going_away_keeps_the_numbers_and_says_so(tmp_path, serve, page):
    """SQLite file removed under a running app: the figures stay and an error shows."""
    from datasource.engine import make_engine
    from datasource.migrate import upgrade
    from datasource.reference import load_reference

    path = tmp_path / "gone.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    load_reference(engine)
    app = create_app({"DATABASE_URL": f"sqlite:///{path}", "PAGE_REFRESH_SECONDS": 0.5, "POLL_SECONDS": 0.5})
    server = serve(app)
    _open(page, server.url + "/")
    assert page.get_attribute("#home-card-open_cases [data-kpi]", "data-value") == "0"  # empty: a true zero
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE case_events"))
        conn.execute(text("DROP TABLE cases"))
    page.wait_for_selector(".notice .error", timeout=10_000)
    assert page.get_attribute("#home-card-open_cases [data-kpi]", "data-value") == "0"
    assert page.locator("#home-card-open_cases .home-card-status").count() == 1  # the card says it is stale
    engine.dispose()


HOSTILE = {
    "district": '<img src=x onerror="window.__pwned=1">金水',
    "category": "<script>window.__pwned=2</script>道路",
    "subcategory": "<b onmouseover=window.__pwned=3>井盖</b>",
    "address": '"><svg onload="window.__pwned=4"></svg>=HYPERLINK("http://x")',
}


def test_names_and_addresses_from_the_store_are_text(tmp_path, serve, page):
    from datasource.engine import make_engine
    from datasource.migrate import upgrade
    from datasource.reference import load_reference

    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    engine = make_engine(url)
    upgrade(engine)
    load_reference(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE districts SET short_zh = :n, name_zh = :n, name_en = :n WHERE code = :c"),
                     {"n": HOSTILE["district"], "c": JINSHUI})
        conn.execute(text("UPDATE case_categories SET name_zh = :n, name_en = :n WHERE code = 'B02'"),
                     {"n": HOSTILE["category"]})
        conn.execute(text("UPDATE case_categories SET name_zh = :n, name_en = :n WHERE code = 'B02-01'"),
                     {"n": HOSTILE["subcategory"]})
        conn.execute(insert(schema.Case), _planted()[:1] + [dict(
            _planted()[0], external_id="PLANT-TODAY", filed_at=FIXED_NOW - dt.timedelta(hours=1),
            reported_at=FIXED_NOW - dt.timedelta(hours=1))])
        conn.execute(text("UPDATE cases SET address = :a"), {"a": HOSTILE["address"]})
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, "REDIS_URL": "", "READY_MAX_AGE_SECONDS": AGES,
                      "LOCAL_CACHE_DIR": str(tmp_path / "cache")})
    publish_at(app.server.extensions[EXTENSION], FIXED_NOW)
    server = serve(app)
    _open(page, server.url + "/")
    page.wait_for_selector("tr[data-case='PLANT-OVERDUE-0']")
    body = page.inner_text("main.home-body")
    for value in HOSTILE.values():
        assert value in body, value
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("main.home-body img, main.home-body script, main.home-body svg, main.home-body b").count() == 0
    assert page.console_errors == []
    engine.dispose()
