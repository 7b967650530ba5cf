"""Shared fixtures: real SQLite and PostgreSQL stores, each test in its own database; the
demo city seeded once per session and copied for each test; the marks of the test tiers.

PostgreSQL: a migrated template database is made once per session; every test gets
`CREATE DATABASE ... TEMPLATE` (fast) and drops it afterwards (on a thread of its own).
SQLite: a copy of a migrated template file in the test's tmp_path. A seeded city is a
template of its own (seeded_store_url).
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import os
import queue
import re
import shutil
import threading
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


# --- tiers: which tests need PostgreSQL, Redis or a browser ----------------------------
# `make test-fast` runs the tests marked none of pg, redis and browser. The marks are put
# on here, so that a new test is classed without anyone remembering to: a test needs a
# service when a fixture it uses (at any depth) is one of SERVICE_FIXTURES, when one of its
# parameters is "postgresql", or when the source of the test, of its fixtures, or of the
# functions and classes of its own module that these name, holds one of SERVICE_TOKENS.
# The rule errs on the side of "needs": a test that names REDIS_URL to turn Redis off is
# left to `make test`. `make test-fast` also points PostgreSQL and Redis at a closed port,
# so that a test that reaches a service anyway fails there at once.
SERVICE_FIXTURES = {"pg": {"pg_admin", "pg_template"}, "redis": {"redis_prefix", "own_redis"},
                    "browser": {"browser", "page"}}
SERVICE_TOKENS = {
    "pg": ("postgresql", "pg_admin", "pg_template", "PG_ADMIN_URL", "TEST_PG_URL"),
    "redis": ("REDIS_URL", "redis_prefix", "RedisServer", "redis.Redis", "redis_client", "TEST_REDIS_URL"),
    "browser": ("chromium", "playwright", "export_week", "print_pdfs", "photograph", "wall_process"),
}
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def _source(obj) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _own(obj) -> bool:
    """Defined in a file under tests/ (not pytest's own fixtures or the code under test)."""
    try:
        return os.path.abspath(inspect.getfile(obj)).startswith(_TESTS_DIR)
    except TypeError:
        return False


def _test_sources(item) -> str:
    """The source of the test, of every fixture it uses, and of the module's own functions
    and classes that these name (followed until nothing new is named)."""
    objs = [item.function]
    for defs in item._fixtureinfo.name2fixturedefs.values():
        objs += [d.func for d in defs if _own(d.func)]
    module, seen, texts = item.module, set(), []
    while objs:
        obj = objs.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        text = _source(obj)
        texts.append(text)
        for name in set(re.findall(r"\b[A-Za-z_]\w*\b", text)):
            ref = getattr(module, name, None)
            if (inspect.isfunction(ref) or inspect.isclass(ref)) and ref.__module__ == module.__name__:
                objs.append(ref)
    return "\n".join(texts)


def services_needed(item) -> set[str]:
    needed = {name for name in SERVICE_FIXTURES if item.get_closest_marker(name)}
    names = set(item.fixturenames)
    needed |= {name for name, fixtures in SERVICE_FIXTURES.items() if names & fixtures}
    callspec = getattr(item, "callspec", None)
    if callspec and "postgresql" in [v for v in callspec.params.values() if isinstance(v, str)]:
        needed.add("pg")
    text = _test_sources(item)
    needed |= {name for name, tokens in SERVICE_TOKENS.items() if any(t in text for t in tokens)}
    return needed


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these marks
def pytest_collection_modifyitems(items):
    for item in items:
        if isinstance(item, pytest.Function):
            for name in services_needed(item):
                item.add_marker(name)


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


class _Dropper:
    """Drops the tests' databases on a thread of its own. DROP DATABASE waits for a
    checkpoint (about a second here), which the next test need not wait for."""

    def __init__(self, admin):
        self.admin = admin
        self.names: queue.Queue = queue.Queue()
        self.failed: list[str] = []
        self.thread = threading.Thread(target=self._run, name="test-db-dropper", daemon=True)
        self.thread.start()

    def _run(self):
        while (name := self.names.get()) is not None:
            try:
                with self.admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except Exception as exc:  # reported at the end of the session
                self.failed.append(f"{name}: {exc}")

    def drop(self, name: str) -> None:
        self.names.put(name)

    def close(self) -> None:
        self.names.put(None)
        self.thread.join()
        assert not self.failed, f"test databases not dropped: {self.failed}"


@pytest.fixture(scope="session")
def pg_admin():
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    engine.dropper = _Dropper(engine)
    yield engine
    engine.dropper.close()
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
        return _copy_store(backend, request, tmp_path, request.getfixturevalue("sqlite_template"))
    return _copy_store(backend, request, tmp_path, request.getfixturevalue("pg_template"))


def _copy_store(backend: str, request, tmp_path, template) -> str:
    """A store of its own made from `template` (a SQLite file, or a PostgreSQL database
    used as a template), removed when `request`'s test (or module) is done."""
    if backend == "sqlite":
        path = tmp_path / f"store-{uuid.uuid4().hex[:6]}.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    admin = request.getfixturevalue("pg_admin")
    name = _pg_copy(admin, template)

    def _drop():
        from dashboard.poller import stop_all

        stop_all()  # a test's app may still be polling: stop it before its database goes
        admin.dropper.drop(name)

    request.addfinalizer(_drop)
    return _pg_url(name)


def _pg_copy(admin, template: str) -> str:
    name = f"cc_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return name


# --- the demo city, seeded once per session and copied for each test -------------------
@pytest.fixture(scope="session")
def seeded_templates(tmp_path_factory):
    """Demo-city stores seeded once per test session: (backend, seed arguments) -> the
    SQLite file or the PostgreSQL database that seeded_store_url copies."""
    made: dict = {}
    yield made
    names = [t for (backend, _), t in made.items() if backend == "postgresql"]
    if names:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seeded_store_url(backend: str, request, tmp_path, **seed_args) -> str:
    """URL of a store of `backend` of the caller's own (removed after it), holding the demo
    city that datasource.demo.seed.seed(engine, **seed_args) makes.

    Seeding takes seconds (the static city alone is thousands of rows); so each distinct
    `seed_args` is seeded once per session into a template and each caller gets a copy of
    it (a file copy, or CREATE DATABASE ... TEMPLATE): a test may write to its store. The
    same arguments give the same rows, as seeding again would. A history up to the real
    "now" (no `now` given) is seeded once per test module instead, so that its age stays
    that of one module's tests.
    """
    from datasource.demo.seed import seed

    templates = request.getfixturevalue("seeded_templates")
    scope = "" if seed_args.get("now") else request.module.__name__
    key = (backend, json.dumps(seed_args, sort_keys=True, default=str) + scope)
    if key not in templates:
        if backend == "sqlite":
            path = request.getfixturevalue("tmp_path_factory").mktemp("seeded") / "city.db"
            shutil.copy(request.getfixturevalue("sqlite_template"), path)
            url, template = f"sqlite:///{path}", path
        else:
            template = _pg_copy(request.getfixturevalue("pg_admin"), request.getfixturevalue("pg_template"))
            url = _pg_url(template)
            templates[(backend, f"unfinished {template}")] = template  # dropped at the end whatever happens
        engine = make_engine(url)
        seed(engine, **seed_args)
        if backend == "sqlite":  # fold the WAL into the file so a plain copy is complete
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        templates.pop((backend, f"unfinished {template}"), None)
        templates[key] = template
    return _copy_store(backend, request, tmp_path, templates[key])


def seeded_engine(backend: str, request, tmp_path, **seed_args):
    """An engine on the caller's own copy of the seeded demo city (see seeded_store_url),
    disposed after it."""
    engine = make_engine(seeded_store_url(backend, request, tmp_path, **seed_args))
    request.addfinalizer(engine.dispose)
    return engine


@pytest.fixture(autouse=True)
def _no_poller_outlives_its_test():
    """Apps built by a test poll in the background; none may go on into the next test
    (it would poll a dropped database and leave failed connections to the GC)."""
    yield
    from dashboard.poller import stop_all

    stop_all()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each test that asks runs once on SQLite and once on PostgreSQL."""
    return request.param


@pytest.fixture
def store_url(backend, request, tmp_path) -> str:
    """A fresh migrated empty store, once on SQLite and once on PostgreSQL."""
    return new_store_url(backend, request, tmp_path)


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


# --- Redis --------------------------------------------------------------------------
@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own in the shared Redis, deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"cc-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


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
