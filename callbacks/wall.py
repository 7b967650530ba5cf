"""Wiring of `/wall`: on each refresh tick, answer from the cache.

- Unchanged snapshot: only the small head goes back (freshness, build); every panel
  output is `no_update`, so nothing is re-sent or redrawn.
- New snapshot: the view's rendering comes from the render cache (rendered once per
  version and view for the whole deployment), and only the outputs whose content hash
  differs from what this display shows are sent.
The store is never touched here.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging

from dash import ClientsideFunction, Input, Output, State, no_update

from dashboard import thresholds
from dashboard.build import build_id
from dashboard.metrics import count_refresh
from dashboard.scope import EVERYTHING, current_scope, restrict_sections
from dashboard.services import services
from layouts import ids
from layouts.wall.render import OUTPUTS, render
from layouts.wall.view import PAGES, parse_view

log = logging.getLogger(__name__)


def _ms(when: dt.datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def _digest(value) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(raw.encode(), digest_size=6).hexdigest()


def head_payload(snap, build: str) -> dict:
    """What the header needs on every tick: a few hundred bytes."""
    failing = [s for s in snap.sections.values() if s.status in ("stale", "error")]
    worst = "error" if any(s.status == "error" for s in failing) else "stale" if failing else "fresh"
    since = min((s.since for s in failing if s.since is not None), default=None)
    return {"v": snap.version, "c": _ms(snap.computed_at), "a": _ms(snap.data_as_of),
            "n": _ms(dt.datetime.now(dt.timezone.utc)), "s": worst, "since": _ms(since), "b": build}


def view_key(svc, snap, ref, view) -> str:
    """What a rendering depends on: the data, the names and shapes, the view and the code."""
    return f"{snap.version}|{ref.version}|{view.key}|{build_id(svc.settings)}"


def scoped_reference(svc, scope):
    """The reference a scope's wall draws: a district-scoped one sees no other district."""
    ref = svc.reference.get()
    return ref if scope.city_wide else ref.only(scope.districts)


def rendered_view(svc, snap, view, scope=EVERYTHING) -> dict:
    """{"h": {output: hash}, "v": {output: value}} for a snapshot and view, rendered once
    per (version, reference as the scope sees it, view, build)."""
    ref = scoped_reference(svc, scope)
    key = view_key(svc, snap, ref, view)

    def _render():
        sections = {name: s.to_dict() for name, s in snap.sections.items()}
        if not scope.city_wide:  # other districts' figures never reach this scope's screen
            sections = restrict_sections(sections, scope.districts,
                                         (d.code for d in svc.reference.get().districts))
        values = render(sections, ref, view, thresholds, svc.settings.tz)
        return {"k": key, "h": {k: _digest(v) for k, v in values.items()}, "v": values}

    return svc.rendered.get_or_render(key, _render)


def refresh_outputs(config: dict | None, shown: dict | None) -> tuple:
    """(head, shown, *panel outputs) for one display's tick."""
    svc = services()
    count_refresh(svc.cache)
    nothing = [no_update] * len(OUTPUTS)
    try:
        snap = svc.cache.get()
    except OSError as exc:  # the host-local cache folder failed: keep the screen, age shows
        log.warning("wall refresh: cache unreadable: %s", exc)
        return (no_update, no_update, *nothing)
    if snap is None:  # no poll has finished yet: the panels keep saying "waiting"
        return (no_update, no_update, *nothing)
    head = head_payload(snap, build_id(svc.settings))
    # the config comes from the browser: check it again, a hand-made request gets defaults
    scope = current_scope()
    ref = scoped_reference(svc, scope)
    config = config if isinstance(config, dict) else {}
    query = {k: v for k, v in config.items() if k in ("lang", "district", "kpi") and isinstance(v, str)}
    view, _warnings = parse_view(query, [d.code for d in ref.districts],
                                 svc.settings["DASHBOARD_LANGUAGE"], svc.settings["WALL_MAP_KPI"])
    if not scope.allows(view.district):  # enforced here, whatever the browser sends
        view = dataclasses.replace(view, district=scope.default_district())
    if view.district is None and not scope.city_wide:  # a scope with no district sees nothing
        return (head, no_update, *nothing)
    shown = shown if isinstance(shown, dict) else {}
    if shown.get("k") == view_key(svc, snap, ref, view):
        return (head, no_update, *nothing)
    result = rendered_view(svc, snap, view, scope)
    known = shown.get("h") if isinstance(shown.get("h"), dict) else {}
    outputs = [no_update if known.get(k) == result["h"][k] else result["v"][k]
               for k in (f"{i}.{p}" for i, p in OUTPUTS)]
    return (head, {"k": result["k"], "h": result["h"]}, *outputs)


def register(app) -> None:
    app.callback(
        Output(ids.WALL_HEAD, "data"),
        Output(ids.WALL_SHOWN, "data"),
        *[Output(i, p) for i, p in OUTPUTS],
        Input(ids.WALL_REFRESH, "n_intervals"),
        State(ids.WALL_CONFIG, "data"),
        State(ids.WALL_SHOWN, "data"),
    )(lambda _n, config, shown: refresh_outputs(config, shown))

    # clock, freshness light, scaling, rotation and reloads: in the browser (assets/wall.js)
    app.clientside_callback(
        ClientsideFunction("wall", "tick"),
        Output(ids.WALL_CLOCK, "children"),
        Output(ids.WALL_DATE, "children"),
        Output(ids.WALL_LIGHT, "className"),
        Output(ids.WALL_LIGHT, "children"),
        Output(ids.WALL_ASOF, "children"),
        Output(ids.WALL_CANVAS, "style"),
        Output(ids.WALL_ROOT, "className"),
        *[Output(f"wall-page-{p}", "style") for p in PAGES],
        Output(ids.WALL_DOTS, "className"),
        Input(ids.WALL_TICK, "n_intervals"),
        Input(ids.WALL_HEAD, "data"),
        State(ids.WALL_CONFIG, "data"),
    )
