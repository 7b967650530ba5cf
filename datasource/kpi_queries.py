"""The aggregate queries behind the KPIs. Each returns plain dicts; all counting is in SQL.

Rollups are keyed by district and UTC hour ('YYYY-MM-DD HH'): small (at most 8,760
rows a district a year), independent of the time zone (the dashboard folds hours into
local days), and the shape an incremental poller can maintain.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (BigInteger, Engine, and_, case, cast, distinct, func, literal, or_, select, text,
                        union_all)

from datasource.schema import (OPEN_STATUSES, RUNNING_SQL, RUNNING_STATUSES, Case, CaseCategory,
                               District, Enterprise, EnterpriseProblem, EnterpriseVisit, Grid,
                               OccupancyReading, ParkingFacility)
from datasource import occupancy
from datasource.browse_queries import open_at, overdue_at
from datasource.sqlfuncs import epoch_seconds, epoch_us, exact_mean, utc_hour
from datasource.stages import current_in, status_holds

# open cases that count against their deadline (挂账 parked cases are suspended)


def _rows(engine: Engine, stmt) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def _flag(cond):
    return func.sum(case((cond, 1), else_=0))


def districts(engine: Engine) -> list[dict]:
    return _rows(engine, select(District.code, District.name_zh, District.short_zh, District.name_en,
                                District.kind, District.center_lon, District.center_lat)
                 .order_by(District.sort_order, District.code))


def categories(engine: Engine) -> list[dict]:
    return _rows(engine, select(CaseCategory.code, CaseCategory.parent_code, CaseCategory.kind,
                                CaseCategory.name_zh, CaseCategory.name_en)
                 .order_by(CaseCategory.code))


# -- cases: hourly rollups ------------------------------------------------------------
def _between(col, since: dt.datetime, until: dt.datetime | None):
    return and_(col >= since, col < until) if until is not None else col >= since


def reported_by_hour(engine: Engine, since: dt.datetime, until: dt.datetime | None = None) -> list[dict]:
    """Cases reported per district and UTC hour in [since, until)."""
    hour = utc_hour(Case.reported_at)
    return _rows(engine, select(Case.district_code.label("district"), hour.label("hour"),
                                func.count().label("reported"))
                 .where(_between(Case.reported_at, since, until)).group_by(Case.district_code, hour))


def closed_by_hour(engine: Engine, since: dt.datetime, until: dt.datetime | None = None) -> list[dict]:
    """Cases closed per district and UTC hour in [since, until)."""
    hour = utc_hour(Case.closed_at)
    return _rows(engine, select(Case.district_code.label("district"), hour.label("hour"),
                                func.count().label("closed"))
                 .where(_between(Case.closed_at, since, until)).group_by(Case.district_code, hour))


def _cohort_columns() -> list:
    """What became of a group of filed cases: the aggregates behind every rate."""
    handled = Case.handled_at.is_not(None)
    closed = Case.closed_at.is_not(None)
    handle_s = epoch_seconds(Case.handled_at) - epoch_seconds(Case.filed_at)
    close_s = epoch_seconds(Case.closed_at) - epoch_seconds(Case.filed_at)
    return [func.count().label("filed"),
            _flag(closed).label("closed"),
            _flag(and_(closed, Case.closed_at <= Case.deadline_at)).label("closed_on_time"),
            _flag(handled).label("handled"),
            _flag(and_(handled, Case.handled_at <= Case.deadline_at)).label("handled_on_time"),
            _flag(Case.rework_count > 0).label("reworked"),
            _flag(Case.extended).label("extended"),
            func.coalesce(func.sum(case((handled, handle_s), else_=None)), 0.0).label("handle_seconds"),
            func.coalesce(func.sum(case((closed, close_s), else_=None)), 0.0).label("close_seconds"),
            _flag(Case.deadline_at.is_not(None)).label("with_deadline")]


def filed_cohorts_by_hour(engine: Engine, since: dt.datetime,
                          until: dt.datetime | None = None) -> list[dict]:
    """Cases filed per district and UTC hour (the rate cohorts), with what became of them."""
    hour = utc_hour(Case.filed_at)
    stmt = (select(Case.district_code.label("district"), hour.label("hour"), *_cohort_columns())
            .where(_between(Case.filed_at, since, until), Case.voided.is_(False))
            .group_by(Case.district_code, hour))
    return _rows(engine, stmt)


def in_ranges(engine: Engine, ranges: list[tuple[dt.datetime, dt.datetime]]) -> dict[str, list[dict]]:
    """The three case axes over a few short [start, end) ranges at once, rows labelled with
    the range's index as `part`: one statement per axis, whatever the number of ranges."""
    def part(col):
        return case(*[(and_(col >= a, col < b), i) for i, (a, b) in enumerate(ranges)], else_=None)

    def any_range(col):
        return or_(*[and_(col >= a, col < b) for a, b in ranges])

    out = {"reported": [], "closed": [], "cohort": []}
    if not ranges:
        return out
    rp, cp, fp = part(Case.reported_at), part(Case.closed_at), part(Case.filed_at)
    out["reported"] = _rows(engine, select(rp.label("part"), Case.district_code.label("district"),
                                           func.count().label("n"))
                            .where(any_range(Case.reported_at)).group_by(rp, Case.district_code))
    out["closed"] = _rows(engine, select(cp.label("part"), Case.district_code.label("district"),
                                         func.count().label("n"))
                          .where(any_range(Case.closed_at)).group_by(cp, Case.district_code))
    out["cohort"] = _rows(engine, select(fp.label("part"), Case.district_code.label("district"),
                                         *_cohort_columns())
        .where(any_range(Case.filed_at), Case.voided.is_(False)).group_by(fp, Case.district_code))
    return out


