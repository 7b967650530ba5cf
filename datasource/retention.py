"""The prune's writes (`python -m dashboard prune`, docs/retention.md): each call is one
bounded batch in one transaction, and returns how many rows it removed, so that the
caller loops until a batch comes back short.

The KPI state's batches are in kpi_state.py (`retire_state`, `prune_cells`), beside the
state they keep consistent.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from datasource import kpi_state
from datasource.occupancy import clamped, out_of_range
from datasource.schema import Case, CaseEvent, KpiMeta, OccupancyHourly, OccupancyReading, ParkingFacility
from datasource.sqlfuncs import utc_hour

MAX_BATCH = 20_000  # ids are bound one parameter each: far below SQLite's 32,766


def _write_lock(conn) -> None:
    """SQLite: start the write transaction before reading what to move (the driver begins
    one only at the first write; rows read before it could change before it). A no-op
    UPDATE takes the lock. PostgreSQL locks the rows read FOR UPDATE instead."""
    if conn.dialect.name == "sqlite":
        conn.execute(update(KpiMeta).where(KpiMeta.key == "").values(value=KpiMeta.value))


def _insert(conn, table):
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _newer(stmt, col: str, than: str = "last_observed_at"):
    """For the upsert: the value of the newer of the stored and the incoming hour's last reading."""
    H = OccupancyHourly.__table__
    return case((stmt.excluded[than] > H.c[than], stmt.excluded[col]), else_=H.c[col])


def fold_occupancy(engine: Engine, before: dt.datetime, limit: int) -> int:
    """Move up to `limit` readings observed before `before` (the oldest first) into
    occupancy_hourly and delete them, in one transaction: a reading counts in one table or
    the other, never both, never neither. Hours already folded (a late reading, an import
    of old data) are added to. Returns the readings moved."""
    R, F, H = OccupancyReading, ParkingFacility, OccupancyHourly
    with engine.begin() as conn:
        _write_lock(conn)
        ids = conn.execute(select(R.id).where(R.observed_at < before)
                           .order_by(R.observed_at, R.id).limit(limit).with_for_update()).scalars().all()
        if not ids:
            return 0
        hour = utc_hour(R.observed_at)
        g = (select(R.facility_id.label("facility_id"), hour.label("hour"), func.count().label("readings"),
                    func.sum(clamped(R.occupied, F.capacity)).label("occupied_sum"),
                    func.max(clamped(R.occupied, F.capacity)).label("occupied_max"),
                    out_of_range(R.occupied, F.capacity).label("out_of_range"),
                    func.max(R.observed_at).label("last_observed_at"))
             .join(F, F.id == R.facility_id).where(R.id.in_(ids)).group_by(R.facility_id, hour).subquery())
        last = (select(R.occupied).where(R.facility_id == g.c.facility_id, R.observed_at == g.c.last_observed_at)
                .limit(1).scalar_subquery())
        cols = ["facility_id", "hour", "readings", "occupied_sum", "occupied_max", "out_of_range",
                "last_observed_at", "last_occupied"]
        stmt = _insert(conn, H.__table__)
        # (the WHERE keeps SQLite from reading ON CONFLICT as a join's ON)
        stmt = stmt.from_select(cols, select(*[g.c[c] for c in cols[:-1]], last).where(g.c.readings > 0))
        t = H.__table__
        stmt = stmt.on_conflict_do_update(index_elements=["facility_id", "hour"], set_={
            "readings": t.c.readings + stmt.excluded.readings,
            "occupied_sum": t.c.occupied_sum + stmt.excluded.occupied_sum,
            "occupied_max": case((stmt.excluded.occupied_max > t.c.occupied_max, stmt.excluded.occupied_max),
                                 else_=t.c.occupied_max),
            "out_of_range": t.c.out_of_range + stmt.excluded.out_of_range,
            "last_observed_at": _newer(stmt, "last_observed_at"),
            "last_occupied": _newer(stmt, "last_occupied"),
        })
        conn.execute(stmt)
        return conn.execute(delete(R).where(R.id.in_(ids))).rowcount


def deletable_cases(before: dt.datetime):
    """Cases closed or voided before `before` and unchanged since: never an open one."""
    return and_(Case.status.in_(kpi_state.DONE_STATUSES), Case.updated_at < before,
                or_(Case.closed_at.is_(None), Case.closed_at < before))


def delete_cases(engine: Engine, before: dt.datetime, state_before_hour: str, limit: int) -> dict[str, int]:
    """Delete up to `limit` deletable cases (the longest unchanged first) with their events
    and their part of the KPI state, in one transaction. Returns rows per table."""
    with engine.begin() as conn:
        _write_lock(conn)
        ids = conn.execute(select(Case.id).where(deletable_cases(before))
                           .order_by(Case.updated_at, Case.id).limit(limit).with_for_update()).scalars().all()
        if not ids:
            return {"cases": 0, "case_events": 0, "kpi_case_state": 0}
        state = kpi_state.forget_cases(conn, ids, state_before_hour)
        events = conn.execute(delete(CaseEvent).where(CaseEvent.case_id.in_(ids))).rowcount
        cases = conn.execute(delete(Case).where(Case.id.in_(ids))).rowcount
    return {"cases": cases, "case_events": events, "kpi_case_state": state}
