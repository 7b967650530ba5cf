"""A case's number from the city's data is text in the case list: markdown or HTML in it
makes no link and no element; the only link is the one the app builds to its own case page."""
import re

import pytest
from sqlalchemy import text

from dashboard import browse as B
from dashboard import create_app
from dashboard.settings import PROJECT_ROOT
from datasource.engine import make_engine
from layouts import browse as L
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url, only_local, wait_until

HOSTILE_IDS = ["[x](http://evil.example/)", "<img src=x onerror=alert(1)>", "[y](javascript:alert(1))",
               "**bold**", "<a href='http://evil.example/'>z</a>"]
ROW = {"id": 42, "external_id": HOSTILE_IDS[0], "reported_at": None, "district": "410105", "street_name": None,
       "grid_name": None, "category": "S05-01", "source": "app", "status": "filed", "deadline_at": None,
       "closed_at": None, "overdue": False, "rework_count": 0, "extended": False, "address": None}


class _Names:
    def district(self, code):
        return code

    def category(self, code):
        return code

    def source(self, code):
        return code


def _columns(grid):
    return grid.children[1].columnDefs


def test_no_column_renders_markdown_or_html():
    cols = _columns(L.case_grid("k", 10, None, "zh-CN"))
    renderers = {c["field"]: c.get("cellRenderer") for c in cols}
    assert renderers["external_id"] == "CaseLink"
    assert not [f for f, r in renderers.items() if r in ("markdown", "html")]
    assert not [c for c in cols if c.get("dangerously_allow_code") or c.get("cellRendererParams")]


def test_case_cells_carry_the_id_as_text_and_the_apps_own_link():
    cells = L.case_cells(ROW, _Names(), "zh-CN", FIXED_NOW.tzinfo, back="district=410105")
    assert cells["external_id"] == ROW["external_id"]  # as it is, no markdown around it
    assert re.fullmatch(r"/case/42\?lang=zh-CN&back=district%3D410105", cells["case_href"])
    assert "evil" not in cells["case_href"]


def test_the_renderer_links_only_to_case_pages():
    src = (PROJECT_ROOT / "assets" / "browse.js").read_text(encoding="utf-8")
    assert "funcs.CaseLink" in src and "innerHTML" not in src and "dangerouslySetInnerHTML" not in src


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    url = seeded_store_url("sqlite", request, tmp_path_factory.mktemp("ids"),
                           profile=BACKLOG, seed=21, total_cases=400, now=FIXED_NOW, occupancy_days=1)
    engine = make_engine(url)
    with engine.begin() as conn:
        newest = [r[0] for r in conn.execute(text(
            "SELECT id FROM cases ORDER BY reported_at DESC, id DESC LIMIT :n"), {"n": len(HOSTILE_IDS)})]
        for case_id, ext in zip(newest, HOSTILE_IDS):
            conn.execute(text("UPDATE cases SET external_id = :e WHERE id = :id"), {"e": ext, "id": case_id})
    yield url, engine, newest
    engine.dispose()


@pytest.mark.browser
def test_hostile_ids_show_as_text_in_the_browser(store, serve, page):
    url, engine, newest = store
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False})
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    live = serve(app)
    page.goto(f"{live.url}/browse?period=year")
    wait_until(page, "() => document.querySelectorAll('.browse-grid .ag-row [col-id=\"external_id\"] a').length >= 5",
               timeout=20)
    cells = page.evaluate("""() => Array.from(document.querySelectorAll(
        '.browse-grid .ag-center-cols-container .ag-row [col-id="external_id"]')).map(c => ({
          text: c.innerText, links: Array.from(c.querySelectorAll('a')).map(a => a.href),
          imgs: c.querySelectorAll('img, strong, b').length}))""")
    shown = {c["text"]: c for c in cells}
    for case_id, ext in zip(newest, HOSTILE_IDS):
        assert ext in shown, (ext, list(shown)[:8])  # the literal text
        assert shown[ext]["links"] and all(h.startswith(f"{live.url}/case/{case_id}?") for h in shown[ext]["links"])
        assert shown[ext]["imgs"] == 0
    anchors = page.evaluate("() => Array.from(document.querySelectorAll('.browse-grid a')).map(a => a.href)")
    assert anchors and all(h.startswith(f"{live.url}/case/") for h in anchors), anchors
    # and a click opens the app's own page of that case
    page.locator(".browse-grid a", has_text=HOSTILE_IDS[0]).click()
    page.wait_for_url(re.compile(rf"/case/{newest[0]}\?"))
    page.wait_for_selector(".case-title")
    assert HOSTILE_IDS[0] in page.inner_text(".case-title")
    assert page.console_errors == []
    assert only_local(page.requested) == []
