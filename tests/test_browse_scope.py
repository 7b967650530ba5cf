"""A district leader (scope: 金水区 410105) crafts requests for another district (中原区
410102): hand-made `_dash-update-component` posts to every browsing callback, and the
export route. Nothing of 410102 comes back."""
import csv
import io
import json
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from dashboard import browse as B
from dashboard import create_app
from dashboard.scope import Scope
from datasource.engine import make_engine
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url

MINE, OTHER = "410105", "410102"
GRID_ALL = '{"key":["ALL"],"type":"browse-case-grid"}'


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    url = seeded_store_url("sqlite", request, tmp_path_factory.mktemp("scope"),
                           profile=BACKLOG, seed=11, total_cases=3000, now=FIXED_NOW, occupancy_days=1)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture
def leader(store):
    """An app whose every request is a 410105 district leader's."""
    url, engine = store
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False})
    app.server.extensions["command_center_scope"] = lambda: Scope(frozenset({MINE}), role="district_leader")
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    yield app, engine
    B.browse(app.server).engine.dispose()


def one(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).first()


def ids_of_other(engine):
    """A street, an ordinary grid, an exclusive grid, a facility and a case of 410102."""
    return {
        "street": one(engine, "SELECT id FROM streets WHERE district_code = :d", d=OTHER)[0],
        "grid": one(engine, "SELECT id FROM grids WHERE district_code = :d AND kind = 'ordinary' AND level = 2",
                    d=OTHER)[0],
        "egrid": one(engine, "SELECT id FROM grids WHERE district_code = :d AND kind = 'exclusive'", d=OTHER)[0],
        "facility": one(engine, "SELECT id FROM parking_facilities WHERE district_code = :d", d=OTHER)[0],
        "case": one(engine, "SELECT id, external_id FROM cases WHERE district_code = :d", d=OTHER),
    }


def deps(client):
    return {d["output"]: d for d in client.get("/_dash-dependencies").json}


