"""Ad-hoc queries behind the browsing pages (/browse, /case/<ref>, the enterprise and
parking drills). Each returns plain dicts; counting and summing happen in SQL.

Every function takes `districts`: the district codes the caller may see (already
narrowed to the request's scope by dashboard/browse.py), or None for every district.
An empty list means "nothing": the query returns no rows rather than everything.

`CaseFilter` narrows cases by district, street, grid, category and source; it is
applied to every case query here, so the KPI table, the case list, its count and the
export all read the same set.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, and_, case, false, func, or_, select

from datasource.schema import (RUNNING_STATUSES, Case, CaseEvent, Enterprise,
                               EnterpriseProblem, EnterpriseVisit, Grid, OccupancyReading,
                               ParkingFacility, Street)
from datasource import occupancy, stages
from datasource.sqlfuncs import epoch_seconds, exact_mean

GROUPS = {"district": Case.district_code, "street": Case.street_id, "grid": Case.grid_id}
# the columns a case list may be sorted by (a whitelist: sort keys come from the browser)
CASE_SORTS = {"reported_at": Case.reported_at, "filed_at": Case.filed_at, "closed_at": Case.closed_at,
              "deadline_at": Case.deadline_at, "external_id": Case.external_id, "status": Case.status,
              "category": Case.category_code, "district": Case.district_code, "source": Case.source,
              "rework_count": Case.rework_count}
LISTS = ("reported", "filed", "closed", "open", "overdue")


@dataclass(frozen=True)
class CaseFilter:
    districts: tuple[str, ...] | None = None  # None: every district
    street_id: int | None = None
    grid_id: int | None = None
    categories: tuple[str, ...] | None = None  # category codes (a top level and its subcategories)
    source: str | None = None

    def where(self) -> list:
        conds = []
        if self.districts is not None:
            conds.append(Case.district_code.in_(self.districts) if self.districts else false())
        if self.street_id is not None:
            conds.append(Case.street_id == self.street_id)
        if self.grid_id is not None:
            conds.append(Case.grid_id == self.grid_id)
        if self.categories is not None:
            conds.append(Case.category_code.in_(self.categories) if self.categories else false())
        if self.source is not None:
            conds.append(Case.source == self.source)
        return conds


def _rows(engine: Engine, stmt) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def _count_if(cond):
    return func.sum(case((cond, 1), else_=0))


def _sum_if(cond, value):
    return func.sum(case((cond, value), else_=None))


def _within(col, window):
    start, end = window
    return and_(col >= start, col < end)


def _district_in(col, districts):
    if districts is None:
        return []
    return [col.in_(districts) if districts else false()]


# -- predicates of the case sets a list can show ------------------------------------
def open_at(t: dt.datetime):
    """Open at instant t: its stage at t is an open one (datasource/stages.py, from the
    lifecycle times without the case events, so that any window stays cheap). At t = now
    exactly the live open set (see docs/browsing.md)."""
    return stages.open_at(t, events=False)


def overdue_at(t: dt.datetime):
    """Open at t in a running stage (not parked) with its deadline before t."""
    return and_(stages.may_be_open_at(t), Case.deadline_at < t,
                stages.stage_at(t, events=False).in_(RUNNING_STATUSES))


def list_predicate(kind: str, window: tuple[dt.datetime, dt.datetime]):
    start, end = window
    if kind == "reported":
        return _within(Case.reported_at, window)
    if kind == "filed":
        return and_(_within(Case.filed_at, window), Case.voided.is_(False))
    if kind == "closed":
        return _within(Case.closed_at, window)
    if kind == "open":
        return open_at(end)
    if kind == "overdue":
        return overdue_at(end)
    raise ValueError(f"unknown case list {kind!r}")


# -- the KPI table: one row per district, street or grid, two windows at once --------
COHORT_FIELDS = ("filed", "closed", "closed_on_time", "handled", "handled_on_time", "reworked",
                 "extended", "handle_seconds", "close_seconds", "with_deadline")


def _cohort_sums(inside, suffix: str) -> list:
    handled = Case.handled_at.is_not(None)
    closed = Case.closed_at.is_not(None)
    handle_s = epoch_seconds(Case.handled_at) - epoch_seconds(Case.filed_at)
    close_s = epoch_seconds(Case.closed_at) - epoch_seconds(Case.filed_at)
    return [_count_if(inside).label("filed" + suffix),
            _count_if(and_(inside, closed)).label("closed" + suffix),
            _count_if(and_(inside, closed, Case.closed_at <= Case.deadline_at)).label("closed_on_time" + suffix),
            _count_if(and_(inside, handled)).label("handled" + suffix),
            _count_if(and_(inside, handled, Case.handled_at <= Case.deadline_at)).label("handled_on_time" + suffix),
            _count_if(and_(inside, Case.rework_count > 0)).label("reworked" + suffix),
            _count_if(and_(inside, Case.extended)).label("extended" + suffix),
            _sum_if(and_(inside, handled), handle_s).label("handle_seconds" + suffix),
            _sum_if(and_(inside, closed), close_s).label("close_seconds" + suffix),
            _count_if(and_(inside, Case.deadline_at.is_not(None))).label("with_deadline" + suffix)]


def case_kpis(engine: Engine, group: str, flt: CaseFilter, cur: tuple[dt.datetime, dt.datetime],
              prev: tuple[dt.datetime, dt.datetime]) -> dict[str, list[dict]]:
    """The case KPIs of `cur` and `prev` per `group` (district, street or grid).

    Four statements, each over both windows (columns suffixed _cur and _prev):
    `reported`, `closed` (counts in the window), `cohort` (cases filed in the window,
    not voided, with what became of them now) and `stock` (open and overdue at each
    window's end). Rows carry `key`, the group's code or id (None: no street/grid)."""
    key = GROUPS[group]
    where = flt.where()
    windows = {"_cur": cur, "_prev": prev}
    out = {}
    for name, col in (("reported", Case.reported_at), ("closed", Case.closed_at)):
        stmt = (select(key.label("key"), *[_count_if(_within(col, w)).label(name + s) for s, w in windows.items()])
                .where(*where, or_(*[_within(col, w) for w in windows.values()]))
                .group_by(key))
        out[name] = _rows(engine, stmt)
    cohort_cols = [c for s, w in windows.items() for c in _cohort_sums(_within(Case.filed_at, w), s)]
    out["cohort"] = _rows(engine, select(key.label("key"), *cohort_cols)
                          .where(*where, Case.voided.is_(False),
                                 or_(*[_within(Case.filed_at, w) for w in windows.values()]))
                          .group_by(key))
    ends = {s: w[1] for s, w in windows.items()}
    earliest = min(ends.values())
    stock_cols = []
    for s, t in ends.items():
        stock_cols += [_count_if(open_at(t)).label("open" + s), _count_if(overdue_at(t)).label("overdue" + s)]
    out["stock"] = _rows(engine, select(key.label("key"), *stock_cols)
                         .where(*where, Case.voided.is_(False), Case.reported_at < max(ends.values()),
                                or_(Case.closed_at.is_(None), Case.closed_at >= earliest))
                         .group_by(key))
    return out


# -- the case list -------------------------------------------------------------------
_LIST_COLUMNS = (Case.id, Case.external_id, Case.source, Case.category_code.label("category"),
                 Case.district_code.label("district"), Case.street_id, Street.name_zh.label("street_name"),
                 Case.grid_id, Grid.name_zh.label("grid_name"), Case.address, Case.status,
                 stages.stage_now().label("stage"), Case.reported_at, Case.filed_at, Case.handled_at, Case.closed_at, Case.deadline_at,
                 Case.rework_count, Case.extended)


def count_cases(engine: Engine, flt: CaseFilter, kind: str, window) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Case)
                            .where(*flt.where(), list_predicate(kind, window))).scalar_one()


def case_page(engine: Engine, flt: CaseFilter, kind: str, window, *, sort: str = "reported_at",
              descending: bool = True, offset: int = 0, limit: int = 100) -> list[dict]:
    """One page of a case list, sorted in SQL (ties broken by id, so pages never overlap).
    Empty values sort as each database puts them by default (the order its indexes give)."""
    col = CASE_SORTS[sort]
    order = [col.desc(), Case.id.desc()] if descending else [col.asc(), Case.id.asc()]
    stmt = (select(*_LIST_COLUMNS)
            .outerjoin(Street, Street.id == Case.street_id).outerjoin(Grid, Grid.id == Case.grid_id)
            .where(*flt.where(), list_predicate(kind, window))
            .order_by(*order).offset(offset).limit(limit))
    return _rows(engine, stmt)


def case_by_ref(engine: Engine, ref: str, districts: list[str] | None) -> dict | None:
    """A case by its id (digits) or external id, only if it is in one of `districts`."""
    cond = Case.external_id == ref
    if ref.isdigit() and len(ref) < 18:
        cond = or_(cond, Case.id == int(ref))
    stmt = (select(*_LIST_COLUMNS, Case.summary, Case.department, Case.dispatched_at, Case.verified_at,
                   Case.voided, Case.lat, Case.lon)
            .outerjoin(Street, Street.id == Case.street_id).outerjoin(Grid, Grid.id == Case.grid_id)
            .where(cond, *_district_in(Case.district_code, districts)).order_by(Case.id).limit(1))
    rows = _rows(engine, stmt)
    return rows[0] if rows else None


def case_events(engine: Engine, case_id: int) -> list[dict]:
    E = CaseEvent
    return _rows(engine, select(E.id, E.from_status, E.to_status, E.at, E.actor, E.note)
                 .where(E.case_id == case_id).order_by(E.at, E.id))


# -- names for the filters -----------------------------------------------------------
def streets(engine: Engine, districts: list[str] | None) -> list[dict]:
    return _rows(engine, select(Street.id, Street.code, Street.district_code.label("district"),
                                Street.name_zh, Street.name_en)
                 .where(*_district_in(Street.district_code, districts)).order_by(Street.district_code, Street.id))


def grids(engine: Engine, districts: list[str] | None, street_id: int | None = None,
          kind: str | None = None) -> list[dict]:
    stmt = (select(Grid.id, Grid.code, Grid.district_code.label("district"), Grid.street_id, Grid.level,
                   Grid.kind, Grid.name_zh, Grid.host_unit, Grid.host_kind)
            .where(*_district_in(Grid.district_code, districts)).order_by(Grid.street_id, Grid.id))
    if street_id is not None:
        stmt = stmt.where(Grid.street_id == street_id)
    if kind is not None:
        stmt = stmt.where(Grid.kind == kind)
    return _rows(engine, stmt)


def grid_by_id(engine: Engine, grid_id: int, districts: list[str] | None) -> dict | None:
    rows = _rows(engine, select(Grid.id, Grid.district_code.label("district"), Grid.street_id, Grid.kind,
                                Grid.name_zh, Grid.host_unit)
                 .where(Grid.id == grid_id, *_district_in(Grid.district_code, districts)))
    return rows[0] if rows else None


# -- enterprise drill ----------------------------------------------------------------
def exclusive_grid_kpis(engine: Engine, districts: list[str] | None, cur, prev) -> list[dict]:
    """Per exclusive grid: members, visits and distinct members visited in both windows,
    problems raised in `cur` and open problems now."""
    V, E, P = EnterpriseVisit, Enterprise, EnterpriseProblem
    members = (select(E.exclusive_grid_id.label("grid_id"), func.count().label("members"),
                      _count_if(E.above_scale).label("above_scale"))
               .where(E.exclusive_grid_id.is_not(None)).group_by(E.exclusive_grid_id).subquery())
    cols = []
    for s, w in (("_cur", cur), ("_prev", prev)):
        inside = _within(V.visited_at, w)
        cols += [_count_if(inside).label("visits" + s),
                 func.count(func.distinct(case((inside, V.enterprise_id), else_=None))).label("visited" + s)]
    visits = (select(E.exclusive_grid_id.label("grid_id"), *cols).join(E, E.id == V.enterprise_id)
              .where(E.exclusive_grid_id.is_not(None),
                     or_(_within(V.visited_at, cur), _within(V.visited_at, prev)))
              .group_by(E.exclusive_grid_id).subquery())
    problems = (select(E.exclusive_grid_id.label("grid_id"),
                       _count_if(_within(P.raised_at, cur)).label("raised"),
                       _count_if(P.status == "open").label("open_problems"))
                .join(E, E.id == P.enterprise_id).where(E.exclusive_grid_id.is_not(None))
                .group_by(E.exclusive_grid_id).subquery())
    stmt = (select(Grid.id.label("grid_id"), Grid.district_code.label("district"), Grid.name_zh,
                   Grid.host_unit, Grid.host_kind,
                   func.coalesce(members.c.members, 0).label("members"),
                   func.coalesce(members.c.above_scale, 0).label("above_scale"),
                   *[func.coalesce(visits.c[c], 0).label(c) for c in
                     ("visits_cur", "visited_cur", "visits_prev", "visited_prev")],
                   func.coalesce(problems.c.raised, 0).label("raised"),
                   func.coalesce(problems.c.open_problems, 0).label("open_problems"))
            .outerjoin(members, members.c.grid_id == Grid.id)
            .outerjoin(visits, visits.c.grid_id == Grid.id)
            .outerjoin(problems, problems.c.grid_id == Grid.id)
            .where(Grid.kind == "exclusive", *_district_in(Grid.district_code, districts))
            .order_by(Grid.district_code, Grid.id))
    return _rows(engine, stmt)


def grid_enterprises(engine: Engine, grid_id: int, districts: list[str] | None, cur) -> list[dict]:
    """The members of one exclusive grid: visits in `cur`, last visit, open problems now."""
    V, E, P = EnterpriseVisit, Enterprise, EnterpriseProblem
    visits = (select(V.enterprise_id, _count_if(_within(V.visited_at, cur)).label("visits"),
                     func.max(V.visited_at).label("last_visit"))
              .join(E, E.id == V.enterprise_id).where(E.exclusive_grid_id == grid_id)
              .group_by(V.enterprise_id).subquery())
    problems = (select(P.enterprise_id, _count_if(P.status == "open").label("open_problems"),
                       func.count().label("problems"))
                .join(E, E.id == P.enterprise_id).where(E.exclusive_grid_id == grid_id)
                .group_by(P.enterprise_id).subquery())
    return _rows(engine, select(E.id, E.external_id, E.name, E.district_code.label("district"),
                                E.above_scale, E.industry,
                                func.coalesce(visits.c.visits, 0).label("visits"), visits.c.last_visit,
                                func.coalesce(problems.c.problems, 0).label("problems"),
                                func.coalesce(problems.c.open_problems, 0).label("open_problems"))
                 .outerjoin(visits, visits.c.enterprise_id == E.id)
                 .outerjoin(problems, problems.c.enterprise_id == E.id)
                 .where(E.exclusive_grid_id == grid_id, *_district_in(E.district_code, districts))
                 .order_by(E.name, E.id))


def problems_by_type(engine: Engine, districts: list[str] | None, grid_id: int | None, cur, prev) -> list[dict]:
    """Per problem type: raised in both windows, resolved of those raised in `cur`, open now."""
    P, E = EnterpriseProblem, Enterprise
    stmt = (select(P.problem_type,
                   _count_if(_within(P.raised_at, cur)).label("raised_cur"),
                   _count_if(_within(P.raised_at, prev)).label("raised_prev"),
                   _count_if(and_(_within(P.raised_at, cur), P.resolved_at.is_not(None))).label("resolved_cur"),
                   _count_if(and_(_within(P.raised_at, prev), P.resolved_at.is_not(None))).label("resolved_prev"),
                   _count_if(P.status == "open").label("open_now"))
            .where(*_district_in(P.district_code, districts)).group_by(P.problem_type).order_by(P.problem_type))
    if grid_id is not None:
        stmt = stmt.where(P.enterprise_id.in_(select(E.id).where(E.exclusive_grid_id == grid_id)))
    return _rows(engine, stmt)


def open_problems(engine: Engine, districts: list[str] | None, grid_id: int | None,
                  problem_type: str | None, limit: int) -> tuple[int, list[dict]]:
    """(how many, the oldest `limit`) open problems, with their enterprise."""
    P, E = EnterpriseProblem, Enterprise
    conds = [P.status == "open", *_district_in(P.district_code, districts)]
    if grid_id is not None:
        conds.append(E.exclusive_grid_id == grid_id)
    if problem_type is not None:
        conds.append(P.problem_type == problem_type)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(P).join(E, E.id == P.enterprise_id)
                         .where(*conds)).scalar_one()
    rows = _rows(engine, select(P.id, P.external_id, P.problem_type, P.summary, P.department,
                                P.district_code.label("district"), P.raised_at, E.name.label("enterprise"),
                                E.exclusive_grid_id)
                 .join(E, E.id == P.enterprise_id).where(*conds)
                 .order_by(P.raised_at, P.id).limit(limit))
    return n, rows


# -- parking drill -------------------------------------------------------------------
def facilities(engine: Engine, districts: list[str] | None, since: dt.datetime, until: dt.datetime) -> list[dict]:
    """Every facility with its newest reading observed in [since, until] (None when stale)."""
    R, F = OccupancyReading, ParkingFacility

    def newest(col):
        return (select(col).where(R.facility_id == F.id, R.observed_at >= since, R.observed_at <= until)
                .order_by(R.observed_at.desc()).limit(1).scalar_subquery())

    return _rows(engine, select(F.id, F.external_id, F.name, F.district_code.label("district"), F.kind,
                                F.capacity, F.programme, F.demo_site, F.since,
                                newest(R.observed_at).label("observed_at"), newest(R.occupied).label("occupied"))
                 .where(*_district_in(F.district_code, districts)).order_by(F.district_code, F.id))


def facility_names(engine: Engine, districts: list[str] | None) -> list[dict]:
    F = ParkingFacility
    return _rows(engine, select(F.id, F.name).where(*_district_in(F.district_code, districts))
                 .order_by(F.district_code, F.id))


def facility(engine: Engine, facility_id: int, districts: list[str] | None) -> dict | None:
    F = ParkingFacility
    rows = _rows(engine, select(F.id, F.external_id, F.name, F.district_code.label("district"), F.kind,
                                F.capacity).where(F.id == facility_id, *_district_in(F.district_code, districts)))
    return rows[0] if rows else None


def occupancy_history(engine: Engine, facility_id: int, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """One facility's readings per UTC hour in [start, end): mean clamped occupancy, readings,
    and how many were out of range (hours older than OCCUPANCY_RAW_DAYS from occupancy_hourly)."""
    fh = occupancy.facility_hours(start, end, inclusive=False, facility_id=facility_id)
    return _rows(engine, select(fh.c.hour, exact_mean(fh.c.occupied, fh.c.readings).label("occupied"),
                                fh.c.readings, fh.c.out_of_range).order_by(fh.c.hour))
