"""A wall display without a browser: posts the refresh callback as dash-renderer does and
keeps what it shows, so that tests and benchmarks (bench/ imports it from here) can be many
displays at once."""
from __future__ import annotations

import json
from typing import Callable

from layouts.wall.render import OUTPUTS

CITY = {"lang": "zh-CN", "district": None, "kpi": "open_cases"}


def refresh_key() -> str:
    """The callback's output id as Dash registers it."""
    return "..wall-head.data...wall-shown.data..." + "...".join(f"{i}.{p}" for i, p in OUTPUTS) + ".."


class WallDisplay:
    """`post(body: dict) -> (status, raw bytes)` is the transport: a Flask test client or HTTP."""

    def __init__(self, post: Callable[[dict], tuple[int, bytes]], config: dict | None = None):
        self.post = post
        self.config = CITY if config is None else config
        self.shown = None
        self.n = 0
        self.outputs = [{"id": "wall-head", "property": "data"}, {"id": "wall-shown", "property": "data"}] + \
            [{"id": i, "property": p} for i, p in OUTPUTS]

    def body(self) -> dict:
        return {"output": refresh_key(), "outputs": self.outputs,
                "inputs": [{"id": "wall-refresh", "property": "n_intervals", "value": self.n}],
                "state": [{"id": "wall-config", "property": "data", "value": self.config},
                          {"id": "wall-shown", "property": "data", "value": self.shown}],
                "changedPropIds": ["wall-refresh.n_intervals"]}

    def refresh(self) -> tuple[int, bytes, dict]:
        """One tick: (status, raw response, the outputs sent)."""
        self.n += 1
        status, raw = self.post(self.body())
        if status != 200:
            return status, raw, {}
        sent = json.loads(raw)["response"]
        if "wall-shown" in sent:
            self.shown = sent["wall-shown"]["data"]
        return status, raw, sent


def flask_transport(app):
    client = app.server.test_client()

    def post(body):
        resp = client.post("/_dash-update-component", json=body)
        return resp.status_code, resp.data
    post.client = client  # to sign in first where login is on
    return post


def props(node, found=None) -> list[dict]:
    """Every component's props in a rendered JSON tree (a panel's body, a callback's answer)."""
    found = [] if found is None else found
    if isinstance(node, dict):
        if "props" in node and "type" in node:
            found.append(node["props"])
        for v in node.values():
            props(v, found)
    elif isinstance(node, list):
        for v in node:
            props(v, found)
    return found
