"""The ad-hoc query cache: one computation per (query, parameters, scope) and ttl, within a
process and across processes (host folder and real Redis), and a cached drill that reads
no SQL."""
import threading
import time
import uuid

import pytest
from sqlalchemy import event

from dashboard import browse as B
from dashboard import create_app
from dashboard.adhoc import AdhocCache
from dashboard.cache import Cache, FileStore, RedisStore, redis_client
from tests.conftest import BACKLOG, FIXED_NOW, REDIS_URL, seeded_store_url


class Slow:
    def __init__(self, seconds=0.2, fail=False):
        self.calls = 0
        self.seconds = seconds
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("store down")
        return {"rows": [1, 2, 3]}


def ask_together(caches, fn, n=8, scope="all", name="q"):
    results, errors = [], []

    def one(i):
        try:
            results.append(caches[i % len(caches)].get(name, {"district": "410105"}, scope, fn))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


def test_one_computation_per_key_in_a_process():
    cache = AdhocCache(None, ttl=5)
    fn = Slow()
    results, errors = ask_together([cache], fn)
    assert errors == [] and fn.calls == 1 and results == [{"rows": [1, 2, 3]}] * 8
    cache.get("q", {"district": "410105"}, "410105", fn)  # another scope: its own answer
    assert fn.calls == 2


def test_answers_expire_after_the_ttl():
    cache = AdhocCache(None, ttl=0.2)
    fn = Slow(0)
    cache.get("q", 1, "all", fn)
    cache.get("q", 1, "all", fn)
    assert fn.calls == 1
    time.sleep(0.25)
    cache.get("q", 1, "all", fn)
    assert fn.calls == 2


def _file_cache(tmp_path):
    return Cache(FileStore(tmp_path / "shared"))


def test_two_workers_on_one_host_compute_once(tmp_path):
    """Two processes' caches over one host folder (each with its own memory)."""
    workers = [AdhocCache(_file_cache(tmp_path), ttl=5) for _ in range(2)]
    fn = Slow()
    results, errors = ask_together(workers, fn)
    assert errors == [] and fn.calls == 1 and len(results) == 8
    # an answer that expired can be claimed and computed again
    fresh = [AdhocCache(_file_cache(tmp_path), ttl=0.3) for _ in range(2)]
    fn2 = Slow(0.05)
    ask_together(fresh, fn2, n=4, name="q2")
    time.sleep(0.35)
    ask_together(fresh, fn2, n=4, name="q2")
    assert fn2.calls == 2


@pytest.mark.parametrize("store", ["folder", "redis"])
def test_a_failed_computation_frees_the_waiters(tmp_path, store):
    if store == "redis":
        prefix = f"cc-test-{uuid.uuid4().hex[:8]}"
        caches = [Cache(FileStore(tmp_path / f"l{i}"), RedisStore(redis_client(REDIS_URL, 1.0), prefix))
                  for i in range(2)]
    else:
        caches = [_file_cache(tmp_path) for _ in range(2)]
    workers = [AdhocCache(c, ttl=5, wait_seconds=10) for c in caches]
    fn = Slow(0.2, fail=True)
    t0 = time.monotonic()
    results, errors = ask_together(workers, fn, n=2)
    assert len(errors) == 2 and results == []
    assert time.monotonic() - t0 < 5  # the waiter did not wait out its 10 s


def test_workers_sharing_redis_compute_once(tmp_path):
    prefix = f"cc-test-{uuid.uuid4().hex[:8]}"
    workers = [AdhocCache(Cache(FileStore(tmp_path / f"local{i}"),
                                RedisStore(redis_client(REDIS_URL, 1.0), prefix)), ttl=5) for i in range(3)]
    fn = Slow()
    results, errors = ask_together(workers, fn, n=9)
    assert errors == [] and fn.calls == 1 and len(results) == 9
    client = redis_client(REDIS_URL, 1.0)
    for key in client.scan_iter(prefix + ":*"):
        client.delete(key)


def test_a_cached_drill_reads_no_sql_and_is_fast(backend, request, tmp_path):
    store_url = seeded_store_url(backend, request, tmp_path, profile=BACKLOG, seed=5, total_cases=1500, now=FIXED_NOW,
                                 occupancy_days=1)
    app = create_app({"DATABASE_URL": store_url, "POLLER_ENABLED": False})
    b = B.browse(app.server)
    b.clock = lambda: FIXED_NOW.timestamp()
    statements = []
    event.listen(b.engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2]))
    with app.server.test_request_context("/"):
        view = B.resolve("?period=month&district=410105")
        first = B.kpi_table(view, "zh-CN")
        rows = B.case_rows(view, 0, 100)
        n_first = len(statements)
        assert n_first > 0
        t0 = time.perf_counter()
        view = B.resolve("?period=month&district=410105")
        again = B.kpi_table(view, "zh-CN")
        rows_again = B.case_rows(view, 0, 100)
        took = time.perf_counter() - t0
    assert again == first and rows_again == rows
    assert len(statements) == n_first  # answered from the cache: no statement at all
    assert took < 0.05
    b.engine.dispose()
