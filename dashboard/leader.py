"""Who polls: exactly one process per deployment, elected by a lock.

With Redis the lock is a key set with NX and an expiry, holding a token that names the
holder; the leader renews it, releases it on a clean stop, and when the leader dies
the key expires and the next process to try takes over. Without Redis (or while it is
unreachable) an fcntl lock on a file in the host-local cache folder keeps one poller
per host; the kernel drops it the moment its process dies.
"""
from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import uuid
from pathlib import Path

import redis

log = logging.getLogger(__name__)

# Touch the key only while it still holds our token: never renew or delete a lock
# that expired and was taken by another process meanwhile.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RedisLock:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float):
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.token = f"{_holder_name()}:{uuid.uuid4().hex[:8]}"
        self.held = False
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Renew the lock if held, else try to take it. Raises RedisError if unreachable."""
        if self.held and self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        self.held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def release(self) -> None:
        if self.held:
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


class Election:
    """Redis lock when Redis is configured and answers, else the host's file lock."""

    def __init__(self, file_lock: FileLock, redis_lock: RedisLock | None = None):
        self.file_lock = file_lock
        self.redis_lock = redis_lock
        self.is_leader = False
        self._redis_down = False
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Take or keep the leadership if possible; True when this process is the leader."""
        with self._lock:
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
                    self.file_lock.release()
                    return self._set(leader)
            return self._set(self.file_lock.acquire())

    def _set(self, leader: bool) -> bool:
        if leader != self.is_leader:
            log.info("%s: %s the poller", _holder_name(), "now" if leader else "no longer")
        self.is_leader = leader
        return leader

    def release(self) -> None:
        with self._lock:
            self.is_leader = False
            if self.redis_lock is not None:
                try:
                    self.redis_lock.release()
                except redis.RedisError:
                    pass  # it expires by itself
            self.file_lock.release()

    def forked(self) -> "Election":
        return Election(self.file_lock.forked(),
                        self.redis_lock.forked() if self.redis_lock is not None else None)
