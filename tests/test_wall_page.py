"""`/wall` in a real Chromium: every panel equals the snapshot, live updates, a dead
store, bad URLs, wall sizes (screenshots in test-artifacts/), kiosk mode, no flicker,
reload on a new build. Every test also checks: no console errors, nothing fetched from
outside the machine."""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from dashboard import create_app
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from datasource import schema
from layouts.wall.panels import merge_ticker
from tests.conftest import BACKLOG, LiveServer, new_store_url, only_local, seeded_store_url, wait_until

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

GRAPH_DATA = """id => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return gd && gd.data ? {data: gd.data.map(t => ({x: t.x, y: t.y, text: t.text, customdata: t.customdata,
  meta: t.meta})), annotations: (gd.layout.annotations || []).map(a => a.text)} : null; }"""


def _seeded_url(backend, request, tmp_path) -> str:
    # history up to the real "now" (the module's first use of it)
    return seeded_store_url(backend, request, tmp_path, profile=BACKLOG, seed=11, total_cases=4000, occupancy_days=1)


@pytest.fixture(scope="module")
def static_wall(request, tmp_path_factory):
    """A wall on a seeded SQLite store whose snapshot is published once and then kept; one
    for the module (its tests only open pages on it)."""
    url = _seeded_url("sqlite", request, tmp_path_factory.mktemp("wall"))
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, "PAGE_REFRESH_SECONDS": 0.5})
    svc = app.server.extensions[EXTENSION]
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()
    server = LiveServer(app)
    yield server, svc
    server.stop()


def _open(page, url, width=1920, height=1080):
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url)
    # attached, not visible: a rotating wall may show another page for up to 30 s
    page.wait_for_selector("#card-open_cases .card-value[data-value]", state="attached")
    wait_until(page, "() => document.querySelector('#ov-map-body .js-plotly-plot') !== null", timeout=30)
    wait_until(page, "() => document.querySelector('#pk-programme-body .js-plotly-plot') !== null", timeout=30)


def _graph(page, panel_id):
    return page.evaluate(GRAPH_DATA, f"{panel_id}-body")


def _trace(graph, meta):
    return next(t for t in graph["data"] if t["meta"] == meta)


def _by_custom(trace, key="x"):
    return dict(zip(trace["customdata"], trace[key]))


def _attr_values(page, selector, attr="data-kpi") -> dict:
    return page.evaluate("""([sel, attr]) => Object.fromEntries(Array.from(document.querySelectorAll(sel))
        .map(e => [e.getAttribute(attr), e.getAttribute('data-value')]))""", [selector, attr])


def _num(raw):
    return None if raw in ("", None) else float(raw)


