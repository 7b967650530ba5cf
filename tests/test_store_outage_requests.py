"""While the store refuses connections (PostgreSQL for real: connections disallowed and
ended), a signed-in wall keeps answering from the snapshot, and pages that need the
store answer 503 "store unavailable", never 500. Found by the soak (bench/soak.py): every
wall refresh failed as soon as the principal's cached row expired."""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import text

from tests.wall_helpers import WallDisplay
from dashboard import create_app
from dashboard.accounts import new_display_token
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url


@contextlib.contextmanager
def store_cut(admin, dbname: str):
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": dbname})
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true'))


@pytest.fixture
def city(request, tmp_path, pg_admin):
    url = seeded_store_url("postgresql", request, tmp_path, profile=BACKLOG, seed=3, total_cases=800, now=FIXED_NOW,
                           occupancy_days=1)
    app = create_app({"DATABASE_URL": url, "AUTH_ENABLED": True, "SECRET_KEY": "test-secret-" + "x" * 20,
                      "POLLER_ENABLED": False, "AUTH_CACHE_SECONDS": 0, "DASHBOARD_ENV": "demo",
                      "LOCAL_CACHE_DIR": str(tmp_path / "cache")})
    svc = app.server.extensions[EXTENSION]
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()
    yield app, svc, url.rsplit("/", 1)[1]
    svc.engine.dispose()


def _wall(client):
    def post(body):
        resp = client.post("/_dash-update-component", json=body)
        return resp.status_code, resp.data
    return WallDisplay(post)


def test_a_signed_in_wall_keeps_refreshing_while_the_store_is_away(city, pg_admin):
    app, svc, dbname = city
    _id, token = new_display_token(svc.engine, "hall", None)
    wall_client, stranger = app.server.test_client(), app.server.test_client()
    assert wall_client.get(f"/wall?token={token}").status_code == 200
    display = _wall(wall_client)
    assert display.refresh()[0] == 200
    with store_cut(pg_admin, dbname):
        svc.engine.dispose()  # no pooled connection survives the cut
        for _ in range(3):  # the principal's row is re-read on every request (cache 0 s)
            status, raw, _sent = display.refresh()
            assert status == 200, raw[:200]
        # a token never seen cannot be vouched for without the store: refused, not a 500
        assert stranger.get(f"/wall?token={token}x").status_code in (302, 401, 403, 503)
        # a page that reads the store says so
        second = _wall(stranger)
        assert second.refresh()[0] in (302, 401, 403)  # not signed in: no data
    assert display.refresh()[0] == 200  # and after: as before


def test_a_page_that_needs_the_store_answers_503_while_it_is_away(city, pg_admin):
    app, svc, dbname = city
    client = app.server.test_client()
    # the case page reads the store: as a signed-in city leader
    from dashboard.accounts import hash_password
    from datasource import users
    import re

    users.create_user(svc.engine, "leader", hash_password("correct horse battery"), "city_leader", None)
    page = client.get("/login").data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"username": "leader", "password": "correct horse battery",
                                       "csrf_token": csrf, "next": "/"}).status_code == 302
    assert client.get("/browse/export.csv?period=today&what=cases").status_code == 200
    with store_cut(pg_admin, dbname):
        svc.engine.dispose()
        resp = client.get("/browse/export.csv?period=month&what=cases")
        assert resp.status_code == 503, resp.data[:300]
        assert b"Traceback" not in resp.data
    assert client.get("/browse/export.csv?period=month&what=cases").status_code == 200
