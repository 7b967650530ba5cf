"""`/readyz`: can this host serve walls? (`/healthz` only says the process is up.)

Ready means: the store answers `SELECT 1` within a short timeout, and the snapshot this
process serves, from whichever store it reads (Redis, or the host folder while Redis is
unreachable), was published within READY_MAX_AGE_SECONDS. An unreachable Redis is not a
reason to turn walls away: it shows as "degraded" in the body (`checks.cache`,
`degraded: ["cache"]`) and in /metrics (`cc_cache_fallback_active`), with a 200.
The JSON body names each check and what failed, and nothing else: no case data, no
connection strings, no driver messages (they can carry both).
"""
from __future__ import annotations

import datetime as dt

from flask import jsonify

from datasource.probe import StoreProbe

DEGRADED = "degraded: "  # a check that is not "ok" but does not fail readiness


def readiness(services, probe: StoreProbe,
              now: dt.datetime | None = None) -> tuple[bool, dict[str, str]]:
    now = now or dt.datetime.now(dt.timezone.utc)
    checks: dict[str, str] = {}
    checks["store"] = probe.check() or "ok"
    problem = services.cache.ping()
    checks["cache"] = "ok" if problem is None else (
        DEGRADED + problem + ", serving from the host folder" if problem.startswith("redis") else problem)
    try:
        head = services.cache.head()
    except OSError as exc:
        head, checks["snapshot"] = None, f"unreadable ({exc.__class__.__name__})"
    if head is None:
        checks.setdefault("snapshot", "none published yet")
    else:
        age, limit = head.age(now), services.settings.ready_max_age
        checks["snapshot"] = "ok" if age <= limit else f"{age:.0f} s old (limit {limit:g} s)"
    return all(v == "ok" or v.startswith(DEGRADED) for v in checks.values()), checks


def register(server, services) -> None:
    probe = StoreProbe(services.settings.database_url)  # connects only when asked

    @server.get("/readyz")
    def readyz():
        ready, checks = readiness(services, probe)
        failed = sorted(n for n, v in checks.items() if v != "ok" and not v.startswith(DEGRADED))
        degraded = sorted(n for n, v in checks.items() if v.startswith(DEGRADED))
        body = {"status": "ready" if ready else "not ready", "checks": checks, "failed": failed}
        if degraded:
            body["degraded"] = degraded
        return jsonify(**body), 200 if ready else 503