def _clean(page):
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_every_panel_shows_the_snapshot(static_wall, page):
    server, svc = static_wall
    _open(page, server.url + "/wall")
    snap = svc.cache.get()
    cases, ent, park, ticker = (snap.sections[n].data for n in ("cases", "enterprise", "parking", "ticker"))
    ref = svc.reference.get()
    codes = [d.code for d in ref.districts]
    name = {d.code: d.short_zh for d in ref.districts}
    month = cases["periods_kpis"]["month"]
    approx = pytest.approx

    cards = {k: _num(v) for k, v in _attr_values(page, ".card-value").items()}
    assert cards == approx({
        "open_cases": cases["open"]["total"], "overdue": cases["overdue"]["total"],
        "reported_today": cases["periods_kpis"]["today"]["city"]["reported"]["value"],
        "closed_today": cases["periods_kpis"]["today"]["city"]["closed"]["value"],
        "closure_rate": month["city"]["closure_rate"]["value"],
        "on_time_closure_rate": month["city"]["on_time_closure_rate"]["value"],
        "visits": ent["periods"]["month"]["city"]["visits"]["value"],
        "resolution_rate": ent["periods"]["month"]["city"]["resolution_rate"]["value"],
        "occupancy": park["city"]["occupancy_now"]})

    for prefix in ("ov", "cs"):
        stage = _graph(page, f"{prefix}-open-stage")
        for s in ("filed", "dispatched", "handled", "verified", "rework", "parked"):
            tr = _trace(stage, s)
            assert dict(zip(tr["y"], tr["x"])) == {name[c]: cases["open"]["by_district"][c][s] for c in codes}
        rank = _graph(page, f"{prefix}-closure-rank")["data"][0]
        assert _by_custom(rank) == approx({c: month["by_district"][c]["closure_rate"]["value"] or 0 for c in codes})
        trend = _graph(page, f"{prefix}-trend")
        assert _trace(trend, "reported")["y"] == [r["reported"] for r in cases["series_30d"]]
        assert _trace(trend, "closed")["y"] == [r["closed"] for r in cases["series_30d"]]

    cats = _graph(page, "cs-categories")["data"][0]
    assert _by_custom(cats) == cases["open"]["by_category"]
    ageing = _graph(page, "cs-ageing")["data"][0]
    assert ageing["y"] == [b["n"] for b in cases["overdue"]["ageing"]]
    rates = _attr_values(page, "#cs-rates-body td[data-kpi='closure_rate']", "data-district")
    assert {c: _num(v) for c, v in rates.items()} == approx(
        {**{c: month["by_district"][c]["closure_rate"]["value"] for c in codes},
         "city": month["city"]["closure_rate"]["value"]})

    # the map: shapes labelled with their count, zones without a polygon as labelled markers
    the_map = _graph(page, "ov-map")
    labels = _trace(the_map, "labels")
    for code, label in zip(labels["customdata"], labels["text"]):
        assert label.endswith(f"{cases['open']['by_district'][code]['total']:,}")
    zones = [d for d in ref.districts if not d.geometry]
    assert zones and _trace(the_map, "zones")["customdata"] == [d.code for d in zones]
    for d in zones:
        assert any(a.endswith(f"{cases['open']['by_district'][d.code]['total']:,}") and d.short_zh in a
                   for a in the_map["annotations"])

    shown = page.evaluate("Array.from(document.querySelectorAll('#ov-ticker-body li[data-case]'))"
                          ".map(e => e.getAttribute('data-case'))")
    assert shown == [i["external_id"] for i in merge_ticker(ticker, None)][:len(shown)] and len(shown) == 8

    ent_month = ent["periods"]["month"]
    tiles = {k: _num(v) for k, v in _attr_values(page, "#en-summary-body .tile-value").items()}
    assert tiles["visits"] == ent_month["city"]["visits"]["value"]
    assert tiles["problems_open"] == ent["open_problems"]["total"]
    assert tiles["resolution_rate"] == approx(ent_month["city"]["resolution_rate"]["value"])
    visits = _graph(page, "en-visits")
    for k in ("visits", "problems_raised", "problems_resolved"):
        assert dict(zip(_trace(visits, k)["x"], _trace(visits, k)["y"])) == \
            {name[c]: ent_month["by_district"][c][k]["value"] for c in codes}
    types = _graph(page, "en-types")
    assert {k: v for k, v in _by_custom(_trace(types, "raised")).items() if v} == \
        {k: v["raised"]["value"] for k, v in ent_month["by_type"].items() if v["raised"]["value"]}
    assert {k: v for k, v in _by_custom(_trace(types, "open")).items() if v} == ent["open_problems"]["by_type"]
    res = _graph(page, "en-resolution")["data"][0]
    assert _by_custom(res) == approx({c: ent_month["by_district"][c]["resolution_rate"]["value"] or 0 for c in codes})
    grids = _graph(page, "en-grids")["data"][0]
    for code, label in zip(grids["customdata"], grids["text"]):
        mine = [g for g in ent["exclusive_grids"] if g["district"] == code]
        seen = sum(1 for g in mine if ent_month["by_exclusive_grid"][str(g["grid_id"])]["visits"]["value"])
        assert label == f"{seen}/{len(mine)}"

    ptiles = {k: _num(v) for k, v in _attr_values(page, "#pk-summary-body .tile-value").items()}
    assert ptiles["capacity"] == park["city"]["capacity"]
    assert ptiles["occupied_now"] == park["city"]["occupied_now"]
    assert ptiles["added"] == park["city"]["programme_this_year"]["added"]
    assert ptiles["demo_sites"] == park["city"]["demo_sites"]
    occ = _graph(page, "pk-occupancy")["data"][0]
    assert _by_custom(occ) == approx({c: park["by_district"][c]["occupancy_now"] for c in codes})
    curve = _graph(page, "pk-curve")
    assert _trace(curve, "city")["y"] == approx([p["occupancy"] for p in park["city"]["today_curve"]])
    for c in codes:
        assert _trace(curve, c)["y"] == approx([p["occupancy"] for p in park["by_district"][c]["today_curve"]])
    cap = _graph(page, "pk-capacity")
    for k in ("on_street_capacity", "off_street_capacity", "shared_capacity"):
        assert _trace(cap, k)["y"] == [park["by_district"][c][k] for c in codes]
    prog = _graph(page, "pk-programme")
    for k in ("added", "revitalised", "shared"):
        assert _trace(prog, k)["y"] == [park["by_district"][c]["programme_this_year"][k] for c in codes]

    page.wait_for_selector("#wall-light.light-fresh")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-1920x1080.png"))
    _clean(page)


