"""The city profile in the store (one row of `city_profile`): read and written as JSON.

What a profile may hold, and its checks, are dashboard/profile.py's; this module only
keeps it where every process of every host reads the same copy.
"""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from datasource.schema import CityProfile

ROW = 1


def read_profile(bind: Engine | Connection) -> dict | None:
    """The stored profile, or None when the store has none (or predates the table)."""
    stmt = select(CityProfile.body).where(CityProfile.id == ROW)
    try:
        if isinstance(bind, Connection):
            body = bind.execute(stmt).scalar_one_or_none()
        else:
            with bind.connect() as conn:
                body = conn.execute(stmt).scalar_one_or_none()
    except (OperationalError, ProgrammingError) as exc:
        if _no_table(exc):
            return None
        raise
    return json.loads(body) if body else None


def _no_table(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "no such table" in text or "does not exist" in text or "undefinedtable" in text


def write_profile(engine: Engine, body: dict, now: dt.datetime | None = None) -> None:
    """Replace the stored profile (one transaction: readers see the old or the new one)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(delete(CityProfile))
        conn.execute(insert(CityProfile), [{"id": ROW, "body": json.dumps(body, ensure_ascii=False, sort_keys=True),
                                           "loaded_at": now}])


def stored_timezone(bind: Engine | Connection) -> str | None:
    """The profile's time zone, or None without a profile."""
    profile = read_profile(bind)
    return profile.get("timezone") if profile else None
