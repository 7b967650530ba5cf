"""`/readyz`: can this process serve fresh screens? (`/healthz` only says it is up.)

Ready means: the store answers `SELECT 1` within a short timeout, the cache answers
(Redis ping when configured), and the last poll is younger than
READY_MAX_AGE_SECONDS. The JSON body names each check and what failed, and nothing
else: no case data, no connection strings, no driver messages (they can carry both).
"""
from __future__ import annotations

import datetime as dt

from flask import jsonify

from datasource.probe import StoreProbe

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