@pytest.mark.parametrize("width,height,cols", [(1366, 768, 1), (3840, 2160, 1), (7680, 2160, 2)])
def test_wall_sizes_kiosk_and_screenshots(static_wall, page, width, height, cols):
    server, _svc = static_wall
    _open(page, server.url + "/wall", width, height)
    wait_until(page, f"() => document.querySelector('#wall-root').className.includes('cols-{cols}')")
    page.wait_for_timeout(500)  # let the charts settle before the picture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"wall-{width}x{height}.png"))
    m = page.evaluate("""() => { const r = document.querySelector('#card-open_cases .card-value').getBoundingClientRect();
        const c = document.querySelector('#wall-canvas').getBoundingClientRect();
        return {scrollW: document.documentElement.scrollWidth, scrollH: document.documentElement.scrollHeight,
                cardText: r.height, canvasW: c.width, canvasH: c.height, left: c.left, top: c.top,
                modebars: document.querySelectorAll('.modebar').length,
                cursor: getComputedStyle(document.querySelector('.wall-page')).cursor,
                visible: Array.from(document.querySelectorAll('.wall-page')).filter(p =>
                    getComputedStyle(p).visibility === 'visible').map(p => p.dataset.page)}; }""")
    scale = min(width / (1920 * cols), height / 1080)
    assert m["scrollW"] <= width and m["scrollH"] <= height  # no scrollbars
    assert m["modebars"] == 0 and m["cursor"] == "none"
    assert m["canvasW"] == pytest.approx(1920 * cols * scale, abs=2)
    assert m["canvasH"] == pytest.approx(1080 * scale, abs=2)
    assert m["left"] >= -1 and m["top"] >= -1 and m["left"] + m["canvasW"] <= width + 1
    assert m["cardText"] >= 46 * 1.1 * scale  # fonts scale with the canvas
    assert m["cardText"] >= 30  # still legible across a room at the smallest size
    expected = ["overview", "cases"][:cols]
    assert sorted(m["visible"]) == sorted(expected)
    _clean(page)


