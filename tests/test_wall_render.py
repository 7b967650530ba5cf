"""The wall's rendering without a browser: URL parameters, every panel from a real
snapshot, freshness states, and the ticker's order."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from dashboard import settings as settings_mod
from dashboard import thresholds
from dashboard.kpis.sections import SECTIONS
from dashboard.reference import bundled
from datasource.engine import make_engine
from layouts.wall.panels import merge_ticker
from layouts.wall.render import OUTPUTS, PANELS, render
from layouts.wall.view import MAP_KPIS, PAGES, parse_view
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url
from tests.wall_helpers import props

TZ = ZoneInfo("Asia/Shanghai")
CODES = ["410102", "410103", "410104", "410105", "410108", "410171", "410172", "410190"]


@pytest.fixture(scope="module")
def sections(request, tmp_path_factory):
    """Every section of a snapshot of a small demo city, as the poller publishes them."""
    engine = make_engine(seeded_store_url("sqlite", request, tmp_path_factory.mktemp("wall"), profile=BACKLOG, seed=7,
                                          total_cases=4000, now=FIXED_NOW, occupancy_days=1))
    from dashboard.poller import to_json_data

    out = {name: {"status": "fresh", "since": None, "error": None,
                  "data": to_json_data(fn(engine, FIXED_NOW, TZ))}
           for name, fn in SECTIONS.items() if name != "open_cases"}
    engine.dispose()
    return out


def _view(**query):
    return parse_view(query, CODES, "zh-CN")


def _values(tree, attr="data-kpi") -> dict:
    return {p[attr]: p.get("data-value") for p in props(tree) if attr in p}


# --- URL parameters -------------------------------------------------------------------
def test_defaults_when_the_url_says_nothing():
    view, warnings = _view()
    assert (view.lang, view.district, view.kpi, view.rotate, view.page) == ("zh-CN", None, "open_cases", None, "overview")
    assert warnings == []


def test_every_bad_parameter_is_named_and_replaced_by_a_default():
    view, warnings = _view(lang="xx", district="999999", kpi="bogus", rotate="3", page="nope")
    assert (view.lang, view.district, view.kpi, view.rotate, view.page) == ("zh-CN", None, "open_cases", None, "overview")
    assert len(warnings) == 5
    for needle in ("xx", "999999", "bogus", "3", "nope"):
        assert any(needle in w for w in warnings), needle


def test_good_parameters_are_taken():
    view, warnings = _view(lang="en", district="410105", kpi="occupancy", rotate="30", page="parking")
    assert (view.lang, view.district, view.kpi, view.rotate, view.page) == ("en", "410105", "occupancy", 30, "parking")
    assert warnings == []
    view, warnings = _view(rotate="ten")
    assert view.rotate is None and "ten" in warnings[0]


def test_map_kpis_of_the_setting_and_the_url_agree():
    with pytest.raises(settings_mod.SettingsError):
        settings_mod.Settings.from_env({"WALL_MAP_KPI": "nope"})
    for kpi in MAP_KPIS:
        assert settings_mod.Settings.from_env({"WALL_MAP_KPI": kpi})["WALL_MAP_KPI"] == kpi


def test_reload_time_setting_is_checked():
    assert settings_mod.Settings.from_env({"WALL_RELOAD_AT": "4:05"})["WALL_RELOAD_AT"] == "04:05"
    assert settings_mod.Settings.from_env({"WALL_RELOAD_AT": ""})["WALL_RELOAD_AT"] == ""
    with pytest.raises(settings_mod.SettingsError, match="WALL_RELOAD_AT"):
        settings_mod.Settings.from_env({"WALL_RELOAD_AT": "25:00"})


# --- rendering ------------------------------------------------------------------------
def test_every_panel_is_rendered_on_every_page(sections):
    out = render(sections, bundled(), _view()[0], thresholds, TZ)
    assert set(out) == {f"{i}.{p}" for i, p in OUTPUTS}
    assert {p.page for p in PANELS} == set(PAGES)
    for panel in PANELS:
        body = out[f"{panel.id}-body.{'figure' if panel.kind == 'graph' else 'children'}"]
        if panel.kind == "graph":
            assert body["data"], panel.id  # a real chart, not the "no data" message
        else:
            assert body, panel.id
    json.dumps(out)  # plain JSON, ready for the cache


def test_cards_equal_the_snapshot_for_the_city_and_a_district(sections):
    cases, ent, park = (sections[n]["data"] for n in ("cases", "enterprise", "parking"))
    for district in (None, "410105"):
        query = {"district": district} if district else {}
        out = render(sections, bundled(), _view(**query)[0], thresholds, TZ)
        cards = _values(out["ov-cards-body.children"])
        pk = cases["periods_kpis"]
        if district is None:
            expect = {"open_cases": cases["open"]["total"], "overdue": cases["overdue"]["total"],
                      "reported_today": pk["today"]["city"]["reported"]["value"],
                      "closed_today": pk["today"]["city"]["closed"]["value"],
                      "closure_rate": pk["month"]["city"]["closure_rate"]["value"],
                      "on_time_closure_rate": pk["month"]["city"]["on_time_closure_rate"]["value"],
                      "visits": ent["periods"]["month"]["city"]["visits"]["value"],
                      "resolution_rate": ent["periods"]["month"]["city"]["resolution_rate"]["value"],
                      "occupancy": park["city"]["occupancy_now"]}
        else:
            expect = {"open_cases": cases["open"]["by_district"][district]["total"],
                      "overdue": cases["overdue"]["by_district"][district],
                      "reported_today": pk["today"]["by_district"][district]["reported"]["value"],
                      "closed_today": pk["today"]["by_district"][district]["closed"]["value"],
                      "closure_rate": pk["month"]["by_district"][district]["closure_rate"]["value"],
                      "on_time_closure_rate": pk["month"]["by_district"][district]["on_time_closure_rate"]["value"],
                      "visits": ent["periods"]["month"]["by_district"][district]["visits"]["value"],
                      "resolution_rate": ent["periods"]["month"]["by_district"][district]["resolution_rate"]["value"],
                      "occupancy": park["by_district"][district]["occupancy_now"]}
        assert cards.keys() == expect.keys()
        for key, value in expect.items():
            assert cards[key] == ("" if value is None else repr(float(value)) if isinstance(value, float)
                                  else str(value)), key


def test_district_wall_narrows_and_highlights(sections):
    out = render(sections, bundled(), _view(district="410105", lang="en")[0], thresholds, TZ)
    cases = sections["cases"]["data"]
    stage = out["ov-open-stage-body.figure"]["data"]
    total = sum(sum(t["x"]) for t in stage)
    assert total == cases["open"]["by_district"]["410105"]["total"]  # the district's own cases, by category
    ranks = out["ov-closure-rank-body.figure"]["data"][0]
    colours = dict(zip(ranks["customdata"], ranks["marker"]["color"]))
    assert len({c for code, c in colours.items() if code != "410105"}) == 1  # the others are dimmed
    assert "Jinshui" in json.dumps(out["ov-map-body.figure"])


def test_section_states_show_distinctly(sections):
    since = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.timezone.utc).isoformat()
    states = dict(sections)
    states["cases"] = {**sections["cases"], "status": "stale", "since": since, "error": "OperationalError"}
    states["enterprise"] = {"status": "error", "since": since, "error": "OperationalError", "data": None}
    states["parking"] = {"status": "empty", "since": None, "error": None, "data": None}
    del states["ticker"]
    out = render(states, bundled(), _view()[0], thresholds, TZ)

    def status(panel_id):
        return [p["data-status"] for p in props(out[f"{panel_id}-head.children"]) if "data-status" in p][0]

    assert status("ov-open-stage") == "stale"
    assert out["ov-open-stage-body.figure"]["data"]  # stale keeps the last numbers
    assert "11:00" in json.dumps(out["ov-open-stage-head.children"], ensure_ascii=False)  # since, local time
    assert status("en-visits") == "error"
    assert "异常" in json.dumps(out["en-visits-body.figure"], ensure_ascii=False)
    assert status("pk-curve") == "empty"
    assert "暂无数据" in json.dumps(out["pk-curve-body.figure"], ensure_ascii=False)
    assert status("ov-ticker") == "waiting"
    # the cards say it too: stale cases, no enterprise figures
    cards = {p["id"]: p["className"] for p in props(out["ov-cards-body.children"]) if str(p.get("id", "")).startswith("card-")}
    assert "status-stale" in cards["card-open_cases"]
    assert "status-error" in cards["card-visits"]


def test_true_zero_is_a_number_not_missing(sections):
    zero = json.loads(json.dumps(sections))
    zero["cases"]["data"]["open"]["total"] = 0
    out = render(zero, bundled(), _view()[0], thresholds, TZ)
    assert _values(out["ov-cards-body.children"])["open_cases"] == "0"


def test_a_failing_panel_shows_a_message_and_the_rest_render(sections, monkeypatch):
    def broken(*_a, **_k):
        raise KeyError("unexpected shape")

    import dataclasses

    from layouts.wall import render as render_mod

    monkeypatch.setattr(render_mod, "PANELS", [dataclasses.replace(p, build=broken) if p.id == "ov-trend" else p
                                               for p in PANELS])
    out = render(sections, bundled(), _view()[0], thresholds, TZ)
    assert out["ov-trend-body.figure"]["data"] == []
    assert "无法显示" in json.dumps(out["ov-trend-body.figure"], ensure_ascii=False)
    assert out["ov-open-stage-body.figure"]["data"]


def test_ticker_is_newest_first_and_shows_each_case_once():
    ticker = {"newest": [
        {"external_id": "A", "district": "410105", "reported_at": "2026-11-26T03:00:00+00:00", "deadline_at": None},
        {"external_id": "B", "district": "410102", "reported_at": "2026-11-26T02:00:00+00:00", "deadline_at": None},
    ], "newly_overdue": [
        {"external_id": "B", "district": "410102", "reported_at": "2026-11-25T02:00:00+00:00",
         "deadline_at": "2026-11-26T03:30:00+00:00"},
        {"external_id": "C", "district": "410105", "reported_at": "2026-11-20T02:00:00+00:00",
         "deadline_at": "2026-11-26T01:00:00+00:00"}]}
    items = merge_ticker(ticker, None)
    assert [(i["external_id"], i["kind"]) for i in items] == [("B", "overdue"), ("A", "new"), ("C", "overdue")]
    assert [i["external_id"] for i in merge_ticker(ticker, "410105")] == ["A", "C"]


def test_thresholds_judge_both_directions():
    assert thresholds.level("closure_rate", 0.97) == "good"
    assert thresholds.level("closure_rate", 0.92) == "watch"
    assert thresholds.level("closure_rate", 0.5) == "alert"
    assert thresholds.level("occupancy", 0.5) == "good"
    assert thresholds.level("occupancy", 0.99) == "alert"
    assert thresholds.level("closure_rate", None) is None
    assert thresholds.better("closure_rate", 0.01) is True
    assert thresholds.better("occupancy", 0.01) is False
    assert thresholds.better("closure_rate", 0) is None
