"""Crafted requests get a short 4xx, bounded work and logs without case data; a real
server fault still gets a 500, logged in one bounded line."""
from __future__ import annotations

import json
import logging
import time

import pytest

from dashboard import browse as B
from dashboard.scope import Scope
from dashboard.services import EXTENSION
from tests.dash_posts import CALLBACK, WEEK, body_for, component, find, grid_body, make_app, pattern_of
from tests.dash_posts import posted_app, seeded  # noqa: F401  (fixtures)

LOG_BOUND = 2000
MINE = "410105"


@pytest.fixture(scope="module")
def app(posted_app):  # noqa: F811
    return posted_app


@pytest.fixture
def client(app):
    return app.server.test_client()


def short_4xx(resp, status: int = 400) -> dict:
    raw = resp.get_data(as_text=True)
    assert resp.status_code == status, raw[:300]
    assert len(raw) < 300 and "Traceback" not in raw and 'File "' not in raw
    return json.loads(raw)


def case_values(client, app) -> set[str]:
    """Values of case fields the first block of the case list shows (ids, addresses, ...)."""
    resp = client.post(CALLBACK, json=grid_body(app, [{"startRow": 0, "endRow": 100}], search="?period=year"))
    assert resp.status_code == 200
    rows = next(iter(resp.json["response"].values()))["getRowsResponse"]["rowData"]
    assert rows
    values = set()
    for row in rows:
        values |= {v for k, v in row.items() if k in ("external_id", "address") and isinstance(v, str) and len(v) > 6}
    return values


def assert_bounded_logs(records, forbidden: set[str]):
    for r in records:
        text = r.getMessage() + (r.exc_text or "")
        assert len(text) <= LOG_BOUND, (r.name, len(text))
        assert r.exc_info is None, "a traceback would be written with the record"
        for v in forbidden:
            assert v not in text, (r.name, v)


# --- the case list's block of rows ----------------------------------------------------------
@pytest.mark.parametrize("req", [
    {"startRow": "abc", "endRow": 100}, {"startRow": [1], "endRow": 100}, {"startRow": 10 ** 20, "endRow": 10 ** 20 + 100},
    {"startRow": 0, "endRow": "100"}, {"startRow": 50, "endRow": 10}, {"startRow": -5, "endRow": 10},
    {"startRow": 0, "endRow": 5000},  # more rows than one request may ask for
    {"startRow": 0, "endRow": 100, "sortModel": "x"}, {"startRow": 0, "endRow": 100, "sortModel": [1]},
    {"startRow": 0, "endRow": 100, "sortModel": [{"colId": ["status"], "sort": "desc"}]},
    {"startRow": 0, "endRow": 100, "sortModel": [{"colId": "status", "sort": {"x": 1}}]},
    {"startRow": 0, "endRow": 100, "sortModel": [{"colId": "status"}] * 50},
    "rows please", [0, 100],
])
def test_a_crafted_block_request_gets_400(client, app, req):
    body = short_4xx(client.post(CALLBACK, json=grid_body(app, [req])))
    assert body["error"]


def test_a_good_block_request_still_gets_its_rows_sorted(client, app):
    resp = client.post(CALLBACK, json=grid_body(app, [{"startRow": 0, "endRow": 100,
                                                       "sortModel": [{"colId": "external_id", "sort": "asc"}]}],
                                          search="?period=year"))
    assert resp.status_code == 200
    got = next(iter(resp.json["response"].values()))["getRowsResponse"]
    ids = [r["external_id"] for r in got["rowData"]]
    assert got["rowCount"] > 100 and len(ids) == 100 and ids == sorted(ids)


def test_blocks_of_many_grids_are_bounded_together(client, app):
    """Ten grids of 200 rows each: 2,000 rows asked in one request."""
    short_4xx(client.post(CALLBACK, json=grid_body(app, [{"startRow": 0, "endRow": 200}] * 10)))


def test_one_answer_per_grid_or_400(client, app):
    """More grids asked than answers announced: Dash's own check would fail after the
    queries ran, with every row in its message."""
    body = grid_body(app, [{"startRow": 0, "endRow": 100}] * 3)
    body["outputs"][0] = body["outputs"][0][:1]
    short_4xx(client.post(CALLBACK, json=body))