def post(client, output_prefix: str, values: dict, changed: list[str] | None = None):
    """Post a callback as dash-renderer does: `values` maps "id.property" to a value (a list
    of {"id", "property", "value"} for a pattern-matching ALL input)."""
    dep = next(d for o, d in deps(client).items() if o.startswith(output_prefix))
    outputs = []
    for part in dep["output"].split("@")[0].strip(".").split("..."):
        cid, prop = part.rsplit(".", 1)
        outputs.append({"id": json.loads(cid) if cid.startswith("{") else cid, "property": prop})
        if cid.startswith("{"):
            outputs[-1] = []  # ALL outputs: one per matching component (filled below)

    def entry(spec):
        key = f"{spec['id']}.{spec['property']}"
        if spec["id"].startswith("{"):
            return values.get(key, [])
        return {"id": spec["id"], "property": spec["property"], "value": values.get(key)}

    body = {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [entry(s) for s in dep["inputs"]], "state": [entry(s) for s in dep["state"]],
            "changedPropIds": changed or [f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}"]}
    for i, o in enumerate(outputs):
        if o == []:  # the grid ALL output mirrors the grid ALL input
            body["outputs"][i] = [{"id": x["id"], "property": "getRowsResponse"}
                                  for x in values.get(f"{GRID_ALL}.getRowsRequest", [])]
    resp = client.post("/_dash-update-component", json=body)
    assert resp.status_code in (200, 204), resp.data[:500]
    return resp.get_data(as_text=True)


def case_ids_in(raw: str) -> set[str]:
    return set(re.findall(r"ZZ(\d{6})-", raw))


def test_navigate_gives_only_the_scope(leader):
    app, engine = leader
    other = ids_of_other(engine)
    client = app.server.test_client()
    for search in (f"?district={OTHER}", f"?street={other['street']}", f"?grid={other['grid']}",
                   f"?egrid={other['egrid']}", f"?facility={other['facility']}"):
        raw = post(client, "..browse-location.search", {"browse-location.search": search})
        resp = json.loads(raw)["response"]
        assert resp["browse-district"]["value"] == MINE, search
        assert [o["value"] for o in resp["browse-district"]["options"]] == [MINE]
        assert resp["browse-street"]["value"] is None and resp["browse-grid"]["value"] is None
        assert resp["browse-facility"]["value"] is None and resp["browse-egrid"]["value"] is None
        for name in ("browse-street", "browse-egrid", "browse-facility"):
            assert other["street"] not in [o["value"] for o in resp[name]["options"]] or name != "browse-street"
        assert resp["browse-notices"]["children"], search  # said so in the page
    # the options lists hold nothing of the other district
    raw = post(client, "..browse-location.search", {"browse-location.search": f"?district={OTHER}"})
    resp = json.loads(raw)["response"]
    egrids = {o["value"] for o in resp["browse-egrid"]["options"]}
    facilities = {o["value"] for o in resp["browse-facility"]["options"]}
    with engine.connect() as conn:
        assert egrids <= {r[0] for r in conn.execute(text(
            "SELECT id FROM grids WHERE kind = 'exclusive' AND district_code = :d"), {"d": MINE})}
        assert facilities <= {r[0] for r in conn.execute(text(
            "SELECT id FROM parking_facilities WHERE district_code = :d"), {"d": MINE})}
    assert other["egrid"] not in egrids and other["facility"] not in facilities


@pytest.mark.parametrize("page", ["cases", "enterprise", "parking"])
def test_render_never_shows_the_other_district(leader, page):
    app, engine = leader
    other = ids_of_other(engine)
    client = app.server.test_client()
    for search in (f"?district={OTHER}&period=year", f"?street={other['street']}&period=year",
                   f"?grid={other['grid']}&period=year", f"?egrid={other['egrid']}&period=year",
                   f"?facility={other['facility']}&period=year"):
        raw = post(client, "..browse-summary.children", {"browse-location.search": search,
                                                         "browse-page.data": page})
        assert OTHER not in raw, (page, search)
        resp = json.loads(raw)["response"]
        keys = re.findall(r'"data-key": "([^"]*)"', json.dumps(resp))
        if page == "cases":
            with engine.connect() as conn:  # a one-district leader lands on its district's streets
                streets = {str(r[0]) for r in conn.execute(text(
                    "SELECT id FROM streets WHERE district_code = :d"), {"d": MINE})}
            assert "total" in keys and set(keys) - {"total", ""} <= streets and len(keys) > 2
            total = re.search(r'"data-total":\s*"(\d+)"', raw)
            n = one(engine, "SELECT COUNT(*) FROM cases WHERE district_code = :d AND reported_at >= :s",
                    d=MINE, s=str(B.bs.window(B.bs.ViewState(period="year"), FIXED_NOW, B.browse(app.server).tz)
                                  .start.replace(tzinfo=None)))[0]
            assert int(total.group(1)) == n
        if page == "enterprise":
            with engine.connect() as conn:
                mine = {str(r[0]) for r in conn.execute(text(
                    "SELECT id FROM grids WHERE district_code = :d"), {"d": MINE})}
                mine |= {"hiring", "licence", "tax", "financing", "infrastructure", "safety", "other"}
            assert set(keys) <= mine and str(other["egrid"]) not in keys
        if page == "parking":
            with engine.connect() as conn:
                mine = {str(r[0]) for r in conn.execute(text(
                    "SELECT id FROM parking_facilities WHERE district_code = :d"), {"d": MINE})}
            assert set(keys) <= mine and keys


def test_case_rows_and_case_page_refuse_the_other_district(leader):
    app, engine = leader
    other = ids_of_other(engine)
    client = app.server.test_client()
    request = [{"id": {"type": "browse-case-grid", "key": "forged"}, "property": "getRowsRequest",
                "value": {"startRow": 0, "endRow": 500, "sortModel": [], "filterModel": {}}}]
    for search in (f"?district={OTHER}&period=year", f"?grid={other['grid']}&period=year&list=open",
                   f"?street={other['street']}&period=year&list=closed"):
        raw = post(client, '..{"key":["ALL"]', {f"{GRID_ALL}.getRowsRequest": request,
                                               "browse-location.search": search})
        assert "response" in json.loads(raw)
        found = case_ids_in(raw)
        assert found == {MINE}, search  # rows came back, and all are the leader's

    for ref in (str(other["case"][0]), other["case"][1]):
        raw = post(client, "..case-body.children", {"case-location.pathname": f"/case/{ref}",
                                                  "case-location.search": ""})
        assert other["case"][1] not in raw or "not-found" in raw
        assert "timeline" not in raw and "not-found" in raw
    mine = one(engine, "SELECT id, external_id FROM cases WHERE district_code = :d", d=MINE)
    raw = post(client, "..case-body.children", {"case-location.pathname": f"/case/{mine[1]}",
                                              "case-location.search": ""})
    assert "timeline" in raw and mine[1] in raw


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exports_are_scope_checked(leader, fmt):
    app, engine = leader
    other = ids_of_other(engine)
    client = app.server.test_client()

    def rows_of(resp):
        assert resp.status_code == 200
        if fmt == "csv":
            return list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
        ws = load_workbook(io.BytesIO(resp.data), read_only=True).active
        return [["" if v is None else str(v) for v in r] for r in ws.iter_rows(values_only=True)]

    for query in (f"district={OTHER}", f"street={other['street']}", f"grid={other['grid']}",
                  f"egrid={other['egrid']}", f"facility={other['facility']}"):
        kpis = rows_of(client.get(f"/browse/export.{fmt}?what=kpis&period=year&{query}"))
        assert kpis[0][0] == "街道" and kpis[-1][0] == "合计", query  # the leader's streets and a total
        with engine.connect() as conn:
            streets = {str(r[0]) for r in conn.execute(text(
                "SELECT id FROM streets WHERE district_code = :d"), {"d": MINE})}
        assert {r[1] for r in kpis[1:-1]} <= streets | {""}, query
        cases = rows_of(client.get(f"/browse/export.{fmt}?what=cases&period=year&{query}"))
        assert len(cases) > 1 and {r[0][2:8] for r in cases[1:]} == {MINE}, query
        for what in ("egrids", "problems", "facilities"):
            rows = rows_of(client.get(f"/browse/export.{fmt}?what={what}&period=year&{query}"))
            district_col = rows[0].index("区域")
            assert {r[district_col] for r in rows[1:]} <= {"金水"}, (what, query)
    assert client.get(f"/browse/export.{fmt}?what=secrets").status_code == 404
    assert client.get("/browse/export.pdf?what=kpis").status_code == 404


def test_the_same_requests_show_it_to_a_city_leader(store):
    """The check above would see a leak: a city-wide scope gets 410102's rows and case."""
    url, engine = store
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False})
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    client = app.server.test_client()
    other = ids_of_other(engine)
    request = [{"id": {"type": "browse-case-grid", "key": "k"}, "property": "getRowsRequest",
                "value": {"startRow": 0, "endRow": 100, "sortModel": [], "filterModel": {}}}]
    raw = post(client, '..{"key":["ALL"]', {f"{GRID_ALL}.getRowsRequest": request,
                                           "browse-location.search": f"?district={OTHER}&period=year"})
    assert case_ids_in(raw) == {OTHER}
    raw = post(client, "..case-body.children", {"case-location.pathname": f"/case/{other['case'][1]}",
                                              "case-location.search": ""})
    assert other["case"][1] in raw and "timeline" in raw
    rows = list(csv.reader(io.StringIO(client.get(
        f"/browse/export.csv?what=cases&period=year&district={OTHER}").data.decode("utf-8-sig"))))
    assert {r[0][2:8] for r in rows[1:]} == {OTHER}
    B.browse(app.server).engine.dispose()


