"""The ad-hoc query cache: leaders' filters and drill-downs, answered once per poll interval.

The browsing pages ask the store directly (not the snapshot), through this cache. A key
is (query name, parameters, scope key); a value lives for `ttl` seconds (one
POLL_SECONDS by default), in this process (a parsed copy, for repeats in microseconds)
and in the shared cache (Redis or the host folder, dashboard/cache.py) for the other
workers. Identical questions asked at the same time are computed once: within a process
a per-key lock, across processes a short claim (SET NX) as in dashboard/rendered.py;
the others wait for the published answer and compute themselves only if the claimant
does not publish in time.

Values must be JSON-able (datetimes are turned into ISO strings by `jsonable`).
"""
from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from dashboard.cache import Cache

log = logging.getLogger(__name__)
PREFIX = "adhoc:"


def jsonable(value: Any) -> Any:
    """Rows from the store as JSON values: datetimes and dates in ISO form, Decimals as floats."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def cache_key(name: str, params: Any, scope_key: str) -> str:
    raw = json.dumps([name, jsonable(params), scope_key], sort_keys=True, ensure_ascii=False,
                     separators=(",", ":"))
    return name + ":" + hashlib.sha256(raw.encode()).hexdigest()[:32]


class AdhocCache:
    def __init__(self, cache: Cache | None, *, ttl: float, claim_seconds: float = 15.0,
                 wait_seconds: float = 15.0, memo_size: int = 512):
        self.cache = cache  # None: this process only (tests, tools)
        self.ttl = ttl
        self.claim_seconds = claim_seconds  # a claimant that dies frees the key after this
        self.wait_seconds = wait_seconds
        self.memo_size = memo_size
        self._memo: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.computed = 0  # how many times a value was computed here (tests, benchmarks)

    def _recall(self, key: str) -> tuple[bool, Any]:
        with self._lock:
            hit = self._memo.get(key)
            if hit is None:
                return False, None
            if hit[0] < time.monotonic():
                del self._memo[key]
                return False, None
            self._memo.move_to_end(key)
            return True, hit[1]

    def _remember(self, key: str, value: Any, ttl: float) -> Any:
        with self._lock:
            self._memo[key] = (time.monotonic() + ttl, value)
            self._memo.move_to_end(key)
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return value

    def _read_shared(self, key: str, ttl: float) -> tuple[bool, Any]:
        if self.cache is None:
            return False, None
        raw = self.cache.get_expiring(PREFIX + key)
        if raw is None:
            return False, None
        return True, self._remember(key, json.loads(raw), ttl)

    def get(self, name: str, params: Any, scope_key: str, compute: Callable[[], Any],
            ttl: float | None = None) -> Any:
        """The value of `compute()` for (name, params, scope), computed at most once per ttl."""
        ttl = self.ttl if ttl is None else ttl
        key = cache_key(name, params, scope_key)
        found, value = self._recall(key)
        if found:
            return value
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        try:
            with key_lock:  # one thread per process asks the shared cache, or computes
                found, value = self._recall(key)
                if found:
                    return value
                found, value = self._read_shared(key, ttl)
                if found:
                    return value
                # a claim is good for one ttl bucket: once the answer has expired, the next
                # asker must be able to claim the key again
                claim = f"{PREFIX}{key}:{int(time.time() // ttl)}"
                if self.cache is not None and not self.cache.claim(claim, self.claim_seconds):
                    deadline = time.monotonic() + self.wait_seconds
                    while time.monotonic() < deadline:  # another process computes it
                        time.sleep(0.01)
                        found, value = self._read_shared(key, ttl)
                        if found:
                            return value
                        if self.cache.get_expiring(claim + ":failed") is not None:
                            break  # the claimant failed: try here (and fail or succeed here)
                    else:
                        log.warning("ad-hoc query %s not published in %.0f s; computing here", name,
                                    self.wait_seconds)
                try:
                    value = jsonable(compute())
                except Exception:
                    if self.cache is not None:
                        self.cache.put_expiring(claim + ":failed", "1", self.claim_seconds)
                    raise
                self.computed += 1
                if self.cache is not None:
                    self.cache.put_expiring(PREFIX + key, json.dumps(value, ensure_ascii=False,
                                                                     separators=(",", ":")), ttl)
                return self._remember(key, value, ttl)
        finally:
            with self._lock:
                if len(self._key_locks) > 4 * self.memo_size:
                    self._key_locks.clear()  # locks of long-gone keys
