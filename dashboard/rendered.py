"""Rendered screens, computed once per key for the whole deployment.

A screen's rendering depends only on (snapshot version, reference version, language,
district, map KPI), so the first display that asks for a new version renders it and
every other display, in any worker or host, reads the result: the fiftieth display
costs a cache read. Who renders is decided with a short claim in the cache (SET NX);
the others wait for the result, and render themselves only if the claimant dies.
Each process also keeps the last results parsed, so most reads touch no store at all.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import orjson

from dashboard.cache import Cache
from dashboard.metrics import COUNTERS

log = logging.getLogger(__name__)


class RenderCache:
    def __init__(self, cache: Cache, *, ttl: float = 900.0, claim_seconds: float = 10.0,
                 wait_seconds: float = 5.0, memo_size: int = 64):
        self.cache = cache
        self.ttl = ttl  # a display more than this behind re-renders (never wrong, only slower)
        self.claim_seconds = claim_seconds
        self.wait_seconds = wait_seconds
        self.memo_size = memo_size
        self._memo: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def _remember(self, key: str, value: Any) -> Any:
        with self._lock:
            self._memo[key] = value
            self._memo.move_to_end(key)
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return value

    def _recall(self, key: str) -> Any | None:
        with self._lock:
            value = self._memo.get(key)
            if value is not None:
                self._memo.move_to_end(key)
            return value

    def _read_shared(self, key: str) -> Any | None:
        raw = self.cache.get_expiring("render:" + key)
        return None if raw is None else self._remember(key, orjson.loads(raw))

    def get_or_render(self, key: str, render: Callable[[], Any]) -> Any:
        """The JSON-able result for `key`: from this process, the shared cache, or `render()`."""
        value = self._recall(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one thread per process goes to the shared cache for a key
            try:
                value = self._recall(key) or self._read_shared(key)
                if value is not None:
                    return value
                if not self.cache.claim("render:" + key, self.claim_seconds):
                    deadline = time.monotonic() + self.wait_seconds
                    while time.monotonic() < deadline:
                        time.sleep(0.02)
                        value = self._read_shared(key)
                        if value is not None:
                            return value
                    log.warning("render of %s not published in %.0f s; rendering here", key, self.wait_seconds)
                value = render()
                self.cache.put_expiring("render:" + key, orjson.dumps(value).decode("utf-8"), self.ttl)
                self.cache.add(COUNTERS, {"renders": 1})
                return self._remember(key, value)
            finally:
                with self._lock:
                    if len(self._key_locks) > 4 * self.memo_size:
                        self._key_locks.clear()  # locks of long-gone keys
