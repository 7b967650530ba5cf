"""`/readyz`: can this process serve fresh screens? (`/healthz` only says it is up.)

Ready means: the store answers `SELECT 1` within a short timeout, the cache answers
(Redis ping when configured), and the last poll is younger than
READY_MAX_AGE_SECONDS. The JSON body names each check and what failed, and nothing
else: no case data, no connection strings, no driver messages (they can carry both).
"""
from __future__ import annotations

import datetime as dt
import sqlite3

from flask import jsonify
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

STORE_TIMEOUT_SECONDS = 2  # libpq rounds connect_timeout below 2 up to 2


class StoreProbe:
    """SELECT 1 on a connection of its own, never a pooled one that hides an outage."""

    def __init__(self, url: str, timeout: int = STORE_TIMEOUT_SECONDS):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = parsed.database
            # mode=rw: a probe must not create an empty store where the file has gone
            self.engine = create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
                f"file:{path}?mode=rw", uri=True, timeout=timeout))
        else:
            self.engine = create_engine(url, poolclass=NullPool, connect_args={
                "connect_timeout": timeout, "options": f"-c statement_timeout={timeout * 1000}"})

    def check(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; only its class is shown
            return f"unreachable ({exc.__class__.__name__})"
        return None


def readiness(services, probe: StoreProbe,
              now: dt.datetime | None = None) -> tuple[bool, dict[str, str]]:
    now = now or dt.datetime.now(dt.timezone.utc)
    checks: dict[str, str] = {}
    checks["store"] = probe.check() or "ok"
    checks["cache"] = services.cache.ping() or "ok"
    try:
        head = services.cache.head()
    except OSError as exc:
        head, checks["snapshot"] = None, f"unreadable ({exc.__class__.__name__})"
    if head is None:
        checks.setdefault("snapshot", "none published yet")
    else:
        age, limit = head.age(now), services.settings.ready_max_age
        checks["snapshot"] = "ok" if age <= limit else f"{age:.0f} s old (limit {limit:g} s)"
    return all(v == "ok" for v in checks.values()), checks


def register(server, services) -> None:
    probe = StoreProbe(services.settings.database_url)  # connects only when asked

    @server.get("/readyz")
    def readyz():
        ready, checks = readiness(services, probe)
        failed = sorted(name for name, value in checks.items() if value != "ok")
        return jsonify(status="ready" if ready else "not ready", checks=checks,
                       failed=failed), 200 if ready else 503
