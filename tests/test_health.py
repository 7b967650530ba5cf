"""/readyz and /metrics on real stores and Redis: what they say, and what they never say."""
import datetime as dt
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dashboard import create_app
from dashboard.metrics import count_refresh, report_rows_changed
from dashboard.kpis.sections import open_cases_section
from dashboard.poller import Poller, stop_all
from dashboard.services import EXTENSION
from dashboard.snapshot import Section, Snapshot
from datasource import queries
from datasource.engine import make_engine
from tests.conftest import BACKLOG, FIXED_NOW, REDIS_URL, seeded_store_url
from tests.service_helpers import free_port, make_store_unreachable, wait_for


@pytest.fixture
def apps(tmp_path):
    """make(**overrides) -> app; every app's poller and engine are stopped afterwards."""
    made = []

    def make(store_url, sections=None, **overrides):
        settings = {"DATABASE_URL": store_url, "LOCAL_CACHE_DIR": str(tmp_path / "cache"),
                    "POLLER_ENABLED": False, "LOG_LEVEL": "WARNING", **overrides}
        made.append(create_app(settings, sections=sections))
        return made[-1]

    yield make
    stop_all()
    for app in made:
        app.server.extensions[EXTENSION].engine.dispose()


def _svc(app):
    return app.server.extensions[EXTENSION]


def _poll(app, sections=None):
    """One poll by hand (the tests that need no scheduler)."""
    svc = _svc(app)
    return Poller(svc.settings, engine=svc.engine, cache=svc.cache, sections=sections).poll_once()


def _readyz(app):
    r = app.server.test_client().get("/readyz")
    return r.status_code, r.get_json()


def test_ready_when_store_cache_and_a_recent_poll_are_there(reference_engine, store_url, apps, redis_prefix):
    app = apps(store_url, REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix, POLLER_ENABLED=True,
               POLL_SECONDS=0.2)
    wait_for(lambda: _readyz(app)[0] == 200)
    code, body = _readyz(app)
    assert body == {"status": "ready", "failed": [],
                    "checks": {"store": "ok", "cache": "ok", "snapshot": "ok"}}


def test_not_ready_before_the_first_poll_and_when_the_poll_is_old(reference_engine, store_url, apps):
    app = apps(store_url, READY_MAX_AGE_SECONDS=30)
    code, body = _readyz(app)
    assert (code, body["failed"], body["checks"]["snapshot"]) == (503, ["snapshot"], "none published yet")

    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=100)
    _svc(app).cache.publish(Snapshot(computed_at=old, data_as_of=None, sections={"x": Section("fresh", 1)}))
    code, body = _readyz(app)
    assert (code, body["failed"]) == (503, ["snapshot"])
    assert body["checks"]["snapshot"] == "100 s old (limit 30 s)"

    _poll(app)
    assert _readyz(app) == (200, {"status": "ready", "failed": [],
                                  "checks": {"store": "ok", "cache": "ok", "snapshot": "ok"}})


def test_not_ready_when_the_store_does_not_answer(reference_engine, store_url, apps, tmp_path):
    app = apps(store_url)
    _poll(app)
    assert _readyz(app)[0] == 200
    back = make_store_unreachable(reference_engine, store_url, tmp_path)
    try:
        started = time.monotonic()
        code, body = _readyz(app)
        assert time.monotonic() - started < 3
    finally:
        back()
    assert (code, body["failed"]) == (503, ["store"])
    assert body["checks"]["store"] == "unreachable (OperationalError)"
    assert _readyz(app)[0] == 200


def test_sqlite_probe_does_not_create_a_missing_store(tmp_path, apps):
    path = tmp_path / "missing.db"
    code, body = _readyz(apps(f"sqlite:///{path}"))
    assert code == 503 and "store" in body["failed"]
    assert not path.exists()


