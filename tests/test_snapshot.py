"""The snapshot: its version follows the content and only the content; JSON round trips."""
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from dashboard.snapshot import Head, Section, Snapshot, is_empty

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=SHANGHAI)


def _snap(sections, computed_at=T0, data_as_of=T0 - dt.timedelta(seconds=3)):
    return Snapshot(computed_at=computed_at, data_as_of=data_as_of, sections=sections)


def test_version_is_stable_for_equal_content_whatever_the_times_and_key_order():
    a = _snap({"open": Section("fresh", {"a": 1, "b": [1, 2]}), "zero": Section("fresh", 0)})
    b = _snap({"zero": Section("fresh", 0), "open": Section("fresh", {"b": [1, 2], "a": 1})},
              computed_at=T0 + dt.timedelta(minutes=5), data_as_of=T0 + dt.timedelta(minutes=4))
    assert a.version == b.version
    assert Snapshot.from_json(b.to_json()).version == a.version


@pytest.mark.parametrize("changed", [
    {"open": Section("fresh", {"a": 2, "b": [1, 2]}), "zero": Section("fresh", 0)},   # a value
    {"open": Section("fresh", {"a": 1, "b": [2, 1]}), "zero": Section("fresh", 0)},   # an order in a list
    {"open": Section("stale", {"a": 1, "b": [1, 2]}, T0, "OperationalError: gone"),   # a status
     "zero": Section("fresh", 0)},
    {"open": Section("fresh", {"a": 1, "b": [1, 2]})},                                # a section less
    {"open": Section("fresh", {"a": 1, "b": [1, 2]}), "zero": Section("empty", None)},  # 0 -> nothing
])
def test_version_changes_when_content_changes(changed):
    base = _snap({"open": Section("fresh", {"a": 1, "b": [1, 2]}), "zero": Section("fresh", 0)})
    assert _snap(changed).version != base.version


def test_json_round_trip_keeps_everything_with_offsets():
    snap = _snap({"open": Section("stale", [{"code": "410102", "n": 0}], T0 - dt.timedelta(seconds=10),
                                  "OperationalError: no such table"),
                  "never": Section("error", None, T0, "TimeoutError: store"),
                  "none": Section("empty", [])})
    raw = snap.to_json()
    doc = json.loads(raw)
    assert doc["computed_at"] == "2026-11-26T12:00:00+08:00"
    assert doc["sections"]["open"]["since"] == "2026-11-26T11:59:50+08:00"
    assert doc["sections"]["none"] == {"status": "empty", "since": None, "error": None, "data": []}
    back = Snapshot.from_json(raw)
    assert back == snap
    assert back.computed_at.utcoffset() == dt.timedelta(hours=8)


def test_head_round_trip_and_age():
    snap = _snap({"open": Section("fresh", 3)})
    head = Head.from_json(snap.head().to_json())
    assert head == Head(snap.version, T0, snap.data_as_of, {"open": "fresh"})
    assert head.age(T0 + dt.timedelta(seconds=7)) == 7


def test_tampered_or_foreign_json_is_refused():
    doc = json.loads(_snap({"open": Section("fresh", 3)}).to_json())
    doc["sections"]["open"]["data"] = 4
    with pytest.raises(ValueError, match="version"):
        Snapshot.from_json(json.dumps(doc))
    doc["format"] = 99
    with pytest.raises(ValueError, match="format"):
        Snapshot.from_json(json.dumps(doc))


def test_naive_times_and_unknown_statuses_are_refused():
    with pytest.raises(ValueError, match="aware"):
        _snap({}, computed_at=dt.datetime(2026, 11, 26, 12, 0)).to_json()
    with pytest.raises(ValueError, match="status"):
        Section("ok", 1)


def test_only_nothing_is_empty_a_zero_is_a_value():
    assert all(is_empty(v) for v in (None, [], {}))
    assert not any(is_empty(v) for v in (0, 0.0, [0], {"n": 0}, "", False))
