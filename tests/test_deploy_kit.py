"""The deployment kit (deploy/, docs/deployment.md): gunicorn's settings, log lines that
name their host and process, an access log without tokens, service definitions that
start real commands, alert rules on real metrics, index builds that do not block writes."""
from __future__ import annotations

import configparser
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard import logs
from dashboard.cli import _gunicorn_argv
from dashboard.settings import Settings
from tests.service_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
HOST = socket.gethostname()


# --- gunicorn's settings --------------------------------------------------------------------
def _parsed(argv: list[str]):
    """gunicorn's own parser on our command line: a misspelt flag fails here."""
    from gunicorn.config import Config

    assert argv[1:3] == ["-m", "gunicorn"]
    return Config().parser().parse_args(argv[3:])


def test_gunicorn_argv_honours_the_settings():
    settings = Settings.from_env({"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_PORT": "9001",
                                  "DASHBOARD_WORKERS": "5", "GUNICORN_THREADS": "8",
                                  "GUNICORN_TIMEOUT": "120", "GUNICORN_GRACEFUL_TIMEOUT": "45",
                                  "GUNICORN_KEEPALIVE": "7", "ACCESS_LOG": "true", "LOG_LEVEL": "WARNING"})
    ns = _parsed(_gunicorn_argv(settings))
    assert ns.bind == ["0.0.0.0:9001"]
    assert (ns.workers, ns.threads, ns.timeout, ns.graceful_timeout, ns.keepalive) == (5, 8, 120, 45, 7)
    assert ns.accesslog == "-" and ns.loglevel == "warning"
    assert ns.logger_class == "dashboard.logs.GunicornLogger"
    assert ns.args == ["app:server"]

    quiet = _parsed(_gunicorn_argv(Settings.from_env({"ACCESS_LOG": "false"})))
    assert quiet.accesslog is None
    assert (quiet.workers, quiet.threads, quiet.timeout) == (2, 4, 60)  # the documented defaults


@pytest.mark.parametrize("name, raw", [("GUNICORN_THREADS", "0"), ("GUNICORN_TIMEOUT", "soon"),
                                       ("DASHBOARD_WORKERS", "-1"), ("LOG_FORMAT", "xml")])
def test_bad_server_settings_are_refused(name, raw):
    from dashboard.settings import SettingsError

    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: raw})


# --- log lines ------------------------------------------------------------------------------
def _record(msg, *args, name="dashboard.poller", level=logging.WARNING, exc_info=None):
    return logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)


def test_text_lines_carry_time_level_host_pid_logger():
    line = logs.LineFormatter("text").format(_record("section %s failed", "cases"))
    stamp, level, host, pid, rest = line.split(" ", 4)
    assert (level, host, pid) == ("WARNING", HOST, f"[{os.getpid()}]")
    assert rest == "dashboard.poller: section cases failed"
    assert stamp[:2] == "20" and "T" in stamp and (stamp[-6] in "+-")  # ISO 8601 with its offset


def test_json_lines_carry_the_same_fields_and_the_traceback():
    try:
        raise RuntimeError("store went away")
    except RuntimeError:
        record = _record("poll failed", level=logging.ERROR, exc_info=sys.exc_info())
    line = json.loads(logs.LineFormatter("json").format(record))
    assert {k: line[k] for k in ("level", "host", "pid", "logger", "msg")} == {
        "level": "ERROR", "host": HOST, "pid": os.getpid(), "logger": "dashboard.poller", "msg": "poll failed"}
    assert "RuntimeError: store went away" in line["exc"]


def test_tokens_never_reach_a_log_line():
    line = logs.LineFormatter("text").format(_record("GET /wall?token=%s&rotate=30", "s3cr3t-wall-token"))
    assert "s3cr3t-wall-token" not in line and "token=[redacted]&rotate=30" in line
    assert logs.redact("/x?lang=en&password=hunter2#top") == "/x?lang=en&password=[redacted]#top"


