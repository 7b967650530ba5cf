"""Every server callback the app registers, posted with values of the wrong type, size and
shape in each input and state: no answer is a 5xx, none carries a traceback.

Bounded: a fixed seed picks a handful of the bad values per position (a few hundred posts
in all) on a small seeded store.
"""
from __future__ import annotations

import json
import random

import pytest

from dashboard.scope import Scope
from tests.dash_posts import CALLBACK, body_for, component, pattern_of, server_callbacks
from tests.dash_posts import posted_app, seeded  # noqa: F401  (fixtures)

SEED = 20261126
PER_POSITION = 7


def _nested(depth: int):
    value: object = "leaf"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


NUMBERS = [None, 0, -1, 7, 2 ** 31, 2 ** 53, 10 ** 20, -10 ** 20, 1.5, -0.0, 1e308, float("nan"), float("inf"), True]
STRINGS = ["", " ", "NaN", "-1", "1e9", "abc", "x" * 5000, "x" * 20_000, "../../etc", "?" + "a=1&" * 400,
           "?lang=en&district=../../x&rotate=99999999999999999999999", "%00\x00\u202e", "<script>alert(1)</script>",
           "/case/../../x", "?back=" + "back%3D" * 300]
LISTS = [[], [1, 2], ["x"] * 60, [None], _nested(20), _nested(40)]
OBJECTS = [{}, {"a": {"b": {"c": 1}}}, {"startRow": "abc", "sortModel": [1]}, {"lang": ["en"], "district": {"x": 1}, "kpi": 5},
           {"k": 5, "h": [1]}, {"startRow": 10 ** 9, "endRow": 10 ** 9 + 1000, "sortModel": [{"colId": "address"}]}]
BAD_VALUES = NUMBERS + STRINGS + LISTS + OBJECTS
# an ALL pattern's components: well formed with a bad value, or malformed themselves
BAD_COMPONENTS = ["ids", "too-many", "not-a-list", "wrong-keys", "id-is-list"]


# a valid value per property (and per component where the property is not enough), so that
# each post has one bad position and the callback is reached with the others good
GOOD_BY_PROPERTY = {"search": "?lang=en", "pathname": "/wall", "n_intervals": 3, "n_clicks": 1,
                    "getRowsRequest": {"startRow": 0, "endRow": 100}}
GOOD_BY_ID = {"browse-page.data": "cases", "case-location.pathname": "/case/1", "snap-scope.value": "city",
              "wall-config.data": {"lang": "en", "district": None, "kpi": "open_cases"}}


def _good(spec):
    value = GOOD_BY_ID.get(f"{spec['id']}.{spec['property']}", GOOD_BY_PROPERTY.get(spec["property"]))
    pattern = pattern_of(spec["id"])
    return value if pattern is None else [(component(pattern, "k"), value)]


def _ids(value) -> str:
    return json.dumps(value, default=str)[:40]


def _cases(app) -> list[tuple[str, dict, str, int, object]]:
    rng = random.Random(SEED)
    cases = []
    for output, cb in sorted(server_callbacks(app).items()):
        for part in ("inputs", "state"):
            for i, spec in enumerate(cb[part]):
                # one of each kind, and more of any kind
                picks = [rng.choice(group) for group in (NUMBERS, STRINGS, LISTS, OBJECTS)]
                picks += rng.sample([v for v in BAD_VALUES if v not in picks], PER_POSITION - len(picks))
                if pattern_of(spec["id"]) is not None:
                    picks += BAD_COMPONENTS
                cases += [(output, cb, part, i, v) for v in picks]
    return cases


@pytest.fixture(scope="module")
def app(posted_app):  # noqa: F811
    return posted_app


def _value_for(spec, value):
    """The value posted at a position: for an ALL pattern, a list of components."""
    pattern = pattern_of(spec["id"])
    if pattern is None:
        return value
    if value == "ids":
        return [(component(pattern, w), 1) for w in ("a", 5, 1.5)]
    if value == "too-many":
        return [(component(pattern, f"g{n}"), {"startRow": 0, "endRow": 1}) for n in range(60)]
    if value == "not-a-list":
        return "nope"
    if value == "wrong-keys":
        return [({"type": "other"}, 1)]
    if value == "id-is-list":
        return [([1, 2], 1)]
    return [(component(pattern, "k"), value)]


