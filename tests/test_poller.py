"""The poller: sections on a real store, stale-then-recover, no overlap, one leader."""
import datetime as dt
import decimal
import logging
import os
import threading
import time

import numpy as np

from dashboard.cache import Cache, MemoryStore
from dashboard.leader import Election, FileLock
from dashboard.kpis.sections import open_cases_section
from dashboard.poller import Poller, run_forever
from datasource import queries
from tests.conftest import BACKLOG, FIXED_NOW, REDIS_URL, seeded_engine
from tests.service_helpers import make_settings, make_store_unreachable, wait_for


def _poller(tmp_path, engine=None, sections=None, cache=None, **settings):
    s = make_settings(tmp_path, **settings)
    return Poller(s, engine=engine, cache=cache or Cache(MemoryStore()), sections=sections,
                  election=Election(FileLock(tmp_path / f"lock-{id(s)}")))


# --- sections on a real store -----------------------------------------------------------
def test_default_section_matches_the_store(backend, request, tmp_path):
    engine = seeded_engine(backend, request, tmp_path, profile=BACKLOG, seed=5, now=FIXED_NOW, total_cases=2000,
                           occupancy_days=1)
    poller = _poller(tmp_path, engine, sections={"open_cases": open_cases_section})
    first = poller.poll_once()
    section = first.sections["open_cases"]
    assert section.status == "fresh" and section.error is None
    assert section.data == queries.open_cases_by_district(engine)
    assert sum(r["open_cases"] for r in section.data) > 0
    assert first.data_as_of == queries.latest_change(engine)
    assert poller.cache.get() == first
    second = poller.poll_once()
    assert second.version == first.version and second.computed_at > first.computed_at


def test_zero_is_fresh_and_only_nothing_is_empty(reference_engine, tmp_path):
    poller = _poller(tmp_path, reference_engine, sections={
        "open_cases": open_cases_section,
        "zero": lambda e, now, tz: 0, "none": lambda e, now, tz: None, "nothing": lambda e, now, tz: [],
        "typed": lambda e, now, tz: {"d": decimal.Decimal("1.5"), "at": now, "n": np.int64(3)},
    })
    snap = poller.poll_once()
    assert snap.sections["open_cases"].status == "fresh"  # districts with zero open cases
    assert {r["open_cases"] for r in snap.sections["open_cases"].data} == {0}
    assert snap.data_as_of is None  # no case yet
    assert snap.sections["zero"].status == "fresh" and snap.sections["zero"].data == 0
    assert snap.sections["none"].status == "empty" and snap.sections["nothing"].status == "empty"
    typed = snap.sections["typed"].data
    assert typed["d"] == 1.5 and typed["n"] == 3 and dt.datetime.fromisoformat(typed["at"]).tzinfo


def test_a_section_factory_gives_each_poller_its_own_sections(tmp_path):
    class Counting:  # stateful, like an incremental section
        def __init__(self):
            self.calls = 0

        def __call__(self, engine, now, tz):
            self.calls += 1
            return self.calls

    a = _poller(tmp_path, sections=lambda: {"n": Counting()})
    b = _poller(tmp_path, sections=lambda: {"n": Counting()})
    a.poll_once()
    assert a.poll_once().sections["n"].data == 2
    assert b.poll_once().sections["n"].data == 1


def test_now_is_aware_in_the_dashboard_zone(tmp_path):
    seen = []
    poller = _poller(tmp_path, sections={"probe": lambda e, now, tz: seen.append((now, tz)) or 1})
    poller.poll_once()
    now, tz = seen[0]
    assert str(tz) == "Asia/Shanghai" and now.utcoffset() == dt.timedelta(hours=8)


def test_failing_section_goes_stale_keeps_its_data_then_recovers(tmp_path, caplog):
    broken = {"on": False}

    def flaky(engine, now, tz):
        if broken["on"]:
            raise ConnectionError("store unreachable\nlong driver detail")
        return {"n": 0}

    def never(engine, now, tz):
        raise TimeoutError("took too long")

    poller = _poller(tmp_path, sections={"flaky": flaky, "never": never, "ok": lambda e, n, t: 7})
    first = poller.poll_once()
    assert first.sections["flaky"].status == "fresh"
    assert first.sections["never"].status == "error" and first.sections["never"].data is None
    assert first.sections["never"].error == "TimeoutError: took too long"

    broken["on"] = True
    caplog.set_level(logging.WARNING, logger="dashboard.poller")
    stale = poller.poll_once()
    s = stale.sections["flaky"]
    assert (s.status, s.data, s.error) == ("stale", {"n": 0}, "ConnectionError: store unreachable")
    assert s.since == stale.computed_at
    assert stale.sections["ok"].status == "fresh" and stale.sections["ok"].data == 7
    assert stale.version != first.version

    again = poller.poll_once()
    assert again.sections["flaky"].since == s.since  # since the first failure
    assert again.version == stale.version  # nothing new to draw
    assert again.sections["never"].since == first.sections["never"].since
    assert sum("flaky failed" in r.getMessage() for r in caplog.records) == 1  # logged once

    broken["on"] = False
    back = poller.poll_once()
    assert back.sections["flaky"] == first.sections["flaky"]
    assert poller.cache.get() == back


