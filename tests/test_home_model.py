"""The arithmetic of `/` (dashboard/home.py) on a real snapshot: the city's, one
district's and several districts' figures, their comparisons and levels; a district
scope sees nothing of another district; a figure that is not recorded stays None (no
level, never 0); and the page's drawing of it (layouts/home.py) in both languages."""
from __future__ import annotations

import copy
import json
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from dashboard import thresholds
from dashboard.home import RATE_PERIOD, morning
from dashboard.kpis.sections import make_sections
from dashboard.poller import to_json_data
from dashboard.reference import ReferenceSource
from dashboard.scope import EVERYTHING, Scope
from datasource import schema
from datasource.demo.seed import seed
from datasource.engine import make_engine
from layouts.home import morning_body
from tests import kpi_oracle as oracle
from tests.conftest import BACKLOG, FIXED_NOW, new_store_url
from tests.lang_helpers import foreign

TZ = ZoneInfo("Asia/Shanghai")
JINSHUI, PAIR = "410105", ("410102", "410105")


@pytest.fixture(scope="module")
def polled(request, tmp_path_factory):
    """(engine, sections as the snapshot holds them, reference) at FIXED_NOW."""
    engine = make_engine(new_store_url("sqlite", request, tmp_path_factory.mktemp("home")))
    seed(engine, profile=BACKLOG, seed=17, now=FIXED_NOW, total_cases=2000, occupancy_days=1)
    sections = {name: {"status": "fresh", "since": None, "error": None, "data": to_json_data(fn(engine, FIXED_NOW, TZ))}
                for name, fn in make_sections().items()}
    yield engine, sections, ReferenceSource(engine).get()
    engine.dispose()


def _cards(model) -> dict:
    return {c["key"]: c for c in model["cards"]}


def test_the_city_reads_the_city_figures_with_their_comparisons(polled):
    _engine, sections, ref = polled
    model = morning(sections, ref, EVERYTHING)
    cards = _cards(model)
    cases, start = sections["cases"]["data"], sections["day_start"]["data"]
    assert model["scope"] == {"kind": "city", "code": None}
    assert cards["open_cases"]["value"] == cases["open"]["total"]
    assert cards["open_cases"]["delta"] == cases["open"]["total"] - start["open"]
    assert cards["overdue"]["value"] == cases["overdue"]["total"]
    assert cards["overdue"]["delta"] == cases["overdue"]["total"] - start["overdue"]
    assert cards["overdue"]["level"] == thresholds.level("overdue_share", cases["overdue"]["total"] / cases["open"]["total"])
    today, week = cases["periods_kpis"]["today"]["city"], cases["periods_kpis"][RATE_PERIOD]["city"]
    assert (cards["reported_today"]["value"], cards["reported_today"]["delta"]) == \
        (today["reported"]["value"], today["reported"]["delta"])
    assert cards["closure_rate"]["value"] == week["closure_rate"]["value"]
    assert cards["closure_rate"]["level"] == thresholds.level("closure_rate", week["closure_rate"]["value"])
    ent = sections["enterprise"]["data"]["periods"][RATE_PERIOD]["city"]
    assert cards["visits"]["value"] == ent["visits"]["value"] and cards["visits"]["delta"] == ent["visits"]["delta"]
    park = sections["parking"]["data"]["city"]
    assert cards["occupancy"]["value"] == park["occupancy_now"]
    assert cards["occupancy"]["delta"] == pytest.approx(park["occupancy_now"] - park["today_curve"][-2]["occupancy"])
    # the district table: every district, the ones that moved most first, and the city's total
    moves = model["moves"]
    assert sorted(r["code"] for r in moves) == sorted(d.code for d in ref.districts)
    keys = [(abs(r["overdue_delta"]), abs(r["open_delta"])) for r in moves]
    assert keys == sorted(keys, reverse=True)
    assert model["moves_total"]["open"] == cases["open"]["total"]
    assert sum(r["open_delta"] for r in moves) == cards["open_cases"]["delta"]
    # links carry the filters of what they stand for
    assert cards["overdue"]["link"] == {"path": "/browse", "query": {"period": "today", "list": "overdue"}}


