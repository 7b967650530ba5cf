"""The poller's incremental KPI state: each case's contribution to the hourly rollups.

One expression (`contribution_columns`) defines a contribution; it serves the
set-based rebuild (INSERT ... SELECT over all cases) and the per-poll read of changed
cases alike, so the two cannot drift apart.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache

from sqlalchemy import (BigInteger, Engine, Text, and_, case, cast, delete, func, insert, literal, or_, select,
                        tuple_, union_all)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from datasource.kpi_owner import fence
from datasource.schema import OPEN_STATUSES, RUNNING_STATUSES, Case, KpiCaseState, KpiMeta, KpiOpen, KpiRollup
from datasource.sqlfuncs import epoch_seconds, utc_hour
from datasource.stages import current_in, stage_now

WATERMARK = "cases_watermark"
ROLLUPS_WATERMARK = "rollups_watermark"  # equal to WATERMARK while kpi_rollup and kpi_open are current
# cases whose state the prune retired (closed before the KPI window: they touch no hour a
# screen reads); `counts` adds them, a rebuild holds every case again and resets it
RETIRED = "state_retired"
# the rules the state was written under, with the watermark of the write: a poller of
# another version (during a rolling upgrade) moves the watermark without it, and a poller
# of this one loading the state then rebuilds it (2: stages, with_deadline)
STATE = "state_version"
STATE_VERSION = "2"
DONE_STATUSES = ("closed", "voided")
# kpi_rollup's figures per district and hour, in the order the poller's cell deltas use
CELL_FIELDS = ("reported", "closed", "filed", "cohort_closed", "cohort_closed_on_time", "cohort_handled",
               "cohort_handled_on_time", "cohort_reworked", "cohort_extended", "cohort_handle_seconds",
               "cohort_close_seconds", "cohort_with_deadline", "due")
FIELDS = ("district_code", "category_code", "status", "deadline_hour", "reported_hour", "closed_hour", "filed_hour", "closed", "closed_on_time",
          "handled", "handled_on_time", "reworked", "extended", "handle_seconds", "close_seconds", "with_deadline")
CHUNK = 1000
TIMES = ("reported_at", "closed_at", "filed_at", "deadline_at")  # exact, beside the hour keys
# read with each changed case, not kept in the state: which lifecycle stages the city records
STAGE_TIMES = ("dispatched_at", "handled_at", "verified_at")
HOUR = dt.timedelta(hours=1)


def _bit(cond):
    return case((cond, 1), else_=0)


def contribution_columns():
    in_cohort = and_(Case.filed_at.is_not(None), Case.voided.is_(False))
    handled = and_(in_cohort, Case.handled_at.is_not(None))
    closed = and_(in_cohort, Case.closed_at.is_not(None))
    return [
        Case.id.label("case_id"),
        Case.district_code.label("district_code"),
        Case.category_code.label("category_code"),
        stage_now().label("status"),
        case((and_(current_in(RUNNING_STATUSES), Case.deadline_at.is_not(None)),
              utc_hour(Case.deadline_at)), else_=None).label("deadline_hour"),
        utc_hour(Case.reported_at).label("reported_hour"),
        utc_hour(Case.closed_at).label("closed_hour"),
        case((in_cohort, utc_hour(Case.filed_at)), else_=None).label("filed_hour"),
        _bit(closed).label("closed"),
        _bit(and_(closed, Case.closed_at <= Case.deadline_at)).label("closed_on_time"),
        _bit(handled).label("handled"),
        _bit(and_(handled, Case.handled_at <= Case.deadline_at)).label("handled_on_time"),
        _bit(and_(in_cohort, Case.rework_count > 0)).label("reworked"),
        _bit(and_(in_cohort, Case.extended.is_(True))).label("extended"),
        case((handled, epoch_seconds(Case.handled_at) - epoch_seconds(Case.filed_at)), else_=0.0)
        .label("handle_seconds"),
        case((closed, epoch_seconds(Case.closed_at) - epoch_seconds(Case.filed_at)), else_=0.0)
        .label("close_seconds"),
        _bit(and_(in_cohort, Case.deadline_at.is_not(None))).label("with_deadline"),
    ]


def max_updated_at(engine: Engine) -> dt.datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(func.max(Case.updated_at))).scalar_one()


def rebuild(engine: Engine, token: int | None = None) -> dt.datetime | None:
    """Recompute every case's contribution in one set-based statement, and the rollups
    from them; returns the watermark (the newest updated_at seen before the rebuild
    began). `token`: the owner's fencing token (see kpi_owner.fence), here and below."""
    watermark = max_updated_at(engine)
    cols = contribution_columns()
    with engine.begin() as conn:
        fence(conn, token)
        conn.execute(delete(KpiCaseState))
        conn.execute(insert(KpiCaseState).from_select([c.name for c in cols], select(*cols)))
        _rebuild_rollups(conn)
        _set_watermark(conn, watermark, WATERMARK, ROLLUPS_WATERMARK)
        conn.execute(delete(KpiMeta).where(KpiMeta.key.in_([RETIRED, STATE])))  # every case has its row again
        conn.execute(insert(KpiMeta).values(key=STATE, value=_stamp(watermark)))
    return watermark