def test_garbage_never_gives_a_server_error(leader):
    app, _ = leader
    client = app.server.test_client()
    for ref in ("%00abc", "x" * 300, "'; DROP TABLE cases; --", "%E4%B8%AD", "-1", "99999999999999999999"):
        raw = post(client, "..case-body.children", {"case-location.pathname": f"/case/{ref}",
                                                  "case-location.search": "?lang=xx"})
        assert "not-found" in raw
    for search in ("?period=custom&from=%00&to=2026-01-01", "?street=1e9&grid=%ff&sort=-", "?" + "a=1&" * 200,
                   "?district=410105%00", "?csort=-", "?lang=%00"):
        post(client, "..browse-summary.children", {"browse-location.search": search, "browse-page.data": "cases"})
        post(client, "..browse-location.search", {"browse-location.search": search})
        assert client.get("/browse/export.csv" + search + "&what=cases").status_code == 200
    for path in ("/browse?period=%ZZ", "/case/%00", "/browse/enterprise?egrid=abc", "/browse/parking?facility=-1"):
        assert client.get(path).status_code == 200


def test_an_export_that_would_be_cut_short_is_refused(leader, monkeypatch):
    """More cases than an export carries: a clear refusal, never a partial file."""
    app, engine = leader
    client = app.server.test_client()
    first = client.get("/browse/export.csv?period=year&what=cases")
    mine = len(list(csv.reader(io.StringIO(first.data.decode("utf-8-sig"))))) - 1
    assert mine > 1
    monkeypatch.setattr(B, "EXPORT_MAX_ROWS", mine - 1)
    refused = client.get("/browse/export.csv?period=year&what=cases")
    assert refused.status_code == 413 and f"{mine - 1:,}" in refused.data.decode()
    monkeypatch.setattr(B, "EXPORT_MAX_ROWS", mine)
    whole = client.get("/browse/export.csv?period=year&what=cases")
    assert whole.status_code == 200
    assert len(list(csv.reader(io.StringIO(whole.data.decode("utf-8-sig"))))) == mine + 1  # with the header
