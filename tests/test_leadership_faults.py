"""Faults with two deployments ("hosts") of the app on one store: Redis away, a leader
stopped or killed, writes in between. One owner of the KPI state, provably; numbers
equal to the store's; old snapshots never served as fresh; a late Redis lock request
does not freeze polling."""
import datetime as dt
import os
import signal
import time

import pytest
import redis
from sqlalchemy import func, select, update

from dashboard import metrics
from dashboard.cache import AGED, FileStore, Cache, deployment_folder
from dashboard.kpis.cases import compute_cases
from dashboard.kpis.incremental import IncrementalCases
from dashboard.leader import Election, FileLock, RedisLock
from dashboard.poller import Poller
from dashboard.snapshot import Section, Snapshot
from datasource import kpi_owner, kpi_state, schema
from datasource.demo.simulate import Simulator
from datasource.engine import make_engine
from tests.conftest import BACKLOG, seeded_store_url
from tests.kpi_oracle import assert_close
from tests.service_helpers import RedisServer, free_port, make_settings

C = schema.Case
LEASE = 2.0  # LEADER_LOCK_SECONDS of the hosts below: longer than a poll (no lease job runs here)


@pytest.fixture(scope="module")
def history_end():
    """Five minutes before the module's first test: the seeded history ends then."""
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)


@pytest.fixture
def city(request, tmp_path, history_end):
    """A seeded PostgreSQL store whose history ends now (so that "today" has cases), a
    simulator writing into it, and the engines made for it."""
    url = seeded_store_url("postgresql", request, tmp_path, profile=BACKLOG, seed=21, now=history_end,
                           total_cases=1500, occupancy_days=1)
    engine = make_engine(url)
    engines = [engine]
    sim = Simulator(engine, rate=20, seed=4)

    def write(seconds=5.0):
        sim.tick(dt.datetime.now(dt.timezone.utc), seconds)

    def new_engine():
        engines.append(make_engine(url))
        return engines[-1]
    yield {"url": url, "engine": engine, "write": write, "new_engine": new_engine}
    for e in engines:
        e.dispose()


def _host(tmp_path, city, name, redis_url, **settings):
    """One deployment: its own host folder, Redis unreachable, the cases section saving
    its state every poll (the most writes a former leader could slip in)."""
    s = make_settings(tmp_path / name, DATABASE_URL=city["url"], REDIS_URL=redis_url, CACHE_PREFIX="cc",
                      LEADER_LOCK_SECONDS=LEASE, POLL_SECONDS=1, **settings)
    return Poller(s, engine=city["new_engine"](), cache=Cache.from_settings(s),
                  sections=lambda: {"cases": IncrementalCases(save_every=0)})


def _store_totals(engine, now: dt.datetime) -> tuple[int, int]:
    tz = dt.timezone(dt.timedelta(hours=8))
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    next_hour = now.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    with engine.connect() as conn:
        open_n = conn.execute(select(func.count()).where(C.status.in_(schema.OPEN_STATUSES))).scalar_one()
        today = conn.execute(select(func.count()).where(C.reported_at >= midnight,
                                                        C.reported_at < next_hour)).scalar_one()
    return open_n, today


def _totals(snap: Snapshot) -> tuple[int, int]:
    data = snap.sections["cases"].data
    return data["open"]["total"], data["periods_kpis"]["today"]["city"]["reported"]["value"]


