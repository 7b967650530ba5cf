"""Every section a real poll produces matches dashboard/contract.py, and the checker
itself catches what it is for: a missing field, an unknown one, a wrong type."""
from __future__ import annotations

import copy

import pytest

from dashboard import contract
from dashboard.cache import Cache, MemoryStore
from dashboard.kpis.sections import make_sections
from dashboard.poller import Poller
from dashboard.settings import Settings
from datasource.demo.seed import seed
from tests.conftest import BACKLOG, FIXED_NOW


@pytest.fixture
def polled(engine, tmp_path):
    seed(engine, profile=BACKLOG, seed=31, now=FIXED_NOW, total_cases=1500, occupancy_days=1)
    settings = Settings.from_env({"LOCAL_CACHE_DIR": str(tmp_path / "cache")})
    poller = Poller(settings, engine=engine, cache=Cache(MemoryStore()))
    snap = poller.poll_once()
    return {name: s.to_dict() for name, s in snap.sections.items()}


def test_every_section_of_a_real_poll_matches_the_contract(polled):
    assert set(polled) == set(contract.SECTIONS) == set(make_sections())
    for name, section in polled.items():
        assert section["status"] == "fresh", (name, section.get("error"))
        assert contract.problems(name, section["data"]) == [], name


@pytest.fixture(scope="module")
def sample():
    return {"districts": ["410102"], "stale_after_minutes": 90,
            "city": _figures(), "by_district": {"410102": _figures()}}


def _figures() -> dict:
    ints = ["facilities", "capacity", "demo_sites", "on_street_facilities", "off_street_facilities",
            "shared_facilities", "non_motor_facilities", "on_street_capacity", "off_street_capacity",
            "shared_capacity", "non_motor_capacity", "non_motor_points", "reporting_facilities",
            "stale_facilities", "out_of_range_readings", "out_of_range_today", "occupied_now",
            "reporting_capacity"]
    return {**{k: 1 for k in ints}, "occupancy_now": None,
            "programme_this_year": {"added": 1, "revitalised": 2, "shared": 3},
            "today_curve": [{"hour": 0, "occupancy": 0.5}, {"hour": 1, "occupancy": None}]}


def test_the_checker_accepts_a_conforming_section(sample):
    assert contract.problems("parking", sample) == []


def test_the_checker_names_what_is_wrong(sample):
    broken = copy.deepcopy(sample)
    del broken["city"]["capacity"]
    broken["city"]["capacty"] = 5
    broken["by_district"]["410102"]["occupancy_now"] = "85%"
    broken["by_district"]["410102"]["today_curve"][1]["hour"] = True
    found = contract.problems("parking", broken)
    assert "parking.city.capacity: missing" in found
    assert "parking.city.capacty: not in the definition" in found
    assert any(p.startswith("parking.by_district[410102].occupancy_now: str '85%'") for p in found)
    assert any(p.startswith("parking.by_district[410102].today_curve[1].hour: bool") for p in found)
    figure = {"value": None, "prev": 0.5, "delta": None, "not_recorded": True}
    assert contract.problems("cases", {"periods_kpis": {"today": {"city": {"closure_rate": figure}}}})[:1] == \
        ["cases.districts: missing"]  # (the figure itself conforms: only the section's other keys are missing)
    assert "cases.periods_kpis[today].city[closure_rate].not_recorded: False is not one of (True,)" in \
        contract.problems("cases", {"periods_kpis": {"today": {"city": {"closure_rate": {**figure, "not_recorded": False}},
                                                                "by_district": {}}}}, limit=99)
    assert contract.problems("weather", {}) == ["weather: no definition in dashboard/contract.py"]


@pytest.mark.parametrize("query", [{}, {"lang": "en", "district": "410105"}, {"kpi": "occupancy"}])
def test_every_wall_panel_renders_a_real_poll_without_falling_back(polled, query, caplog):
    """The wall keeps a panel that throws behind a message (a wall must not go dark); a
    test must see it: no panel of a conforming snapshot may take that path."""
    from dashboard import thresholds
    from dashboard.reference import bundled
    from layouts.wall.render import OUTPUTS, render
    from layouts.wall.view import parse_view

    ref = bundled()
    view, warnings = parse_view(query, [d.code for d in ref.districts], "zh-CN")
    assert not warnings
    caplog.set_level("ERROR", logger="layouts.wall.render")
    out = render(polled, ref, view, thresholds, Settings.from_env({}).tz)
    assert set(out) == {f"{i}.{p}" for i, p in OUTPUTS}
    assert [r.getMessage() for r in caplog.records if "failed to render" in r.getMessage()] == []
