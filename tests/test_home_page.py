"""`/` in a real Chromium: open cases per district (from the snapshot) equal a direct SQL
count, live, offline."""
import datetime as dt
import re

import pytest
from sqlalchemy import insert, text

from dashboard import create_app
from datasource import schema
from datasource.demo.seed import seed
from tests.conftest import BACKLOG, only_local, wait_until

pytestmark = pytest.mark.browser


def _sql_open_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT d.code, COUNT(c.id) FROM districts d LEFT JOIN cases c ON c.district_code = d.code "
            "AND c.status IN ('filed','dispatched','handled','verified','rework','parked') GROUP BY d.code")).all()
    return {code: n for code, n in rows}


def _page_counts(page) -> dict[str, int]:
    cells = page.locator("td[data-district]")
    return {cells.nth(i).get_attribute("data-district"): int(re.sub(r"\D", "", cells.nth(i).inner_text()))
            for i in range(cells.count())}


@pytest.fixture
def live_store(engine):
    seed(engine, profile=BACKLOG, seed=3, total_cases=3000, occupancy_days=1)  # history up to the real "now"
    return engine


def test_open_cases_match_sql_and_stay_live(live_store, store_url, serve, page):
    app = create_app({"DATABASE_URL": store_url, "PAGE_REFRESH_SECONDS": 0.5, "POLL_SECONDS": 0.5})
    server = serve(app)
    page.goto(server.url + "/")
    page.wait_for_selector("td[data-district='total']")
    expected = _sql_open_counts(live_store)
    shown = _page_counts(page)
    assert {k: v for k, v in shown.items() if k != "total"} == expected
    assert shown["total"] == sum(expected.values())
    assert "金水" in page.inner_text("table")  # zh-CN by default

    # a new open case appears without a reload
    now = dt.datetime.now(dt.timezone.utc)
    with live_store.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id="LIVE-1", source="hotline", category_code="S01-01", district_code="410105",
            status="filed", reported_at=now, filed_at=now, updated_at=now)])
    wait_until(
        page,
        "n => Number(document.querySelector(\"td[data-district='410105']\").innerText.replace(/\\D/g, '')) === n",
        arg=expected["410105"] + 1, timeout=10_000)

    assert page.console_errors == []
    assert only_local(page.requested) == []
    # every refresh of the page is counted in /metrics
    import urllib.request

    metrics = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
    count = float(next(line.split()[-1] for line in metrics.splitlines()
                       if line.startswith("cc_refresh_requests_total")))
    assert count >= 2


def test_english_on_request_and_bad_language_is_explained(reference_engine, store_url, serve, page):
    app = create_app({"DATABASE_URL": store_url, "POLL_SECONDS": 0.5})
    server = serve(app)
    page.goto(server.url + "/?lang=en")
    page.wait_for_selector("td[data-district='total']")
    assert "Jinshui" in page.inner_text("table")
    assert _page_counts(page)["total"] == 0  # an empty store is a true zero, not an error
    page.goto(server.url + "/?lang=xx")
    page.wait_for_selector("td[data-district='total']")
    assert "xx" in page.inner_text(".notice")
    assert "金水" in page.inner_text("table")
    assert page.console_errors == []


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
    page.goto(server.url + "/")
    page.wait_for_selector("td[data-district='total']")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE case_events"))
        conn.execute(text("DROP TABLE cases"))
    page.wait_for_selector(".notice .error", timeout=10_000)
    assert page.locator("td[data-district='total']").count() == 1