def test_a_district_leader_sees_their_district_only(polled):
    _engine, sections, ref = polled
    scope = Scope(frozenset({JINSHUI}), "district_leader", "jinshui")
    model = morning(sections, ref, scope)
    cards = _cards(model)
    cases = sections["cases"]["data"]
    assert model["scope"] == {"kind": "district", "code": JINSHUI}
    assert cards["open_cases"]["value"] == cases["open"]["by_district"][JINSHUI]["total"]
    assert cards["overdue"]["value"] == cases["overdue"]["by_district"][JINSHUI]
    start = sections["day_start"]["data"]["by_district"][JINSHUI]
    assert cards["overdue"]["delta"] == cases["overdue"]["by_district"][JINSHUI] - start["overdue"]
    week = cases["periods_kpis"][RATE_PERIOD]["by_district"][JINSHUI]
    assert cards["on_time_closure_rate"]["value"] == week["on_time_closure_rate"]["value"]
    assert cards["open_cases"]["link"]["query"] == {"period": "today", "list": "open", "district": JINSHUI}
    assert [r["code"] for r in model["moves"]] == [JINSHUI]
    assert all(r["district"] == JINSHUI for r in model["newly_overdue"])
    # no other district's code anywhere in what the page is given
    text = json.dumps(model)
    for d in ref.districts:
        if d.code != JINSHUI:
            assert d.code not in text, d.code


def test_several_districts_are_summed_and_their_rates_recomputed(polled):
    engine, sections, ref = polled
    model = morning(sections, ref, Scope(frozenset(PAIR), "district_leader"))
    cards = _cards(model)
    cases = sections["cases"]["data"]
    assert model["scope"] == {"kind": "several", "code": None}
    assert cards["open_cases"]["value"] == sum(cases["open"]["by_district"][d]["total"] for d in PAIR)
    # the week's closure rate of the two, straight from the raw rows (cohort: filed this week)
    raw = oracle.frame(engine, schema.Case)
    start = pd.Timestamp(oracle.local_bounds(FIXED_NOW, TZ, RATE_PERIOD)[0])
    cohort = raw[(raw.filed_at >= start) & (raw.filed_at < pd.Timestamp(FIXED_NOW)) & ~raw.voided.astype(bool)
                 & raw.district_code.isin(PAIR)]
    assert len(cohort) > 0
    assert cards["closure_rate"]["value"] == pytest.approx(cohort.closed_at.notna().sum() / len(cohort))
    on_time = (cohort.closed_at.notna() & (cohort.closed_at <= cohort.deadline_at)).sum()
    assert cards["on_time_closure_rate"]["value"] == pytest.approx(on_time / len(cohort))
    park = sections["parking"]["data"]["by_district"]
    occupied = sum(park[d]["occupied_now"] for d in PAIR)
    assert cards["occupancy"]["value"] == pytest.approx(occupied / sum(park[d]["reporting_capacity"] for d in PAIR))
    assert cards["occupancy"]["delta"] is None  # no summed curve: no comparison rather than a wrong one
    assert sorted(r["code"] for r in model["moves"]) == sorted(PAIR)


def test_a_rate_not_recorded_stays_none_with_no_level(polled):
    _engine, sections, ref = polled
    broken = copy.deepcopy(sections)
    ent = broken["enterprise"]["data"]["periods"][RATE_PERIOD]
    ent["city"]["resolution_rate"] = {"value": None, "prev": 0.5, "delta": None}
    ent["by_district"]["410102"]["resolution_rate"] = {"value": None, "prev": None, "delta": None}
    ent["by_district"]["410102"]["problems_raised"] = {"value": 3, "prev": 0, "delta": 3}
    broken["parking"]["data"]["city"]["occupancy_now"] = None
    for scope in (EVERYTHING, Scope(frozenset(PAIR), "district_leader")):
        cards = _cards(morning(broken, ref, scope))
        assert cards["resolution_rate"]["value"] is None, scope
        assert cards["resolution_rate"]["level"] is None and cards["resolution_rate"]["delta"] is None
    city = _cards(morning(broken, ref, EVERYTHING))
    assert city["occupancy"]["value"] is None and city["occupancy"]["level"] is None
    body = morning_body(morning(broken, ref, EVERYTHING), ref, "zh-CN", "zh-CN", TZ)
    for key in ("resolution_rate", "occupancy"):
        card = _find(body, f"home-card-{key}")
        value = _find_prop(card, "data-kpi", key)
        assert value.children == "—" and value.title == "未记录"
        assert _find_prop(card, "data-level", None) is None
    # a recorded rate keeps its level beside them
    level = thresholds.level("closure_rate", sections["cases"]["data"]["periods_kpis"][RATE_PERIOD]["city"]
                             ["closure_rate"]["value"])
    assert level is not None
    assert _find_prop(_find(body, "home-card-closure_rate"), "data-level", level) is not None


