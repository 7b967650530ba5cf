"""A fresh demo's archive works out of the box: the demo's seed keeps parking readings
for the weeks it publishes (the older part folded per hour, as the prune keeps it), and
the demo publishes the last finished weeks in the background, one export at a time under
the export lock every host shares, while the app keeps answering."""
from __future__ import annotations

import datetime as dt
import http.server
import shutil
import threading
import time

import pandas as pd
import pytest
from sqlalchemy import func, select

from dashboard import cli, create_app
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from dashboard.weekly import schedule
from dashboard.weekly.archive import Archive
from dashboard.weekly.compute import IncompleteReport, compute_week
from dashboard.weekly.lock import run_lock
from dashboard.weekly.weeks import last_finished
from datasource import schema
from datasource.demo.city import fold_hourly
from datasource.demo.seed import seed
from datasource.engine import make_engine
from datasource.retention import fold_occupancy
from tests.conftest import FIXED_NOW, LiveServer, new_store_url, only_local
from tests.weekly_helpers import run_status, settings_for, wait_for

CASES = 3000
NOW = FIXED_NOW  # Thursday 26 November 2026, 12:00 in Shanghai: W47 is the last finished week
EXPORT_TIMEOUT_S = 600  # four weeks, one scope each, on a loaded 2-core machine


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory):
    """A small store seeded as `python -m dashboard demo` seeds (its options, fewer cases)."""
    folder = tmp_path_factory.mktemp("demo-archive")
    url = new_store_url("sqlite", request, folder)
    settings = settings_for(url, folder / "reports")
    engine = make_engine(url)
    seed(engine, **cli.demo_seed_options(settings), now=NOW, total_cases=CASES)
    yield settings, engine, folder
    engine.dispose()


def _weeks(settings, n: int) -> list:
    week, out = last_finished(NOW, settings.tz), []
    for _ in range(n):
        out.append(week)
        week = week.previous
    return out


def test_the_demo_keeps_parking_for_every_week_it_publishes(demo):
    settings, engine, _ = demo
    n = settings["DEMO_REPORT_WEEKS"]
    assert n >= 4
    weeks = _weeks(settings, n + 2)
    for i, week in enumerate(weeks[:n + 1]):  # the published weeks and the one the oldest compares with
        figures = compute_week(engine, week)  # refuses (IncompleteReport) a week without readings
        occupancy = figures.parking["city"]["occupancy_week"]
        assert occupancy["value"] is not None and 0 < occupancy["value"] < 1, week.label
        assert figures.parking["city"]["occupancy_at_end"] is not None, week.label
        if i < n:  # each published week has last week's occupancy to compare with
            assert occupancy["prev"] is not None, week.label
    with pytest.raises(IncompleteReport, match="no occupancy reading"):
        compute_week(engine, weeks[n + 1])  # and no further back: the history is what the archive needs
    # the last days as read, the weeks before folded per facility and hour
    with engine.connect() as conn:
        first_raw = conn.execute(select(func.min(schema.OccupancyReading.observed_at))).scalar_one()
        first_hour = conn.execute(select(func.min(schema.OccupancyHourly.hour))).scalar_one()
        last_hour = conn.execute(select(func.max(schema.OccupancyHourly.hour))).scalar_one()
    assert NOW - first_raw <= dt.timedelta(days=7, minutes=30)
    assert first_hour == weeks[n].start.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H")
    assert last_hour <= first_raw.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H")


def test_the_seeds_folded_hours_are_what_the_prune_makes(demo, tmp_path):
    """The seed folds in pandas what the prune folds in SQL: fold three hours of the raw
    readings both ways (the prune on a copy of the store) and compare the rows."""
    settings, engine, _ = demo
    copy = tmp_path / "copy.db"
    shutil.copy(settings.database_url.removeprefix("sqlite:///"), copy)
    other = make_engine(f"sqlite:///{copy}")
    R = schema.OccupancyReading
    with other.connect() as conn:
        first = conn.execute(select(func.min(R.observed_at))).scalar_one()
        start = first.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)  # whole hours only
        end = start + dt.timedelta(hours=3)
        raw = pd.DataFrame(conn.execute(select(R.facility_id, R.observed_at, R.occupied)
                                        .where(R.observed_at >= start, R.observed_at < end)).mappings().all())
        facilities = pd.DataFrame(conn.execute(select(schema.ParkingFacility.id, schema.ParkingFacility.capacity))
                                  .mappings().all())
    assert len(raw) > 1000
    raw["observed_at"] = pd.to_datetime(raw.observed_at, utc=True).dt.tz_localize(None)
    ours = fold_hourly(raw, facilities)
    while fold_occupancy(other, end, 20_000):
        pass
    H = schema.OccupancyHourly
    hours = sorted(ours.hour.unique())
    with other.connect() as conn:
        theirs = pd.DataFrame(conn.execute(select(H).where(H.hour >= hours[0], H.hour <= hours[-1])).mappings().all())
    other.dispose()
    theirs["last_observed_at"] = pd.to_datetime(theirs.last_observed_at, utc=True).dt.tz_localize(None)
    key = ["facility_id", "hour"]
    ours = ours.sort_values(key, ignore_index=True).astype({"last_observed_at": "datetime64[us]"})
    theirs = theirs.sort_values(key, ignore_index=True)[list(ours.columns)].astype({"last_observed_at": "datetime64[us]"})
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def test_a_backfill_waits_for_an_export_another_process_holds(demo, tmp_path):
    """The export lock is the deployment's: while another exporter holds it, the backfill
    builds nothing and says "busy", tries again, and publishes nothing behind its back."""
    settings, _, _ = demo
    settings = settings_for(settings.database_url, tmp_path / "reports")
    scheduler = schedule.ReportScheduler(settings, clock=lambda: NOW.astimezone(settings.tz))
    settings.reports_dir.mkdir(parents=True)
    with run_lock(settings, settings.reports_dir):
        results = scheduler.publish_recent(2, scope="city", busy_wait=0.05)
    assert [r.status for r in results] == ["busy"] * 2 * schedule.BUSY_ROUNDS
    assert Archive(settings.reports_dir).weeks() == []