def test_two_hosts_without_redis_keep_one_owner_and_the_store_s_numbers(city, tmp_path):
    """The fault injection's scenario: Redis unreachable for both hosts, the leader
    stopped and later killed, writes all along. Afterwards the wall's totals are the
    store's, exactly, and the persisted rollups agree with a full recompute."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    a, b = _host(tmp_path, city, "host-a", closed), _host(tmp_path, city, "host-b", closed)
    leaders = []

    def tick(*hosts):
        for h in hosts:
            h._tick()
        leaders.append(tuple(h.election.is_leader for h in (a, b)))

    tick(a, b)  # a leads; b must not, although its host has no Redis to learn that from
    city["write"]()
    tick(a, b)
    city["write"]()
    time.sleep(LEASE * 1.2)  # a stops (SIGSTOP-like: no tick, no renewal): b takes over
    tick(b)
    city["write"]()
    tick(b)
    tick(a)  # a wakes up: not the leader any more, and it forgets what it held
    city["write"]()
    tick(b)
    b.stop(release=False)  # b is killed: its lease expires
    city["write"]()
    time.sleep(LEASE * 1.2)
    tick(a, b)  # a leads again, from the store's state, not from its old memory
    city["write"]()
    tick(a)
    city["write"]()
    tick(a)

    published = a.cache.get()
    assert published.sections["cases"].status == "fresh", published.sections["cases"].error
    assert _totals(published) == _store_totals(city["engine"], published.computed_at)
    # the persisted rollups are the sums of the cases, not of two leaders' deltas
    with city["engine"].connect() as conn:
        assert conn.execute(select(func.sum(schema.KpiOpen.n))).scalar_one() == \
            _store_totals(city["engine"], published.computed_at)[0]
    now = published.computed_at
    assert_close(IncrementalCases()(city["engine"], now, now.tzinfo), compute_cases(city["engine"], now, now.tzinfo))
    assert leaders == [(True, False), (True, False),  # one leader, although each host has its own file lock
                       (False, True), (False, True), (False, True), (False, True),  # a's lease ran out
                       (True, False), (True, False), (True, False)]
    assert a.election.term == 2 and a.sections["cases"].rebuilds == 0  # loaded, not rebuilt
    a.stop()


def test_a_former_leader_can_never_write_again(city, tmp_path):
    """Fencing: a leader stopped past its lease finds its token refused, in the state's
    own transaction, and its poll's snapshot is dropped."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    a, b = _host(tmp_path, city, "host-a", closed), _host(tmp_path, city, "host-b", closed)
    a._tick()
    old_token = a.election.token
    assert old_token is not None and not b.election.refresh()
    before = kpi_state.watermark(city["engine"])
    time.sleep(LEASE * 1.2)
    assert b.election.refresh() and b.election.token == old_token + 1
    with pytest.raises(kpi_owner.Fenced):  # what a's next save would do
        kpi_state.save(city["engine"], [], before + dt.timedelta(hours=1), token=old_token)
    with pytest.raises(kpi_owner.Fenced):
        kpi_state.rebuild(city["engine"], token=old_token)
    assert kpi_state.watermark(city["engine"]) == before

    # the stopped leader's poll, resumed before its lease job noticed: it still thinks it
    # leads (its local clock), computes from memory and tries to save
    city["write"]()
    a.election.store_lease._valid_until = time.monotonic() + 60
    published = a.cache.get()
    a.poll_once(as_leader=True)
    assert a.cache.get() == published  # nothing published
    assert not a.election.is_leader and a.sections["cases"].roll is None  # memory dropped
    assert float(a.cache.fields("counters")["fenced"]) == 1
    assert kpi_state.watermark(city["engine"]) == before
    b.stop()
    a.stop()


