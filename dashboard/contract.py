"""The snapshot's shape: one typed definition that producers and readers share.

Each section the poller publishes (`dashboard.kpis.sections`) is described here as a
TypedDict. Producers build these shapes, readers (the wall, the home page, the weekly
report) read their fields, and `problems(name, data)` checks a produced section against
its definition: the tests run it on every section of a real poll, so a renamed or
missing field fails a test instead of blanking a panel behind a broad `except`.

Keys that are data (district codes, category codes, period names) are `dict[str, X]`;
fixed keys are TypedDict fields. Figures that may be missing (a rate with an empty
denominator) are `float | None`. Times are ISO-8601 text, as the snapshot is JSON.
"""
from __future__ import annotations

import types
import typing
from typing import Literal, TypedDict, Union

PERIODS = ("today", "week", "month", "year")


# --- shared pieces ---------------------------------------------------------------------
class _Figure(TypedDict):
    value: float | None
    prev: float | None
    delta: float | None


class Figure(_Figure, total=False):
    """A figure of a period with the comparison period's figure and the difference. The
    flags appear only when set: the value (or prev) is None because the city does not
    record the figure's inputs, not because there was nothing to count (docs/kpis.md).
    (Optional keys are spelled as a `total=False` subclass: `NotRequired` is not seen
    under postponed annotations.)"""

    not_recorded: Literal[True]
    prev_not_recorded: Literal[True]


class Period(TypedDict):
    name: str
    start: str
    prev_start: str


# --- cases -----------------------------------------------------------------------------
CaseFigures = dict[str, Figure]  # KPI name -> figure (reported, closure_rate, ...)


class CasePeriodKpis(TypedDict):
    city: CaseFigures
    by_district: dict[str, CaseFigures]


class OpenCases(TypedDict):
    total: int
    by_stage: dict[str, int]
    by_district: dict[str, dict[str, int]]  # district -> {"total", stage...: n}
    by_category: dict[str, int]
    by_district_category_stage: list[list[str | int]]  # [district, category, stage, n]


class AgeingBand(TypedDict):
    min_hours: int
    max_hours: int | None
    n: int
    by_district: dict[str, int]


class _Overdue(TypedDict):
    total: int
    by_district: dict[str, int]
    ageing: list[AgeingBand]


class Overdue(_Overdue, total=False):
    not_recorded: Literal[True]  # no case of the city has a deadline: the counts are all 0


class DayCounts(TypedDict):
    date: str
    reported: int
    closed: int


class CasesSection(TypedDict):
    districts: list[str]
    recorded: list[str]  # the inputs the city records (filed, closed, handled, deadline): docs/kpis.md
    periods: dict[str, Period]
    periods_kpis: dict[str, CasePeriodKpis]
    open: OpenCases
    overdue: Overdue
    series_30d: list[DayCounts]


# --- ticker ----------------------------------------------------------------------------
class TickerRow(TypedDict):
    id: int
    external_id: str
    district: str
    category: str
    status: str
    source: str | None
    address: str | None
    reported_at: str
    deadline_at: str | None


class TickerSection(TypedDict):
    newest: list[TickerRow]
    newly_overdue: list[TickerRow]


# --- enterprise ------------------------------------------------------------------------
class EnterpriseFigures(TypedDict):
    visits: Figure
    enterprises_visited: Figure
    problems_raised: Figure
    problems_resolved: Figure
    resolution_rate: Figure
    avg_resolve_days: Figure


class GridFigures(TypedDict):
    visits: Figure
    enterprises_visited: Figure
    coverage: Figure


class ProblemTypeFigures(TypedDict):
    raised: Figure
    resolution_rate: Figure


class EnterprisePeriod(TypedDict):
    city: EnterpriseFigures
    by_district: dict[str, EnterpriseFigures]
    by_exclusive_grid: dict[str, GridFigures]
    by_type: dict[str, ProblemTypeFigures]


class OpenProblems(TypedDict):
    total: int
    by_district: dict[str, int]
    by_type: dict[str, int]


class EnterpriseCounts(TypedDict):
    enterprises: int
    above_scale: int
    in_exclusive_grids: int


class ExclusiveGrid(TypedDict):
    grid_id: int
    district: str
    name_zh: str
    host_unit: str | None
    host_kind: str | None
    members: int