# -- cases: the open set (small, whatever the history) -------------------------------
def open_by_district_category_status(engine: Engine) -> list[dict]:
    """Open cases now per district, category and stage (datasource/stages.py)."""
    return _rows(engine, select(Case.district_code.label("district"),
                                Case.category_code.label("category"), Case.status,
                                func.count().label("n"))
                 .where(current_in(OPEN_STATUSES))
                 .group_by(Case.district_code, Case.category_code, Case.status))


def stock_at(engine: Engine, t: dt.datetime) -> list[dict]:
    """Cases open and overdue at instant `t`, per district and category, by the browsing
    pages' own predicates for a period's end (browse_queries.open_at / overdue_at, the one
    definition): at t = now these are the open set and the overdue cases above.

    The predicates are counted over two disjoint candidate sets, each read on its own
    index: the cases open now (status) and the others closed at or after t (closed_at),
    which hold every case open at t. One OR of the two made SQLite scan the whole table."""
    def candidates(*where):
        return select(Case.district_code.label("district"), Case.category_code.label("category"),
                      case((open_at(t), 1), else_=0).label("is_open"),
                      case((overdue_at(t), 1), else_=0).label("is_overdue")).where(*where)

    rows = union_all(candidates(Case.status.in_(OPEN_STATUSES)),
                     candidates(Case.closed_at >= t, Case.status.not_in(OPEN_STATUSES))).subquery()
    return _rows(engine, select(rows.c.district, rows.c.category, func.sum(rows.c.is_open).label("open"),
                                func.sum(rows.c.is_overdue).label("overdue"))
                 .group_by(rows.c.district, rows.c.category))


def overdue_by_age(engine: Engine, now: dt.datetime, edges_hours: list[float]) -> list[dict]:
    """Running open cases past their deadline, per district and ageing bucket.

    Bucket i holds cases overdue by [edges[i], edges[i+1]) hours; the last is open-ended.
    """
    whens = [(Case.deadline_at > now - dt.timedelta(hours=h), i - 1)
             for i, h in enumerate(edges_hours) if i > 0]
    bucket = case(*whens, else_=len(edges_hours) - 1) if whens else literal(0)
    return _rows(engine, select(Case.district_code.label("district"), bucket.label("bucket"),
                                func.count().label("n"))
                 .where(current_in(RUNNING_STATUSES), Case.deadline_at < now)
                 .group_by(Case.district_code, bucket))