def _post(client, output, cb, part, i, value):
    spec = cb[part][i]
    values = {(p, j): _good(sp) for p in ("inputs", "state") for j, sp in enumerate(cb[p])}
    posted = _value_for(spec, value)
    components = isinstance(posted, list) and all(isinstance(x, tuple) for x in posted)
    fixed = body_for(output, cb, {**values, (part, i): posted if components else None})
    if not components:
        if pattern_of(spec["id"]) is None:
            fixed[part][i]["value"] = posted
        else:
            fixed[part][i] = posted
    return client.post(CALLBACK, data=json.dumps(fixed), content_type="application/json")


def _no_5xx(resp) -> str | None:
    raw = resp.get_data(as_text=True)
    if resp.status_code >= 500 or "Traceback" in raw or 'File "' in raw:
        return f"{resp.status_code} {raw[:120]}"
    return None


@pytest.mark.parametrize("scope", [None, Scope(frozenset({"410105"}), role="district_leader")],
                         ids=["city-admin", "district-leader"])
def test_no_callback_answers_5xx_or_a_traceback(app, monkeypatch, scope):
    """One test over every (callback, position, bad value): a failure names them all."""
    # "export now" with a count would start a real export in the background
    monkeypatch.setattr("callbacks.snapshots._export_in_background", lambda settings, week: None)
    if scope is not None:
        monkeypatch.setitem(app.server.extensions, "command_center_scope", lambda: scope)
    client = app.server.test_client()
    cases = _cases(app)
    assert 200 <= len(cases) <= 600, len(cases)
    covered = {output for output, *_ in cases}
    assert covered == set(server_callbacks(app)), "every server callback is fuzzed"
    failures, statuses = [], {}
    for output, cb, part, i, value in cases:
        resp = _post(client, output, cb, part, i, value)
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        why = _no_5xx(resp)
        if why:
            failures.append(f"{output[:60]} {part}[{i}]={_ids(value)} -> {why}")
    assert not failures, "\n".join(failures[:30])
    assert statuses.get(400, 0) > 0 and statuses.get(200, 0) > 0, statuses  # both kinds were exercised


@pytest.mark.parametrize("breakage", ["no-output", "outputs-none", "inputs-none", "state-string", "changed-dict",
                                      "value-missing"])
def test_every_callback_refuses_a_broken_body_with_400(app, breakage):
    client = app.server.test_client()
    for output, cb in server_callbacks(app).items():
        body = body_for(output, cb)
        if breakage == "no-output":
            del body["output"]
        elif breakage == "outputs-none":
            body["outputs"] = None
        elif breakage == "inputs-none":
            body["inputs"] = None
        elif breakage == "state-string":
            body["state"] = "x"
        elif breakage == "changed-dict":
            body["changedPropIds"] = {"a": 1}
        elif breakage == "value-missing":
            body["inputs"] = [{"id": "x"}] * len(cb["inputs"])
        resp = client.post(CALLBACK, json=body)
        assert resp.status_code == 400, (output, resp.status_code, resp.data[:200])
        assert b"Traceback" not in resp.data


def test_every_page_takes_any_query_string(app):
    """Dash's page router hands the query to each page's layout as keyword arguments."""
    client = app.server.test_client()
    output = next(o for o in server_callbacks(app) if o.startswith(".._pages_content."))
    cb = server_callbacks(app)[output]
    failures = []
    for path in ("/", "/wall", "/browse", "/browse/enterprise", "/browse/parking", "/case/1", "/case/%2E%2E",
                 "/snapshots", "/login", "/nope"):
        for search in STRINGS + ["?lang=en&lang=zh-CN&district=1&district=2", "?rotate=10&rotate=x&page=cases&page=1"]:
            resp = client.post(CALLBACK, json=body_for(output, cb, {("inputs", 0): path, ("inputs", 1): search}))
            why = _no_5xx(resp)
            if why:
                failures.append(f"{path} {search[:40]!r} -> {why}")
    assert not failures, "\n".join(failures[:30])
