"""The snapshot cache: in-process, host-local folder and real Redis; Redis going away."""
import datetime as dt
import logging
import time

import pytest
import redis

from dashboard.cache import Cache, FileStore, MemoryStore
from dashboard.settings import Settings
from dashboard.snapshot import Section, Snapshot
from tests.conftest import REDIS_URL
from tests.service_helpers import RedisServer, free_port, make_settings

T0 = dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.timezone.utc)


def _fixed_date_settings(tmp_path, **overrides) -> Settings:
    """The round trips below publish snapshots dated T0, a fixed day in the past: lift the
    age limit under which a cache serves a snapshot as published (serving old snapshots
    as stale is tested in tests/test_leadership_faults.py)."""
    return make_settings(tmp_path, READY_MAX_AGE_SECONDS=1e9, **overrides)


def snap(n, at=T0):
    return Snapshot(computed_at=at, data_as_of=at - dt.timedelta(seconds=1),
                    sections={"open_cases": Section("fresh", [{"code": "410102", "open_cases": n}])})


# --- round trips ----------------------------------------------------------------------
def _round_trip(writer: Cache, reader: Cache):
    assert reader.get() is None and reader.current_version() is None
    assert reader.get_if_changed(None) is None

    first = snap(1)
    writer.publish(first)
    assert reader.current_version() == first.version
    got = reader.get_if_changed(None)
    assert got == first
    assert reader.get_if_changed(first.version) is None  # unchanged: nothing to redraw

    # same content a poll later: the version stays, the times move
    later = snap(1, T0 + dt.timedelta(seconds=5))
    writer.publish(later)
    assert reader.get_if_changed(first.version) is None
    assert reader.get().computed_at == later.computed_at
    assert reader.head().data_as_of == later.data_as_of

    second = snap(2, T0 + dt.timedelta(seconds=10))
    writer.publish(second)
    assert second.version != first.version
    assert reader.get_if_changed(first.version) == second


def test_in_process_round_trip():
    cache = Cache(MemoryStore())
    _round_trip(cache, cache)


def test_host_folder_round_trip_between_two_workers(tmp_path):
    _round_trip(Cache(FileStore(tmp_path)), Cache(FileStore(tmp_path)))


def test_redis_round_trip_between_two_workers(tmp_path, redis_prefix):
    settings = _fixed_date_settings(tmp_path, REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix)
    writer, reader = Cache.from_settings(settings), Cache.from_settings(settings)
    _round_trip(writer, reader)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    assert set(client.scan_iter(f"{redis_prefix}:*")) == {f"{redis_prefix}:snapshot", f"{redis_prefix}:head"}
    assert not any((tmp_path / "cache").rglob("snapshot"))  # Redis up: nothing written locally


def test_unchanged_is_answered_from_the_head_alone(tmp_path, redis_prefix):
    settings = _fixed_date_settings(tmp_path, REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix)
    writer = Cache.from_settings(settings)
    first = snap(1)
    writer.publish(first)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.set(f"{redis_prefix}:snapshot", "not json at all")

    fresh_worker = Cache.from_settings(settings)  # nothing parsed yet in this process
    assert fresh_worker.get_if_changed(first.version) is None
    assert fresh_worker.current_version() == first.version
    with pytest.raises(ValueError):  # the big key is only read when the version differs
        fresh_worker.get_if_changed("another version")


def test_big_key_is_rewritten_only_when_the_content_changes(tmp_path, redis_prefix):
    settings = _fixed_date_settings(tmp_path, REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix)
    cache = Cache.from_settings(settings)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    cache.publish(snap(1))
    client.set(f"{redis_prefix}:snapshot", "marker")
    cache.publish(snap(1, T0 + dt.timedelta(seconds=5)))
    assert client.get(f"{redis_prefix}:snapshot") == "marker"
    cache.publish(snap(2, T0 + dt.timedelta(seconds=10)))
    assert Snapshot.from_json(client.get(f"{redis_prefix}:snapshot")) == snap(2, T0 + dt.timedelta(seconds=10))


# --- Redis going away and coming back --------------------------------------------------
@pytest.fixture
def own_redis():
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


def test_redis_going_away_falls_back_with_a_warning_and_comes_back(tmp_path, own_redis, caplog):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    settings = _fixed_date_settings(tmp_path, REDIS_URL=url, CACHE_PREFIX="cc", REDIS_RETRY_SECONDS=0.3)
    leader, worker = Cache.from_settings(settings), Cache.from_settings(settings)
    leader.publish(snap(1))
    assert worker.get() == snap(1)

    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="dashboard.cache")
    leader.publish(snap(2, T0 + dt.timedelta(seconds=5)))
    assert leader.using_fallback
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    started = time.monotonic()
    assert worker.get() == snap(2, T0 + dt.timedelta(seconds=5))  # the host folder, shared
    assert worker.get_if_changed(snap(2).version) is None
    assert time.monotonic() - started < 0.5  # a dead Redis does not hold a request
    assert float(worker.fields("counters")["cache_fallbacks"]) == 2  # one per process
    assert worker.ping() is not None  # /readyz says so

    own_redis.start()  # empty: no persistence, like the real one
    time.sleep(0.35)
    caplog.clear()
    third = snap(3, T0 + dt.timedelta(seconds=10))
    leader.publish(third)
    assert not leader.using_fallback
    assert any("answers again" in r.getMessage() for r in caplog.records)
    client = redis.Redis(port=own_redis.port, decode_responses=True)
    assert Snapshot.from_json(client.get("cc:snapshot")) == third
    assert worker.get() == third and not worker.using_fallback
    assert worker.ping() is None
    # both processes replayed the fallbacks they counted while Redis was away
    assert float(client.hget("cc:counters", "cache_fallbacks")) == 2


def test_unreachable_redis_from_the_start_serves_locally(tmp_path):
    settings = _fixed_date_settings(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    cache = Cache.from_settings(settings)
    cache.publish(snap(1))
    assert cache.using_fallback
    assert Cache.from_settings(settings).get() == snap(1)


def test_the_last_snapshot_bridges_an_empty_store_after_redis_dies_or_comes_back_empty(tmp_path, own_redis):
    """Found by the soak: right after Redis died, the host folder held nothing yet, so a
    worker answered "none published yet" (/readyz 503, a new wall "waiting") for a second
    or two; the same after Redis came back empty until the next poll."""
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    settings = make_settings(tmp_path, REDIS_URL=url, CACHE_PREFIX="cc", REDIS_RETRY_SECONDS=0.3)
    now = dt.datetime.now(dt.timezone.utc)
    leader, worker = Cache.from_settings(settings), Cache.from_settings(settings)
    leader.publish(snap(1, now))
    assert worker.get() == snap(1, now)
    own_redis.stop()
    assert worker.head() is not None and worker.head().version == snap(1, now).version
    assert worker.get() == snap(1, now) and worker.using_fallback
    assert worker.local.get("head") is None  # nothing in the host folder yet: the memo served
    own_redis.start()  # back, and empty
    time.sleep(0.35)
    assert worker.get() == snap(1, now) and not worker.using_fallback
    fresh = Cache.from_settings(settings)  # a process that never parsed one has nothing to show
    assert fresh.head() is None


def test_a_bridged_snapshot_ages_to_stale(tmp_path, own_redis):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    settings = make_settings(tmp_path, REDIS_URL=url, CACHE_PREFIX="cc", READY_MAX_AGE_SECONDS=30)
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    worker = Cache.from_settings(settings)
    worker.publish(snap(1, old))
    own_redis.stop()
    served = worker.get()
    assert served is not None and all(s.status == "stale" for s in served.sections.values())
