"""Rendered screens are computed once per key for the whole deployment (real Redis and
a real shared folder), and a claimant that dies does not block the others for long."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from dashboard.cache import Cache, FileStore, MemoryStore, RedisStore, redis_client
from dashboard.metrics import COUNTERS
from dashboard.rendered import RenderCache
from tests.conftest import REDIS_URL


def _stores(kind, tmp_path):
    if kind == "redis":
        client = redis_client(REDIS_URL, 1.0)
        prefix = f"test-render-{uuid.uuid4().hex[:8]}"
        yield lambda: Cache(FileStore(tmp_path / "local"), RedisStore(client, prefix))
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
    elif kind == "folder":
        yield lambda: Cache(FileStore(tmp_path / "shared"))
    else:
        store = MemoryStore()
        yield lambda: Cache(store)


@pytest.fixture(params=["redis", "folder", "memory"])
def new_cache(request, tmp_path):
    yield from _stores(request.param, tmp_path)


def test_fifty_displays_in_several_processes_cost_one_render(new_cache):
    """Five "processes" (own cache client and memo) with ten threads each ask at once."""
    calls = []
    lock = threading.Lock()

    def render():
        with lock:
            calls.append(1)
        time.sleep(0.2)  # a render takes a while: the others must wait, not render too
        return {"panel": [1, 2, 3]}

    processes = [RenderCache(new_cache()) for _ in range(5)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda i: processes[i % 5].get_or_render("v1|view", render), range(50)))
    assert len(calls) == 1
    assert all(r == {"panel": [1, 2, 3]} for r in results)
    assert float(processes[0].cache.fields(COUNTERS).get("renders", 0)) == 1
    # a new version is rendered once more; the old one is still served from memory
    processes[1].get_or_render("v2|view", lambda: {"panel": [4]})
    assert processes[2].get_or_render("v2|view", render) == {"panel": [4]}
    assert len(calls) == 1


def test_a_dead_claimant_delays_but_does_not_block(new_cache):
    cache = new_cache()
    assert cache.claim("render:k", 30)  # someone claimed the render and died
    rc = RenderCache(cache, wait_seconds=0.3)
    started = time.monotonic()
    assert rc.get_or_render("k", lambda: {"x": 1}) == {"x": 1}
    assert time.monotonic() - started < 5


def test_expiring_values_expire_and_claims_are_exclusive(new_cache):
    cache = new_cache()
    cache.put_expiring("a", "1", 0.3)
    assert cache.get_expiring("a") == "1"
    assert cache.claim("c", 0.3) and not cache.claim("c", 0.3)
    time.sleep(1.1)  # the folder store keeps whole-second file times
    assert cache.get_expiring("a") is None
    assert cache.claim("c", 0.3)
