"""A district-scoped wall (a district leader, a district's display token) shows that
district only: no other district's code, name or figure reaches the browser, in any
panel. The city appears only where a panel is titled as the city's reference."""
from __future__ import annotations

import json
import re

import pytest

from tests.wall_helpers import WallDisplay
from dashboard import create_app
from dashboard.accounts import hash_password, new_display_token
from dashboard.poller import Poller
from dashboard.reference import bundled
from dashboard.scope import restrict_sections
from dashboard.services import EXTENSION
from datasource import users
from layouts.i18n import t
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url

PASSWORD = "correct horse battery"
OWN = "410105"


@pytest.fixture
def city(backend, request, tmp_path):
    store_url = seeded_store_url(backend, request, tmp_path, profile=BACKLOG, seed=9, total_cases=2000, now=FIXED_NOW,
                                 occupancy_days=1)
    app = create_app({"DATABASE_URL": store_url, "AUTH_ENABLED": True, "SECRET_KEY": "test-secret-" + "x" * 20,
                      "POLLER_ENABLED": False, "AUTH_CACHE_SECONDS": 0, "DASHBOARD_ENV": "demo"})
    svc = app.server.extensions[EXTENSION]
    users.create_user(svc.engine, "jinshui", hash_password(PASSWORD), "district_leader", OWN)
    users.create_user(svc.engine, "leader", hash_password(PASSWORD), "city_leader", None)
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()
    yield app, svc
    svc.engine.dispose()


def _client(app, username=None):
    client = app.server.test_client()
    if username:
        page = client.get("/login").data.decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": csrf, "next": "/"}).status_code == 302
    return client


def _display(client, config):
    def post(body):
        resp = client.post("/_dash-update-component", json=body)
        return resp.status_code, resp.data
    return WallDisplay(post, config)


def _others(svc):
    """Every way another district can be named: codes and names in both languages."""
    out = set()
    for d in svc.reference.get().districts:
        if d.code != OWN:
            out |= {d.code, d.name_zh, d.short_zh, d.name_en}
    return out


def _leaks(raw: str, others: set[str]) -> list[str]:
    return sorted(o for o in others if o and o in raw)


def test_restricted_sections_hold_no_other_district(city):
    _app, svc = city
    snap = svc.cache.get()
    sections = {name: s.to_dict() for name, s in snap.sections.items()}
    codes = [d.code for d in svc.reference.get().districts]
    narrowed = json.dumps(restrict_sections(sections, frozenset({OWN}), codes), ensure_ascii=False)
    others = {c for c in codes if c != OWN}
    assert [o for o in others if f'"{o}"' in narrowed] == []
    whole = json.dumps(sections, ensure_ascii=False)
    assert all(f'"{o}"' in whole for o in others)  # the check can see a code when it is there
    cases = json.loads(narrowed)["cases"]["data"]
    assert cases["open"]["by_district"] == {OWN: sections["cases"]["data"]["open"]["by_district"][OWN]}
    assert cases["open"]["total"] == sections["cases"]["data"]["open"]["total"]  # the city reference stays
    ent = json.loads(narrowed)["enterprise"]["data"]
    assert ent["exclusive_grids"] and {g["district"] for g in ent["exclusive_grids"]} == {OWN}
    own_grids = {str(g["grid_id"]) for g in ent["exclusive_grids"]}
    assert set(ent["periods"]["month"]["by_exclusive_grid"]) <= own_grids


@pytest.mark.parametrize("who", ["district_leader", "display_token"])
def test_a_district_scoped_wall_sends_nothing_of_other_districts(city, who):
    app, svc = city
    if who == "district_leader":
        client = _client(app, "jinshui")
    else:
        _id, token = new_display_token(svc.engine, "district hall", OWN)
        client = _client(app)
        assert client.get(f"/wall?token={token}").status_code == 200
    others = _others(svc)
    cases = svc.cache.get().sections["cases"].data
    for config in ({"lang": "zh-CN", "district": None, "kpi": "open_cases"},
                   {"lang": "en", "district": "410102", "kpi": "closure_rate"},
                   {"lang": "zh-CN", "district": OWN, "kpi": "occupancy"}):
        status, raw, sent = _display(client, config).refresh()
        assert status == 200
        text = raw.decode()
        assert _leaks(text, others) == [], config
        assert t("render_failed", config["lang"]) not in text  # every panel still draws
        ranks = sent["ov-closure-rank-body"]["figure"]["data"][0]
        assert ranks["customdata"] == [OWN]
        map_names = [tr.get("name") for tr in sent["ov-map-body"]["figure"]["data"] if tr.get("name")]
        assert map_names and all(OWN in str(n) or n in {d.name(config["lang"]) for d in
                                                        svc.reference.get().districts if d.code == OWN}
                                 for n in map_names), map_names
        stage_total = sum(sum(tr["x"]) for tr in sent["ov-open-stage-body"]["figure"]["data"])
        assert stage_total == cases["open"]["by_district"][OWN]["total"]
        # the city's problem types are shown, and titled as the city's
        assert t("city", config["lang"]).lower() in json.dumps(sent["en-types-head"], ensure_ascii=False).lower()


def test_a_city_leader_still_compares_districts_on_a_district_wall(city):
    app, svc = city
    client = _client(app, "leader")
    status, raw, sent = _display(client, {"lang": "zh-CN", "district": OWN, "kpi": "open_cases"}).refresh()
    assert status == 200
    ranks = sent["ov-closure-rank-body"]["figure"]["data"][0]
    assert set(ranks["customdata"]) == {d.code for d in svc.reference.get().districts
                                        if d.code in svc.cache.get().sections["cases"].data["districts"]}
    assert len(ranks["customdata"]) > 1


def test_the_scoped_reference_keeps_only_the_scope_and_changes_the_render_key():
    ref = bundled()
    only = ref.only({OWN})
    assert [d.code for d in only.districts] == [OWN]
    assert only.version != ref.version and only.categories == ref.categories
