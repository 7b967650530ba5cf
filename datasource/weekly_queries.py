"""Aggregate queries for the weekly report: figures as they stood at a past instant `at`.

The live KPIs (kpi_queries.py) count the open set and cohort outcomes as they are now.
A report of a past week reconstructs them at the week's end from the timestamps the
store keeps, so that re-running a week later gives the same figures:

- its stage at T, and so whether it was open at T: datasource/stages.py's `stage_at`, the
  definition the live KPIs share (a case with nothing recorded after T stood at T as it
  stands now; otherwise its newest open event before T, else its lifecycle times; a
  voided case is never open, the store keeps no void time);
- an outcome at T (closed, handled, on time): its timestamp is before T.

Every count happens in SQL; rows come back as plain dicts.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Engine, and_, case, cast, func, literal, or_, select

from datasource import occupancy
from datasource.schema import OPEN_STATUSES, Case, EnterpriseProblem, EnterpriseVisit, ParkingFacility
from datasource.sqlfuncs import epoch_seconds, utc_hour
from datasource.stages import may_be_open_at, stage_at


def _rows(engine: Engine, stmt) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def _flag(cond):
    return func.sum(case((cond, 1), else_=0))


def _before(col, at: dt.datetime):
    return and_(col.is_not(None), col < at)


def _open_cases_at(at: dt.datetime, *columns):
    """A subquery of the cases open at `at` with their stage and the given columns."""
    staged = (select(Case.id, Case.district_code.label("district"), stage_at(at).label("stage"), *columns)
              .where(may_be_open_at(at)).subquery())
    return select(staged).where(staged.c.stage.in_(OPEN_STATUSES)).subquery()


def open_at(engine: Engine, at: dt.datetime) -> list[dict]:
    """Cases open at `at` per district, category and stage (the shape of
    kpi_queries.open_by_district_category_status)."""
    sub = _open_cases_at(at, Case.category_code.label("category"))
    return _rows(engine, select(sub.c.district, sub.c.category, sub.c.stage.label("status"),
                                func.count().label("n"))
                 .group_by(sub.c.district, sub.c.category, sub.c.stage))


def overdue_at(engine: Engine, at: dt.datetime, edges_hours: list[float]) -> list[dict]:
    """Cases open at `at` in a running stage (not parked) whose deadline had passed, per
    district and ageing bucket (the shape of kpi_queries.overdue_by_age)."""
    sub = _open_cases_at(at, Case.deadline_at)
    whens = [(sub.c.deadline_at > at - dt.timedelta(hours=h), i - 1) for i, h in enumerate(edges_hours) if i > 0]
    bucket = case(*whens, else_=len(edges_hours) - 1) if whens else literal(0)
    return _rows(engine, select(sub.c.district, bucket.label("bucket"), func.count().label("n"))
                 .where(sub.c.stage != "parked", sub.c.deadline_at < at)
                 .group_by(sub.c.district, bucket))


_CASE_COLUMNS = (Case.external_id, Case.category_code.label("category"), Case.source, Case.address,
                 Case.reported_at, Case.filed_at, Case.deadline_at)


def top_overdue_at(engine: Engine, at: dt.datetime, per_district: int) -> list[dict]:
    """The `per_district` most overdue cases of each district at `at` (oldest deadline
    first), with their stage then. The city's top N is among these."""
    sub = _open_cases_at(at, *_CASE_COLUMNS)
    rank = func.row_number().over(partition_by=sub.c.district,
                                  order_by=(sub.c.deadline_at.asc(), sub.c.id.asc())).label("rank")
    ranked = (select(sub, rank).where(sub.c.stage != "parked", sub.c.deadline_at < at).subquery())
    return _rows(engine, select(ranked).where(ranked.c.rank <= per_district)
                 .order_by(ranked.c.deadline_at, ranked.c.id))


def newest_before(engine: Engine, at: dt.datetime, limit: int) -> list[dict]:
    """The newest cases reported before `at` (the ticker's "newest" at that time)."""
    return _rows(engine, select(Case.id, Case.external_id, Case.district_code.label("district"),
                                Case.category_code.label("category"), Case.status, Case.source,
                                Case.address, Case.reported_at, Case.deadline_at)
                 .where(Case.reported_at < at)
                 .order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit))


def newly_overdue_at(engine: Engine, at: dt.datetime, since: dt.datetime, limit: int) -> list[dict]:
    """Cases open and running at `at` whose deadline passed in [since, at), newest first;
    `status` is their stage at `at`."""
    sub = _open_cases_at(at, Case.external_id, Case.category_code.label("category"), Case.source,
                         Case.address, Case.reported_at, Case.deadline_at)
    return _rows(engine, select(sub.c.id, sub.c.external_id, sub.c.district, sub.c.category,
                                sub.c.stage.label("status"), sub.c.source, sub.c.address,
                                sub.c.reported_at, sub.c.deadline_at)
                 .where(sub.c.stage != "parked", sub.c.deadline_at >= since, sub.c.deadline_at < at)
                 .order_by(sub.c.deadline_at.desc(), sub.c.id.desc()).limit(limit))