_TICKER_COLUMNS = (Case.id, Case.external_id, Case.district_code.label("district"),
                   Case.category_code.label("category"), Case.status, Case.source, Case.address,
                   Case.reported_at, Case.deadline_at)


def newest_cases(engine: Engine, limit: int) -> list[dict]:
    return _rows(engine, select(*_TICKER_COLUMNS).order_by(Case.reported_at.desc(), Case.id.desc())
                 .limit(limit))


def newly_overdue(engine: Engine, now: dt.datetime, since: dt.datetime, limit: int) -> list[dict]:
    """Running cases whose deadline passed between `since` and `now`, newest first."""
    return _rows(engine, select(*_TICKER_COLUMNS)
                 # the predicate of ix_cases_running_deadline as literal SQL: with bound
                 # statuses a generic plan could not prove that the partial index applies
                 .where(Case.deadline_at >= since, Case.deadline_at < now, text(RUNNING_SQL), status_holds())
                 .order_by(Case.deadline_at.desc(), Case.id.desc()).limit(limit))


# -- enterprise service ---------------------------------------------------------------
def visits_summary(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Visits and distinct enterprises visited in [start, end), per district."""
    V = EnterpriseVisit
    return _rows(engine, select(V.district_code.label("district"), func.count().label("visits"),
                                func.count(distinct(V.enterprise_id)).label("enterprises"))
                 .where(V.visited_at >= start, V.visited_at < end).group_by(V.district_code))


def visits_by_exclusive_grid(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Visits to members of each exclusive grid in [start, end), every exclusive grid listed."""
    V, E = EnterpriseVisit, Enterprise
    visits = (select(E.exclusive_grid_id.label("grid_id"), func.count().label("visits"),
                     func.count(distinct(V.enterprise_id)).label("enterprises"))
              .join(E, E.id == V.enterprise_id)
              .where(V.visited_at >= start, V.visited_at < end, E.exclusive_grid_id.is_not(None))
              .group_by(E.exclusive_grid_id).subquery())
    members = (select(E.exclusive_grid_id.label("grid_id"), func.count().label("members"))
               .where(E.exclusive_grid_id.is_not(None)).group_by(E.exclusive_grid_id).subquery())
    return _rows(engine, select(Grid.id.label("grid_id"), Grid.district_code.label("district"),
                                Grid.name_zh, Grid.host_unit, Grid.host_kind,
                                func.coalesce(members.c.members, 0).label("members"),
                                func.coalesce(visits.c.visits, 0).label("visits"),
                                func.coalesce(visits.c.enterprises, 0).label("enterprises_visited"))
                 .outerjoin(members, members.c.grid_id == Grid.id)
                 .outerjoin(visits, visits.c.grid_id == Grid.id)
                 .where(Grid.kind == "exclusive").order_by(Grid.district_code, Grid.id))


def problems_raised(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Problems raised in [start, end) per district and type, with how many are resolved now
    and the days it took."""
    P = EnterpriseProblem
    resolved = P.resolved_at.is_not(None)
    days = (epoch_seconds(P.resolved_at) - epoch_seconds(P.raised_at)) / 86400.0
    return _rows(engine, select(P.district_code.label("district"), P.problem_type.label("type"),
                                func.count().label("raised"), _flag(resolved).label("resolved"),
                                func.coalesce(func.sum(case((resolved, days), else_=None)), 0.0)
                                .label("resolve_days"))
                 .where(P.raised_at >= start, P.raised_at < end)
                 .group_by(P.district_code, P.problem_type))


def problems_resolved_in(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[dict]:
    P = EnterpriseProblem
    return _rows(engine, select(P.district_code.label("district"), func.count().label("resolved"))
                 .where(P.resolved_at >= start, P.resolved_at < end).group_by(P.district_code))


def problems_open(engine: Engine) -> list[dict]:
    P = EnterpriseProblem
    return _rows(engine, select(P.district_code.label("district"), P.problem_type.label("type"),
                                func.count().label("open"))
                 .where(P.status == "open").group_by(P.district_code, P.problem_type))


def enterprise_counts(engine: Engine) -> list[dict]:
    E = Enterprise
    return _rows(engine, select(E.district_code.label("district"), func.count().label("enterprises"),
                                _flag(E.above_scale).label("above_scale"),
                                _flag(E.exclusive_grid_id.is_not(None)).label("in_exclusive_grids"))
                 .group_by(E.district_code))


# -- parking --------------------------------------------------------------------------
def facilities_by_kind(engine: Engine) -> list[dict]:
    F = ParkingFacility
    return _rows(engine, select(F.district_code.label("district"), F.kind,
                                func.count().label("facilities"), func.sum(F.capacity).label("capacity"),
                                _flag(F.demo_site).label("demo_sites"))
                 .group_by(F.district_code, F.kind))


def programme_since(engine: Engine, since: dt.date) -> list[dict]:
    """Facilities of the programme (added / revitalised / shared) since `since`, per district."""
    F = ParkingFacility
    return _rows(engine, select(F.district_code.label("district"), F.programme,
                                func.count().label("facilities"), func.sum(F.capacity).label("spaces"))
                 .where(F.programme.is_not(None), F.since >= since)
                 .group_by(F.district_code, F.programme))


_clamped = occupancy.clamped


def occupancy_now(engine: Engine, since: dt.datetime, until: dt.datetime) -> list[dict]:
    """Per district, from each motor-vehicle facility's newest reading observed in
    [since, until]: facilities reporting, their capacity, occupied (clamped) and
    out-of-range readings. (Folded hours give their last reading: datasource/occupancy.py.)"""
    F = ParkingFacility
    newest = occupancy.newest_by(since, until)
    return _rows(engine, select(F.district_code.label("district"),
                                func.count().label("reporting"),
                                func.sum(F.capacity).label("capacity"),
                                func.sum(_clamped(newest.c.occupied, F.capacity)).label("occupied"),
                                _flag((newest.c.occupied < 0) | (newest.c.occupied > F.capacity)).label("out_of_range"))
                 .select_from(newest)
                 .join(F, F.id == newest.c.facility_id)
                 .where(F.kind != "non_motor")
                 .group_by(F.district_code))


def facilities_fingerprint(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count(), func.max(ParkingFacility.updated_at),
                                         func.sum(ParkingFacility.capacity))).one())


def newest_reading_received(engine: Engine) -> dt.datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(func.max(OccupancyReading.received_at))).scalar_one()


def motor_facilities(engine: Engine) -> list[tuple]:
    """(id, district, capacity) of every motor-vehicle facility (a few thousand rows)."""
    F = ParkingFacility
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(F.id, F.district_code, F.capacity)
                                                .where(F.kind != "non_motor"))]


def newest_readings(engine: Engine, since: dt.datetime, until: dt.datetime) -> list[tuple]:
    """(facility_id, observed_at, occupied) of each facility's newest reading observed in
    [since, until]: one index probe per facility, whatever the number of readings."""
    R, F = OccupancyReading, ParkingFacility

    def newest(col):
        return (select(col).where(R.facility_id == F.id, R.observed_at >= since, R.observed_at <= until)
                .order_by(R.observed_at.desc()).limit(1).scalar_subquery())
    per_facility = select(F.id.label("facility_id"), newest(R.observed_at).label("observed_at"),
                          newest(R.occupied).label("occupied")).where(F.kind != "non_motor").subquery()
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(per_facility).where(per_facility.c.observed_at.is_not(None)))]


def readings_observed_after(engine: Engine, after: dt.datetime) -> list[tuple]:
    """(facility_id, observed_at, occupied) of the readings stamped later than `after`
    (clocks ahead of ours): they count once `now` reaches them."""
    R = OccupancyReading
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(R.facility_id, R.observed_at, R.occupied)
                                                .where(R.observed_at > after))]


def reading_stamps_after(engine: Engine, after: dt.datetime) -> list[tuple]:
    """(received_at, readings, sum of their facility ids) per received_at after `after`:
    what a poll compares with the readings it has already seen."""
    R = OccupancyReading
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(R.received_at, func.count(), func.sum(R.facility_id))
                                                .where(R.received_at > after).group_by(R.received_at))]


def readings_received_after(engine: Engine, after: dt.datetime | None) -> list[tuple]:
    """(facility_id, observed_at, occupied, received_at) of the readings written (inserted,
    or replaced by an import) after `after`, or of all readings."""
    R = OccupancyReading
    stmt = select(R.facility_id, R.observed_at, R.occupied, R.received_at)
    if after is not None:
        stmt = stmt.where(R.received_at > after)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def occupancy_by_hour(engine: Engine, since: dt.datetime, until: dt.datetime) -> list[dict]:
    """Per district and UTC hour in [since, until]: each reporting motor-vehicle facility's
    mean (clamped) occupancy that hour, summed, the capacity of those facilities, and how
    many of the hour's readings were out of range (clamped). A facility full all hour is
    on the curve at its capacity, whatever it reported above it.
    Hours older than OCCUPANCY_RAW_DAYS come from occupancy_hourly (datasource/occupancy.py)."""
    F = ParkingFacility
    fh = occupancy.facility_hours(since, until, inclusive=True, motor_only=True)
    per_facility = (select(F.district_code.label("district"), fh.c.hour.label("hour"),
                           exact_mean(fh.c.occupied, fh.c.readings).label("occupied"),
                           F.capacity.label("capacity"), fh.c.out_of_range.label("out_of_range"))
                    .select_from(fh).join(F, F.id == fh.c.facility_id).subquery())
    return _rows(engine, select(per_facility.c.district, per_facility.c.hour,
                                func.sum(per_facility.c.occupied).label("occupied"),
                                func.sum(per_facility.c.capacity).label("capacity"),
                                cast(func.sum(per_facility.c.out_of_range), BigInteger).label("out_of_range"))
                 .group_by(per_facility.c.district, per_facility.c.hour))


# -- enterprise rows for the poller's in-memory state ---------------------------------
def visit_rows(engine: Engine, updated_after: dt.datetime | None = None) -> list[tuple]:
    """(id, enterprise_id, district, visited_at in epoch microseconds, updated_at) of all
    visits, or of those updated after the watermark."""
    V = EnterpriseVisit
    stmt = select(V.id, V.enterprise_id, V.district_code, epoch_us(V.visited_at), V.updated_at)
    if updated_after is not None:
        stmt = stmt.where(V.updated_at > updated_after)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def problem_rows(engine: Engine, updated_after: dt.datetime | None = None) -> list[tuple]:
    """(id, district, type, status, raised_at, resolved_at (epoch microseconds, None when
    open), updated_at) of all problems, or of those updated after the watermark."""
    P = EnterpriseProblem
    stmt = select(P.id, P.district_code, P.problem_type, P.status, epoch_us(P.raised_at),
                  epoch_us(P.resolved_at), P.updated_at)
    if updated_after is not None:
        stmt = stmt.where(P.updated_at > updated_after)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def exclusive_grid_list(engine: Engine) -> list[dict]:
    """Every exclusive grid with its host unit (a few dozen rows a district)."""
    return _rows(engine, select(Grid.id.label("grid_id"), Grid.district_code.label("district"), Grid.name_zh,
                                Grid.host_unit, Grid.host_kind)
                 .where(Grid.kind == "exclusive").order_by(Grid.district_code, Grid.id))


def memberships(engine: Engine) -> dict[int, int]:
    """enterprise id -> its exclusive grid, for the enterprises in one."""
    with engine.connect() as conn:
        return dict(conn.execute(select(Enterprise.id, Enterprise.exclusive_grid_id)
                                 .where(Enterprise.exclusive_grid_id.is_not(None))).all())


def enterprises_fingerprint(engine: Engine) -> tuple:
    """(count, newest updated_at) of enterprises: changes when memberships or the counts
    per district may have."""
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count(), func.max(Enterprise.updated_at))).one())


def enterprise_row_counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(EnterpriseVisit)).scalar_one(),
                conn.execute(select(func.count()).select_from(EnterpriseProblem)).scalar_one())