# --- log flooding and work amplification ----------------------------------------------------
def test_a_250kb_repeated_grid_request_is_refused_quickly_and_logged_short(client, app, caplog):
    forbidden = case_values(client, app)
    body = grid_body(app, [{"startRow": 0, "endRow": 100}] * 2000)
    raw = json.dumps(body)
    assert len(raw) > 200_000
    caplog.set_level(logging.DEBUG)
    started = time.perf_counter()
    resp = client.post(CALLBACK, data=raw, content_type="application/json")
    elapsed = time.perf_counter() - started
    short_4xx(resp)
    assert elapsed < 1.0, elapsed
    assert_bounded_logs(caplog.records, forbidden)


def test_the_grids_of_one_request_are_capped_even_when_small(client, app):
    """A 50-grid body is small in bytes, still refused: one page shows one grid."""
    short_4xx(client.post(CALLBACK, json=grid_body(app, [None] * 49 + [{"startRow": 0, "endRow": 10}])))


def test_a_10mb_body_gets_413(client):
    resp = client.post(CALLBACK, data=b"[" + b"0," * (5 * 1024 * 1024) + b"0]", content_type="application/json")
    assert resp.status_code == 413
    assert b"Traceback" not in resp.data


def test_the_body_limit_is_a_setting(seeded):  # noqa: F811
    url, folder = seeded
    app = make_app(url, folder, MAX_REQUEST_BYTES=2000)
    try:
        client = app.server.test_client()
        body = grid_body(app, [{"startRow": 0, "endRow": 10}], search="?" + "a" * 3000)
        assert client.post(CALLBACK, json=body).status_code == 413
        assert client.post(CALLBACK, json=grid_body(app, [{"startRow": 0, "endRow": 10}])).status_code == 200
    finally:
        app.server.extensions[EXTENSION].engine.dispose()
        B.browse(app.server).engine.dispose()


def test_a_server_fault_is_a_500_logged_in_one_bounded_line_without_rows(client, app, caplog, monkeypatch):
    """A callback whose answer cannot be encoded: Dash's message quotes the whole answer
    (the rows); the log gets the callback, the class and the first line only."""
    forbidden = case_values(client, app)
    import layouts.browse as L

    real = L.case_cells
    monkeypatch.setattr(L, "case_cells", lambda *a, **k: {"cells": real(*a, **k), "oops": {1, 2}})
    caplog.set_level(logging.DEBUG)
    resp = client.post(CALLBACK, json=grid_body(app, [{"startRow": 0, "endRow": 100}], search="?period=year"))
    assert resp.status_code == 500
    assert b"Traceback" not in resp.data and len(resp.data) < 300
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "browse-case-grid" in message and "InvalidCallbackReturnValue" in message
    assert_bounded_logs(caplog.records, forbidden)


def test_the_wall_refresh_keeps_500_for_a_real_fault(client, app, caplog, monkeypatch):
    """Not every exception is the client's: a fault in the wall's live path stays a 500
    and is logged (bounded), it is not turned into a 400."""
    monkeypatch.setattr("callbacks.wall.rendered_view", lambda *a: (_ for _ in ()).throw(RuntimeError("render broke")))
    output, cb = find(app, "..wall-head.data")
    caplog.set_level(logging.DEBUG)
    resp = client.post(CALLBACK, json=body_for(output, cb, {("inputs", 0): 1,
                                                            ("state", 0): {"lang": "zh-CN", "kpi": "open_cases"}}))
    assert resp.status_code == 500
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "RuntimeError: render broke" in errors[0] and "wall.py" in errors[0]
    assert_bounded_logs(caplog.records, set())


# --- malformed callback posts ------------------------------------------------------------------
def _deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


