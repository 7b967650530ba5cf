"""The report scheduler: `python -m dashboard reports`.

One process per deployment schedules exports (elected like the poller: a Redis lock
with REDIS_URL, else a file lock in the reports folder; running two is harmless). The
elected one runs an APScheduler 3 BackgroundScheduler with

- `weekly-report`: REPORT_CRON (Monday 08:00 by default) exports the last finished week.
  It lives in a persistent job store (SQLite `jobs.sqlite` in the reports folder), so a
  run missed while no scheduler was up stays due and runs when one starts again, within
  REPORT_MISFIRE_GRACE_SECONDS (coalesced: one run however many were missed);
- `weekly-retry` (in memory): every REPORT_RETRY_MINUTES, settles the records of runs
  that died (runner.reconcile: "running" with no export holding the lock -> failed), then
  exports the last finished week again if its last run failed;
- `prune` (in memory): PRUNE_CRON (daily), retention (dashboard/retention.py);
- `weekly-backfill` (in memory, once at start, when asked: `reports --backfill N`, which
  `make run` uses): publishes the last N finished weeks that are not in the archive, the
  newest first, so a fresh demo's archive fills in the background.

The jobs run on the scheduler's own threads: the export needs nothing of the main thread
(the wall it photographs is served by a child process, see wallshot.py).

Whatever runs it, an export takes the export lock and checks "already exists" inside
it (runner.py): exactly one run per week.
"""
from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from dashboard.cache import redis_client
from dashboard.leader import Election, FileLock, RedisLock
from dashboard.settings import Settings
from dashboard.weekly.archive import Archive
from dashboard.weekly.runner import ExportResult, export_week, reconcile
from dashboard.weekly.weeks import last_finished

log = logging.getLogger(__name__)

JOB_ID, RETRY_ID, PRUNE_ID, BACKFILL_ID = "weekly-report", "weekly-retry", "prune", "weekly-backfill"
BUSY_ROUNDS = 3  # a backfilled week another process is exporting is tried again this often
# the job store keeps a reference to this function and the scheduler's key, never live
# objects: the scheduler that loads the job finds itself here
_REGISTRY: dict[str, "ReportScheduler"] = {}


def scheduled_export(key: str) -> None:
    scheduler = _REGISTRY.get(key)
    if scheduler is None:
        log.error("no report scheduler %s in this process; the scheduled export is skipped", key)
        return
    scheduler.export_last_week("schedule")