class EnterpriseSection(TypedDict):
    districts: list[str]
    periods: dict[str, EnterprisePeriod]
    open_problems: OpenProblems
    enterprises: dict[str, EnterpriseCounts]  # district code or "city"
    exclusive_grids: list[ExclusiveGrid]


# --- parking ---------------------------------------------------------------------------
class Programme(TypedDict):
    added: int
    revitalised: int
    shared: int


class CurvePoint(TypedDict):
    hour: int
    occupancy: float | None


class ParkingFigures(TypedDict):
    facilities: int
    capacity: int
    demo_sites: int
    on_street_facilities: int
    off_street_facilities: int
    shared_facilities: int
    non_motor_facilities: int
    on_street_capacity: int
    off_street_capacity: int
    shared_capacity: int
    non_motor_capacity: int
    non_motor_points: int
    reporting_facilities: int
    stale_facilities: int
    out_of_range_readings: int
    out_of_range_today: int  # readings read today outside 0..capacity, clamped
    occupied_now: int
    reporting_capacity: int  # motor-vehicle spaces of the facilities in occupied_now
    occupancy_now: float | None
    programme_this_year: Programme
    today_curve: list[CurvePoint]


class ParkingSection(TypedDict):
    districts: list[str]
    stale_after_minutes: float
    city: ParkingFigures
    by_district: dict[str, ParkingFigures]


# --- the stock at 00:00 today --------------------------------------------------------
class DistrictStock(TypedDict):
    open: int
    overdue: int
    by_category: dict[str, int]  # top-level category -> open cases


class DayStartSection(TypedDict):
    at: str  # 00:00 today, local, as UTC ISO-8601
    open: int
    overdue: int
    by_category: dict[str, int]
    by_district: dict[str, DistrictStock]


SECTIONS: dict[str, type] = {"cases": CasesSection, "ticker": TickerSection,
                             "enterprise": EnterpriseSection, "parking": ParkingSection,
                             "day_start": DayStartSection}


# --- checking a produced section -------------------------------------------------------
def problems(name: str, data: object, limit: int = 20) -> list[str]:
    """What in `data` differs from section `name`'s definition, as `path: problem` lines
    (at most `limit`); empty when it conforms. An unknown section name is a problem."""
    if name not in SECTIONS:
        return [f"{name}: no definition in dashboard/contract.py"]
    found: list[str] = []
    _check(SECTIONS[name], data, name, found, limit)
    return found


def _is_typeddict(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _check(tp, value, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return
        for option in options:
            trial: list[str] = []
            _check(option, value, path, trial, limit)
            if not trial:
                return
        found.append(f"{path}: {_name(value)} is not {_spell(tp)}")
        return
    if tp is type(None):
        if value is not None:
            found.append(f"{path}: {_name(value)} is not null")
        return
    if origin is Literal:
        if value not in typing.get_args(tp):
            found.append(f"{path}: {value!r} is not one of {typing.get_args(tp)}")
        return
    if _is_typeddict(tp):
        if not isinstance(value, dict):
            found.append(f"{path}: {_name(value)} is not an object")
            return
        hints = typing.get_type_hints(tp)
        for key in sorted(tp.__required_keys__ - value.keys()):
            found.append(f"{path}.{key}: missing")
        for key in sorted(value.keys() - hints.keys()):
            found.append(f"{path}.{key}: not in the definition")
        for key, hint in hints.items():
            if key in value:
                _check(hint, value[key], f"{path}.{key}", found, limit)
        return
    if origin is dict:
        _key, item = typing.get_args(tp)
        if not isinstance(value, dict):
            found.append(f"{path}: {_name(value)} is not an object")
            return
        for key, v in value.items():
            _check(item, v, f"{path}[{key}]", found, limit)
        return
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            found.append(f"{path}: {_name(value)} is not a list")
            return
        for i, v in enumerate(value):
            _check(item, v, f"{path}[{i}]", found, limit)
        return
    if tp is float:  # JSON has one number type: an int is a float
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    if not ok:
        found.append(f"{path}: {_name(value)} is not {tp.__name__}")


def _name(value) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:60]


def _spell(tp) -> str:
    return " | ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(tp))
