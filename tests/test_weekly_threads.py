"""The weekly export on its real paths outside the CLI: the APScheduler job firing on the
scheduler's own thread, and "export now" clicked in a browser (the export then runs on a
thread of the web server's request). Each must give a complete archived week."""
from __future__ import annotations

import ast
import datetime as dt
import os
from pathlib import Path

import pytest

from dashboard import create_app
from dashboard.weekly import schedule
from dashboard.weekly.archive import Archive
from dashboard.weekly.weeks import last_finished
from datasource.demo.seed import seed
from datasource.engine import make_engine
from tests.conftest import BACKLOG, new_store_url, only_local
from tests.weekly_helpers import (MONDAY_8AM, WEEK, assert_complete_week, run_status, seeded_store, settings_for,
                                  stored_next_run, wait_for)

ROOT = Path(__file__).resolve().parent.parent
EXPORT_TIMEOUT_S = 300  # every scope (the city and 8 districts) on a loaded 2-core machine


def _all_scopes(url: str) -> list[str]:
    from datasource import kpi_queries as kq

    engine = make_engine(url)
    try:
        return ["city"] + [d["code"] for d in kq.districts(engine)]
    finally:
        engine.dispose()


def test_no_weekly_module_builds_the_app_in_process():
    """The export reaches the wall through the WallServer it is handed; only the child
    process's entry point (wallserve.py, imported by nobody) uses the app factory, so
    there is no circle weekly -> factory -> callbacks -> snapshots -> weekly."""
    folder = ROOT / "dashboard" / "weekly"
    users = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n.startswith(("dashboard.factory", "dashboard.create_app", "callbacks")) for n in names):
                users.setdefault(path.name, []).extend(names)
            if any(n.startswith("dashboard.weekly.wallserve") for n in names):
                users.setdefault(f"{path.name} imports wallserve", []).extend(names)
    assert set(users) == {"wallserve.py"}, users


@pytest.mark.slow
@pytest.mark.browser
def test_the_scheduled_job_exports_on_the_schedulers_thread(request, tmp_path):
    """`python -m dashboard reports`'s scheduler (ReportScheduler.start: the persistent
    job store, its BackgroundScheduler and its job function) with the weekly run due now."""
    url = seeded_store("sqlite", request, tmp_path)
    settings = settings_for(url, tmp_path / "reports", REPORT_MISFIRE_GRACE_SECONDS=3600.0)
    archive = Archive(settings.reports_dir)
    first = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    first.start()
    first.stop()
    stored_next_run(settings, dt.datetime.now(settings.tz) - dt.timedelta(seconds=5))
    scheduler = schedule.ReportScheduler(settings, clock=lambda: MONDAY_8AM)
    scheduler.start()  # the due run fires at once, on the scheduler's executor thread
    try:
        assert wait_for(lambda: run_status(archive, WEEK) in ("ok", "failed"), EXPORT_TIMEOUT_S, 0.5)
    finally:
        scheduler.stop()
    run = archive.run(WEEK)
    assert run["status"] == "ok", run
    (attempt,) = run["attempts"]
    assert attempt["trigger"] == "schedule" and attempt["host"].endswith(f":{os.getpid()}")
    assert_complete_week(archive, WEEK, _all_scopes(url))


@pytest.mark.slow
@pytest.mark.browser
def test_export_now_clicked_in_the_browser_archives_the_last_week(request, tmp_path, serve, page):
    """The button's real path: the callback starts the export on a thread of its own, in
    the process that serves the page. The store runs up to now, so that the last finished
    week by the real clock has its data."""
    url = new_store_url("sqlite", request, tmp_path)
    engine = make_engine(url)
    seed(engine, profile=BACKLOG, seed=37, now=dt.datetime.now(dt.timezone.utc), total_cases=3000, occupancy_days=15)
    engine.dispose()
    settings = settings_for(url, tmp_path / "reports")
    week = last_finished(dt.datetime.now(settings.tz), settings.tz).label
    archive = Archive(settings.reports_dir)

    server = serve(create_app(settings))
    page.goto(server.url + "/snapshots?lang=en")
    page.get_by_role("button", name="Export last week now").click()
    page.wait_for_selector("text=appears in the list when done")
    assert wait_for(lambda: run_status(archive, week) in ("ok", "failed"), EXPORT_TIMEOUT_S, 0.5)
    run = archive.run(week)
    assert run["status"] == "ok", run
    assert run["attempts"][-1]["trigger"] == "page"
    assert_complete_week(archive, week, _all_scopes(url))
    # and the page lists it with its downloads (it re-reads the archive every 5 s)
    page.wait_for_selector(f"tr[data-week='{week}'] a[data-kind='pdf']", timeout=20_000)
    assert page.console_errors == [] and only_local(page.requested) == []