def test_unreachable_store_makes_sections_stale_and_the_next_poll_recovers(
        reference_engine, store_url, tmp_path):
    poller = _poller(tmp_path, reference_engine, sections={"open_cases": open_cases_section})
    good = poller.poll_once()
    back = make_store_unreachable(reference_engine, store_url, tmp_path)
    try:
        stale = poller.poll_once()
    finally:
        back()
    s = stale.sections["open_cases"]
    assert s.status == "stale" and s.data == good.sections["open_cases"].data
    assert s.error.startswith("OperationalError: ") and len(s.error) <= 200
    assert "SELECT" not in s.error  # the reason, not SQLAlchemy's statement dump
    recovered = poller.poll_once()  # same engine, no restart
    assert recovered.sections["open_cases"] == good.sections["open_cases"]


# --- scheduling ---------------------------------------------------------------------
def test_a_slow_poll_never_overlaps_and_stalls_do_not_pile_up(tmp_path, caplog):
    active, peak, starts = [0], [0], []
    lock = threading.Lock()

    def slow(engine, now, tz):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            starts.append(time.monotonic())
        time.sleep(0.45)
        with lock:
            active[0] -= 1
        return 1

    caplog.set_level(logging.WARNING, logger="apscheduler")
    poller = _poller(tmp_path, sections={"slow": slow}, POLL_SECONDS=0.1)
    poller.start()
    try:
        time.sleep(1.6)
    finally:
        poller.stop()
    assert peak[0] == 1
    assert 2 <= len(starts) <= 4, starts  # not the 16 ticks that fell due
    assert all(b - a >= 0.44 for a, b in zip(starts, starts[1:]))  # each waited for the last
    # the dropped ticks are counted for /metrics, not warned about one by one
    assert float(poller.cache.fields("poll").get("skipped", 0)) >= 2
    assert not any("maximum number of running instances" in r.getMessage() for r in caplog.records)


def _recording_poller(tmp_path, name, log, prefix, **settings):
    s = make_settings(tmp_path, REDIS_URL=REDIS_URL, CACHE_PREFIX=prefix, POLL_SECONDS=0.2,
                      LEADER_LOCK_SECONDS=0.9, **settings)
    return Poller(s, engine=None, cache=Cache.from_settings(s),
                  sections={"who": lambda e, now, tz: log.append((name, time.monotonic())) or name})


def test_two_pollers_one_leader_and_takeover_on_stop_and_on_death(tmp_path, redis_prefix):
    log = []
    a = _recording_poller(tmp_path, "a", log, redis_prefix)
    b = _recording_poller(tmp_path, "b", log, redis_prefix)
    c = _recording_poller(tmp_path, "c", log, redis_prefix)
    try:
        a.start()
        wait_for(lambda: a.election.is_leader)
        b.start()
        time.sleep(1.0)
        assert {n for n, _ in log} == {"a"} and len(log) >= 4
        assert not b.election.is_leader

        a.stop()  # a clean stop hands the lock over at once
        stopped = time.monotonic()
        wait_for(lambda: any(n == "b" for n, _ in log))
        assert next(t for n, t in log if n == "b") - stopped < 0.6
        assert all(t < stopped for n, t in log if n == "a")

        c.start()
        time.sleep(0.5)
        assert not c.election.is_leader
        b.stop(release=False)  # as if b died: its lock must expire first
        died = time.monotonic()
        wait_for(lambda: any(n == "c" for n, _ in log))
        took_over = next(t for n, t in log if n == "c") - died
        assert 0.3 < took_over < 0.9 + 0.5, took_over  # lock lifetime left, plus a tick
        assert all(t < died for n, t in log if n == "b")
        assert c.cache.get().sections["who"].data == "c"
    finally:
        for p in (a, b, c):
            p.stop()


def test_without_redis_a_file_lock_keeps_one_poller_per_host(tmp_path):
    log = []
    s = make_settings(tmp_path, POLL_SECONDS=0.1)
    first, second = (Poller(s, engine=None, cache=Cache.from_settings(s),
                            sections={"who": lambda e, now, tz, n=n: log.append(n) or n})
                     for n in ("first", "second"))
    try:
        first.start()
        wait_for(lambda: first.election.is_leader)
        second.start()
        time.sleep(0.5)
        assert set(log) == {"first"} and not second.election.is_leader
        first.stop()
        # the section runs (and logs) before the snapshot is published: wait for the cache
        wait_for(lambda: second.cache.get() is not None
              and second.cache.get().sections["who"].data == "second")
    finally:
        first.stop()
        second.stop()