def test_reports_backfill_on_the_command_line(monkeypatch):
    calls = []
    monkeypatch.setattr("dashboard.weekly.schedule.run_forever", lambda s, **kw: calls.append(kw))
    monkeypatch.setattr("os.nice", lambda n: calls.append({"nice": n}))
    assert cli.main(["reports", "--backfill", "4", "--nice", "10"]) == 0
    assert calls == [{"nice": 10}, {"backfill_weeks": 4}]


class _Health(http.server.BaseHTTPRequestHandler):
    ready = False

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        self.send_response(200 if _Health.ready else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_demo_starts_publishing_only_once_the_app_is_ready():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/readyz"
    started, stopping = threading.Event(), threading.Event()
    try:
        waiter = threading.Thread(target=cli.when_ready, args=(url, started.set, stopping),
                                  kwargs={"every": 0.05}, daemon=True)
        waiter.start()
        time.sleep(0.5)
        assert not started.is_set()  # 503: the first snapshot is not made yet
        _Health.ready = True
        assert started.wait(5)
        # and a demo stopped before the app answered starts nothing
        _Health.ready, late, stop = False, threading.Event(), threading.Event()
        waiter = threading.Thread(target=cli.when_ready, args=(url, late.set, stop), kwargs={"every": 0.05})
        waiter.start()
        stop.set()
        waiter.join(5)
        assert not late.is_set() and not waiter.is_alive()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.browser
def test_the_last_four_weeks_are_published_in_the_background_while_the_app_answers(demo, page):
    """The scheduler's backfill (what `python -m dashboard demo` starts) exports the last
    four finished weeks on its own thread; meanwhile the pages answer, and the archive
    shows the export running, then the four weeks."""
    settings, engine, folder = demo
    n = settings["DEMO_REPORT_WEEKS"]
    app = create_app(settings)
    svc = app.server.extensions[EXTENSION]
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()
    server = LiveServer(app)
    archive = Archive(settings.reports_dir)
    weeks = [w.label for w in _weeks(settings, n + 1)]
    scheduler = schedule.ReportScheduler(settings, clock=lambda: NOW.astimezone(settings.tz), backfill_weeks=n,
                                         backfill_scope="city")
    try:
        scheduler.start()
        assert wait_for(lambda: run_status(archive, weeks[0]) == "running", 60, 0.05)
        t0 = time.monotonic()
        page.goto(server.url + "/")
        page.wait_for_selector("td[data-district='total']")
        page.goto(server.url + "/snapshots")
        page.wait_for_selector(f"tr[data-week='{weeks[0]}'] [data-status]")
        answered = time.monotonic() - t0
        # the pages answered while the backfill was still at work
        assert [run_status(archive, w) for w in weeks[:n]].count("ok") < n
        assert answered < 15, answered
        assert wait_for(lambda: all(run_status(archive, w) in ("ok", "failed") for w in weeks[:n]),
                        EXPORT_TIMEOUT_S, 0.5)
        page.goto(server.url + "/snapshots")
        page.wait_for_selector(f"tr[data-week='{weeks[n - 1]}'] [data-status='ok']")
        shown = page.locator("tr[data-week] [data-status]")
        assert shown.count() == n
        assert {shown.nth(i).get_attribute("data-status") for i in range(n)} == {"ok"}
    finally:
        scheduler.stop()
        server.stop()
    for week in weeks[:n]:
        run = archive.run(week)
        assert run["status"] == "ok", run
        assert run["attempts"][-1]["trigger"] == "backfill"
        assert archive.exists(week, "city")
    assert archive.run(weeks[n]) is None  # four weeks, not more
    assert page.console_errors == []
    assert only_local(page.requested) == []
