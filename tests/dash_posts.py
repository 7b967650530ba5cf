"""Hand-made `_dash-update-component` posts, built from the app's own callback map, for the
bad-request and fuzz tests: a body of the right shape with whatever values a test puts in."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard import browse as B
from dashboard import create_app
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url

CALLBACK = "/_dash-update-component"
WEEK = "2026-W47"


def pattern_of(spec_id: str) -> dict | None:
    return json.loads(spec_id) if spec_id.startswith("{") else None


def stringify(cid) -> str:
    """Dash's id string (sorted keys, compact)."""
    if isinstance(cid, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(cid[k])}" for k in sorted(cid)) + "}"
    return cid


def component(pattern: dict, wildcard="k") -> dict:
    """A concrete id matching an ALL pattern."""
    return {k: (wildcard if isinstance(v, list) else v) for k, v in pattern.items()}


def server_callbacks(app) -> dict:
    return {out: cb for out, cb in app.callback_map.items() if "callback" in cb}


def body_for(output: str, cb: dict, values: dict | None = None) -> dict:
    """A post for the callback registered under `output`. `values` maps an input/state
    position ("inputs", i) / ("state", i) to its value; for an ALL pattern the value is
    the list of (id, value) pairs of its components. Unset positions are None / empty."""
    values = values or {}
    parts = {}
    for part in ("inputs", "state"):
        parts[part] = []
        for i, spec in enumerate(cb[part]):
            value = values.get((part, i))
            if pattern_of(spec["id"]) is None:
                parts[part].append({"id": spec["id"], "property": spec["property"], "value": value})
            else:
                parts[part].append([{"id": cid, "property": spec["property"], "value": v}
                                    for cid, v in (value or [])])
    declared = cb["output"] if isinstance(cb["output"], list) else [cb["output"]]
    outputs = []
    for out in declared:
        pattern = pattern_of(out.component_id_str())
        if pattern is None:
            outputs.append({"id": out.component_id, "property": out.component_property})
        else:  # an ALL output mirrors the ALL input of the same pattern
            mirror = next((items for spec, items in zip(cb["inputs"], parts["inputs"])
                           if pattern_of(spec["id"]) == pattern), [])
            outputs.append([{"id": x["id"], "property": out.component_property} for x in mirror])
    first = parts["inputs"][0] if parts["inputs"] else None
    if isinstance(first, list):
        changed = [f"{stringify(x['id'])}.{x['property']}" for x in first]
    else:
        changed = [f"{first['id']}.{first['property']}"] if first else []
    return {"output": output, "outputs": outputs if isinstance(cb["output"], list) else outputs[0],
            "inputs": parts["inputs"], "state": parts["state"], "changedPropIds": changed}


def find(app, prefix: str) -> tuple[str, dict]:
    return next((o, cb) for o, cb in server_callbacks(app).items() if o.startswith(prefix))


GRID = "..{\"key\":[\"ALL\"],\"type\":\"browse-case-grid\"}.getRowsResponse"


def grid_body(app, requests: list, search: str = "?") -> dict:
    output, cb = find(app, GRID)
    pattern = pattern_of(cb["inputs"][0]["id"])
    return body_for(output, cb, {("inputs", 0): [(component(pattern, f"g{i}"), r) for i, r in enumerate(requests)],
                                 ("state", 0): search})


# --- a small seeded store, an app on it, a snapshot and an archive week ------------------
@pytest.fixture(scope="module")
def seeded(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("badreq")
    url = seeded_store_url("sqlite", request, folder, profile=BACKLOG, seed=7, total_cases=1200, now=FIXED_NOW,
                           occupancy_days=1)
    reports = folder / "reports"
    (reports / WEEK / "city").mkdir(parents=True)  # a week on the archive's list
    (reports / WEEK / "city" / "manifest.json").write_text(json.dumps({"files": {}}), encoding="utf-8")
    return url, folder


def make_app(url: str, folder: Path, **extra):
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, "REDIS_URL": "",
                      "REPORTS_DIR": str(folder / "reports"), "LOCAL_CACHE_DIR": str(folder / "cache"), **extra})
    svc = app.server.extensions[EXTENSION]
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()  # the wall and / have a snapshot
    assert app.server.test_client().get("/").status_code == 200  # Dash adds the pages' callbacks then
    return app


@pytest.fixture(scope="module")
def posted_app(seeded):
    """One app per module on the seeded store: the tests only post to it (a test that
    changes its scope puts it back)."""
    url, folder = seeded
    app = make_app(url, folder)
    yield app
    app.server.extensions[EXTENSION].engine.dispose()
    B.browse(app.server).engine.dispose()