def test_without_the_stock_at_midnight_there_is_no_comparison(polled):
    _engine, sections, ref = polled
    missing = {k: v for k, v in sections.items() if k != "day_start"}
    model = morning(missing, ref, EVERYTHING)
    cards = _cards(model)
    assert cards["open_cases"]["value"] == sections["cases"]["data"]["open"]["total"]
    assert cards["open_cases"]["delta"] is None and cards["overdue"]["delta"] is None
    assert cards["open_cases"]["status"] == "waiting"
    assert model["categories"] == [] and all(r["open_delta"] is None for r in model["moves"])
    text = _text(morning_body(model, ref, "zh-CN", "zh-CN", TZ))
    assert "今日0时的数据暂缺" in text


def test_category_movers_are_the_open_cases_moved_since_midnight(polled):
    _engine, sections, ref = polled
    cases, start = sections["cases"]["data"], sections["day_start"]["data"]
    model = morning(sections, ref, EVERYTHING)
    for row in model["categories"]:
        assert row["open"] == cases["open"]["by_category"].get(row["code"], 0)
        assert row["delta"] == row["open"] - start["by_category"].get(row["code"], 0) != 0
    deltas = [abs(r["delta"]) for r in model["categories"]]
    assert deltas == sorted(deltas, reverse=True)
    every = {c for c in set(cases["open"]["by_category"]) | set(start["by_category"])
             if cases["open"]["by_category"].get(c, 0) != start["by_category"].get(c, 0)}
    assert len(model["categories"]) == min(5, len(every))


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_drawing_is_in_one_language(polled, lang):
    _engine, sections, ref = polled
    for scope in (EVERYTHING, Scope(frozenset({JINSHUI}), "district_leader"), Scope(frozenset(PAIR), "x")):
        body = morning_body(morning(sections, ref, scope), ref, lang, "zh-CN", TZ)
        # data of the city's (case numbers, addresses) aside, every word is in the page's language
        text = _text(body, skip={"case-no", "addr"})
        assert foreign(text, lang) == [], (scope, foreign(text, lang))
        if not scope.city_wide:
            assert ("全市" if lang == "zh-CN" else "City") not in text


# --- walking a Dash component tree ---------------------------------------------------------
def _walk(node):
    yield node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            yield from _walk(child)


def _find(node, component_id):
    return next(n for n in _walk(node) if getattr(n, "id", None) == component_id)


def _find_prop(node, prop, value):
    for n in _walk(node):
        attrs = n.to_plotly_json()["props"] if hasattr(n, "to_plotly_json") else {}
        if prop in attrs and (value is None or attrs[prop] == value):
            return n
    return None


def _text(node, skip: set[str] = frozenset()) -> str:
    if isinstance(node, (str, int, float)):
        return str(node)
    if node is None or set((getattr(node, "className", None) or "").split()) & skip:
        return ""
    children = getattr(node, "children", None)
    parts = [_text(c, skip) for c in (children if isinstance(children, list) else [children])]
    title = getattr(node, "title", None)
    return " ".join(p for p in parts + ([title] if isinstance(title, str) else []) if p)



def test_a_scope_without_a_district_sees_no_figures(polled):
    """Not zeros: a leader whose account lost its district is told so."""
    _engine, sections, ref = polled
    for scope in (Scope(frozenset(), "district_leader"), Scope(frozenset({"999999"}), "district_leader")):
        model = morning(sections, ref, scope)
        assert model == {"scope": {"kind": "none", "code": None}, "districts": []}
        body = morning_body(model, ref, "zh-CN", "zh-CN", TZ)
        assert "未关联任何区域" in _text(body)
        assert _find_prop(body, "data-kpi", None) is None


def test_figures_marked_not_recorded_are_none_whatever_they_hold(polled):
    """A section may mark a figure not recorded (the city keeps no deadlines, say) and
    still hold zeros: the page shows "—", no level and no change, never those zeros."""
    _engine, sections, ref = polled
    marked = copy.deepcopy(sections)
    cases = marked["cases"]["data"]
    cases["overdue"]["not_recorded"] = True
    week = cases["periods_kpis"][RATE_PERIOD]
    for block in [week["city"], *week["by_district"].values()]:
        block["on_time_closure_rate"] = {"value": 0, "prev": 0, "delta": 0, "not_recorded": True,
                                         "prev_not_recorded": True}
    for scope in (EVERYTHING, Scope(frozenset({JINSHUI}), "district_leader"), Scope(frozenset(PAIR), "x")):
        model = morning(marked, ref, scope)
        cards = _cards(model)
        for key in ("overdue", "on_time_closure_rate"):
            assert (cards[key]["value"], cards[key]["delta"], cards[key]["level"]) == (None, None, None), (scope, key)
        assert cards["open_cases"]["value"] is not None
        assert all(r["overdue"] is None and r["overdue_delta"] is None for r in model["moves"])
        assert model["newly_overdue_total"] is None
