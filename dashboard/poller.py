"""The single poller: recompute the snapshot every POLL_SECONDS and publish it.

Sections are pluggable: a mapping of name -> callable(engine, now, tz) returning a
JSON-able payload (None, {} or [] mean "empty"; 0 is a value). Each section runs on its
own, so one failing section leaves the others fresh; a failing section keeps its last
good data as "stale" (since its first failure, with a short reason), or is "error"
when it never had any, and recovers on the next good poll.

Every web process runs a scheduler with two jobs: `lease` keeps or tries to take the
leader lock (see leader.py) and `poll` polls when this process is the leader. Both
have max_instances=1 and coalesce=True, so polls never overlap in a process and a
stall is followed by one poll, not a burst; the lock makes them never overlap across
processes and hosts. The lease job runs apart from the poll so that a slow poll does
not let the lock expire.

One owner of the KPI state: each poll runs under the owner's fencing token (the store
lease's on PostgreSQL; on SQLite one taken from the store at each new term), which every
write of the persisted state checks. A process that is not, or no longer, the leader
drops its sections' memory; a refused write (another process owns the state now) drops
the poll's snapshot as well. While Redis is unreachable the leader also keeps the
snapshot in the store, and the followers of every host copy it to their host folder.
"""
from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import signal
import threading
import time
import weakref
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

import orjson
from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from dashboard import heap, metrics, owner
from dashboard.cache import Cache, deployment_folder
from dashboard.leader import Election, FileLock, RedisLock, StoreLease, _holder_name
from dashboard.settings import Settings
from dashboard.snapshot import Head, Section, Snapshot, is_empty
from dashboard.kpis.incremental import SelfCheckMismatch
from dashboard.kpis.sections import make_sections
from datasource import kpi_owner, queries

log = logging.getLogger(__name__)

SectionFn = Callable[[Engine, dt.datetime, ZoneInfo], Any]


# the default is dashboard.kpis.sections.make_sections (a fresh set per poller);
# a mapping, or a function returning one (called once per Poller)
Sections = Mapping[str, SectionFn] | Callable[[], Mapping[str, SectionFn]]

_LIVE: "weakref.WeakSet[Poller]" = weakref.WeakSet()


def _plain(value: Any) -> Any:
    """What json cannot encode by itself but sections commonly return."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    for attr in ("item", "tolist"):  # numpy scalars and arrays, pandas objects
        if hasattr(value, attr):
            return getattr(value, attr)()
    if hasattr(value, "__float__"):  # Decimal from SQL aggregates
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def to_json_data(payload: Any) -> Any:
    """The payload as it will be stored and read back (and hashed). A NaN (no value)
    becomes null, as JSON has no NaN."""
    return orjson.loads(orjson.dumps(payload, default=_plain, option=orjson.OPT_NON_STR_KEYS))


def short_reason(exc: BaseException) -> str:
    """Class and first line of the driver's message; SQLAlchemy's own text adds the SQL."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return f"{exc.__class__.__name__}: {lines[0] if lines else ''}".strip(": ")[:200]


def make_election(settings: Settings, cache: Cache, engine: Engine | None = None) -> Election:
    if engine is not None and engine.dialect.name == "postgresql":  # the store every host shares
        return Election(store_lease=StoreLease(engine, settings["LEADER_LOCK_SECONDS"]))
    redis_lock = None
    if cache.redis is not None:
        redis_lock = RedisLock(cache.redis.client, cache.redis.key("poller:leader"),
                               settings["LEADER_LOCK_SECONDS"])
    return Election(FileLock(deployment_folder(settings) / "poller.lock"), redis_lock)


