"""The wall's refresh callback over HTTP, as a display calls it: unchanged answers are a
small head, changes send only what changed, renders are shared, the store is never read."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import event, insert

from dashboard import create_app
from dashboard.metrics import COUNTERS
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from datasource import schema
from datasource.demo.seed import seed
from layouts.wall.render import OUTPUTS


class Display:
    """One wall display: keeps what it shows, like the browser's stores do."""

    def __init__(self, app, config=None):
        self.client = app.server.test_client()
        self.key = next(k for k in app.callback_map if "wall-head.data" in k)
        self.outputs = [{"id": "wall-head", "property": "data"}, {"id": "wall-shown", "property": "data"}] + \
            [{"id": i, "property": p} for i, p in OUTPUTS]
        self.config = config if config is not None else {"lang": "zh-CN", "district": None, "kpi": "open_cases"}
        self.shown = None
        self.n = 0

    def refresh(self):
        self.n += 1
        body = {"output": self.key, "outputs": self.outputs,
                "inputs": [{"id": "wall-refresh", "property": "n_intervals", "value": self.n}],
                "state": [{"id": "wall-config", "property": "data", "value": self.config},
                          {"id": "wall-shown", "property": "data", "value": self.shown}],
                "changedPropIds": ["wall-refresh.n_intervals"]}
        resp = self.client.post("/_dash-update-component", json=body)
        assert resp.status_code in (200, 204), resp.data[:500]
        if resp.status_code == 200:
            shown = resp.get_json()["response"].get("wall-shown")
            if shown:
                self.shown = shown["data"]
        return resp


@pytest.fixture
def wall(store_url):
    """An app without its own poller, and a poller the test runs by hand."""
    app = create_app({"DATABASE_URL": store_url, "POLLER_ENABLED": False})
    svc = app.server.extensions[EXTENSION]
    seed(svc.engine, seed=5, total_cases=3000, occupancy_days=1)
    poller = Poller(svc.settings, engine=svc.engine, cache=svc.cache)
    poller.poll_once()
    yield app, svc, poller
    svc.engine.dispose()


def _renders(svc) -> float:
    return float(svc.cache.fields(COUNTERS).get("renders", 0))


def test_unchanged_refresh_is_a_small_head_only(wall):
    app, svc, _poller = wall
    d = Display(app)
    first = d.refresh()
    sent = first.get_json()["response"]
    assert {f"{i}" for i, _p in OUTPUTS} <= set(sent)  # everything on the first tick
    again = d.refresh()
    assert set(again.get_json()["response"]) == {"wall-head"}
    assert len(again.data) < 1024, len(again.data)
    head = again.get_json()["response"]["wall-head"]["data"]
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
    sent = d.refresh().get_json()["response"]
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
        d = Display(app, config)
        sent = d.refresh().get_json()["response"]
        assert "ov-cards-body" in sent


def test_before_the_first_poll_the_wall_keeps_waiting(store_url):
    app = create_app({"DATABASE_URL": store_url, "POLLER_ENABLED": False})
    resp = Display(app).refresh()
    assert resp.status_code == 204 or resp.get_json()["response"] == {}, resp.data  # the panels keep saying "waiting"