def test_a_forked_child_does_not_inherit_the_leadership(tmp_path):
    poller = _poller(tmp_path, sections={"x": lambda e, now, tz: 1}, POLL_SECONDS=0.1)
    poller.start()
    try:
        wait_for(lambda: poller.election.is_leader)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: what gunicorn --preload does with an app made in the master
            try:
                poller.ensure_started()
                time.sleep(0.4)
                os.write(write, b"leader" if poller.election.is_leader else b"follower")
            except BaseException as exc:
                os.write(write, repr(exc).encode()[:200])
            finally:
                os._exit(0)
        os.close(write)
        deadline = time.monotonic() + 10
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise AssertionError("forked child hung")
            time.sleep(0.05)
        assert os.read(read, 200) == b"follower"
        os.close(read)
        assert poller.election.is_leader  # the parent keeps its lock
    finally:
        poller.stop()


def test_run_forever_polls_until_told_to_stop(tmp_path, redis_prefix):
    s = make_settings(tmp_path, REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix, POLL_SECONDS=0.1)
    stop, polls = threading.Event(), []
    thread = threading.Thread(target=run_forever, args=(s,), daemon=True,
                              kwargs={"sections": {"n": lambda e, now, tz: polls.append(1) or len(polls)},
                                      "stop": stop})
    thread.start()
    try:
        wait_for(lambda: len(polls) >= 3)
        assert Cache.from_settings(s).get().sections["n"].data >= 2
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    count = len(polls)
    time.sleep(0.3)
    assert len(polls) == count


def test_apps_start_one_poller_each_and_stop_without_leaking_threads(reference_engine, store_url, tmp_path):
    import gc

    from dashboard import create_app
    from dashboard.poller import stop_all
    from dashboard.services import EXTENSION

    before = {t.ident for t in threading.enumerate()}
    overrides = {"DATABASE_URL": store_url, "POLL_SECONDS": 0.2, "LOCAL_CACHE_DIR": str(tmp_path / "cache")}
    apps = [create_app(overrides) for _ in range(2)]
    pollers = [app.server.extensions[EXTENSION].poller for app in apps]
    engines = [app.server.extensions[EXTENSION].engine for app in apps]
    try:
        assert all(p.running for p in pollers)
        wait_for(lambda: apps[1].server.extensions[EXTENSION].cache.get() is not None)
        assert sum(p.election.is_leader for p in pollers) == 1  # same store: one leader
        with apps[0].server.test_client() as client:  # the per-request check is a no-op
            assert client.get("/healthz").status_code == 200
        assert all(p.running for p in pollers)
        assert not create_app({**overrides, "POLLER_ENABLED": False}).server.extensions[EXTENSION].poller
        # an app thrown away (as tests do) stops its poller once collected
        thrown = create_app({**overrides, "LOCAL_CACHE_DIR": str(tmp_path / "other")})
        thrown_poller = thrown.server.extensions[EXTENSION].poller
        engines.append(thrown.server.extensions[EXTENSION].engine)
        assert thrown_poller.running
        del thrown
        create_app({**overrides, "POLLER_ENABLED": False})  # Dash keeps the newest app
        gc.collect()
        assert not thrown_poller.running
    finally:
        stop_all()
    assert not any(p.running for p in pollers)
    wait_for(lambda: {t.ident for t in threading.enumerate()} <= before)
    for engine in engines:
        engine.dispose()


def test_default_sections_are_the_kpis_and_all_fresh(backend, request, tmp_path):
    """The poller's default registry is the KPI set, with the cases section incremental."""
    from sqlalchemy import func, select

    from datasource import schema

    engine = seeded_engine(backend, request, tmp_path, profile=BACKLOG, seed=6, now=FIXED_NOW, total_cases=1500,
                           occupancy_days=1)
    poller = _poller(tmp_path, engine)
    snap = poller.poll_once()
    assert set(snap.sections) == {"cases", "ticker", "enterprise", "parking", "day_start"}
    assert all(s.status == "fresh" for s in snap.sections.values()), \
        {k: (s.status, s.error) for k, s in snap.sections.items()}
    with engine.connect() as conn:
        open_n = conn.execute(select(func.count()).where(
            schema.Case.status.in_(schema.OPEN_STATUSES))).scalar_one()
    assert snap.sections["cases"].data["open"]["total"] == open_n
    again = poller.poll_once()
    assert again.version == snap.version or again.sections["parking"].data != snap.sections["parking"].data


def test_the_long_lived_heap_is_frozen_once_per_stage():
    """What exists when the app is built (or the poller's state loaded) is moved out of
    the collector's walk once; a second call for the same stage does nothing."""
    import gc

    from dashboard import heap

    before = gc.get_freeze_count()
    alive = [[i] for i in range(5000)]  # tracked objects that live on
    assert heap.freeze_once("test-stage") is True
    assert gc.get_freeze_count() >= before + len(alive)
    assert heap.freeze_once("test-stage") is False