def cohorts_by_hour_at(engine: Engine, since: dt.datetime, at: dt.datetime) -> list[dict]:
    """Cases filed per district and UTC hour in [since, at), not voided, with what had
    become of them by `at` (the shape of kpi_queries.filed_cohorts_by_hour)."""
    handled, closed = _before(Case.handled_at, at), _before(Case.closed_at, at)
    handle_s = epoch_seconds(Case.handled_at) - epoch_seconds(Case.filed_at)
    close_s = epoch_seconds(Case.closed_at) - epoch_seconds(Case.filed_at)
    hour = utc_hour(Case.filed_at)
    return _rows(engine, select(
        Case.district_code.label("district"), hour.label("hour"), func.count().label("filed"),
        _flag(closed).label("closed"),
        _flag(and_(closed, Case.closed_at <= Case.deadline_at)).label("closed_on_time"),
        _flag(handled).label("handled"),
        _flag(and_(handled, Case.handled_at <= Case.deadline_at)).label("handled_on_time"),
        # the rework count and the extension flag carry no time: as the store has them now
        _flag(Case.rework_count > 0).label("reworked"),
        _flag(Case.extended).label("extended"),
        func.coalesce(func.sum(case((handled, handle_s), else_=None)), 0.0).label("handle_seconds"),
        func.coalesce(func.sum(case((closed, close_s), else_=None)), 0.0).label("close_seconds"),
        _flag(Case.deadline_at.is_not(None)).label("with_deadline"))
        .where(Case.filed_at >= since, Case.filed_at < at, Case.voided.is_(False))
        .group_by(Case.district_code, hour))


# -- enterprise service ---------------------------------------------------------------
def problems_raised_at(engine: Engine, start: dt.datetime, end: dt.datetime, at: dt.datetime) -> list[dict]:
    """Problems raised in [start, end) per district and type, with how many were resolved
    before `at` and the days it took (the shape of kpi_queries.problems_raised)."""
    P = EnterpriseProblem
    resolved = _before(P.resolved_at, at)
    days = (epoch_seconds(P.resolved_at) - epoch_seconds(P.raised_at)) / 86400.0
    return _rows(engine, select(P.district_code.label("district"), P.problem_type.label("type"),
                                func.count().label("raised"), _flag(resolved).label("resolved"),
                                func.coalesce(func.sum(case((resolved, days), else_=None)), 0.0)
                                .label("resolve_days"))
                 .where(P.raised_at >= start, P.raised_at < end)
                 .group_by(P.district_code, P.problem_type))


def problems_open_at(engine: Engine, at: dt.datetime) -> list[dict]:
    """Problems raised before `at` and not resolved before it, per district and type."""
    P = EnterpriseProblem
    return _rows(engine, select(P.district_code.label("district"), P.problem_type.label("type"),
                                func.count().label("open"))
                 .where(P.raised_at < at, or_(P.resolved_at.is_(None), P.resolved_at >= at))
                 .group_by(P.district_code, P.problem_type))


def visits_by_hour(engine: Engine, since: dt.datetime, until: dt.datetime) -> list[dict]:
    """Visits per district and UTC hour in [since, until) (folded into local days)."""
    V = EnterpriseVisit
    hour = utc_hour(V.visited_at)
    return _rows(engine, select(V.district_code.label("district"), hour.label("hour"),
                                func.count().label("visits"))
                 .where(V.visited_at >= since, V.visited_at < until).group_by(V.district_code, hour))


# -- parking --------------------------------------------------------------------------
def programme_between(engine: Engine, first: dt.date, last: dt.date) -> list[dict]:
    """Programme facilities (added / revitalised / shared) whose `since` is a local date in
    [first, last], per district and programme."""
    F = ParkingFacility
    return _rows(engine, select(F.district_code.label("district"), F.programme,
                                func.count().label("facilities"), func.sum(F.capacity).label("spaces"))
                 .where(F.programme.is_not(None), F.since >= first, F.since <= last)
                 .group_by(F.district_code, F.programme))


def readings_between(engine: Engine, since: dt.datetime, until: dt.datetime) -> list[dict]:
    """Occupancy readings observed in [since, until) per district (a completeness check),
    the folded hours' counts included (datasource/occupancy.py)."""
    F = ParkingFacility
    fh = occupancy.facility_hours(since, until, inclusive=False)
    return _rows(engine, select(F.district_code.label("district"),
                                cast(func.sum(fh.c.readings), BigInteger).label("readings"))
                 .select_from(fh).join(F, F.id == fh.c.facility_id).group_by(F.district_code))


# -- what a subject's feed reaches ---------------------------------------------------------
def latest_reading(engine: Engine) -> dt.datetime | None:
    """The newest occupancy reading's observation time, folded hours included."""
    from datasource.schema import OccupancyHourly, OccupancyReading

    with engine.connect() as conn:
        raw = conn.execute(select(func.max(OccupancyReading.observed_at))).scalar_one()
        folded = conn.execute(select(func.max(OccupancyHourly.last_observed_at))).scalar_one()
    return max((t for t in (raw, folded) if t is not None), default=None)


def latest_visit_change(engine: Engine) -> dt.datetime | None:
    """The newest `updated_at` among enterprise visits."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(EnterpriseVisit.updated_at))).scalar_one()
