"""What some responses say they are: the exports' Content-Type names its charset once, and
/favicon.ico is an icon (browsers ask for it by themselves), never the page shell."""
from __future__ import annotations

import re

import pytest

from dashboard import browse as B
from dashboard import create_app
from dashboard.services import EXTENSION
from dashboard.settings import PROJECT_ROOT
from datasource.engine import make_engine
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url

ICON = (PROJECT_ROOT / "assets" / "favicon.ico").read_bytes()


@pytest.fixture(scope="module")
def store(request, tmp_path_factory):
    url = seeded_store_url("sqlite", request, tmp_path_factory.mktemp("types"),
                           profile=BACKLOG, seed=3, total_cases=300, now=FIXED_NOW, occupancy_days=1)
    engine = make_engine(url)
    engine.dispose()
    return url


def _app(url, **overrides):
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, **overrides})
    B.browse(app.server).clock = lambda: FIXED_NOW.timestamp()
    return app


@pytest.fixture
def app(store):
    app = _app(store)
    yield app
    app.server.extensions[EXTENSION].engine.dispose()
    B.browse(app.server).engine.dispose()


def test_export_content_types_name_the_charset_once(app, monkeypatch):
    client = app.server.test_client()
    for what in ("kpis", "cases", "problems", "facilities", "egrids"):
        resp = client.get(f"/browse/export.csv?what={what}&period=year")
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8", what
        resp = client.get(f"/browse/export.xlsx?what={what}&period=year")
        assert resp.headers["Content-Type"] == \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", what
    monkeypatch.setattr(B, "EXPORT_MAX_ROWS", 1)
    refused = client.get("/browse/export.csv?what=cases&period=year")
    assert refused.status_code == 413 and refused.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_favicon_is_an_icon_not_the_page_shell(app):
    assert ICON[:4] == b"\x00\x00\x01\x00"  # an ICO file
    client = app.server.test_client()
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/x-icon"
    assert resp.data == ICON
    # the pages link the same icon, served from the assets
    shell = client.get("/browse").get_data(as_text=True)
    href = re.search(r'<link rel="icon" type="image/x-icon" href="([^"]+)"', shell).group(1)
    assert href.startswith("/assets/favicon.ico")
    with client.get(href) as linked:  # a file the static route streams
        assert linked.status_code == 200 and linked.data == ICON


def test_favicon_needs_no_login(store):
    app = _app(store, AUTH_ENABLED=True, SECRET_KEY="test-secret-" + "x" * 20, DASHBOARD_ENV="demo")
    try:
        client = app.server.test_client()
        resp = client.get("/favicon.ico")
        assert resp.status_code == 200 and resp.data == ICON
        assert client.get("/browse").status_code in (302, 303)  # a page still needs one
    finally:
        app.server.extensions[EXTENSION].engine.dispose()