class Poller:
    def __init__(self, settings: Settings, *, engine: Engine, cache: Cache,
                 sections: Sections | None = None,
                 election: Election | None = None):
        self.settings = settings
        self.engine = engine
        self.cache = cache
        # a factory: stateful (incremental) sections, one set per poller, made again when
        # this process stops leading (its memory is not to be trusted in a later term)
        self._factory = make_sections if sections is None else sections if callable(sections) else None
        self.sections = dict(self._factory() if self._factory else sections)
        self.election = election or make_election(settings, cache, engine)
        self.tz = settings.tz
        self._previous: Snapshot | None = None  # the last snapshot this leader published
        self._term: int | None = None  # the election term the sections' memory belongs to
        self._fence_token: int | None = None  # without a store lease: taken from the store per term
        self._stored_version: str | None = None  # the snapshot body last kept in the store
        self._events: dict[str, int] = {}  # fenced writes and self-check mismatches of one poll
        self._scheduler: BackgroundScheduler | None = None
        self._pid: int | None = None  # the process the scheduler runs in
        self._stopped = False
        self._start_lock = threading.Lock()
        self._marked_at: float | None = None  # when this process last marked itself the leader
        self._last_poll: float | None = None  # monotonic time of the last tick that polled
        self._mark: tuple | None = None  # the store's change mark at the last check
        _LIVE.add(self)

    # --- one poll --------------------------------------------------------------------
    def compute(self, previous: Snapshot | None) -> tuple[Snapshot, int | None]:
        """Run every section; returns the snapshot and the rows its sections reported."""
        now = dt.datetime.now(self.tz)
        sections: dict[str, Section] = {}
        reported: list[int] = []
        for name, fn in self.sections.items():
            before = previous.sections.get(name) if previous else None
            try:
                with metrics.collecting_rows_changed() as rows:
                    data = to_json_data(fn(self.engine, now, self.tz))
            except Exception as exc:  # a section's failure is data for the screens, not a crash
                if isinstance(exc, (kpi_owner.Fenced, SelfCheckMismatch)):
                    kind = "fenced" if isinstance(exc, kpi_owner.Fenced) else "selfcheck_mismatches"
                    self._events[kind] = self._events.get(kind, 0) + 1
                sections[name] = self._failed(name, before, now, short_reason(exc))
                continue
            reported += rows
            sections[name] = Section("empty" if is_empty(data) else "fresh", data)
            if before is not None and before.status in ("stale", "error"):
                log.info("section %s recovered", name)
        return Snapshot(computed_at=now, data_as_of=self._data_as_of(previous), sections=sections), \
            (sum(reported) if reported else None)

    @staticmethod
    def _failed(name: str, before: Section | None, now: dt.datetime, reason: str) -> Section:
        failing_already = before is not None and before.status in ("stale", "error")
        if not failing_already:
            log.warning("section %s failed: %s", name, reason)
        since = before.since if failing_already else now
        if before is not None and before.status in ("fresh", "empty", "stale"):
            return Section("stale", before.data, since, reason)  # the last good data stays
        return Section("error", None, since, reason)

    def _data_as_of(self, previous: Snapshot | None) -> dt.datetime | None:
        try:
            latest = queries.latest_change(self.engine)  # max(updated_at): one index lookup
        except Exception as exc:
            log.debug("data_as_of unchanged: %s", short_reason(exc))
            return previous.data_as_of if previous else None
        return latest.astimezone(self.tz) if latest is not None else None

    # --- ownership of the state ------------------------------------------------------
    def _drop_state(self) -> None:
        """Forget the sections' memory and what this process published: it belongs to a
        term that is over (or never began)."""
        self._previous = None
        self._fence_token = None
        self._term = None
        if self._factory is not None:
            self.sections = dict(self._factory())
        else:
            for fn in self.sections.values():
                if callable(getattr(fn, "reset", None)):
                    fn.reset()

    def _owner_token(self) -> int | None:
        """The fencing token this poll writes the state under (None: no store to fence)."""
        if self.election.store_lease is not None:
            if not self.election.is_leader:  # a poll by hand: take the lease if it is free
                self.election.refresh()
            return self.election.token if self.election.is_leader else owner.NO_TOKEN
        if self.engine is None:
            return None
        if self._fence_token is None:  # elected by another lock: the store still fences
            try:
                self._fence_token = kpi_owner.take(self.engine, _holder_name(), 0.0, force=True)
            except Exception as exc:
                log.warning("no fencing token (%s): the state is not written this poll", short_reason(exc))
                return owner.NO_TOKEN
        return self._fence_token

    def poll_once(self, *, as_leader: bool = False) -> Snapshot:
        """Compute and publish one snapshot. `as_leader`: publish only if this process
        still leads once the computation is done (a slow poll may have lost the lock)."""
        if as_leader and self._term != self.election.term:  # a new term: start afresh
            self._drop_state()
            self._term = self.election.term
        if self._previous is None:  # a new leader carries on from what is published
            self._previous = self.cache.get()
        token = self._owner_token()
        started = time.perf_counter()
        self._events = {}
        with owner.writing_as(token):
            snap, rows = self.compute(self._previous)
        seconds = time.perf_counter() - started
        events, self._events = self._events, {}
        for kind, n in events.items():
            metrics.count_event(self.cache, kind, n)
        if events.get("fenced") and token != owner.NO_TOKEN:
            log.warning("the KPI state has another owner now (token %s refused); this poll's "
                        "snapshot is dropped", token)
            self.election.resign()
            self._unmark()
            self._drop_state()
            return snap
        if as_leader and not self.election.is_leader:
            log.warning("lost the leader lock during a poll; its snapshot is dropped")
            self._previous = None
            return snap
        self.cache.publish(snap)
        self._previous = snap
        if self.cache.using_fallback:
            self._keep_in_store(snap, token)
        heap.freeze_once("poller")  # the state the first poll loaded stays for good
        failed = sum(1 for s in snap.sections.values() if s.status in ("stale", "error"))
        result = "ok" if not failed else "failed" if failed == len(snap.sections) else "partial"
        metrics.record_poll(self.cache, seconds=seconds, result=result, rows_changed=rows)
        return snap

    def _keep_in_store(self, snap: Snapshot, token: int | None) -> None:
        """Redis is unreachable: keep the snapshot in the store too, for the other hosts."""
        if self.engine is None or token in (None, owner.NO_TOKEN):
            return
        try:
            body = None if snap.version == self._stored_version else snap.to_json()
            kpi_owner.put_snapshot(self.engine, token, snap.head().to_json(), body)
            self._stored_version = snap.version
        except Exception as exc:
            self._stored_version = None
            log.debug("snapshot not kept in the store: %s", short_reason(exc))

    def _copy_from_store(self) -> None:
        """A follower while Redis is unreachable: bring the host folder up to the
        snapshot the leader keeps in the store (one small row read per tick)."""
        if self.engine is None:
            return
        try:
            raw = kpi_owner.snapshot_head(self.engine)
            if raw is None:
                return
            theirs, mine = Head.from_json(raw), self.cache.local_head()
            if mine is not None and mine.computed_at >= theirs.computed_at:
                return
            if mine is not None and mine.version == theirs.version:
                self.cache.copy_in(raw, None)
            else:
                both = kpi_owner.snapshot_body(self.engine)
                if both is not None:
                    self.cache.copy_in(*both)
        except Exception as exc:
            log.debug("snapshot not copied from the store: %s", short_reason(exc))

    def _refresh(self) -> bool:
        """Take or keep the leadership, and say so in /metrics (cc_poller_leaders)."""
        leader = self.election.refresh()
        try:
            now, ttl = time.time(), self.settings["LEADER_LOCK_SECONDS"]
            if leader and (self._marked_at is None or now - self._marked_at >= ttl / 4):
                # valid as long as this process counts itself the leader without renewing
                metrics.mark_leader(self.cache, _holder_name(), now + 0.8 * ttl)
                self._marked_at = now
            elif not leader and self._marked_at is not None:
                self._unmark()
        except OSError as exc:
            log.debug("leader mark not written: %s", exc)
        return leader

    def _unmark(self) -> None:
        self._marked_at = None
        try:
            metrics.unmark_leader(self.cache, _holder_name())
        except OSError as exc:
            log.debug("leader mark not withdrawn: %s", exc)

    def _due(self) -> bool:
        """A tick polls every POLL_SECONDS, and in between as soon as the leader sees the
        store move (one cheap statement per CHANGE_CHECK_SECONDS): a new case reaches the
        walls within about a check interval plus a poll, while a quiet store costs one
        full poll per POLL_SECONDS."""
        poll, check = self.settings["POLL_SECONDS"], self._check_seconds()
        now = time.monotonic()
        if self._last_poll is None or now - self._last_poll >= poll - check / 2:
            return True
        if self.engine is None or not self.election.is_leader or self._previous is None:
            return False
        try:
            mark = queries.change_mark(self.engine)
        except Exception as exc:  # the next full poll reports the store's failure
            log.debug("change check failed: %s", short_reason(exc))
            return False
        moved, self._mark = mark != self._mark, mark
        return moved

    def _check_seconds(self) -> float:
        return min(self.settings["CHANGE_CHECK_SECONDS"], self.settings["POLL_SECONDS"])

    def _wake(self) -> None:
        """The scheduler's job, every change check: a tick when one is due."""
        if self._due():
            self._tick()

    def _tick(self) -> None:
        self._last_poll = time.monotonic()
        if self._mark is None and self.engine is not None and self.election.is_leader:
            try:  # read before the poll, so that no write is missed by the checks after it
                self._mark = queries.change_mark(self.engine)
            except Exception as exc:  # the poll's sections report the store's failure
                log.debug("change mark not read: %s", short_reason(exc))
        try:
            if self._refresh():
                self.poll_once(as_leader=True)
            else:
                if self._term is not None or self._previous is not None:
                    self._drop_state()  # someone else owns the state; load it when we lead again
                self.cache.head()  # (notices Redis going away, for the check below)
                if self.cache.using_fallback:
                    self._copy_from_store()
        except Exception:
            log.exception("poll failed")  # logged here, tried again on the next tick

    def _lease(self) -> None:
        try:
            self._refresh()
        except Exception:
            log.exception("leader lock renewal failed")

    # --- the scheduler ---------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the scheduler once in this process. Cheap to call on every request:
        after a fork (gunicorn --preload) the child starts its own, with its own lock."""
        if self._pid == os.getpid() or self._stopped:
            return
        with self._start_lock:
            if self._pid == os.getpid() or self._stopped:
                return
            if self._pid is not None:  # inherited: the parent's threads and lock are not ours
                self.election = self.election.forked()
                self._previous = None
                if self.engine is not None:  # pooled connections belong to the parent
                    self.engine.dispose(close=False)
            self._scheduler = self._new_scheduler()
            self._pid = os.getpid()

    def start(self) -> None:
        self.ensure_started()

    def _new_scheduler(self) -> BackgroundScheduler:
        poll, check = self.settings["POLL_SECONDS"], self._check_seconds()
        scheduler = BackgroundScheduler(
            timezone=self.tz, daemon=True,
            executors={"default": ThreadPoolExecutor(2)},  # one poll and one lease at a time
            job_defaults={"max_instances": 1, "coalesce": True,
                          # a run that could not start within this is dropped for the next one
                          "misfire_grace_time": max(1, int(poll / 2))})
        scheduler.start()
        scheduler.add_job(self._wake, "interval", seconds=check, id="poll",
                          next_run_time=dt.datetime.now(self.tz))
        scheduler.add_job(self._lease, "interval", seconds=self.settings["LEADER_LOCK_SECONDS"] / 3,
                          id="lease")
        scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        return scheduler

    def _skipped(self, event) -> None:
        """A poll fell due while the last one still ran: counted, for /metrics (change
        checks that fall due meanwhile are not polls)."""
        due = self._last_poll is None or time.monotonic() - self._last_poll >= self.settings["POLL_SECONDS"]
        if event.job_id == "poll" and due:
            try:
                metrics.count_skipped_poll(self.cache)
            except OSError as exc:
                log.debug("skipped poll not counted: %s", exc)

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running and self._pid == os.getpid()

    def stop(self, wait: bool = True, release: bool = True) -> None:
        """Stop polling in this process and hand the lock over. Idempotent; `wait` joins
        the scheduler's threads (tests), without it a hung poll cannot delay an exit.
        `release=False` leaves the Redis lock to expire, as a crashed process would."""
        with self._start_lock:
            self._stopped = True
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and self._pid == os.getpid() and scheduler.running:
            scheduler.shutdown(wait=wait)
        if self._pid == os.getpid() and release:
            self.election.release()
            if self._marked_at is not None:
                self._unmark()


def stop_all(wait: bool = True) -> None:
    """Stop every poller of this process (tests; and at exit)."""
    for poller in list(_LIVE):
        poller.stop(wait=wait)


atexit.register(stop_all, wait=False)

# APScheduler logs every run at INFO: every few seconds, forever. Keep its warnings.
if logging.getLogger("apscheduler.executors.default").level == logging.NOTSET:
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


class _SkippedTicks(logging.Filter):
    """APScheduler warns each time a poller's tick falls due while its poll still runs:
    every tick of a long first poll, by design (runs never overlap). Those ticks are
    counted in /metrics (cc_polls_skipped_total) instead; other jobs keep the warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (getattr(job, "id", None) in ("poll", "lease")
                    and "maximum number of running instances" in str(record.msg))


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedTicks())


def run_forever(settings: Settings | None = None, *, sections: Sections | None = None,
                stop: threading.Event | None = None) -> None:
    """The poller as a process of its own (with POLLER_ENABLED=false in the web
    processes). Takes part in the same election, so running two is harmless. Returns
    when `stop` is set, or on SIGTERM/SIGINT when run in the main thread."""

    from dashboard.profile import with_profile

    settings = with_profile(settings or Settings.from_env())  # the city profile's zone wins
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    engine = settings.engine()
    poller = Poller(settings, engine=engine, cache=Cache.from_settings(settings), sections=sections)
    poller.start()
    log.info("poller running every %g s", settings["POLL_SECONDS"])
    try:
        stop.wait()
    finally:
        poller.stop()
        engine.dispose()
