"""One export at a time for the whole deployment.

With REDIS_URL: a Redis key taken with SET NX and an expiry, renewed while the export
runs (so a dead exporter frees it within REPORT_LOCK_SECONDS). Without Redis, or while
it does not answer: an fcntl lock on `weekly.lock` in the reports folder, which the
kernel frees the moment its process dies. The "already exists" check is made inside
the lock, so two exporters never both build a week.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path

import redis

from dashboard.cache import redis_client
from dashboard.leader import FileLock, RedisLock
from dashboard.settings import Settings

log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """Another export holds the lock."""


@contextmanager
def run_lock(settings: Settings, folder: Path):
    """Hold the export lock for the `with` block, or raise Busy at once."""
    lock, renewer, stop, client = None, None, threading.Event(), None
    if settings["REDIS_URL"]:
        client = redis_client(settings["REDIS_URL"], settings["REDIS_TIMEOUT_SECONDS"])
        candidate = RedisLock(client, f"{settings['CACHE_PREFIX']}:reports:run", settings["REPORT_LOCK_SECONDS"])
        try:
            if not candidate.acquire():
                raise Busy(f"another export holds the Redis lock ({candidate.holder()})")
            lock = candidate
        except redis.RedisError as exc:
            log.warning("export lock: Redis unreachable (%s); using the reports folder's file lock",
                        exc.__class__.__name__)
    if lock is None:
        candidate = FileLock(Path(folder) / "weekly.lock")
        if not candidate.acquire():
            raise Busy(f"another export holds {candidate.path}")
        lock = candidate
    if isinstance(lock, RedisLock):
        def _renew():
            while not stop.wait(settings["REPORT_LOCK_SECONDS"] / 3):
                try:
                    lock.acquire()
                except redis.RedisError as exc:
                    log.warning("export lock renewal failed: %s", exc.__class__.__name__)
        renewer = threading.Thread(target=_renew, daemon=True, name="weekly-lock")
        renewer.start()
    try:
        yield lock
    finally:
        stop.set()
        if renewer is not None:
            renewer.join(timeout=5)
        try:
            lock.release()
        except redis.RedisError:
            pass  # it expires by itself
        if client is not None:
            client.close()
