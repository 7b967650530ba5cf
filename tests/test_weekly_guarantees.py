"""The weekly export's guarantees: bad weeks write nothing, re-runs do nothing unless
forced (and keep the earlier version), failures are refused and recorded, two
processes racing give one run, and a schedule missed while down runs on start."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete

from dashboard.cli import main
from dashboard.weekly import schedule
from dashboard.weekly.archive import Archive
from dashboard.weekly.runner import ExportResult, export_week
from datasource import schema
from datasource.engine import make_engine
from tests.conftest import REDIS_URL
from tests.weekly_helpers import (MONDAY_8AM, WEEK, WEEK_END, WEEK_START, between, seeded_store, settings_for,
                                  stored_next_run)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(request, tmp_path):
    return seeded_store("sqlite", request, tmp_path)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("week, message", [
    ("2026-48", "not an ISO week"), ("2026-W54", "has no ISO week 54"),
    ("2099-W01", "has not ended yet"),
])
def test_a_bad_or_future_week_is_refused_and_writes_nothing(week, message, tmp_path, monkeypatch, capsys):
    reports = tmp_path / "reports"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("REPORTS_DIR", str(reports))
    assert main(["snapshot", "--week", week]) == 2
    assert message in capsys.readouterr().err
    assert not reports.exists() and not (tmp_path / "none.db").exists()


def test_the_week_in_progress_is_refused(store, tmp_path):
    settings = settings_for(store, tmp_path / "reports")
    from dashboard.weekly.weeks import WeekError

    with pytest.raises(WeekError, match="has not ended yet"):
        export_week(settings, "2026-W48", now=MONDAY_8AM)
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_rerunning_does_nothing_and_force_keeps_the_earlier_version(store, tmp_path, monkeypatch, capsys):
    settings = settings_for(store, tmp_path / "reports")
    archive = Archive(settings.reports_dir)
    first = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert first.status == "ok" and first.scopes == ["city"]
    folder = archive.scope_dir(WEEK, "city")
    before = _digests(folder)

    again = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert again.status == "exists" and again.skipped == ["city"]
    assert _digests(folder) == before and archive.versions(WEEK, "city") == []
    for name, value in settings.values.items():  # the command line says the same
        if isinstance(value, (str, int, float, bool)) and name in ("DATABASE_URL", "REPORTS_DIR", "REDIS_URL"):
            monkeypatch.setenv(name, str(value))
    assert main(["snapshot", "--week", WEEK, "--scope", "city"]) == 0
    assert "already exported" in capsys.readouterr().out
    assert _digests(folder) == before

    time.sleep(1.1)  # a later generation time names the kept version
    forced = export_week(settings, WEEK, scope="city", force=True, now=MONDAY_8AM)
    assert forced.status == "ok" and len(forced.kept) == 1
    (kept,) = archive.versions(WEEK, "city")
    assert _digests(archive.root / WEEK / "versions" / kept) == before  # the earlier version, intact
    old = archive.root / WEEK / "versions" / kept / "manifest.json"
    assert archive.manifest(WEEK, "city")["generated_at"] > json.loads(old.read_text(encoding="utf-8"))["generated_at"]
    assert [a["status"] for a in archive.run(WEEK)["attempts"]] == ["ok", "ok"]


def test_an_unreachable_store_is_refused_and_recorded(tmp_path, monkeypatch, capsys):
    settings = settings_for("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", tmp_path / "reports")
    result = export_week(settings, WEEK, now=MONDAY_8AM)
    archive = Archive(settings.reports_dir)
    assert result.status == "failed" and "store unreachable" in result.error
    run = archive.run(WEEK)
    assert run["status"] == "failed" and "store unreachable" in run["error"]
    assert not (archive.root / WEEK).exists()
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    monkeypatch.setenv("REPORTS_DIR", str(settings.reports_dir))
    assert main(["snapshot", "--week", WEEK]) == 1
    assert "refused, nothing published" in capsys.readouterr().err


def test_a_failing_section_publishes_nothing_and_the_retry_completes_it(store, tmp_path, monkeypatch):
    settings = settings_for(store, tmp_path / "reports")
    archive = Archive(settings.reports_dir)

    def broken(*args, **kwargs):
        raise RuntimeError("parking section exploded")

    monkeypatch.setattr("dashboard.weekly.compute.compute_parking", broken)
    result = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert result.status == "failed" and "parking section exploded" in result.error
    assert not archive.exists(WEEK, "city") and not (archive.root / WEEK).exists()
    assert not any((archive.root / ".tmp").iterdir())
    assert archive.run(WEEK)["status"] == "failed"

    monkeypatch.undo()
    calls = []
    monkeypatch.setattr(schedule, "export_week", lambda s, week, **kw: calls.append((week.label, kw["trigger"]))
                        or ExportResult("ok", week.label))
    scheduler = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    scheduler.retry_failed()
    assert calls == [(WEEK, "retry")]
    archive.record(WEEK, "ok", scopes=["city"])
    assert scheduler.retry_failed() is None and len(calls) == 1  # nothing to retry once it worked


def test_a_week_without_the_visits_it_should_have_is_refused(store, tmp_path):
    engine = make_engine(store)
    with engine.begin() as conn:
        V, P = schema.EnterpriseVisit, schema.EnterpriseProblem
        conn.execute(delete(P).where(P.visit_id.in_(
            conn.execute(V.__table__.select().with_only_columns(V.id).where(between(V.visited_at, WEEK_START, WEEK_END)))
            .scalars().all())))
        conn.execute(delete(V).where(between(V.visited_at, WEEK_START, WEEK_END)))
    engine.dispose()
    settings = settings_for(store, tmp_path / "reports")
    result = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert result.status == "failed" and "no visit in 2026-W47" in result.error
    assert Archive(settings.reports_dir).run(WEEK)["error"] == result.error


# --- two processes, one run ----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("lock", ["file", "redis"])
def test_two_processes_racing_make_one_run(lock, store, tmp_path):
    reports = tmp_path / "reports"
    env = {**os.environ, "DATABASE_URL": store, "REPORTS_DIR": str(reports), "LOG_LEVEL": "WARNING",
           "LOCAL_CACHE_DIR": str(tmp_path / "cache"), "AUTH_ENABLED": "false",
           "REDIS_URL": REDIS_URL if lock == "redis" else "", "CACHE_PREFIX": f"cc-test-{uuid.uuid4().hex[:8]}"}
    procs = [subprocess.Popen([sys.executable, "-m", "dashboard", "snapshot", "--week", WEEK, "--scope", "city"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    codes = sorted(p.returncode for p in procs)
    exported = [out for out, _ in outs if "exported city" in out]
    assert len(exported) == 1, outs
    # the other one found the lock taken (3) or, started later, the week there (0)
    assert codes in ([0, 3], [0, 0]), outs
    archive = Archive(reports)
    assert archive.exists(WEEK, "city") and archive.versions(WEEK, "city") == []
    assert len(archive.run(WEEK)["attempts"]) == 1


# --- misfires: the persistent job store ------------------------------------------------
def _recorder(monkeypatch):
    calls = []
    monkeypatch.setattr(schedule, "export_week", lambda s, week, **kw: calls.append((week.label, kw["trigger"]))
                        or ExportResult("ok", week.label))
    return calls


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("missed_by, runs", [(dt.timedelta(hours=2), 1), (dt.timedelta(days=20), 1),
                                             (None, 0)])
def test_a_run_missed_while_down_runs_when_the_scheduler_starts(missed_by, runs, tmp_path, monkeypatch):
    """Frozen clock: the run exports the last week finished at Monday 08:00 (W47), however
    long ago it fell due (within the grace; coalesced to one run)."""
    calls = _recorder(monkeypatch)
    settings = settings_for("sqlite:///unused.db", tmp_path / "reports", REPORT_MISFIRE_GRACE_SECONDS=30 * 86400.0)
    first = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    first.start()
    planned = first.next_run_time()
    assert planned.weekday() == 0 and (planned.hour, planned.minute) == (8, 0)  # Monday 08:00 local
    first.stop()  # the app goes down
    if missed_by is not None:
        stored_next_run(settings, dt.datetime.now(settings.tz) - missed_by)
    second = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    second.start()  # the app comes back
    try:
        if runs:
            assert _wait(lambda: len(calls) >= 1)
            time.sleep(0.3)
        else:
            time.sleep(1.0)
        assert calls == [(WEEK, "schedule")] * runs
        assert second.next_run_time() > dt.datetime.now(settings.tz)  # and it is scheduled again
    finally:
        second.stop()


def test_a_run_missed_beyond_the_grace_is_not_run_late(tmp_path, monkeypatch):
    calls = _recorder(monkeypatch)
    settings = settings_for("sqlite:///unused.db", tmp_path / "reports", REPORT_MISFIRE_GRACE_SECONDS=60.0)
    first = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    first.start()
    first.stop()
    stored_next_run(settings, dt.datetime.now(settings.tz) - dt.timedelta(hours=1))
    second = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    second.start()
    try:
        time.sleep(1.0)
        assert calls == []
        assert second.next_run_time() > dt.datetime.now(settings.tz)
    finally:
        second.stop()


def test_the_scheduler_process_is_elected_once(tmp_path, monkeypatch):
    """Two scheduler processes (threads here) on one reports folder: one schedules."""
    import threading

    _recorder(monkeypatch)
    settings = settings_for("sqlite:///unused.db", tmp_path / "reports", LEADER_LOCK_SECONDS=0.6)
    started = []
    original = schedule.ReportScheduler.start
    monkeypatch.setattr(schedule.ReportScheduler, "start",
                        lambda self: (started.append(id(self)) if not self.running else None, original(self)))
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=schedule.run_forever, args=(settings,), kwargs={"stop": s}, daemon=True)
               for s in stops]
    for th in threads:
        th.start()
    time.sleep(1.5)
    assert len(set(started)) == 1
    for s in stops:
        s.set()
    for th in threads:
        th.join(timeout=10)