def test_a_new_leader_checks_the_state_it_loads_and_rebuilds_damage(city, tmp_path):
    """Damaged rollups (two leaders' deltas, as before fencing) are found by the new
    leader's self-check at load: the section is marked stale (never fresh with wrong
    numbers), the mismatch is counted, and the next poll rebuilds."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    a, b = _host(tmp_path, city, "host-a", closed), _host(tmp_path, city, "host-b", closed)
    a._tick()
    first = a.cache.get()
    assert first.sections["cases"].status == "fresh"
    a.election.release()  # a clean stop: the lease is free at once
    with city["engine"].begin() as conn:  # a delta added twice
        conn.execute(update(schema.KpiOpen).where(schema.KpiOpen.status == "dispatched").values(n=schema.KpiOpen.n + 7))
    city["write"]()
    b._tick()
    snap = b.cache.get()
    section = snap.sections["cases"]
    # (b's host has no earlier snapshot to keep as stale: no numbers at all rather than wrong ones)
    assert (section.status, section.data) == ("error", None)
    assert section.error == "SelfCheckMismatch: self-check failed; rebuilding"
    assert float(b.cache.fields("counters")["selfcheck_mismatches"]) == 1
    families = {f.name: f for f in metrics.SnapshotCollector(b.cache).collect()}
    assert families["cc_selfcheck_mismatches"].samples[0].value == 1
    b._tick()
    fixed = b.cache.get()
    assert fixed.sections["cases"].status == "fresh" and b.sections["cases"].rebuilds == 1
    assert _totals(fixed) == _store_totals(city["engine"], fixed.computed_at)
    b.stop()


def test_the_periodic_self_check_catches_memory_gone_wrong(city):
    """Whatever made memory differ from the cases, the check finds it within its period."""
    engine = city["engine"]
    inc = IncrementalCases(check_every=0)
    now = dt.datetime.now(dt.timezone.utc)
    tz = dt.timezone(dt.timedelta(hours=8))
    inc(engine, now, tz)
    assert inc.checks == 1
    key = next(k for k, n in inc.open.items() if n)
    inc.open[key] += 3
    from dashboard.kpis.incremental import SelfCheckMismatch
    with pytest.raises(SelfCheckMismatch):
        inc(engine, now, tz)
    got = inc(engine, now, tz)  # rebuilt
    assert inc.rebuilds == 2 and inc.mismatches == 1
    assert (got["open"]["total"], got["periods_kpis"]["today"]["city"]["reported"]["value"]) == \
        _store_totals(engine, now)


def test_every_host_serves_a_fresh_snapshot_while_redis_is_away(city, tmp_path):
    """The follower host copies the leader's snapshot from the store into its own folder:
    its walls stay fresh and its /readyz says ready (Redis named as degraded)."""
    from dashboard import create_app
    from dashboard.services import EXTENSION

    closed = f"redis://127.0.0.1:{free_port()}/0"
    apps = [create_app({"DATABASE_URL": city["url"], "LOCAL_CACHE_DIR": str(tmp_path / h), "REDIS_URL": closed,
                        "POLLER_ENABLED": False, "LOG_LEVEL": "WARNING", "LEADER_LOCK_SECONDS": LEASE})
            for h in ("host-a", "host-b")]
    svcs = [app.server.extensions[EXTENSION] for app in apps]
    pollers = [Poller(s.settings, engine=s.engine, cache=s.cache,
                      sections=lambda: {"cases": IncrementalCases()}) for s in svcs]
    try:
        pollers[0]._tick()
        pollers[1]._tick()
        assert pollers[0].election.is_leader and not pollers[1].election.is_leader
        served = svcs[1].cache.get()
        assert served is not None and served == svcs[0].cache.get()
        for app in apps:
            r = app.server.test_client().get("/readyz")
            assert (r.status_code, r.get_json()["degraded"]) == (200, ["cache"])
        city["write"]()
        pollers[0]._tick()
        pollers[1]._tick()
        assert svcs[1].cache.get() == svcs[0].cache.get() != served
    finally:
        for p in pollers:
            p.stop()
        for s in svcs:
            s.engine.dispose()


# --- old snapshots ----------------------------------------------------------------------
def test_an_old_snapshot_from_the_host_folder_is_served_stale(tmp_path):
    """What an earlier outage left in the host folder is never served as fresh: its fresh
    sections are stale since it was computed, under a version of their own."""
    settings = make_settings(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", READY_MAX_AGE_SECONDS=30)
    old_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=295)
    left = Snapshot(computed_at=old_at, data_as_of=old_at, sections={
        "cases": Section("fresh", {"n": 1}), "gone": Section("error", None, old_at, "x"), "none": Section("empty")})
    Cache(FileStore(deployment_folder(settings))).publish(left)  # an earlier poller, long gone
    cache = Cache.from_settings(settings)
    head = cache.head()
    assert head.statuses == {"cases": "stale", "gone": "error", "none": "empty"}
    assert head.version == left.version + AGED
    served = cache.get_if_changed(left.version)
    assert served.version == head.version
    cases = served.sections["cases"]
    assert (cases.status, cases.data, cases.since) == ("stale", {"n": 1}, old_at)
    assert served.sections["gone"] == left.sections["gone"] and served.sections["none"] == left.sections["none"]
    assert cache.get_if_changed(head.version) is None  # drawn once
    assert cache.get() == served

    new = Snapshot(computed_at=dt.datetime.now(dt.timezone.utc), data_as_of=None,
                   sections={"cases": Section("fresh", {"n": 1})})
    cache.publish(new)
    assert cache.get_if_changed(head.version) == new and cache.head().statuses == {"cases": "fresh"}


# --- a Redis lock request that lands late -------------------------------------------------
@pytest.fixture
def pausable_redis():
    server = RedisServer(free_port())
    server.start()
    yield server
    if server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


def test_a_lock_request_that_lands_late_is_adopted(pausable_redis, tmp_path):
    """SET NX sent while Redis hangs, applied when it resumes, after the client gave up:
    the key holds our token. The next attempt adopts it instead of waiting it out."""
    url = f"redis://127.0.0.1:{pausable_redis.port}/0"
    fast = redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3, decode_responses=True)
    lock, other = RedisLock(fast, "cc:poller:leader", 30), RedisLock(fast, "cc:poller:leader", 30)
    assert lock.acquire()
    lock.release()
    os.kill(pausable_redis.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(redis.RedisError):
            lock.acquire()
    finally:
        os.kill(pausable_redis.proc.pid, signal.SIGCONT)
    check = redis.Redis.from_url(url, decode_responses=True)
    deadline = time.monotonic() + 5
    while check.get("cc:poller:leader") != lock.token:  # the request lands late
        assert time.monotonic() < deadline, "the late request never landed"
        time.sleep(0.02)
    assert 29_000 < check.pttl("cc:poller:leader") <= 30_000
    assert not other.acquire()
    started = time.monotonic()
    assert lock.acquire()  # ours: adopted at once, not after 30 s
    assert time.monotonic() - started < 1
    election = Election(FileLock(tmp_path / "poller.lock"), lock)
    assert election.refresh() and election.is_leader
    check.close()
    fast.close()