class ReportScheduler:
    def __init__(self, settings: Settings, *, clock: Callable[[], dt.datetime] | None = None,
                 backfill_weeks: int = 0, backfill_scope: str = "all"):
        self.settings = settings
        self.tz = settings.tz
        self.clock = clock or (lambda: dt.datetime.now(self.tz))
        self.archive = Archive(settings.reports_dir)
        self.key = str(settings.reports_dir)
        self.backfill_weeks, self.backfill_scope = backfill_weeks, backfill_scope
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def export_last_week(self, trigger: str) -> ExportResult:
        now = self.clock()
        result = export_week(self.settings, last_finished(now, self.tz), scope="all", now=now, trigger=trigger)
        log.info("scheduled export of %s: %s%s", result.week, result.status,
                 f" ({result.error})" if result.error else "")
        return result

    def publish_recent(self, weeks: int, scope: str = "all", busy_wait: float | None = None) -> list[ExportResult]:
        """Export the last `weeks` finished weeks, the newest first; weeks already in the
        archive are left as they are (`export_week` checks inside the export lock). A week
        another process is exporting ("busy": the lock is the same for every host) is tried
        again after the others, up to BUSY_ROUNDS times, by then normally found published."""
        now = self.clock()
        pending, week = [], last_finished(now, self.tz)
        for _ in range(weeks):
            pending.append(week)
            week = week.previous
        wait = self.settings["REPORT_LOCK_SECONDS"] / 2 if busy_wait is None else busy_wait
        results: list[ExportResult] = []
        for round_no in range(BUSY_ROUNDS):
            busy = []
            for w in pending:
                if self._stopping.is_set():
                    return results
                result = export_week(self.settings, w, scope=scope, now=now, trigger="backfill")
                log.info("backfill of %s: %s%s", result.week, result.status,
                         f" ({result.error})" if result.error else "")
                results.append(result)
                if result.status == "busy":
                    busy.append(w)
            pending = busy
            if not pending or round_no == BUSY_ROUNDS - 1 or self._stopping.wait(wait):
                break
        return results

    def retry_failed(self) -> ExportResult | None:
        week = last_finished(self.clock(), self.tz).label
        reconcile(self.settings)  # a dead run's "running" becomes "failed" once the lock is free
        run = self.archive.run(week)
        if run is not None and run.get("status") == "failed":
            log.info("retrying the export of %s (last run %s: %s)", week, run.get("status"), run.get("error"))
            return self.export_last_week("retry")
        return None

    # --- the scheduler ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self.archive.root.mkdir(parents=True, exist_ok=True)
            _REGISTRY[self.key] = self
            scheduler = BackgroundScheduler(
                timezone=self.tz,
                jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{self.archive.root / 'jobs.sqlite'}"),
                           "memory": MemoryJobStore()},
                executors={"default": ThreadPoolExecutor(1)},  # one export at a time in this process
                job_defaults={"coalesce": True, "max_instances": 1,
                              "misfire_grace_time": int(self.settings["REPORT_MISFIRE_GRACE_SECONDS"])})
            self._stopping.clear()
            scheduler.start(paused=True)  # the stored jobs are loaded; nothing runs yet
            self._ensure_jobs(scheduler)
            if self.backfill_weeks:  # once, on the job thread: after a due scheduled run, never beside it
                scheduler.add_job(self.publish_recent, "date", args=[self.backfill_weeks, self.backfill_scope],
                                  id=BACKFILL_ID, jobstore="memory", replace_existing=True)
            scheduler.resume()  # a stored run that fell due while we were down runs now
            self._scheduler = scheduler
            log.info("report scheduler running (%s, next run %s)", self.settings["REPORT_CRON"],
                     scheduler.get_job(JOB_ID).next_run_time)

    def _ensure_jobs(self, scheduler: BackgroundScheduler) -> None:
        trigger = CronTrigger.from_crontab(self.settings["REPORT_CRON"], timezone=self.tz)
        job = scheduler.get_job(JOB_ID)
        if job is None:
            scheduler.add_job(scheduled_export, trigger, id=JOB_ID, args=[self.key], jobstore="default")
        elif str(job.trigger) != str(trigger) or list(job.args) != [self.key]:
            # a new REPORT_CRON: the next run follows it (a run already missed is kept only
            # when the schedule is unchanged)
            scheduler.modify_job(JOB_ID, args=[self.key])
            scheduler.reschedule_job(JOB_ID, trigger=trigger)
        scheduler.add_job(self.retry_failed, "interval", minutes=self.settings["REPORT_RETRY_MINUTES"],
                          id=RETRY_ID, jobstore="memory", replace_existing=True)
        if self.settings["PRUNE_CRON"]:  # retention (docs/retention.md), in the elected process only
            from dashboard.retention import scheduled_prune
            scheduler.add_job(scheduled_prune, CronTrigger.from_crontab(self.settings["PRUNE_CRON"], timezone=self.tz),
                              args=[self.settings], id=PRUNE_ID, jobstore="memory", replace_existing=True)

    def next_run_time(self) -> dt.datetime | None:
        job = self._scheduler.get_job(JOB_ID) if self._scheduler else None
        return job.next_run_time if job else None

    def stop(self, wait: bool = True) -> None:
        self._stopping.set()  # a backfill stops before its next week
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            if _REGISTRY.get(self.key) is self:
                del _REGISTRY[self.key]
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=wait)


def make_election(settings: Settings) -> Election:
    redis_lock = None
    if settings["REDIS_URL"]:
        client = redis_client(settings["REDIS_URL"], settings["REDIS_TIMEOUT_SECONDS"])
        redis_lock = RedisLock(client, f"{settings['CACHE_PREFIX']}:reports:scheduler",
                               settings["LEADER_LOCK_SECONDS"])
    return Election(FileLock(settings.reports_dir / "scheduler.lock"), redis_lock)


def run_forever(settings: Settings | None = None, *, stop: threading.Event | None = None,
                clock: Callable[[], dt.datetime] | None = None, backfill_weeks: int = 0) -> None:
    """The scheduler as its own process: take part in the election every third of
    LEADER_LOCK_SECONDS; schedule while elected (and then publish the last
    `backfill_weeks` finished weeks missing from the archive). Returns when `stop` is set,
    or on SIGTERM/SIGINT when run in the main thread."""
    from dashboard.profile import with_profile

    settings = with_profile(settings or Settings.from_env())  # the city profile's zone wins
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    election = make_election(settings)
    scheduler = ReportScheduler(settings, clock=clock, backfill_weeks=backfill_weeks)
    try:
        while True:
            try:
                if election.refresh():
                    scheduler.start()
                elif scheduler.running:
                    log.warning("lost the report scheduler lock; another process schedules")
                    scheduler.stop(wait=False)
            except Exception:
                log.exception("report scheduler election failed")
            if stop.wait(settings["LEADER_LOCK_SECONDS"] / 3):
                break
    finally:
        scheduler.stop()
        election.release()