def test_ready_but_degraded_when_redis_does_not_answer(reference_engine, store_url, apps):
    """Walls keep being served from the host folder while Redis is away: that is ready,
    with the degraded cache named in the body; only an old snapshot makes it not ready."""
    app = apps(store_url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", READY_MAX_AGE_SECONDS=30)
    _poll(app)  # published to the host folder instead
    code, body = _readyz(app)
    assert (code, body["status"], body["failed"], body["degraded"]) == (200, "ready", [], ["cache"])
    assert body["checks"]["cache"].startswith("degraded: redis unreachable")
    assert body["checks"]["snapshot"] == "ok"

    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=100)
    _svc(app).cache.publish(Snapshot(computed_at=old, data_as_of=None, sections={"x": Section("fresh", 1)}))
    code, body = _readyz(app)
    assert (code, body["failed"], body["degraded"]) == (503, ["snapshot"], ["cache"])


def _metrics(app) -> dict[str, float]:
    text = app.server.test_client().get("/metrics").get_data(as_text=True)
    return {(s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(s.labels.items()) if k != "le")
             if s.name != "cc_poll_duration_seconds_bucket" else f"{s.name}{{le={s.labels['le']}}}"): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.fixture
def seeded_sqlite(request, tmp_path):
    """A small seeded city; one backend is enough where the store is not the subject."""
    url = seeded_store_url("sqlite", request, tmp_path,
                           profile=BACKLOG, seed=9, now=FIXED_NOW, total_cases=2000, occupancy_days=1)
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def test_metrics_are_the_same_on_every_worker(seeded_sqlite, apps, redis_prefix):
    store_url, _ = seeded_sqlite

    def counted(engine_, now, tz):
        report_rows_changed(7)
        return open_cases_section(engine_, now, tz)

    worker_a = apps(store_url, REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix)
    worker_b = apps(store_url, REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix)
    assert "cc_snapshot_age_seconds" not in _metrics(worker_b)  # before the first poll: absent
    _poll(worker_a, {"open_cases": counted})
    _poll(worker_a, {"open_cases": counted})
    for worker in (worker_a, worker_b, worker_b):
        with worker.server.test_request_context("/_dash-update-component"):
            count_refresh()  # what a callback calls on each tick

    for worker in (worker_a, worker_b):
        m = _metrics(worker)
        assert m["cc_poll_duration_seconds_count"] == 2
        assert m["cc_poll_duration_seconds_bucket{le=+Inf}"] == 2
        assert 0 < m["cc_poll_duration_seconds_sum"] < 10
        assert m["cc_polls_total{result=ok}"] == 2 and m["cc_polls_total{result=failed}"] == 0
        assert m["cc_poll_rows_changed"] == 7 and m["cc_rows_changed_total"] == 14
        assert m["cc_refresh_requests_total"] == 3
        assert m["cc_cache_fallbacks_total"] == 0 and m["cc_cache_fallback_active"] == 0
        assert 0 <= m["cc_snapshot_age_seconds"] < 5
        assert m["cc_data_age_seconds"] > 0  # the seeded history ends at FIXED_NOW
        assert m["cc_snapshot_sections{status=fresh}"] == 1


def test_metrics_count_a_fallback_when_redis_is_away(reference_engine, store_url, apps):
    app = apps(store_url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    _poll(app)
    m = _metrics(app)
    assert m["cc_cache_fallbacks_total"] == 1 and m["cc_cache_fallback_active"] == 1
    assert m["cc_poll_duration_seconds_count"] == 1  # the figures went to the host folder


def test_health_endpoints_reveal_no_case_data(seeded_sqlite, apps):
    store_url, engine = seeded_sqlite
    app = apps(store_url)
    _poll(app)
    client = app.server.test_client()
    bodies = [client.get(p).get_data(as_text=True) for p in ("/healthz", "/readyz", "/metrics")]
    rows = queries.open_cases_by_district(engine)
    assert rows and all(r["open_cases"] for r in rows)
    words = {r["name_zh"] for r in rows} | {r["name_en"] for r in rows} | {r["code"] for r in rows}
    words |= {f"\"open_cases\": {r['open_cases']}" for r in rows}
    assert "open_cases" not in "".join(bodies) and store_url.split("/")[-1] not in "".join(bodies)
    assert not [w for w in words for b in bodies if w in b]