@pytest.mark.parametrize("raw", [
    "[1,2]", '"x"', "{}", "null", "[" * 1000 + "]" * 1000, _deep(1000), _deep(1000)[:-1],
    '{"output": "browse-other-lang.href", "x": ' + _deep(200) + "}", "{not json",
])
def test_a_body_that_is_not_a_callback_post_gets_400(client, raw):
    short_4xx(client.post(CALLBACK, data=raw, content_type="application/json"))


def test_nesting_past_the_parser_limit_gets_400(client):
    short_4xx(client.post(CALLBACK, data="[" * 100_000 + "]" * 100_000, content_type="application/json"))


def test_an_unknown_or_clientside_output_gets_400(client, app):
    output, cb = find(app, "browse-other-lang.href")
    body = body_for(output, cb, {("inputs", 0): "?", ("state", 0): "cases"})
    assert client.post(CALLBACK, json=body).status_code == 200
    for name in ("nope.children", "..wall-clock.children...wall-date.children..", "_pages_dummy.children"):
        body["output"] = name
        assert short_4xx(client.post(CALLBACK, json=body))["error"] == "output: no such server callback"


@pytest.mark.parametrize("change", ["inputs-short", "inputs-dict", "state-extra", "wrong-id", "wrong-prop",
                                    "outputs", "changed", "search-type", "page-type"])
def test_a_post_of_the_wrong_shape_gets_400(client, app, change):
    output, cb = find(app, "browse-other-lang.href")
    body = body_for(output, cb, {("inputs", 0): "?", ("state", 0): "cases"})
    if change == "inputs-short":
        body["inputs"] = []
    elif change == "inputs-dict":
        body["inputs"] = {"a": 1}
    elif change == "state-extra":
        body["state"].append(body["state"][0])
    elif change == "wrong-id":
        body["inputs"][0]["id"] = "case-location"
    elif change == "wrong-prop":
        body["inputs"][0]["property"] = "pathname"
    elif change == "outputs":
        body["outputs"] = "browse-other-lang.href"
    elif change == "changed":
        body["changedPropIds"] = [{"a": 1}]
    elif change == "search-type":
        body["inputs"][0]["value"] = ["?lang=en"]
    elif change == "page-type":
        body["state"][0]["value"] = ["cases"]
    short_4xx(client.post(CALLBACK, json=body))


def test_a_nav_button_with_a_crafted_id_gets_400(client, app):
    output, cb = find(app, "..browse-location.search")
    i = next(i for i, s in enumerate(cb["inputs"]) if s["id"].startswith("{"))
    pattern = pattern_of(cb["inputs"][i]["id"])
    target = component(pattern, 5)  # its query is a number
    body = body_for(output, cb, {("inputs", 0): "?", ("inputs", i): [(target, 1)]})
    body["changedPropIds"] = ['{"to":5,"type":"browse-nav"}.n_clicks']
    short_4xx(client.post(CALLBACK, json=body))


# --- the weekly archive's week and scope ------------------------------------------------------------
def test_a_district_leader_comparing_week_dotdot_gets_400(client, app):
    app.server.extensions["command_center_scope"] = lambda: Scope(frozenset({MINE}), role="district_leader")
    try:
        output, cb = find(app, "snap-compare.children")
        for week in ("../../x", "2026-W47/../../..", "2026-W47\n", ["2026-W47"]):
            body = body_for(output, cb, {("inputs", 0): week, ("inputs", 1): WEEK, ("inputs", 2): MINE,
                                         ("inputs", 3): "?"})
            short_4xx(client.post(CALLBACK, json=body))
        ok = body_for(output, cb, {("inputs", 0): WEEK, ("inputs", 1): WEEK, ("inputs", 2): MINE, ("inputs", 3): "?"})
        assert client.post(CALLBACK, json=ok).status_code == 200
    finally:
        del app.server.extensions["command_center_scope"]


def test_an_admin_asking_the_table_of_scope_dotdot_gets_400(client, app):
    output, cb = find(app, "..snap-table.children")
    for scope in ("../../etc", "city/..", "x" * 40):
        body = body_for(output, cb, {("inputs", 0): 1, ("inputs", 1): scope, ("inputs", 2): "?"})
        short_4xx(client.post(CALLBACK, json=body))
    ok = body_for(output, cb, {("inputs", 0): 1, ("inputs", 1): "city", ("inputs", 2): "?"})
    resp = client.post(CALLBACK, json=ok)
    assert resp.status_code == 200 and WEEK in resp.get_data(as_text=True)


