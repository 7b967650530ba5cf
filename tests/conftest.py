"""Shared fixtures: real SQLite and PostgreSQL stores, each test in its own database.

PostgreSQL: a migrated template database is made once per session; every test gets
`CREATE DATABASE ... TEMPLATE` (fast) and drops it afterwards. SQLite: a copy of a
migrated template file in the test's tmp_path.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid

import pytest
from sqlalchemy import create_engine, text

from datasource.engine import make_engine
from datasource.migrate import upgrade
from datasource.reference import load_reference

# Pages are open in tests unless a test turns login on (tests/test_auth*.py do), so that
# each test checks its own subject; production defaults to AUTH_ENABLED=true.
os.environ.setdefault("AUTH_ENABLED", "false")
# production refuses AUTH_ENABLED=false; tests of production settings say so themselves
os.environ.setdefault("DASHBOARD_ENV", "demo")

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("sqlite", "postgresql")
# a fixed "now" for deterministic stores: a Thursday, 12:00 in Shanghai
FIXED_NOW = dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.timezone.utc)


def backlog_profile() -> dict:
    """The demo city with a backlog: stuck cases stall for years instead of hours (as the
    demo did before it was made realistic), so that even a small test store has open and overdue cases in every district and stage
    (the realistic demo leaves a 3,000-case store a handful; tests/test_demo_realism.py
    checks that one)."""
    from datasource.demo.city import load_profile

    return {**load_profile(), "stall_median_hours": 24 * 1000, "park_after_days": 100_000, "parked_share": 0.004}


BACKLOG = backlog_profile()


def _pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def pg_admin():
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin):
    name = f"cc_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(_pg_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    with pg_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:  # fold the WAL into the file so a plain copy is complete
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def new_store_url(backend: str, request, tmp_path) -> str:
    """URL of a fresh, migrated, empty store of `backend`, removed after the test."""
    if backend == "sqlite":
        path = tmp_path / f"store-{uuid.uuid4().hex[:6]}.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    admin = request.getfixturevalue("pg_admin")
    template = request.getfixturevalue("pg_template")
    name = f"cc_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

    def _drop():
        from dashboard.poller import stop_all

        stop_all()  # a test's app may still be polling: stop it before its database goes
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    request.addfinalizer(_drop)
    return _pg_url(name)


@pytest.fixture(autouse=True)
def _no_poller_outlives_its_test():
    """Apps built by a test poll in the background; none may go on into the next test
    (it would poll a dropped database and leave failed connections to the GC)."""
    yield
    from dashboard.poller import stop_all

    stop_all()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    """A fresh migrated empty store, once on SQLite and once on PostgreSQL."""
    return new_store_url(request.param, request, tmp_path)


@pytest.fixture
def engine(store_url):
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def reference_engine(engine):
    """A store with the default districts, streets and categories, and nothing else."""
    load_reference(engine)
    return engine


# --- a real browser against an app served in-process ---------------------------------
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


class LiveServer:
    def __init__(self, app):
        import threading

        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server("127.0.0.1", 0, app.server, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        from dashboard.services import EXTENSION

        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        self.app.server.extensions[EXTENSION].engine.dispose()


@pytest.fixture
def serve():
    """serve(app) -> LiveServer on a free loopback port, stopped after the test."""
    servers = []

    def _serve(app):
        servers.append(LiveServer(app))
        return servers[-1]

    yield _serve
    for s in servers:
        s.stop()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors and every request's URL."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    pg = context.new_page()
    pg.console_errors = []
    pg.requested = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    context.close()


def wait_until(page, fn: str, arg=None, timeout: float = 10.0):
    """Poll the JS function `fn` (called with `arg`) until it returns something truthy.

    Playwright's wait_for_function evaluates its predicate with eval(), which the app's
    Content-Security-Policy forbids (no 'unsafe-eval'); page.evaluate of a function does not.
    Write `fn` so that Playwright sees a function ("(x) => ...", "([a, b]) => ..."): a
    destructuring "[a, b] => ..." is taken for an expression, eval'd, refused by the CSP.
    `timeout` in seconds, or in milliseconds when above 1000 (wait_for_function's unit).
    """
    import time

    seconds = timeout / 1000 if timeout > 1000 else timeout
    deadline = time.monotonic() + seconds
    while True:
        try:
            if page.evaluate(fn, arg):
                return
        except Exception:  # between two documents (a reload or a navigation)
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds:g} s: {fn}")
        time.sleep(0.1)


def only_local(urls) -> list[str]:
    """The URLs that left the machine (should be none)."""
    from urllib.parse import urlparse

    return [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")
            and urlparse(u).hostname not in ("127.0.0.1", "localhost")]