def _stamp(watermark: dt.datetime | None) -> str:
    return f"{STATE_VERSION} {watermark.isoformat() if watermark else ''}"


def state_current(engine: Engine) -> bool:
    """Was the state last written by a poller of this version (STATE_VERSION)?"""
    with engine.connect() as conn:
        meta = dict(conn.execute(select(KpiMeta.key, KpiMeta.value).where(KpiMeta.key.in_([WATERMARK, STATE]))).all())
    raw = meta.get(WATERMARK)
    return meta.get(STATE) == _stamp(dt.datetime.fromisoformat(raw) if raw else None)


def rebuild_rollups(engine: Engine, token: int | None = None) -> None:
    """Aggregate kpi_rollup and kpi_open from the state again (the rollups were missing,
    or the state was saved by a poller that did not keep them)."""
    with engine.begin() as conn:
        fence(conn, token)
        raw = conn.execute(select(KpiMeta.value).where(KpiMeta.key == WATERMARK)).scalar_one_or_none()
        _rebuild_rollups(conn)
        _set_watermark(conn, dt.datetime.fromisoformat(raw) if raw else None, ROLLUPS_WATERMARK)


def _rebuild_rollups(conn) -> None:
    S = KpiCaseState

    def cells(hour, **values):
        return (select(S.district_code.label("district_code"), hour.label("hour"),
                       *[values.get(f, literal(0.0 if f.endswith("seconds") else 0)).label(f) for f in CELL_FIELDS])
                .where(hour.is_not(None)).group_by(S.district_code, hour))
    parts = union_all(
        cells(S.reported_hour, reported=func.count()),
        cells(S.closed_hour, closed=func.count()),
        cells(S.filed_hour, filed=func.count(), **{f"cohort_{f}": func.sum(getattr(S, f)) for f in (
            "closed", "closed_on_time", "handled", "handled_on_time", "reworked", "extended",
            "handle_seconds", "close_seconds", "with_deadline")}),
        cells(S.deadline_hour, due=func.count())).subquery()
    conn.execute(delete(KpiRollup))
    conn.execute(insert(KpiRollup).from_select(["district_code", "hour", *CELL_FIELDS], select(
        parts.c.district_code, parts.c.hour, *[func.sum(parts.c[f]) for f in CELL_FIELDS])
        .group_by(parts.c.district_code, parts.c.hour)))
    conn.execute(delete(KpiOpen))
    conn.execute(insert(KpiOpen).from_select(["district_code", "category_code", "status", "n"], select(
        S.district_code, S.category_code, S.status, func.count()).where(S.status.in_(OPEN_STATUSES))
        .group_by(S.district_code, S.category_code, S.status)))


def _set_watermark(conn, watermark: dt.datetime | None, *keys: str) -> None:
    conn.execute(delete(KpiMeta).where(KpiMeta.key.in_(keys)))
    if watermark is not None:
        conn.execute(insert(KpiMeta), [{"key": k, "value": watermark.isoformat()} for k in keys])


def watermark(engine: Engine) -> dt.datetime | None:
    with engine.connect() as conn:
        raw = conn.execute(select(KpiMeta.value).where(KpiMeta.key == WATERMARK)).scalar_one_or_none()
    return dt.datetime.fromisoformat(raw) if raw else None


def rollups_current(engine: Engine) -> bool:
    """Were kpi_rollup and kpi_open written with the state's last save?"""
    with engine.connect() as conn:
        meta = dict(conn.execute(select(KpiMeta.key, KpiMeta.value)
                                 .where(KpiMeta.key.in_([WATERMARK, ROLLUPS_WATERMARK]))).all())
    return meta.get(ROLLUPS_WATERMARK) is not None and meta.get(ROLLUPS_WATERMARK) == meta.get(WATERMARK)


def _with_times() -> list:
    return [*contribution_columns(), *(getattr(Case, t).label(t) for t in TIMES + STAGE_TIMES)]