def test_unchanged_refreshes_redraw_nothing(static_wall, page):
    server, _svc = static_wall
    _open(page, server.url + "/wall")
    page.wait_for_timeout(1200)  # the first renders are done
    page.evaluate("""() => { window.__redraws = 0;
        document.querySelectorAll('.js-plotly-plot').forEach(gd => gd.on('plotly_afterplot', () => window.__redraws++));
        document.querySelector('#card-open_cases').setAttribute('data-mark', 'same-node'); }""")
    before = page.evaluate("() => performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-update-component')).length")
    page.wait_for_timeout(2500)  # five refresh ticks at 0.5 s
    after = page.evaluate("() => performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-update-component')).length")
    assert after - before >= 3  # the wall did ask
    assert page.evaluate("window.__redraws") == 0
    assert page.locator("#card-open_cases[data-mark='same-node']").count() == 1
    _clean(page)


def test_bad_parameters_show_a_message_and_defaults(static_wall, page):
    server, _svc = static_wall
    _open(page, server.url + "/wall?district=999999&lang=xx&kpi=bogus&rotate=abc&page=nope")
    notices = page.inner_text("#wall-notices")
    for needle in ("999999", "xx", "bogus", "abc", "nope"):
        assert needle in notices
    assert "全市" in page.text_content("#cs-rates-body") and "郑州市城市运行指挥中心" == page.inner_text(".wall-title")
    assert "在办案件" in page.inner_text("#ov-map-head")
    _clean(page)


def test_district_wall_in_english(static_wall, page):
    server, svc = static_wall
    _open(page, server.url + "/wall?district=410105&lang=en&kpi=occupancy")
    assert "Jinshui" in page.inner_text(".wall-title")
    assert "Parking occupancy" in page.inner_text("#ov-map-head")
    snap = svc.cache.get()
    cards = {k: _num(v) for k, v in _attr_values(page, ".card-value").items()}
    assert cards["open_cases"] == snap.sections["cases"].data["open"]["by_district"]["410105"]["total"]
    assert cards["occupancy"] == pytest.approx(snap.sections["parking"].data["by_district"]["410105"]["occupancy_now"])
    ticker_districts = page.evaluate("Array.from(document.querySelectorAll('#ov-ticker-body .where')).map(e => e.innerText)")
    assert set(ticker_districts) <= {"Jinshui"}
    assert "Open cases" in page.inner_text("#card-open_cases")
    _clean(page)


def test_rotation_is_in_step_with_the_clock(static_wall, page):
    server, _svc = static_wall
    _open(page, server.url + "/wall?rotate=10")
    pages = ["overview", "cases", "enterprise", "parking"]
    expected = page.evaluate("() => Math.floor(Date.now() / 10000) % 4")
    wait_until(page, f"() => document.querySelector('#wall-dots').className.includes('on-{pages[expected]}')")
    nxt = pages[(expected + 1) % 4]
    wait_until(page, f"() => document.querySelector('#wall-dots').className.includes('on-{nxt}')", timeout=12)
    visible = page.evaluate("Array.from(document.querySelectorAll('.wall-page')).filter(p => "
                            "getComputedStyle(p).visibility === 'visible').map(p => p.dataset.page)")
    assert visible == [nxt]
    _clean(page)


def test_reloads_itself_when_the_server_build_changes(static_wall, page, monkeypatch):
    server, _svc = static_wall
    _open(page, server.url + "/wall")
    page.evaluate("window.__before_reload = true")
    import dashboard.build

    monkeypatch.setattr(dashboard.build, "computed_build_id", lambda: "a-new-build")
    wait_until(page, "() => window.__before_reload === undefined")
    page.wait_for_selector("#card-open_cases .card-value[data-value]")
    assert page.evaluate("window.__before_reload") is None
    _clean(page)


