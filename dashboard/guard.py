"""Requests a client made up: bounded, checked at the door, answered 4xx with a short message.

- Body size: Flask's MAX_CONTENT_LENGTH from `MAX_REQUEST_BYTES` -> 413.
- Dash callback posts (`/_dash-update-component`) are checked against the callback they
  name before Dash reads them: a JSON object naming a registered server callback, inputs
  and state of the declared number and shape, each value of the type its property takes
  (`search` text, `n_clicks` a count, ...), strings, lists, numbers and nesting bounded.
  Anything else -> 400 `{"error": "..."}` naming what was wrong, never echoing it.
- Callbacks check what they read deeper (a grid's block of rows, a week label) with the
  parsers here; `BadInput` -> 400.
- Any other exception is a server bug: 500 with a short body and one bounded log line (the
  callback, the exception's class and the first line of its message trimmed, where it
  happened); never the request's or the callback's values. Flask's own log of it would hold
  the whole message, and Dash's messages quote whole outputs (a case list's rows).
- The store unreachable (SQLAlchemy OperationalError / InterfaceError) -> 503 "store
  unavailable", logged in one bounded line: a deployment fault, not a bug.
- An unknown `/_dash-component-suites/` path -> 404; a page path outside the app -> 400.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import traceback
from pathlib import Path

from dash.exceptions import DependencyException, UnsupportedRelativePath
from flask import Response, g, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

MAX_DEPTH = 32            # nesting of a callback body (our deepest input is ~5)
MAX_NODES = 20_000        # JSON values in one callback body
MAX_TEXT = 10_000         # characters of one string in a callback body
MAX_PATTERN_ITEMS = 1000  # components one ALL-pattern input or output may list (a KPI table's drill buttons)
MAX_CHANGED = 2 * MAX_PATTERN_ITEMS  # changedPropIds (every drill button appearing is one)
MAX_SAFE_INT = 2 ** 53    # numbers a browser can hold exactly
LOG_MESSAGE_CHARS = 200   # of an exception's message in the log
LOG_FRAMES = 4            # innermost frames named in the log


class BadInput(ValueError):
    """A request's value that a callback cannot use; the message (short, fixed text naming
    the field, not its value) goes back with a 400."""


# --- parsers for callbacks --------------------------------------------------------------
def as_int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{what}: expected a whole number")
    if not lo <= value <= hi:
        raise BadInput(f"{what}: out of range")
    return value


def as_choice(value, what: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BadInput(f"{what}: not one of the accepted values")
    return value


def as_list(value, what: str, max_items: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(f"{what}: expected a list")
    if len(value) > max_items:
        raise BadInput(f"{what}: more than {max_items} items")
    return value


@contextlib.contextmanager
def parsing(what: str):
    """Turn a slip while reading a request's value into a 400 (the safety net under the
    parsers above): its message is not echoed, the input may be anything."""
    try:
        yield
    except BadInput:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise BadInput(f"{what}: malformed") from exc


# --- the types a callback's property takes ---------------------------------------------
def _text(v) -> bool:
    return v is None or isinstance(v, str)


def _count(v) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)


def _scalar(v) -> bool:  # our dropdowns and date pickers are single-choice
    return v is None or isinstance(v, (str, int, float))


def _object(v) -> bool:
    return v is None or isinstance(v, dict)


def _any(_v) -> bool:
    return True


PROPERTY_TYPES = {"search": _text, "pathname": _text, "hash": _text, "href": _text,
                  "n_intervals": _count, "n_clicks": _count, "value": _scalar,
                  "getRowsRequest": _object}  # any other property: any bounded JSON
# where one component's property is narrower: Dash's page router needs a path
COMPONENT_TYPES = {"_pages_location.pathname": lambda v: isinstance(v, str)}


def _bounded(body) -> str | None:
    """Why a parsed body is too big or too deep, or None. Iterative: no recursion to exhaust."""
    stack, nodes = [(body, 1)], 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return "too many values"
        if depth > MAX_DEPTH:
            return "nested too deep"
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                return "a string is too long"
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) > MAX_SAFE_INT:
                return "a number is out of range"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return "a number is not finite"
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, dict):
            for k, v in value.items():
                if len(k) > MAX_TEXT:
                    return "a key is too long"
                stack.append((v, depth + 1))
    return None


def _pattern(spec_id: str) -> dict | None:
    """The id of a pattern-matching dependency as a dict, None for a plain id."""
    return json.loads(spec_id) if spec_id.startswith("{") else None


def _matches(pattern: dict, cid) -> bool:
    if not isinstance(cid, dict) or set(cid) != set(pattern):
        return False
    for key, want in pattern.items():
        if isinstance(want, list):  # a wildcard: ALL, MATCH, ALLSMALLER
            if isinstance(cid[key], bool) or not isinstance(cid[key], (str, int, float)):
                return False
        elif cid[key] != want:
            return False
    return True


def _dependency(spec: dict, item, what: str) -> str | None:
    """Why one input/state entry does not fit its declared dependency, or None."""
    pattern = _pattern(spec["id"])
    check = COMPONENT_TYPES.get(f"{spec['id']}.{spec['property']}") or PROPERTY_TYPES.get(spec["property"], _any)
    if pattern is None:
        if not isinstance(item, dict) or item.get("id") != spec["id"] or item.get("property") != spec["property"]:
            return f"{what}: not {spec['id']}.{spec['property']}"
        return None if check(item.get("value")) else f"{what}: wrong type for {spec['property']}"
    if ["MATCH"] in pattern.values():  # one component, as a plain entry
        item = [item] if isinstance(item, dict) else None
    entries = item if isinstance(item, list) else None
    if entries is None or len(entries) > MAX_PATTERN_ITEMS:
        return f"{what}: expected a list of at most {MAX_PATTERN_ITEMS} components"
    for entry in entries:
        if not isinstance(entry, dict) or not _matches(pattern, entry.get("id")) \
                or entry.get("property") != spec["property"]:
            return f"{what}: a component that does not match {spec['property']}"
        if not check(entry.get("value")):
            return f"{what}: wrong type for {spec['property']}"
    return None


def _output(item, top: bool = True) -> bool:
    """One output entry: {"id", "property"}, or for an ALL pattern a short list of them."""
    if isinstance(item, list):
        return top and len(item) <= MAX_PATTERN_ITEMS and all(_output(x, False) for x in item)
    return isinstance(item, dict) and isinstance(item.get("id"), (str, dict)) and isinstance(item.get("property"), str)


def check_callback_body(body, callback_map) -> str | None:
    """Why a callback post cannot be run, or None when Dash may read it."""
    if not isinstance(body, dict):
        return "expected a JSON object"
    why = _bounded(body)
    if why:
        return why
    output = body.get("output")
    if not isinstance(output, str):
        return "output: expected a callback id"
    cb = callback_map.get(output)
    if cb is None or "callback" not in cb:
        return "output: no such server callback"
    g.callback_id = output
    outputs = body.get("outputs")
    if cb.get("no_output"):
        pass
    elif isinstance(cb["output"], list):
        if not isinstance(outputs, list) or len(outputs) != len(cb["output"]) or not all(map(_output, outputs)):
            return "outputs: not the callback's outputs"
    elif not _output(outputs):
        return "outputs: not the callback's outputs"
    for part in ("inputs", "state"):
        items = body.get(part, [])
        specs = cb[part]
        if not isinstance(items, list) or len(items) != len(specs):
            return f"{part}: expected {len(specs)} entries"
        for i, (spec, item) in enumerate(zip(specs, items)):
            why = _dependency(spec, item, f"{part}[{i}]")
            if why:
                return why
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or len(changed) > MAX_CHANGED or not all(isinstance(c, str) for c in changed):
        return "changedPropIds: expected a short list of ids"
    return None


# --- logging a failure without the request's or the answer's data ----------------------
def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-LOG_FRAMES:]
    return " < ".join(f"{'/'.join(Path(f.filename).parts[-2:])}:{f.lineno} {f.name}" for f in reversed(frames))


def describe(exc: BaseException) -> str:
    """`Class: first line of the message` trimmed, and where: one bounded line for a log."""
    first = (str(exc).splitlines() or [""])[0]
    if len(first) > LOG_MESSAGE_CHARS:
        first = first[:LOG_MESSAGE_CHARS] + "…"
    return f"{type(exc).__name__}: {first} | at {_where(exc)}"


def _callback_label() -> str:
    cid = getattr(g, "callback_id", None)
    return f" callback {cid[:120]}" if cid else ""


# --- installing it ------------------------------------------------------------------------
def install(app, settings) -> None:
    """Bound request bodies, check callback posts, answer bad input 4xx, log failures bounded.
    Install after the login's hooks, so that a stranger is turned away before being parsed."""
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = settings["MAX_REQUEST_BYTES"]
    callback_path = app.config.routes_pathname_prefix + "_dash-update-component"

    def bad(message: str, status: int = 400) -> Response:
        resp = jsonify(error=message)
        resp.status_code = status
        return resp

    @server.before_request
    def check_callback():
        if request.path != callback_path or request.method != "POST":
            return None
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested past the parser's own limit
            return bad("nested too deep")
        why = check_callback_body(body, app.callback_map)
        if why is None:
            return None
        log.info("bad request on %s%s: %s", request.path[:200], _callback_label(), why)
        return bad(why)

    @server.errorhandler(BadInput)
    def bad_input(exc: BadInput):
        log.info("bad request on %s%s: %s", request.path[:200], _callback_label(), str(exc)[:LOG_MESSAGE_CHARS])
        return bad(str(exc)[:LOG_MESSAGE_CHARS])

    @server.errorhandler(UnsupportedRelativePath)
    def outside_the_app(_exc):  # Dash's pages, given a pathname not under the app's prefix
        return bad("pathname: not a path of this app")

    @server.errorhandler(DependencyException)
    def unknown_suite(_exc):
        return bad("not found", 404)

    @server.errorhandler(Exception)
    def server_error(exc: Exception):
        if isinstance(exc, HTTPException):  # 4xx from Flask itself (413, 404, ...): as they are
            return exc
        if isinstance(exc, (OperationalError, InterfaceError)):  # the store is away: a fault of
            # the deployment, not a bug; the client may retry (walls do not need the store)
            log.warning("store unavailable on %s %s%s: %s", request.method, request.path[:200],
                        _callback_label(), describe(exc))
            return bad("store unavailable", 503)
        log.error("server error on %s %s%s: %s", request.method, request.path[:200], _callback_label(),
                  describe(exc))
        return bad("server error", 500)
