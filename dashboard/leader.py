"""Who polls: exactly one process per deployment, elected by a lock.

On PostgreSQL the lock is a lease in the store itself (`StoreLease`, the one row of
kpi_owner): every host sees the same row whether or not Redis answers, the store's
clock times it, and each takeover adds one to a fencing token that every write of
the KPI state checks (datasource/kpi_owner.py). A leader that cannot renew within
the lease's lifetime stops counting itself the leader (`held`), before the lease
expires in the store.

On SQLite (one host) the lock is, as before, a Redis key set with NX and an expiry,
holding a token that names the holder (renewed and released only while it holds that
token; a key that holds our own token, from a request that timed out but landed late,
is ours), or without Redis, or while it is unreachable, an fcntl lock on a file in
the host-local cache folder; the kernel drops it the moment its process dies. The
poller then takes a fencing token from the store at each new term.
"""
from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import redis
from sqlalchemy import Engine

from datasource import kpi_owner

log = logging.getLogger(__name__)

# Touch the key only while it still holds our token: never renew or delete a lock
# that expired and was taken by another process meanwhile.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# Take the lock if free, or keep it if it holds our token, in one step. A SET NX sent
# during a Redis hang can land after the client gave up: the key then holds our token
# with nobody renewing it, and a plain SET NX would wait for it to expire.
_ACQUIRE = ("local v = redis.call('get', KEYS[1]) "
            "if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end "
            "if not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0")


def _holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RedisLock:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float):
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.token = f"{_holder_name()}:{uuid.uuid4().hex[:8]}"
        self.held = False
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Renew the lock if it holds our token, else take it if free. Raises RedisError
        if unreachable (the request may still land later: the next call adopts it)."""
        self.held = False
        self.held = bool(self._acquire(keys=[self.key], args=[self.token, self.ttl_ms]))
        return self.held

    def release(self) -> None:
        # also when not known to be held: a request that timed out may have landed
        self.held = False
        self._release(keys=[self.key], args=[self.token])

    def holder(self) -> str | None:
        return self.client.get(self.key)

    def forked(self) -> "RedisLock":
        """The same lock for a forked child, which must not inherit the parent's token."""
        return RedisLock(self.client, self.key, self.ttl_ms / 1000)


class FileLock:
    """A non-blocking flock; the file is never deleted, so every process locks one inode."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> bool:
        if self._fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.truncate(0)
        fh.write(_holder_name() + "\n")  # for an operator wondering who polls
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def forked(self) -> "FileLock":
        # A forked child shares the parent's open file and so its lock: close our copy
        # without unlocking (that would free the parent's lock too) and start afresh.
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        return FileLock(self.path)


class StoreLease:
    """The lease row in the store (PostgreSQL): see the module doc and datasource/kpi_owner.py."""

    MARGIN = 0.8  # of the lease's lifetime: we stop leading before the store lets another take over

    def __init__(self, engine: Engine, ttl_seconds: float):
        self.engine = engine
        self.ttl = ttl_seconds
        self.holder = f"{_holder_name()}:{uuid.uuid4().hex[:8]}"
        self.token: int | None = None
        self._valid_until = 0.0  # monotonic

    @property
    def held(self) -> bool:
        return self.token is not None and time.monotonic() < self._valid_until

    def acquire(self) -> bool:
        """Renew the lease if ours, else take it if expired. Raises if the store fails."""
        started = time.monotonic()
        if self.token is not None and not kpi_owner.renew(self.engine, self.token, self.ttl):
            log.warning("leader lease: token %s was taken over", self.token)
            self.token = None
        if self.token is None:
            self.token = kpi_owner.take(self.engine, self.holder, self.ttl)
        if self.token is not None:
            self._valid_until = started + self.ttl * self.MARGIN
        return self.held

    def release(self) -> None:
        token, self.token = self.token, None
        if token is not None:
            kpi_owner.release(self.engine, token)

    def forked(self) -> "StoreLease":
        return StoreLease(self.engine, self.ttl)


class Election:
    """The store's lease when given (PostgreSQL), else the Redis lock when Redis is
    configured and answers, else the host's file lock. `term` counts the times this
    process became the leader: state kept from an earlier term is not to be trusted."""

    def __init__(self, file_lock: FileLock | None = None, redis_lock: RedisLock | None = None,
                 store_lease: StoreLease | None = None):
        self.file_lock = file_lock
        self.redis_lock = redis_lock
        self.store_lease = store_lease
        self.term = 0
        self._leader = False
        self._redis_down = False
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        # the store's lease counts only while it is surely still ours (see StoreLease.MARGIN)
        return self._leader and (self.store_lease is None or self.store_lease.held)

    @property
    def token(self) -> int | None:
        """The fencing token of the store's lease (None without one)."""
        return self.store_lease.token if self.store_lease is not None and self.is_leader else None

    def refresh(self) -> bool:
        """Take or keep the leadership if possible; True when this process is the leader."""
        with self._lock:
            if self.store_lease is not None:
                try:
                    return self._set(self.store_lease.acquire())
                except Exception as exc:  # the store does not answer: nobody can take the lease
                    log.warning("leader lease: store unreachable (%s)", exc.__class__.__name__)
                    if self.store_lease.held:
                        # still surely ours (no one can take it before it expires): go on
                        # leading, so that the failing polls publish the sections as stale
                        # at once instead of leaving the last snapshot "fresh" until it ages
                        return self._set(True)
                    self.store_lease.token = None
                    return self._set(False)
            if self.redis_lock is not None:
                try:
                    leader = self.redis_lock.acquire()
                except redis.RedisError as exc:
                    if not self._redis_down:
                        log.warning("leader lock: Redis unreachable (%s); one poller per host "
                                    "until it answers", exc.__class__.__name__)
                    self._redis_down = True
                else:
                    if self._redis_down:
                        log.warning("leader lock: Redis answers again; one poller per deployment")
                    self._redis_down = False
                    if self.file_lock is not None:
                        self.file_lock.release()
                    return self._set(leader)
            return self._set(self.file_lock is not None and self.file_lock.acquire())

    def _set(self, leader: bool) -> bool:
        if leader != self._leader:
            log.info("%s: %s the poller", _holder_name(), "now" if leader else "no longer")
            if leader:
                self.term += 1
        self._leader = leader
        return leader

    def resign(self) -> None:
        """Stop counting this process the leader (its token was refused) until the next refresh."""
        with self._lock:
            self._leader = False
            if self.store_lease is not None:
                self.store_lease.token = None

    def release(self) -> None:
        with self._lock:
            self._leader = False
            if self.store_lease is not None:
                try:
                    self.store_lease.release()
                except Exception:
                    pass  # it expires by itself
            if self.redis_lock is not None:
                try:
                    self.redis_lock.release()
                except redis.RedisError:
                    pass  # it expires by itself
            if self.file_lock is not None:
                self.file_lock.release()

    def forked(self) -> "Election":
        return Election(self.file_lock.forked() if self.file_lock is not None else None,
                        self.redis_lock.forked() if self.redis_lock is not None else None,
                        self.store_lease.forked() if self.store_lease is not None else None)
