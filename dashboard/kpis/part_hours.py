"""The cases behind the part-hours that hourly rollups cannot split, kept in memory.

A comparison window ends mid-hour ("yesterday up to now"), and so does each overdue
ageing boundary (now - 24 h, ...): those few whole UTC hours need the cases' exact times.
The poller loads the cases reported, closed, filed or due in them when the hours move
(once an hour), keeps them up to date with each poll's changed cases, and counts any
part of those hours from memory instead of asking the store every poll.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np

from dashboard.kpis.common import CITY
from dashboard.periods import epoch_us as _us
from dashboard.periods import floor_hour, hour_key
from datasource import kpi_state

COUNTED = ("closed", "closed_on_time", "handled", "handled_on_time", "reworked", "extended", "with_deadline")
SECONDS = ("handle_seconds", "close_seconds")


GONE = np.iinfo(np.int64).max  # the time of a row whose case left the hour: in no window


# axis -> (the row's hour key column, its exact time column); the hour key is null when
# the case does not count on the axis (not filed or voided; not running, or no deadline)
AXES = {"reported": ("reported_hour", "reported_at"), "closed": ("closed_hour", "closed_at"),
        "filed": ("filed_hour", "filed_at"), "deadline": ("deadline_hour", "deadline_at")}


def axis_times(row: dict) -> dict[str, dt.datetime]:
    """The row's time on each axis it counts on (a row of kpi_state with exact times)."""
    return {axis: row[at] for axis, (hour, at) in AXES.items() if row[hour] is not None}