# --- the wall's rotation and other paths ---------------------------------------------------------
@pytest.mark.parametrize("rotate", ["99999999999999999999999", "9" * 5000, "86401", "1_000", "٣٠"])
def test_a_wall_with_an_absurd_rotate_shows_a_notice_not_an_error(client, app, rotate):
    """A bad wall parameter is a notice on the screen and no rotation (docs/deployment.md)."""
    assert client.get(f"/wall?rotate={rotate}").status_code == 200
    output, cb = find(app, ".._pages_content.children")
    resp = client.post(CALLBACK, json=body_for(output, cb, {("inputs", 0): "/wall", ("inputs", 1): f"?rotate={rotate}"}))
    assert resp.status_code == 200
    raw = resp.get_data(as_text=True)
    assert '"rotate":null' in raw.replace(" ", "") and "wall-notice" in raw


def test_a_wall_with_a_day_long_rotate_rotates(client, app):
    output, cb = find(app, ".._pages_content.children")
    resp = client.post(CALLBACK, json=body_for(output, cb, {("inputs", 0): "/wall", ("inputs", 1): "?rotate=86400"}))
    assert resp.status_code == 200 and '"rotate":86400' in resp.get_data(as_text=True).replace(" ", "")


@pytest.mark.parametrize("path", ["/_dash-component-suites/x/../../browse", "/_dash-component-suites/x/..%2F..%2Fbrowse",
                                  "/_dash-component-suites/dash/../../../etc/passwd",
                                  "/_dash-component-suites/dash/nope.js"])
def test_a_crafted_component_suite_path_gets_404(client, path):
    short_4xx(client.get(path), 404)


def test_a_match_pattern_takes_one_component():
    """The door's shape check knows MATCH (one entry) from ALL (a list), for callbacks to come."""
    from dashboard.guard import _dependency

    spec = {"id": '{"index":["MATCH"],"type":"row"}', "property": "n_clicks"}
    one = {"id": {"type": "row", "index": 3}, "property": "n_clicks", "value": 1}
    assert _dependency(spec, one, "inputs[0]") is None
    assert _dependency(spec, [one], "inputs[0]") is not None
    assert _dependency(spec, {**one, "value": "x"}, "inputs[0]") is not None
    assert _dependency(spec, {**one, "id": {"type": "other", "index": 3}}, "inputs[0]") is not None


def test_a_page_of_drill_buttons_passes_the_door(client, app):
    """A KPI table of many rows has a drill button each: hundreds of components in one
    pattern input are a real page, not an attack."""
    output, cb = find(app, "..browse-location.search")
    i = next(i for i, s in enumerate(cb["inputs"]) if s["id"].startswith("{"))
    pattern = pattern_of(cb["inputs"][i]["id"])
    buttons = [(component(pattern, f"?district=4101{n:02d}"), None) for n in range(300)]
    resp = client.post(CALLBACK, json=body_for(output, cb, {("inputs", 0): "?", ("inputs", i): buttons}))
    assert resp.status_code == 200, resp.data[:200]


def test_hundreds_of_changed_buttons_pass_the_door(client, app):
    """When a new table's buttons appear, the renderer names each of them as changed."""
    output, cb = find(app, "..browse-location.search")
    i = next(i for i, s in enumerate(cb["inputs"]) if s["id"].startswith("{"))
    pattern = pattern_of(cb["inputs"][i]["id"])
    buttons = [(component(pattern, f"?district=4101{n:02d}"), None) for n in range(300)]
    body = body_for(output, cb, {("inputs", 0): "?", ("inputs", i): buttons})
    body["changedPropIds"] = [json.dumps(b[0], sort_keys=True, separators=(",", ":")) + ".n_clicks" for b in buttons]
    resp = client.post(CALLBACK, json=body)
    assert resp.status_code in (200, 204), resp.data[:200]
