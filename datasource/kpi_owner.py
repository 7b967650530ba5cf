"""Who owns the poller's KPI state: the lease and fencing token in `kpi_owner` (one row).

- `take` makes the caller the owner when the lease has expired (or unconditionally,
  `force`, where another lock elects), adding one to the token; `renew` extends the
  lease while the token is still the caller's; `release` lets it expire at once.
- `fence(conn, token)` runs inside every transaction that writes the state: it fails
  with `Fenced` unless `token` is still the current one. On PostgreSQL the UPDATE locks
  the row until the write commits, so a takeover waits for a write in flight and every
  later write of the former owner is refused.
- `put_snapshot` / `snapshot_head` / `snapshot_body`: the last snapshot, kept here by the
  owner while Redis is unreachable (fenced like the state).
"""
from __future__ import annotations

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from datasource.schema import KpiOwner, KpiSnapshot
from datasource.sqlfuncs import epoch_now

ROW = 1


class Fenced(RuntimeError):
    """A write of the KPI state by a process that no longer owns it: refused."""


def _insert(conn: Connection, table):
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _ensure_row(conn: Connection) -> None:
    conn.execute(_insert(conn, KpiOwner).values(id=ROW, token=0, holder="", expires_at=0.0)
                 .on_conflict_do_nothing(index_elements=["id"]))


def take(engine: Engine, holder: str, ttl: float, *, force: bool = False) -> int | None:
    """The new token when the caller becomes the owner, else None (the lease is held)."""
    with engine.begin() as conn:
        _ensure_row(conn)
        stmt = (update(KpiOwner).where(KpiOwner.id == ROW)
                .values(token=KpiOwner.token + 1, holder=holder, expires_at=epoch_now() + ttl))
        if not force:
            stmt = stmt.where(KpiOwner.expires_at < epoch_now())
        if conn.execute(stmt).rowcount != 1:
            return None
        return conn.execute(select(KpiOwner.token).where(KpiOwner.id == ROW)).scalar_one()


def renew(engine: Engine, token: int, ttl: float) -> bool:
    """Extend the lease; False when another process took it since (the token moved on).
    An expired lease nobody took is still the caller's: no one else can have written."""
    with engine.begin() as conn:
        return conn.execute(update(KpiOwner).where(KpiOwner.id == ROW, KpiOwner.token == token)
                            .values(expires_at=epoch_now() + ttl)).rowcount == 1


def release(engine: Engine, token: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(KpiOwner).where(KpiOwner.id == ROW, KpiOwner.token == token)
                     .values(expires_at=0.0))


def fence(conn: Connection, token: int | None) -> None:
    """Inside a writing transaction: refuse it unless `token` is the current owner's.
    None: a write outside any poller (a test, a one-off CLI), not fenced."""
    if token is None:
        return
    if conn.execute(update(KpiOwner).where(KpiOwner.id == ROW, KpiOwner.token == token)
                    .values(token=KpiOwner.token)).rowcount != 1:
        raise Fenced(f"token {token} is no longer the owner's")


def current(engine: Engine) -> tuple[int, str, float] | None:
    """(token, holder, seconds left on the lease) for an operator or a test."""
    with engine.connect() as conn:
        row = conn.execute(select(KpiOwner.token, KpiOwner.holder, KpiOwner.expires_at - epoch_now())
                           .where(KpiOwner.id == ROW)).one_or_none()
    return tuple(row) if row else None


def put_snapshot(engine: Engine, token: int | None, head: str, body: str | None) -> None:
    """Keep the snapshot in the store (`body` None: only the head moved)."""
    with engine.begin() as conn:
        fence(conn, token)
        if body is None:
            conn.execute(update(KpiSnapshot).where(KpiSnapshot.id == ROW).values(head=head, token=token or 0))
            return
        stmt = _insert(conn, KpiSnapshot).values(id=ROW, token=token or 0, head=head, body=body)
        conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={
            "token": stmt.excluded.token, "head": stmt.excluded.head, "body": stmt.excluded.body}))


def snapshot_head(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(KpiSnapshot.head).where(KpiSnapshot.id == ROW)).scalar_one_or_none()


def snapshot_body(engine: Engine) -> tuple[str, str] | None:
    """(head, body) read together."""
    with engine.connect() as conn:
        row = conn.execute(select(KpiSnapshot.head, KpiSnapshot.body).where(KpiSnapshot.id == ROW)).one_or_none()
    return tuple(row) if row else None