class PartHours:
    def __init__(self):
        self.hours: set[dt.datetime] = set()
        self.keys: set[str] = set()  # the same hours as 'YYYY-MM-DD HH' keys
        self.cases: dict[int, dict] = {}
        self.packed: dict[int, dict[str, tuple]] = {}  # case -> axis -> (time in us, district index[, fields])
        self.members: dict[tuple[str, dt.datetime], set[int]] = defaultdict(set)  # (axis, hour) -> cases
        self._arrays: dict[tuple[str, dt.datetime], tuple] = {}  # built on demand, dropped on change
        self.codes: dict[str, int] = {}  # district -> index in the arrays (any code a row carries)
        self.loads = 0

    # -- keeping up -------------------------------------------------------------------
    def track(self, engine, hours) -> None:
        """Hold the cases of exactly these whole hours: load the new ones, forget the rest."""
        hours = set(hours)
        if hours == self.hours:
            return
        loaded = kpi_state.touching_hours(engine, sorted(hours - self.hours))  # before any change: it may fail
        self.loads += bool(hours - self.hours)
        self.hours, self.keys = hours, {hour_key(h) for h in hours}
        for row in list(self.cases.values()):
            self._put(row)  # drops the memberships of hours no longer held
        self.update(loaded)

    def update(self, rows) -> None:
        """Rows of cases written since (with exact times): each replaces what was held."""
        for row in rows:
            self._put(row)

    def _put(self, row: dict) -> None:
        cid = row["case_id"]
        old = self.cases.pop(cid, None)
        self.packed.pop(cid, None)
        # most rows touch no held hour: their hour keys tell, without datetime arithmetic
        times = {axis: row[at] for axis, (hour, at) in AXES.items() if row[hour] in self.keys}
        packed = self._pack(row, times) if times else {}
        new_keys = {(axis, floor_hour(t)): axis for axis, t in times.items()}
        if old is not None:
            for axis, t in axis_times(old).items():
                if (axis, floor_hour(t)) not in new_keys:
                    self._leave((axis, floor_hour(t)), cid)
        if times:
            self.cases[cid] = row
            self.packed[cid] = packed
            for key, axis in new_keys.items():
                self.members[key].add(cid)
                self._write(key, cid, packed[axis])

    def _pack(self, row: dict, times: dict[str, dt.datetime]) -> dict[str, tuple]:
        """What the arrays of an hour take from the row, ready to stack (built once per write)."""
        d = self._code(row["district_code"])
        out = {axis: (_us(t), d) for axis, t in times.items()}
        if "filed" in out:
            out["filed"] += tuple(row[f] or 0 for f in COUNTED) + tuple(float(row[f] or 0.0) for f in SECONDS)
        return out

    def _leave(self, key, cid: int) -> None:
        if key in self.members:
            self.members[key].discard(cid)
            arrays = self._arrays.get(key)
            if arrays is not None and cid in arrays[4]:
                arrays[0][arrays[4].pop(cid)] = GONE  # its row stays, outside every window
            if not self.members[key]:
                del self.members[key]
                self._arrays.pop(key, None)

    def _write(self, key, cid: int, packed: tuple) -> None:
        """A member's values into the hour's arrays in place (a case that changes inside a
        held hour, the common write); a new member drops them, to be built again."""
        arrays = self._arrays.get(key)
        if arrays is None:
            return
        i = arrays[4].get(cid)
        if i is None:
            del self._arrays[key]
            return
        times, districts, counted, seconds, _ = arrays
        times[i], districts[i] = packed[0], packed[1]
        if counted.shape[1]:
            counted[i] = packed[2:2 + len(COUNTED)]
            seconds[i] = packed[2 + len(COUNTED):]

    # -- counting -----------------------------------------------------------------------
    def _code(self, district: str) -> int:
        return self.codes.setdefault(district, len(self.codes))

    def _arrays_of(self, axis: str, hour: dt.datetime) -> tuple:
        """(times in us, district indices, counted fields, seconds fields, case -> row) of
        one hour's cases; kept up to date in place by later writes (see _write)."""
        key = (axis, hour)
        if key not in self._arrays:
            ids = sorted(self.members.get(key, ()))
            rows = [self.packed[c][axis] for c in ids]
            times = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            districts = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            width = len(COUNTED) + len(SECONDS) if axis == "filed" else 0
            fields = np.array([r[2:] for r in rows], dtype=float).reshape(len(rows), width)
            self._arrays[key] = (times, districts, fields[:, :len(COUNTED)], fields[:, len(COUNTED):],
                                 {c: i for i, c in enumerate(ids)})
        return self._arrays[key]

    def counts(self, start: dt.datetime, end: dt.datetime) -> dict:
        """Reported, closed and filed (with what became of the cohort) in [start, end), a
        part of one held hour, per district and city: the shape of CaseRollup.window,
        with only the districts that have cases (like the SQL edge query)."""
        out: dict[str, dict] = {"reported": {}, "closed": {}, "filed": {}}
        for axis in out:
            times, districts, counted, seconds, _ = self._arrays_of(axis, floor_hour(start))
            inside = (times >= _us(start)) & (times < _us(end))
            if not inside.any():
                continue
            codes = list(self.codes)
            d, size = districts[inside], len(codes)
            n = np.bincount(d, minlength=size)
            sums = {"filed": n}
            if axis == "filed":
                for j, f in enumerate(COUNTED):
                    sums[f] = np.bincount(d, weights=counted[inside, j], minlength=size)
                for j, f in enumerate(SECONDS):
                    sums[f] = np.bincount(d, weights=seconds[inside, j], minlength=size)
            for i in np.flatnonzero(n):
                out[axis][codes[i]] = _values(sums, int(i), axis)
            out[axis][CITY] = _values({f: np.array([v.sum()]) for f, v in sums.items()}, 0, axis)
        return out

    def deadlines(self, ranges: list[tuple[dt.datetime, dt.datetime]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(deadlines in us, district indices, the districts by index) of the running cases
        due in [a, b) for each range (inside held hours): the part-hours that an hourly
        histogram of deadlines cannot split."""
        times, districts = [], []
        for a, b in ranges:
            t, d, *_ = self._arrays_of("deadline", floor_hour(a))
            inside = (t >= _us(a)) & (t < _us(b))
            times.append(t[inside])
            districts.append(d[inside])
        return (np.concatenate(times) if times else np.zeros(0, dtype=np.int64),
                np.concatenate(districts) if districts else np.zeros(0, dtype=np.int64), list(self.codes))


def _values(sums: dict[str, np.ndarray], i: int, axis: str) -> dict:
    if axis != "filed":
        return {"n": int(sums["filed"][i])}
    return {"filed": int(sums["filed"][i]), **{f: int(round(sums[f][i])) for f in COUNTED},
            **{f: float(sums[f][i]) for f in SECONDS}}
