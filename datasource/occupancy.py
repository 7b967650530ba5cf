"""Occupancy over any period: the raw readings and the hourly table, added up.

`python -m dashboard prune` folds readings older than OCCUPANCY_RAW_DAYS into
occupancy_hourly (one row per facility and UTC hour) and deletes them. Each prune batch
moves its readings in one transaction, so at any instant a reading counts in exactly one
of the two tables; the queries here add both up per facility and hour, whatever the
period. In folded hours the hour is the unit (docs/retention.md): a range takes the hours
wholly inside it, the newest reading by a time is the newest last-of-its-hour reading by
then, and a folded reading was clamped with the capacity its facility had when it was folded.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, and_, case, cast, func, select, union_all

from datasource.schema import OccupancyHourly, OccupancyReading, ParkingFacility
from datasource.sqlfuncs import utc_hour

EPSILON = dt.timedelta(microseconds=1)
HOUR = dt.timedelta(hours=1)


def hour_key(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H")


def clamped(occupied, capacity):
    """Readings below 0 or above capacity happen in real feeds: count them at the bound."""
    return case((occupied < 0, 0), (occupied > capacity, capacity), else_=occupied)


def out_of_range(occupied, capacity):
    return func.sum(case(((occupied < 0) | (occupied > capacity), 1), else_=0))


def facility_hours(since: dt.datetime, until: dt.datetime, *, inclusive: bool, facility_id: int | None = None,
                   motor_only: bool = False):
    """A subquery of (facility_id, hour, occupied: the sum of clamped readings, readings,
    out_of_range) per facility and UTC hour, over the readings observed in [since, until]
    (`inclusive`) or [since, until), from both tables."""
    R, F, H = OccupancyReading, ParkingFacility, OccupancyHourly
    hour = utc_hour(R.observed_at)
    raw_range = and_(R.observed_at >= since, R.observed_at <= until if inclusive else R.observed_at < until)
    # folded hours count when wholly inside the range (they start in it and end by its end)
    last_hour = hour_key((until + EPSILON if inclusive else until) - HOUR)
    raw = (select(R.facility_id.label("facility_id"), hour.label("hour"),
                  func.sum(clamped(R.occupied, F.capacity)).label("occupied"),
                  func.count().label("readings"), out_of_range(R.occupied, F.capacity).label("out_of_range"))
           .join(F, F.id == R.facility_id).where(raw_range).group_by(R.facility_id, hour))
    folded = (select(H.facility_id, H.hour, H.occupied_sum, H.readings, H.out_of_range)
              .where(H.hour >= hour_key(since), H.hour <= last_hour))
    if facility_id is not None:
        raw, folded = raw.where(R.facility_id == facility_id), folded.where(H.facility_id == facility_id)
    if motor_only:
        raw = raw.where(F.kind != "non_motor")
        folded = folded.join(F, F.id == H.facility_id).where(F.kind != "non_motor")
    both = union_all(raw, folded).subquery()
    return (select(both.c.facility_id, both.c.hour, func.sum(both.c.occupied).label("occupied"),
                   cast(func.sum(both.c.readings), BigInteger).label("readings"),
                   cast(func.sum(both.c.out_of_range), BigInteger).label("out_of_range"))
            .group_by(both.c.facility_id, both.c.hour).subquery())


def newest_by(since: dt.datetime, until: dt.datetime):
    """A subquery of (facility_id, observed_at, occupied): each facility's newest reading
    observed in [since, until], the folded hours' last readings included."""
    R, H = OccupancyReading, OccupancyHourly
    cand = union_all(
        select(R.facility_id.label("facility_id"), R.observed_at.label("observed_at"), R.occupied.label("occupied"))
        .where(R.observed_at >= since, R.observed_at <= until),
        select(H.facility_id, H.last_observed_at, H.last_occupied)
        .where(H.hour >= hour_key(since), H.hour <= hour_key(until),
               H.last_observed_at >= since, H.last_observed_at <= until)).subquery()
    newest = (select(cand.c.facility_id, func.max(cand.c.observed_at).label("observed_at"))
              .group_by(cand.c.facility_id).subquery())
    # a reading folded and then imported again is in both tables: one row per facility
    return (select(cand.c.facility_id, cand.c.observed_at, func.max(cand.c.occupied).label("occupied"))
            .join(newest, and_(newest.c.facility_id == cand.c.facility_id,
                               newest.c.observed_at == cand.c.observed_at))
            .group_by(cand.c.facility_id, cand.c.observed_at).subquery())
