"""Fixed-window counters in the store (table rate_limits) for the login rate limits when
there is no Redis: one atomic upsert per hit, so every worker and host counts together."""
from __future__ import annotations

import time

from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from datasource.schema import RateLimit

_T = RateLimit.__table__


def _insert(engine: Engine):
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(_T)


def hit(engine: Engine, key: str, expiry: float, amount: int = 1, now: float | None = None) -> int:
    """Add `amount` to the key's window (a new window of `expiry` s when none is open); the count."""
    now = time.time() if now is None else now
    stmt = _insert(engine).values(key=key, hits=amount, expires_at=now + expiry)
    expired = _T.c.expires_at <= now  # old values on both sides of SET, as SQL reads them
    stmt = stmt.on_conflict_do_update(index_elements=[_T.c.key], set_={
        "hits": case((expired, amount), else_=_T.c.hits + amount),
        "expires_at": case((expired, now + expiry), else_=_T.c.expires_at),
    }).returning(_T.c.hits)
    with engine.begin() as conn:
        return int(conn.execute(stmt).scalar_one())


def count(engine: Engine, key: str, now: float | None = None) -> int:
    now = time.time() if now is None else now
    with engine.connect() as conn:
        value = conn.execute(select(_T.c.hits).where(_T.c.key == key, _T.c.expires_at > now)).scalar()
    return int(value or 0)


def expires_at(engine: Engine, key: str, now: float | None = None) -> float:
    now = time.time() if now is None else now
    with engine.connect() as conn:
        value = conn.execute(select(_T.c.expires_at).where(_T.c.key == key, _T.c.expires_at > now)).scalar()
    return float(value) if value is not None else now


def clear(engine: Engine, key: str | None = None, now: float | None = None) -> int:
    """Drop one key, or (key None) every closed window; returns the rows dropped."""
    now = time.time() if now is None else now
    cond = _T.c.key == key if key is not None else _T.c.expires_at <= now
    with engine.begin() as conn:
        return conn.execute(delete(_T).where(cond)).rowcount


def clear_all(engine: Engine) -> int:
    with engine.begin() as conn:
        return conn.execute(delete(_T)).rowcount