def test_live_case_appears_within_poll_plus_refresh(request, tmp_path, serve, page):
    url = _seeded_url("postgresql", request, tmp_path)
    poll, refresh = 1.0, 1.0
    app = create_app({"DATABASE_URL": url, "POLL_SECONDS": poll, "PAGE_REFRESH_SECONDS": refresh})
    server = serve(app)
    svc = app.server.extensions[EXTENSION]
    _open(page, server.url + "/wall")
    page.wait_for_selector("#wall-light.light-fresh")
    before = int(page.get_attribute("#card-open_cases .card-value", "data-value"))
    now = dt.datetime.now(dt.timezone.utc)
    with svc.engine.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id="WALL-LIVE-1", source="hotline", category_code="S01-01", district_code="410105",
            status="filed", reported_at=now, filed_at=now, updated_at=now)])
    started = time.monotonic()
    # the bound: one poll interval, one refresh interval, and a second for a poll and a render
    page.wait_for_selector("#ov-ticker-body li[data-case='WALL-LIVE-1']", timeout=(poll + refresh + 1.0) * 1000)
    elapsed = time.monotonic() - started
    assert int(page.get_attribute("#card-open_cases .card-value", "data-value")) == before + 1
    print(f"new case on the wall after {elapsed:.2f} s")
    _clean(page)


def test_dead_store_shows_stale_keeps_numbers_and_recovers(request, tmp_path, serve, page, pg_admin):
    url = _seeded_url("postgresql", request, tmp_path)
    dbname = url.rsplit("/", 1)[1]
    app = create_app({"DATABASE_URL": url, "POLL_SECONDS": 1.0, "PAGE_REFRESH_SECONDS": 0.5})
    server = serve(app)
    _open(page, server.url + "/wall")
    page.wait_for_selector("#wall-light.light-fresh")
    numbers = _attr_values(page, ".card-value")
    with pg_admin.connect() as conn:  # access revoked: every new connection is refused
        conn.execute(text(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": dbname})
    try:
        started = time.monotonic()
        page.wait_for_selector("#wall-light.light-stale", timeout=4_000)  # one poll, one refresh, slack
        page.wait_for_selector("#ov-open-stage-head .badge-stale")
        print(f"stale on the wall after {time.monotonic() - started:.2f} s")
        assert _attr_values(page, ".card-value") == numbers  # the last figures stay
        assert page.locator("#ov-open-stage-body .js-plotly-plot .bars path").count() > 0
        page.screenshot(path=str(ARTIFACTS / "wall-store-down.png"))
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true'))
    page.wait_for_selector("#wall-light.light-fresh", timeout=10_000)  # back by itself
    page.wait_for_selector("#ov-open-stage-head .badge-fresh")
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_no_snapshot_yet_says_waiting_not_blank(request, tmp_path, serve, page):
    url = new_store_url("sqlite", request, tmp_path)
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, "PAGE_REFRESH_SECONDS": 0.5})
    server = serve(app)
    page.goto(server.url + "/wall")
    page.wait_for_selector("#wall-light.light-waiting")
    page.wait_for_timeout(1200)
    assert "等待" in page.inner_text("#ov-ticker-body")
    assert page.locator("#card-open_cases").count() == 0  # no made-up numbers before the first poll
    _clean(page)


def test_daily_reload_at_the_configured_time(request, tmp_path, serve, page):
    """At WALL_RELOAD_AT (on the server's clock) a wall open for over two minutes reloads,
    after checking the server answers. The browser's clock is moved on to age the page."""
    url = _seeded_url("sqlite", request, tmp_path)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    if dt.datetime.now(shanghai).second > 40:  # keep the whole test inside one minute
        time.sleep(61 - dt.datetime.now(shanghai).second)
    reload_at = dt.datetime.now(shanghai).strftime("%H:%M")
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, "PAGE_REFRESH_SECONDS": 0.5,
                      "WALL_RELOAD_AT": reload_at})
    svc = app.server.extensions[EXTENSION]
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()
    server = serve(app)
    page.clock.install()
    _open(page, server.url + "/wall")
    page.evaluate("window.__before_reload = true")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.__before_reload") is True  # just opened: no reload loop
    page.clock.fast_forward("03:00")  # the page is now three minutes old
    wait_until(page, "() => window.__before_reload === undefined")
    assert any(u.endswith("/healthz") for u in page.requested)
    page.wait_for_selector("#card-open_cases .card-value[data-value]")
    _clean(page)
