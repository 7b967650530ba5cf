"""The wall's refresh callback over HTTP, as a display calls it: unchanged answers are a
small head, changes send only what changed, renders are shared, the store is never read."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import event, insert

from tests.wall_helpers import WallDisplay, flask_transport
from dashboard import create_app
from dashboard.metrics import COUNTERS
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from datasource import schema
from layouts.wall.render import OUTPUTS
from tests.conftest import BACKLOG, seeded_store_url


def Display(app, config=None) -> WallDisplay:
    return WallDisplay(flask_transport(app), config)


@pytest.fixture
def wall(backend, request, tmp_path):
    """An app without its own poller, and a poller the test runs by hand."""
    url = seeded_store_url(backend, request, tmp_path, profile=BACKLOG, seed=5, total_cases=3000, occupancy_days=1)
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False})
    svc = app.server.extensions[EXTENSION]
    poller = Poller(svc.settings, engine=svc.engine, cache=svc.cache)
    poller.poll_once()
    yield app, svc, poller
    svc.engine.dispose()


def _renders(svc) -> float:
    return float(svc.cache.fields(COUNTERS).get("renders", 0))


def test_unchanged_refresh_is_a_small_head_only(wall):
    app, svc, _poller = wall
    d = Display(app)
    _status, _raw, sent = d.refresh()
    assert {f"{i}" for i, _p in OUTPUTS} <= set(sent)  # everything on the first tick
    _status, raw, again = d.refresh()
    assert set(again) == {"wall-head"}
    assert len(raw) < 1024, len(raw)
    head = again["wall-head"]["data"]
    assert head["v"] == svc.cache.head().version and head["s"] == "fresh"


def test_a_change_sends_only_the_outputs_that_changed(wall):
    app, svc, poller = wall
    d = Display(app)
    d.refresh()
    now = dt.datetime.now(dt.timezone.utc)
    with svc.engine.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id="WALL-NEW-1", source="hotline", category_code="S01-01", district_code="410105",
            status="filed", reported_at=now, filed_at=now, updated_at=now)])
    poller.poll_once()
    sent = d.refresh()[2]
    assert "ov-cards-body" in sent and "ov-ticker-body" in sent
    assert "WALL-NEW-1" in json.dumps(sent["ov-ticker-body"])
    assert not any(k.startswith("en-") for k in sent)  # enterprise did not change: not re-sent
    assert len(sent) < len(OUTPUTS)


def test_fifty_displays_cost_one_render_and_no_store_statement(wall):
    app, svc, _poller = wall
    Display(app).refresh()  # the reference data are read once per process and kept
    before = _renders(svc)
    statements = []
    event.listen(svc.engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2]))
    displays = [Display(app) for _ in range(50)]
    for d in displays:
        d.refresh()
        d.refresh()
    assert _renders(svc) == before  # rendered by the first display already
    english = [Display(app, {"lang": "en", "district": "410105", "kpi": "occupancy"}) for _ in range(5)]
    for d in english:
        d.refresh()
    assert _renders(svc) == before + 1  # a new view: one render for all five
    assert statements == []


def test_a_hand_made_config_gets_defaults_not_an_error(wall):
    app, _svc, _poller = wall
    for config in ({"lang": "xx", "district": "../../etc", "kpi": 5}, {"district": ["410105"]}, None, "junk"):
        status, raw, sent = Display(app, config).refresh()
        assert status == 200 and "ov-cards-body" in sent, raw[:300]


def test_before_the_first_poll_the_wall_keeps_waiting(store_url):
    app = create_app({"DATABASE_URL": store_url, "POLLER_ENABLED": False})
    try:
        status, _raw, sent = Display(app).refresh()
    finally:  # the first request read the reference data: close that connection
        app.server.extensions[EXTENSION].engine.dispose()
    assert status == 204 or sent == {}  # nothing to send: the panels keep saying "waiting"