def stamps_since(engine: Engine, since: dt.datetime) -> list[tuple]:
    """(updated_at, cases, sum of their ids) per updated_at after `since`: what a poll
    compares with the cases it has already read."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Case.updated_at, func.count(), func.sum(Case.id))
                                                .where(Case.updated_at > since).group_by(Case.updated_at))]


def changed_since(engine: Engine, since: dt.datetime | None) -> list[tuple[dict, dict | None]]:
    """(contribution, stored contribution) of the cases updated after `since`: the new one
    with the case's exact times and `updated_at`, the stored one None for a case the
    state does not hold yet."""
    S = KpiCaseState
    stored = [getattr(S, f).label(f"stored_{f}") for f in FIELDS]
    stmt = (select(*_with_times(), Case.updated_at.label("updated_at"), S.case_id.label("stored_case_id"),
                   *stored).outerjoin(S, S.case_id == Case.id))
    if since is not None:
        stmt = stmt.where(Case.updated_at > since)
    out = []
    with engine.connect() as conn:
        for r in conn.execute(stmt):
            row = dict(r._mapping)
            old = {f: row.pop(f"stored_{f}") for f in FIELDS}
            out.append((row, old if row.pop("stored_case_id") is not None else None))
    return out


def touching_hours(engine: Engine, hours: list[dt.datetime]) -> list[dict]:
    """Contributions, with exact times, of the cases reported, closed or filed in any of
    the whole UTC `hours`, or still running with a deadline in one of them."""
    if not hours:
        return []

    def within(col):
        return or_(*[and_(col >= h, col < h + HOUR) for h in hours])
    stmt = select(*_with_times()).where(or_(
        within(Case.reported_at), within(Case.closed_at), within(Case.filed_at),
        and_(within(Case.deadline_at), current_in(RUNNING_STATUSES))))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def _upsert(conn, table, rows: list[dict], keys: tuple[str, ...], add: bool = False) -> None:
    """Insert rows or, for keys already there, replace their values (or `add` to them)."""
    conn.execute(_upsert_statement(conn.dialect.name, table, keys, add), rows)


@lru_cache(maxsize=None)
def _upsert_statement(dialect: str, table, keys: tuple[str, ...], add: bool):
    """Built once per table: a poll saves with the same four statements every time."""
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={
        c.name: (table.c[c.name] + stmt.excluded[c.name]) if add else stmt.excluded[c.name]
        for c in table.columns if c.name not in keys})


def save(engine: Engine, rows: list[dict], new_watermark: dt.datetime | None,
         cells: list[dict] = (), opens: list[dict] = (), token: int | None = None) -> None:
    """Replace the contributions of `rows`, add the changes they made to the rollups
    (`cells` of kpi_rollup and `opens` of kpi_open, as deltas) and move the watermarks,
    in one transaction: the rollups stay the sums of the state. Refused (kpi_owner.Fenced)
    unless `token` is still the owner's: deltas from a former owner's memory would be
    added to what the new owner wrote."""
    with engine.begin() as conn:
        fence(conn, token)
        if rows:
            _upsert(conn, KpiCaseState.__table__, [{"case_id": r["case_id"], **{f: r[f] for f in FIELDS}}
                                                   for r in rows], ("case_id",))
        if cells:
            _upsert(conn, KpiRollup.__table__, list(cells), ("district_code", "hour"), add=True)
        if opens:
            _upsert(conn, KpiOpen.__table__, list(opens), ("district_code", "category_code", "status"), add=True)
        if new_watermark is not None:
            _upsert(conn, KpiMeta.__table__, [{"key": k, "value": new_watermark.isoformat()}
                                              for k in (WATERMARK, ROLLUPS_WATERMARK)]
                    + [{"key": STATE, "value": _stamp(new_watermark)}], ("key",))


def counts(engine: Engine, watermark: dt.datetime | None = None) -> tuple[int, int]:
    """(cases, state rows + cases written after `watermark` that the state does not hold
    yet + cases whose state the prune retired): equal when the state is complete, however
    many cases arrived since the last read. One statement, so that every count sees the
    same cases."""
    S = KpiCaseState

    def count(*where, table=Case):
        return select(func.count()).select_from(table).where(*where).scalar_subquery()
    unread = count(Case.updated_at > watermark, ~select(S.case_id).where(S.case_id == Case.id).exists()) \
        if watermark is not None else literal(0)
    retired = func.coalesce(select(cast(KpiMeta.value, BigInteger)).where(KpiMeta.key == RETIRED)
                            .scalar_subquery(), 0)
    with engine.connect() as conn:
        cases, state, new, gone = conn.execute(select(count(), count(table=S), unread, retired)).one()
    return cases, state + new + int(gone)


# -- retention (`python -m dashboard prune`, docs/retention.md) ------------------------
# The prune is not the poller, yet writes here without its fencing token: it only removes
# what lies wholly before the poller's window (1 January of last year), which no poll
# reads, adds to or subtracts from.
def retirable(before_hour: str):
    """State rows of cases closed or voided whose every hour is before `before_hour`: they
    add nothing to kpi_open, the deadlines, or any cell the poller loads."""
    S = KpiCaseState
    return and_(S.status.in_(DONE_STATUSES), S.deadline_hour.is_(None), S.reported_hour < before_hour,
                or_(S.closed_hour.is_(None), S.closed_hour < before_hour),
                or_(S.filed_hour.is_(None), S.filed_hour < before_hour))


def _add_retired(conn, n: int) -> None:
    if n:
        _upsert_add_text(conn, RETIRED, n)


def _upsert_add_text(conn, key: str, n: int) -> None:
    table = KpiMeta.__table__
    stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
    conn.execute(stmt.values(key=key, value=str(n)).on_conflict_do_update(
        index_elements=["key"],
        set_={"value": cast(cast(table.c.value, BigInteger) + cast(stmt.excluded.value, BigInteger), Text)}))


def retire_state(engine: Engine, before_hour: str, limit: int) -> int:
    """Delete up to `limit` retirable state rows (see `retirable`), counted in RETIRED in
    the same transaction; returns how many."""
    S = KpiCaseState
    with engine.begin() as conn:
        ids = conn.execute(select(S.case_id).where(retirable(before_hour)).limit(limit)).scalars().all()
        if not ids:
            return 0
        n = conn.execute(delete(S).where(S.case_id.in_(ids), retirable(before_hour))).rowcount
        _add_retired(conn, n)
    return n


def prune_cells(engine: Engine, before_hour: str, limit: int) -> int:
    """Delete up to `limit` kpi_rollup cells older than `before_hour` that hold no deadline
    (the poller loads the cells from its window's start, and older ones only for `due`)."""
    R = KpiRollup
    old = and_(R.hour < before_hour, R.due == 0)
    with engine.begin() as conn:
        keys = [tuple(k) for k in conn.execute(select(R.district_code, R.hour).where(old).limit(limit))]
        if not keys:
            return 0
        return conn.execute(delete(R).where(tuple_(R.district_code, R.hour).in_(keys), old)).rowcount


def forget_cases(conn, ids: list[int], before_hour: str) -> int:
    """The state's part in deleting the cases `ids` (in the caller's transaction): their
    retirable rows go with them and cases already retired leave RETIRED, so that `counts`
    still agrees; a row inside the window stays, and the poller's check then finds the
    deleted case and rebuilds (the KPIs it shows change). Returns the rows deleted."""
    S = KpiCaseState
    held = conn.execute(select(func.count()).select_from(S).where(S.case_id.in_(ids))).scalar_one()
    n = conn.execute(delete(S).where(S.case_id.in_(ids), retirable(before_hour))).rowcount
    without = len(ids) - held
    if without:
        _upsert_add_text(conn, RETIRED, -without)
    return n


def rollup_cells(engine: Engine, since_hour: str) -> tuple[list[tuple], list[tuple]]:
    """kpi_rollup's (district, hour, *CELL_FIELDS) from `since_hour` on (and older cells
    that still hold deadlines), and kpi_open's (district, category, status, n)."""
    R, O = KpiRollup, KpiOpen
    with engine.connect() as conn:
        cells = conn.execute(select(R.district_code, R.hour, *[getattr(R, f) for f in CELL_FIELDS])
                             .where(or_(R.hour >= since_hour, R.due != 0))).all()
        opens = conn.execute(select(O.district_code, O.category_code, O.status, O.n).where(O.n != 0)).all()
    return [tuple(c) for c in cells], [tuple(o) for o in opens]


def live_totals(engine: Engine, reported_from: dt.datetime, reported_to: dt.datetime) -> tuple[int, int, dt.datetime | None]:
    """(open cases, cases reported in [from, to), newest updated_at), counted on the cases
    themselves in one statement (indexes on status and reported_at): what the poller's
    self-check compares its snapshot with."""
    def count(*where):
        return select(func.count()).select_from(Case).where(*where).scalar_subquery()
    with engine.connect() as conn:
        row = conn.execute(select(count(current_in(OPEN_STATUSES)),
                                  count(Case.reported_at >= reported_from, Case.reported_at < reported_to),
                                  select(func.max(Case.updated_at)).scalar_subquery())).one()
    return int(row[0]), int(row[1]), row[2]
