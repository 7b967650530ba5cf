"""The poller wakes on a write: a new case is polled within a change check, not after a
whole POLL_SECONDS, and a quiet store costs one full poll per POLL_SECONDS."""
from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import insert

from dashboard.cache import Cache, MemoryStore
from dashboard.leader import Election, FileLock
from dashboard.poller import Poller
from dashboard.settings import Settings
from datasource import schema


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _add_case(engine, n: int) -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id=f"WAKE-{n}", source="hotline", category_code="S01-01", district_code="410105",
            status="filed", reported_at=now, filed_at=now, updated_at=now)])
    return now


def test_a_write_wakes_the_poller_and_a_quiet_store_does_not(reference_engine, tmp_path):
    settings = Settings.from_env({"POLL_SECONDS": 60, "CHANGE_CHECK_SECONDS": 0.1,
                                  "LOCAL_CACHE_DIR": str(tmp_path / "cache")})
    polls: list[float] = []
    lock = threading.Lock()

    def section(engine, now, tz):
        with lock:
            polls.append(time.time())
        return {"n": len(polls)}

    poller = Poller(settings, engine=reference_engine, cache=Cache(MemoryStore()), sections={"count": section},
                    election=Election(FileLock(tmp_path / "lock")))
    poller.start()
    try:
        assert _wait(lambda: len(polls) >= 1, 10)
        time.sleep(0.3)  # the first check after the first poll may see its mark for the first time
        settled = len(polls)
        time.sleep(1.0)  # ten change checks on a quiet store: no poll (the next is due in a minute)
        assert len(polls) == settled, polls
        for n in range(3):
            committed = _add_case(reference_engine, n).timestamp()
            # woken within a few checks, not after the 60 s POLL_SECONDS
            assert _wait(lambda: polls[-1] >= committed, 10), f"write {n} was not polled"
            after = len(polls)
            time.sleep(0.5)
            assert len(polls) == after, "a single write is polled once"
        assert poller.cache.get().sections["count"].data["n"] == len(polls)
    finally:
        poller.stop()