def test_configure_installs_one_handler_and_follows_the_settings(capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        logs.configure(Settings.from_env({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}))
        logs.configure(Settings.from_env({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}))  # twice: one handler
        assert len(root.handlers) == 1
        logging.getLogger("dashboard.test").debug("hello %d", 3)
        logs.configure(Settings.from_env({"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}))
        logging.getLogger("dashboard.test").debug("not shown")
        logging.getLogger("dashboard.test").info("plain")
    finally:
        root.handlers, _ = saved
        root.setLevel(saved[1])
    first, second = capsys.readouterr().err.strip().splitlines()
    assert json.loads(first)["msg"] == "hello 3" and json.loads(first)["pid"] == os.getpid()
    assert second.endswith(f" INFO {HOST} [{os.getpid()}] dashboard.test: plain")


def test_cli_log_lines_carry_host_and_pid(tmp_path):
    """A real `python -m dashboard db upgrade`: alembic's lines come out in our format."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "LOG_FORMAT": "text"}
    proc = subprocess.run([sys.executable, "-m", "dashboard", "db", "upgrade"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if " alembic." in ln]
    assert lines, proc.stderr
    assert all(f" INFO {HOST} [" in ln and "] alembic." in ln for ln in lines), lines


# --- gunicorn for real: its lines, the app's lines and the access log -----------------------
def tiny_app():
    """What the gunicorn test's workers load: logging set up as the app factory does, and
    a WSGI app that logs the query string it was given."""
    logs.configure(Settings.from_env())
    log = logging.getLogger("dashboard.tiny")

    def app(environ, start_response):
        log.warning("asked for %s?%s", environ["PATH_INFO"], environ["QUERY_STRING"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    return app


def _serve_once(tmp_path, log_format: str) -> tuple[str, str]:
    port = free_port()
    settings = Settings.from_env({"DASHBOARD_PORT": str(port), "DASHBOARD_WORKERS": "1",
                                  "GUNICORN_THREADS": "2", "ACCESS_LOG": "true", "LOG_FORMAT": log_format})
    argv = _gunicorn_argv(settings)
    argv[-1] = "tests.test_deploy_kit:tiny_app()"
    out, err = tmp_path / f"out-{log_format}", tmp_path / f"err-{log_format}"
    env = {**os.environ, "LOG_FORMAT": log_format}
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=o, stderr=e)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    url = f"http://127.0.0.1:{port}/wall?token=s3cr3t-wall-token&rotate=30"
                    req = urllib.request.Request(url, headers={
                        "Referer": f"http://127.0.0.1:{port}/wall?token=s3cr3t-wall-token"})
                    with urllib.request.urlopen(req, timeout=5) as r:
                        assert r.status == 200
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                    time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return out.read_text(), err.read_text()


def test_gunicorn_lines_and_access_log_in_text(tmp_path):
    out, err = _serve_once(tmp_path, "text")
    assert "s3cr3t" not in out + err
    access = [ln for ln in out.splitlines() if "gunicorn.access" in ln]
    assert len(access) == 1, out
    stamp, level, host, pid, rest = access[0].split(" ", 4)
    assert (level, host) == ("INFO", HOST) and pid.startswith("[") and pid[1:-1].isdigit()
    assert rest.startswith('gunicorn.access: 127.0.0.1 "GET /wall?token=[redacted]&rotate=30" 200 3 ')
    seconds = rest.split('" 200 3 ')[1].split(" ")[0]
    assert seconds.endswith("s") and float(seconds[:-1]) >= 0  # the request's time
    assert '"http://127.0.0.1:' in rest and '/wall?token=[redacted]"' in rest  # the referer too
    app_lines = [ln for ln in err.splitlines() if "dashboard.tiny" in ln]
    assert len(app_lines) == 1 and f" WARNING {HOST} {pid} dashboard.tiny: " in app_lines[0]  # the worker's PID
    booting = [ln for ln in err.splitlines() if "Booting worker" in ln]
    assert booting and f" INFO {HOST} [" in booting[0] and "gunicorn.error" in booting[0]


def test_gunicorn_lines_and_access_log_in_json(tmp_path):
    out, err = _serve_once(tmp_path, "json")
    assert "s3cr3t" not in out + err
    (access,) = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    assert access["logger"] == "gunicorn.access" and access["host"] == HOST and access["status"] == "200"
    assert access["path"] == "/wall?token=[redacted]&rotate=30" and access["method"] == "GET"
    assert isinstance(access["seconds"], float) and isinstance(access["pid"], int)
    lines = [json.loads(ln) for ln in err.splitlines() if ln.startswith("{")]
    assert any(ln["logger"] == "dashboard.tiny" and ln["pid"] == access["pid"] for ln in lines)
    assert len(lines) == len([ln for ln in err.splitlines() if ln.strip()])  # nothing but JSON


# --- metrics the alert rules need, and the rules themselves ---------------------------------
@pytest.fixture
def apps(tmp_path):
    from dashboard import create_app
    from dashboard.poller import stop_all
    from dashboard.services import EXTENSION

    made = []

    def make(store_url, **overrides):
        settings = {"DATABASE_URL": store_url, "LOCAL_CACHE_DIR": str(tmp_path / "cache"),
                    "REPORTS_DIR": str(tmp_path / "reports"), "POLLER_ENABLED": False,
                    "LOG_LEVEL": "WARNING", **overrides}
        made.append(create_app(settings))
        return made[-1]

    yield make
    stop_all()
    for app in made:
        app.server.extensions[EXTENSION].engine.dispose()


def _exposed(app) -> dict[str, float]:
    """/metrics as {sample name (labels dropped): value}, summed over labels."""
    from prometheus_client.parser import text_string_to_metric_families

    text = app.server.test_client().get("/metrics").get_data(as_text=True)
    found: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            found[s.name] = found.get(s.name, 0.0) + s.value
    return found


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_leader_count_is_one_then_none_then_two(reference_engine, store_url, apps, redis_prefix):
    from dashboard import metrics
    from dashboard.poller import stop_all
    from dashboard.services import EXTENSION
    from tests.conftest import REDIS_URL
    from tests.service_helpers import wait_for as _wait

    shared = {"REDIS_URL": REDIS_URL, "CACHE_PREFIX": redis_prefix, "POLL_SECONDS": 0.3,
              "LEADER_LOCK_SECONDS": 1.5}
    worker_a = apps(store_url, POLLER_ENABLED=True, **shared)
    worker_b = apps(store_url, POLLER_ENABLED=True, **shared)  # a second worker: one leader still
    _wait(lambda: _exposed(worker_b).get("cc_poller_leaders") == 1, timeout=10)
    for _ in range(5):
        time.sleep(0.3)
        assert _exposed(worker_a)["cc_poller_leaders"] == 1
    stop_all()  # both stop and withdraw their marks
    assert _exposed(worker_a)["cc_poller_leaders"] == 0
    cache = worker_a.server.extensions[EXTENSION].cache  # two processes that both say they lead
    metrics.mark_leader(cache, "host-a:1", time.time() + 10)
    metrics.mark_leader(cache, "host-b:2", time.time() + 10)
    metrics.mark_leader(cache, "host-c:3", time.time() - 5)  # expired: not counted
    assert _exposed(worker_b)["cc_poller_leaders"] == 2
    metrics.mark_leader(cache, "host-a:1", time.time() + 10)  # ... and marks gone for an hour are dropped
    metrics.mark_leader(cache, "host-d:4", time.time() - 2 * metrics.LEADER_MARKS_KEPT)
    metrics.mark_leader(cache, "host-a:1", time.time() + 10)
    assert set(cache.fields(metrics.LEADERS)) == {"host-a:1", "host-b:2", "host-c:3"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_report_failures_are_exposed(reference_engine, store_url, apps, tmp_path):
    from dashboard.weekly.archive import Archive

    app = apps(store_url)
    assert "cc_report_failed_weeks" in _exposed(app) and "cc_report_last_success_timestamp_seconds" not in _exposed(app)
    archive = Archive(tmp_path / "reports")
    archive.record("2026-W46", "running")
    archive.record("2026-W46", "ok")
    archive.record("2026-W47", "running")
    archive.record("2026-W47", "failed", error="chromium missing")
    m = _exposed(app)
    assert m["cc_report_failed_weeks"] == 1
    assert abs(m["cc_report_last_success_timestamp_seconds"] - time.time()) < 60
    archive.record("2026-W47", "running")
    archive.record("2026-W47", "ok")
    assert _exposed(app)["cc_report_failed_weeks"] == 0


def _alert_rules() -> list[dict]:
    import yaml

    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_are_well_formed():
    import re

    rules = _alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)) >= 10
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert r["labels"]["severity"] in ("critical", "warning"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert re.fullmatch(r"\d+[smhd]", r.get("for", "0s")), r["alert"]
        depth = 0
        for ch in r["expr"]:  # brackets balance (promtool is not on every machine)
            depth += {"(": 1, ")": -1}.get(ch, 0)
            assert depth >= 0, r["alert"]
        assert depth == 0 and r["expr"].count("[") == r["expr"].count("]"), r["alert"]
        assert "sum(cc_" not in r["expr"].replace(" ", ""), "shared figures: max() across targets, never sum()"
    covered = " ".join(r["expr"] for r in rules)
    for metric in ("cc_snapshot_age_seconds", 'cc_polls_total{result="failed"}', "cc_poller_leaders",
                   "cc_selfcheck_mismatches_total", "cc_fenced_writes_total", "cc_report_failed_weeks"):
        assert metric in covered, f"no alert on {metric}"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_metric_in_the_alert_rules_is_exposed(reference_engine, store_url, apps, tmp_path):
    """Each cc_* name in an expression is one the app's /metrics really serves (after a poll,
    with a leader and a report run), so no rule watches a name that never comes."""
    import re

    from dashboard.poller import Poller
    from dashboard.services import EXTENSION
    from dashboard.weekly.archive import Archive

    app = apps(store_url)
    svc = app.server.extensions[EXTENSION]
    poller = Poller(svc.settings, engine=svc.engine, cache=svc.cache)
    assert poller._refresh() is True  # leads (the file lock) and marks itself
    poller.poll_once(as_leader=True)
    poller.election.release()  # (no scheduler was started: stop() would leave the lock file open)
    Archive(tmp_path / "reports").record("2026-W47", "ok")
    exposed = set(_exposed(app))
    named = {m for r in _alert_rules() for m in re.findall(r"\bcc_[a-z0-9_]+", r["expr"])}
    assert named and named <= exposed, named - exposed


# --- index builds that do not block writes --------------------------------------------------
EXAMPLE_MIGRATION = '''"""example: an index built without blocking writes

Revision ID: 9999
Revises: {head}
"""
from datasource.migrations.helpers import create_index_concurrently, drop_index_concurrently

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index_concurrently("ix_cases_example_updated", "cases", ["updated_at", "id"])


def downgrade() -> None:
    drop_index_concurrently("ix_cases_example_updated", "cases")
'''


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_a_migration_using_the_helper_runs_through_upgrade(store_url, tmp_path):
    """`python -m dashboard db upgrade`'s code path runs a migration that steps out of its
    transaction (the old single outer transaction made alembic's autocommit block fail)."""
    import shutil

    from sqlalchemy import inspect

    from datasource.engine import make_engine
    from datasource.migrate import MIGRATIONS, current_revision, head_revision, upgrade

    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_example.py").write_text(EXAMPLE_MIGRATION.format(head=head_revision()))
    engine = make_engine(store_url)
    try:
        upgrade(engine, script_location=scripts)
        upgrade(engine, script_location=scripts)  # at head: nothing to do
        assert current_revision(engine) == "9999"
        assert "ix_cases_example_updated" in {ix["name"] for ix in inspect(engine).get_indexes("cases")}
    finally:
        engine.dispose()


def _run_in_migration(engine, fn) -> None:
    """Call `fn` as a migration's upgrade() would run: an alembic context with `op` bound."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        with ctx.begin_transaction(), Operations.context(ctx):
            fn()
        conn.commit()


def _build_while_a_write_is_open(store_url, build) -> tuple[bool, str]:
    """Hold a write transaction on a table, start `build` on it in a thread, then try
    another write with a 2 s lock timeout. Returns (did that write pass?, the index's state
    once the first transaction ended and the build finished)."""
    import threading

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from datasource.engine import make_engine
    from tests.service_helpers import wait_for as _wait

    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe_rows (id serial PRIMARY KEY, v int)"))
            conn.execute(text("INSERT INTO probe_rows (v) SELECT g FROM generate_series(1, 5000) g"))
        holder = engine.connect()
        holder.execute(text("INSERT INTO probe_rows (v) VALUES (-1)"))  # a write still open
        errors: list[BaseException] = []

        def run():
            try:
                _run_in_migration(engine, build)
            except BaseException as exc:  # reported below
                errors.append(exc)

        builder = threading.Thread(target=run, daemon=True)
        builder.start()
        def build_waits() -> bool:  # (a new transaction each time: pg_stat_activity is cached in one)
            with engine.connect() as watch:
                return watch.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX%probe_rows%' "
                    "AND wait_event_type = 'Lock'")).scalar() == 1

        _wait(build_waits, timeout=20, step=0.1)  # the build has started and waits for the open write
        passed = True
        try:
            with engine.connect() as writer:
                writer.execute(text("SET lock_timeout = '2s'"))
                writer.execute(text("INSERT INTO probe_rows (v) VALUES (-2)"))
                writer.commit()
        except OperationalError as exc:
            assert "lock timeout" in str(exc)
            passed = False
        holder.commit()
        holder.close()
        builder.join(timeout=30)
        assert not builder.is_alive() and not errors, errors
        with engine.connect() as conn:
            state = conn.execute(text(
                "SELECT CASE WHEN i.indisvalid THEN 'valid' ELSE 'invalid' END FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'ix_probe_v'")).scalar()
        return passed, state
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_concurrent_index_build_lets_writes_through(store_url):
    from datasource.migrations.helpers import create_index_concurrently

    passed, state = _build_while_a_write_is_open(
        store_url, lambda: create_index_concurrently("ix_probe_v", "probe_rows", ["v"]))
    assert passed, "a write waited for the concurrent index build"
    assert state == "valid"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_plain_index_build_blocks_writes(store_url):
    """The other side of the test above: what every existing migration does (fine on the
    empty tables of a new store) makes a write wait on a store with traffic."""
    from alembic import op

    passed, state = _build_while_a_write_is_open(
        store_url, lambda: op.create_index("ix_probe_v", "probe_rows", ["v"]))
    assert not passed and state == "valid"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_concurrent_helper_rebuilds_an_invalid_index(store_url):
    """A concurrent build that failed leaves an INVALID index; running the migration again
    drops and rebuilds it (a plain IF NOT EXISTS would keep the broken one)."""
    from sqlalchemy import text

    from datasource.engine import make_engine
    from datasource.migrations.helpers import create_index_concurrently

    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe_dupes (v int)"))
            conn.execute(text("INSERT INTO probe_dupes VALUES (1), (1)"))
        with pytest.raises(Exception, match="could not create unique index"):
            _run_in_migration(engine, lambda: create_index_concurrently(
                "ix_probe_dupes", "probe_dupes", ["v"], unique=True))
        valid = "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid " \
                "WHERE c.relname = 'ix_probe_dupes'"
        with engine.connect() as conn:
            assert conn.execute(text(valid)).scalar() is False
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM probe_dupes WHERE ctid <> (SELECT min(ctid) FROM probe_dupes)"))
        _run_in_migration(engine, lambda: create_index_concurrently(
            "ix_probe_dupes", "probe_dupes", ["v"], unique=True))
        with engine.connect() as conn:
            assert conn.execute(text(valid)).scalar() is True
    finally:
        engine.dispose()


# --- service definitions ---------------------------------------------------------------------
def _subcommands() -> set[str]:
    from dashboard.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return set(sub.choices)


def _units() -> dict[str, configparser.ConfigParser]:
    units = {}
    for path in sorted((DEPLOY / "systemd").iterdir()):
        cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
        cp.optionxform = str
        cp.read_string(path.read_text())
        units[path.name] = cp
    return units


def test_systemd_units_run_the_three_processes_and_restart_them():
    units = _units()
    services = {n: u for n, u in units.items() if n.endswith(".service")}
    commands = {}
    for name, unit in services.items():
        svc = unit["Service"]
        argv = svc["ExecStart"].split()
        assert argv[argv.index("-m") + 1] == "dashboard" and argv[-1] in _subcommands(), name
        commands[argv[-1]] = argv
        assert svc["Restart"] == "always", name
        assert svc["EnvironmentFile"] == "/etc/command-centre/command-centre.env", name
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                           ("PrivateTmp", "yes"), ("CapabilityBoundingSet", "")):
            assert svc[key] == value, (name, key)
        assert svc["User"] != "root" and svc["StateDirectory"] == "command-centre", name
        assert unit["Install"]["WantedBy"] == "command-centre.target", name
    assert set(commands) == {"serve", "poll", "reports"}
    # the web workers leave polling to the poller unit, set after the file is read (env(1))
    assert commands["serve"][:2] == ["/usr/bin/env", "POLLER_ENABLED=false"]
    assert not any("POLLER_ENABLED" in a for a in commands["poll"] + commands["reports"])
    assert "/bin/kill -HUP $MAINPID" == services["command-centre-web.service"]["Service"]["ExecReload"]
    # stopping leaves gunicorn its graceful timeout
    web_stop = int(services["command-centre-web.service"]["Service"]["TimeoutStopSec"])
    assert web_stop > int(Settings.from_env({})["GUNICORN_GRACEFUL_TIMEOUT"])
    env_example = (DEPLOY / "command-centre.env.example").read_text()
    assert "\nPOLLER_ENABLED" not in env_example
    names = {line.split("=", 1)[0] for line in env_example.splitlines() if line and not line.startswith("#")}
    Settings.from_env({n: Settings.from_env({})[n] for n in names})  # every name there is a setting


def test_systemd_units_verify(tmp_path):
    """systemd's own checker, on copies whose paths point at this checkout."""
    import shutil

    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # the INI checks above still ran
        pytest.fail("systemd-analyze is not installed (Debian: apt-get install systemd)")
    for path in (DEPLOY / "systemd").iterdir():
        text = path.read_text().replace("/opt/command-centre/.venv/bin/python", sys.executable) \
            .replace("/opt/command-centre", str(ROOT))
        (tmp_path / path.name).write_text(text)
    proc = subprocess.run([analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def _compose() -> dict:
    import yaml

    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_runs_real_commands_with_health_checks(tmp_path):
    from dashboard import create_app

    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "poller", "reports", "proxy"} <= set(services)
    for name in ("web", "poller", "reports", "migrate"):
        command = services[name]["command"]
        assert command[:3] == ["python", "-m", "dashboard"] and command[3] in _subcommands(), name
    assert services["migrate"]["command"][3:] == ["db", "upgrade"]
    for name in ("postgres", "redis", "web", "poller", "reports", "proxy"):
        assert services[name]["restart"] in ("always", "unless-stopped"), name
    web = services["web"]
    assert web["environment"]["POLLER_ENABLED"] == "false" and web["environment"]["TRUSTED_PROXY_HOPS"] == "1"
    assert "DATABASE_URL" in web["environment"] and "REDIS_URL" in web["environment"]  # merged from the anchor
    assert "POLLER_ENABLED" not in services["poller"]["environment"]
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    port = web["environment"]["DASHBOARD_PORT"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(web["healthcheck"]["test"])
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert f"reverse_proxy web:{port}" in caddy and "health_uri /healthz" in caddy
    for service in ("postgres", "redis"):
        assert services[service]["healthcheck"]["test"]
    # the endpoints named exist in the app (and answer without a login)
    app = create_app({"DATABASE_URL": "sqlite:///:memory:", "POLLER_ENABLED": False, "AUTH_ENABLED": True,
                      "LOG_LEVEL": "WARNING", "LOCAL_CACHE_DIR": str(tmp_path / "cache"),
                      "REPORTS_DIR": str(tmp_path / "reports")})
    rules = {r.rule for r in app.server.url_map.iter_rules()}
    assert {"/healthz", "/readyz", "/metrics"} <= rules
    assert app.server.test_client().get("/healthz").status_code == 200


# --- backup and restore ------------------------------------------------------------------------
def _backup(tmp_path, database_url: str) -> Path:
    reports = tmp_path / "reports"
    (reports / "2026-W47" / "city").mkdir(parents=True)
    (reports / "2026-W47" / "city" / "manifest.json").write_text('{"week": "2026-W47"}')
    (reports / ".tmp" / "half-built").mkdir(parents=True)
    env_file = tmp_path / "command-centre.env"
    env_file.write_text(f"DATABASE_URL={database_url}\nREPORTS_DIR={reports}\nSECRET_KEY={'k' * 40}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REPORTS_DIR")}
    proc = subprocess.run(["sh", str(DEPLOY / "backup.sh"), str(tmp_path / "backups")], env={
        **env, "ENV_FILE": str(env_file)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = Path(proc.stdout.strip().splitlines()[-1])
    assert (out / "settings.env").read_text() == env_file.read_text()
    assert oct((out / "settings.env").stat().st_mode & 0o777) == "0o600"
    import tarfile

    with tarfile.open(out / "reports.tar.gz") as tar:
        names = tar.getnames()
    assert "./2026-W47/city/manifest.json" in names and not any(".tmp" in n for n in names)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    return out


def _count_users(url: str) -> int:
    from sqlalchemy import text

    from datasource.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    finally:
        engine.dispose()


def _add_user(url: str) -> None:
    from datasource import users
    from datasource.engine import make_engine

    engine = make_engine(url)
    try:
        users.create_user(engine, "backup_probe", "argon2-hash-placeholder", "admin", None)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_backup_and_restore_sqlite(store_url, tmp_path):
    _add_user(store_url)
    out = _backup(tmp_path, store_url)
    assert _count_users(f"sqlite:///{out / 'store.db'}") == 1  # the copy opens as a store


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_backup_and_restore_postgresql(store_url, tmp_path, pg_admin):
    """pg_dump by the script, pg_restore as docs/deployment.md says, into a new database."""
    import uuid

    from sqlalchemy import text

    _add_user(store_url)
    out = _backup(tmp_path, store_url)
    name = f"cc_restore_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        target = store_url.rsplit("/", 1)[0] + "/" + name
        proc = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error",
                               "--dbname", "postgresql://" + target.split("://", 1)[1], str(out / "store.dump")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert _count_users(target) == 1
        from datasource.engine import make_engine
        from datasource.migrate import current_revision, head_revision

        engine = make_engine(target)
        assert current_revision(engine) == head_revision()
        engine.dispose()
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_documented_autovacuum_settings_apply(store_url):
    """The SQL block of docs/deployment.md runs on a migrated store and sets what it says."""
    from sqlalchemy import text

    from datasource.engine import make_engine

    doc = (ROOT / "docs" / "deployment.md").read_text()
    sql = doc.split("```sql\n", 1)[1].split("```", 1)[0]
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(text(statement))
        with engine.connect() as conn:
            options = dict(conn.execute(text(
                "SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'kpi_%' AND relkind = 'r'")).all())
        assert "autovacuum_vacuum_scale_factor=0" in options["kpi_owner"]
        assert {"kpi_owner", "kpi_meta", "kpi_open", "kpi_rollup", "kpi_case_state"} <= {
            name for name, opts in options.items() if opts}
    finally:
        engine.dispose()
