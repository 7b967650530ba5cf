"""What an export leaves when things go wrong outside it: a full reports disk (at the
files' write and at the run record's write) and an exporter killed mid-run."""
from __future__ import annotations

import errno
import logging
import os
import pathlib
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dashboard.weekly import schedule
from dashboard.weekly.archive import Archive
from dashboard.weekly.runner import ExportResult, export_week
from tests.conftest import REDIS_URL
from tests.weekly_helpers import (MONDAY_8AM, WEEK, assert_complete_week, leftovers, run_status, seeded_store,
                                  settings_for, wait_for)

ROOT = Path(__file__).resolve().parent.parent
REAL_WRITE_TEXT, REAL_WRITE_BYTES = pathlib.Path.write_text, pathlib.Path.write_bytes


@pytest.fixture
def store(request, tmp_path):
    return seeded_store("sqlite", request, tmp_path)


class FullDisk:
    """Path.write_text / write_bytes under the reports folder start the file, write part
    of it and fail with ENOSPC, as a full disk does: for the report's files (`files`), for
    the run records (`records`), or for both from the first report file on (`fills`)."""

    def __init__(self, monkeypatch, root: Path, *, files=False, records=False, fills=False):
        self.root, self.files, self.records, self.fills = root.resolve(), files, records, fills
        self.refused: list[str] = []
        monkeypatch.setattr(pathlib.Path, "write_text", self._writer(REAL_WRITE_TEXT))
        monkeypatch.setattr(pathlib.Path, "write_bytes", self._writer(REAL_WRITE_BYTES))

    def _full_for(self, path: Path) -> bool:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            return False
        is_record = resolved.parent.name == "runs"
        if self.fills and not is_record:
            self.files = self.records = True  # the report's first file filled the disk
        return self.records if is_record else self.files

    def _writer(self, real):
        def write(path, data, *args, **kwargs):
            path = Path(path)
            if not self._full_for(path):
                return real(path, data, *args, **kwargs)
            real(path, data[: len(data) // 2], *args, **kwargs)  # the part that fit
            self.refused.append(path.name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write


def _no_tracebacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


def test_a_full_disk_at_the_files_is_recorded_as_failed_and_leaves_nothing(store, tmp_path, monkeypatch, caplog):
    settings = settings_for(store, tmp_path / "reports")
    archive = Archive(settings.reports_dir)
    disk = FullDisk(monkeypatch, archive.root, files=True)
    with caplog.at_level(logging.INFO):
        result = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert disk.refused, "the export never reached the full disk"
    assert result.status == "failed" and "reports disk full" in result.error
    run = archive.run(WEEK)
    assert run["status"] == "failed" and "reports disk full" in run["error"]
    assert [a["status"] for a in run["attempts"]] == ["failed"]
    assert _no_tracebacks(caplog) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "reports disk full" in errors[0] and "\n" not in errors[0]
    assert leftovers(archive.root) == [] and not archive.exists(WEEK, "city")


def test_a_full_disk_for_the_run_record_fails_cleanly(store, tmp_path, monkeypatch, caplog):
    """Not even "running" can be written: a failed result and one logged line."""
    settings = settings_for(store, tmp_path / "reports")
    archive = Archive(settings.reports_dir)
    disk = FullDisk(monkeypatch, archive.root, records=True)
    with caplog.at_level(logging.INFO):
        result = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert disk.refused and result.status == "failed" and "reports disk full" in result.error
    assert archive.run(WEEK) is None  # nothing half-written
    assert _no_tracebacks(caplog) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "could not be recorded" in errors[0] and "\n" not in errors[0]
    assert leftovers(archive.root) == [] and not archive.exists(WEEK, "city")


@pytest.mark.slow
@pytest.mark.browser
def test_a_disk_that_fills_during_the_export_then_the_next_run_works(store, tmp_path, monkeypatch, caplog):
    """"running" was written, then the report's files filled the disk, so the failure
    could not be recorded either: one line, no temp file; the next run (space again)
    settles the dead record and exports the week."""
    settings = settings_for(store, tmp_path / "reports")
    archive = Archive(settings.reports_dir)
    disk = FullDisk(monkeypatch, archive.root, fills=True)
    with caplog.at_level(logging.INFO):
        result = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert result.status == "failed" and "reports disk full" in result.error
    assert any(name.endswith(".html") for name in disk.refused)
    assert any(name.startswith(f".{WEEK}.json") for name in disk.refused)  # the failure's record
    assert _no_tracebacks(caplog) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "could not be recorded" in errors[0] and "\n" not in errors[0]
    assert leftovers(archive.root) == [] and not archive.exists(WEEK, "city")
    assert run_status(archive, WEEK) == "running"  # what the full disk left

    monkeypatch.undo()  # space again
    result = export_week(settings, WEEK, scope="city", now=MONDAY_8AM)
    assert result.status == "ok", result.error
    run = archive.run(WEEK)
    assert [a["status"] for a in run["attempts"]] == ["failed", "ok"]
    assert "interrupted" in run["attempts"][0]["error"]
    assert_complete_week(archive, WEEK, ["city"])


# --- an exporter killed mid-run --------------------------------------------------------
def _recorder(monkeypatch):
    calls = []
    monkeypatch.setattr(schedule, "export_week", lambda s, week, **kw: calls.append((week.label, kw["trigger"]))
                        or ExportResult("ok", week.label))
    return calls


@pytest.mark.slow
@pytest.mark.parametrize("lock", ["file", "redis"])
def test_a_killed_exports_record_turns_failed_once_its_lock_is_free(lock, store, tmp_path, monkeypatch):
    extra = {"REDIS_URL": REDIS_URL, "CACHE_PREFIX": f"cc-test-{uuid.uuid4().hex[:8]}",
             "REPORT_LOCK_SECONDS": 3.0} if lock == "redis" else {}
    settings = settings_for(store, tmp_path / "reports", **extra)
    archive = Archive(settings.reports_dir)
    env = {**os.environ, "DATABASE_URL": store, "REPORTS_DIR": str(archive.root), "LOG_LEVEL": "WARNING",
           "LOCAL_CACHE_DIR": str(tmp_path / "cache"), "AUTH_ENABLED": "false", "REDIS_URL": "",
           **{k: str(v) for k, v in extra.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "snapshot", "--week", WEEK, "--scope", "city"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert wait_for(lambda: run_status(archive, WEEK) == "running", 120), "the export never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # it and anything it started
        proc.wait()
    calls = _recorder(monkeypatch)
    scheduler = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    if lock == "redis":  # the dead exporter's key lives on until it expires: a live run for all we know
        assert scheduler.retry_failed() is None
        assert run_status(archive, WEEK) == "running" and calls == []
        assert wait_for(lambda: not _redis_lock_held(settings), 10)
    scheduler.retry_failed()
    run = archive.run(WEEK)
    assert run["status"] == "failed"
    assert "interrupted" in run["error"] and f":{proc.pid} " in run["error"]
    assert run["attempts"][-1]["host"].endswith(f":{proc.pid}")
    assert calls == [(WEEK, "retry")]  # and the retry picks it up


def _redis_lock_held(settings) -> bool:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return bool(client.exists(f"{settings['CACHE_PREFIX']}:reports:run"))
    finally:
        client.close()
