"""Where the snapshot lives between the poller and the screens.

With `REDIS_URL` the snapshot is in Redis, shared by every worker and host: one key
holds the whole snapshot (`<prefix>:snapshot`), one small key its head (version,
computed_at, data_as_of, statuses; `<prefix>:head`). Without Redis, and while Redis is
unreachable, the same keys are files in a host-local folder, so the web workers of a
host still see what that host's poller wrote.

A snapshot older than `stale_after` (READY_MAX_AGE_SECONDS) is never served as fresh,
whichever store it comes from (a host folder keeps what an earlier outage left there):
its fresh sections are served as stale since its `computed_at`, under a version of
their own, so that screens redraw them once with the stale marks.

A refresh reads the head only. `get_if_changed(known)` answers "unchanged" from it
without fetching or parsing the snapshot; a changed snapshot is parsed once per
process and version. The cache never talks to the SQL store.

Small hashes (`add`, `put_fields`, `fields`, `drop_fields`) carry the metrics figures, so that any
worker can report what the poller measured.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Mapping, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dashboard.settings import Settings
from dashboard.snapshot import Head, Section, Snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")

SNAPSHOT, HEAD = "snapshot", "head"
FALLBACKS = ("counters", "cache_fallbacks")  # (hash, field) counting switches to local
AGED = "-aged"  # suffix of the version under which an old snapshot is served
AGED_REASON = "no poll within the age limit"


class MemoryStore:
    """In this process only: for a single process and for tests."""

    def __init__(self):
        self._values: dict[str, str] = {}
        self._hashes: dict[str, dict[str, str]] = {}
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def set_many(self, values: Mapping[str, str]) -> None:
        with self._lock:
            self._values.update(values)

    def add(self, key: str, amounts: Mapping[str, float]) -> None:
        with self._lock:
            h = self._hashes.setdefault(key, {})
            for f, n in amounts.items():
                h[f] = repr(float(h.get(f, 0)) + n)

    def put_fields(self, key: str, fields: Mapping[str, str]) -> None:
        with self._lock:
            self._hashes.setdefault(key, {}).update({f: str(v) for f, v in fields.items()})

    def fields(self, key: str) -> dict[str, str]:
        return dict(self._hashes.get(key, {}))

    def drop_fields(self, key: str, names) -> None:
        with self._lock:
            for f in names:
                self._hashes.get(key, {}).pop(f, None)

    def put_expiring(self, name: str, text: str, ttl: float) -> None:
        with self._lock:
            self._values[name] = text
            self._expiry[name] = time.monotonic() + ttl

    def get_expiring(self, name: str) -> str | None:
        if self._expiry.get(name, 0) < time.monotonic():
            return None
        return self._values.get(name)

    def claim(self, name: str, ttl: float) -> bool:
        key = "claim:" + name
        with self._lock:
            if self._expiry.get(key, 0) >= time.monotonic():
                return False
            self._values[key], self._expiry[key] = "1", time.monotonic() + ttl
            return True

    def ping(self) -> None:
        pass


class FileStore:
    """One folder shared by the processes of one host; writes replace files atomically."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, name: str, text: str) -> None:
        tmp = self.folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.folder / name)

    def get(self, name: str) -> str | None:
        try:
            return (self.folder / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def set_many(self, values: Mapping[str, str]) -> None:
        for name, text in values.items():  # in the caller's order: snapshot before head
            self._write(name, text)

    @contextmanager
    def _locked(self, key: str):
        with open(self.folder / f"{key}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def add(self, key: str, amounts: Mapping[str, float]) -> None:
        with self._locked(key):
            h = self.fields(key)
            for f, n in amounts.items():
                h[f] = repr(float(h.get(f, 0)) + n)
            self._write(f"{key}.json", json.dumps(h))

    def put_fields(self, key: str, fields: Mapping[str, str]) -> None:
        with self._locked(key):
            h = self.fields(key)
            h.update({f: str(v) for f, v in fields.items()})
            self._write(f"{key}.json", json.dumps(h))

    def fields(self, key: str) -> dict[str, str]:
        raw = self.get(f"{key}.json")
        return json.loads(raw) if raw else {}

    def drop_fields(self, key: str, names) -> None:
        with self._locked(key):
            h = self.fields(key)
            for f in names:
                h.pop(f, None)
            self._write(f"{key}.json", json.dumps(h))

    # expiring values live in their own folder, pruned as new ones arrive
    def _expiring(self, name: str) -> Path:
        return self.folder / "expiring" / hashlib.sha256(name.encode()).hexdigest()[:32]

    def put_expiring(self, name: str, text: str, ttl: float) -> None:
        path = self._expiring(name)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.utime(tmp, (time.time() + ttl,) * 2)  # mtime = expiry time
        os.replace(tmp, path)
        self._prune(path.parent)

    def get_expiring(self, name: str) -> str | None:
        path = self._expiring(name)
        try:
            if path.stat().st_mtime < time.time():
                return None
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def claim(self, name: str, ttl: float) -> bool:
        path = self._expiring("claim:" + name)
        path.parent.mkdir(exist_ok=True)
        try:
            if path.stat().st_mtime >= time.time():
                return False
            path.unlink()  # an expired claim
        except FileNotFoundError:
            pass
        # the claim appears with its expiry already set (link is atomic and fails if the
        # name exists): no window in which another process sees a fresh claim as expired
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text("")
        os.utime(tmp, (time.time() + ttl,) * 2)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    @staticmethod
    def _prune(folder: Path) -> None:
        now = time.time()
        for entry in os.scandir(folder):
            try:
                if entry.stat().st_mtime < now - 60:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass

    def ping(self) -> None:
        pass


def redis_client(url: str, timeout: float) -> redis.Redis:
    """A client that fails fast: short timeouts and no retries (the cache has its own)."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry=Retry(NoBackoff(), 0), decode_responses=True)


class RedisStore:
    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def get(self, name: str) -> str | None:
        return self.client.get(self.key(name))

    def set_many(self, values: Mapping[str, str]) -> None:
        pipe = self.client.pipeline(transaction=True)  # readers never see half a publish
        for name, text in values.items():
            pipe.set(self.key(name), text)
        pipe.execute()

    def add(self, key: str, amounts: Mapping[str, float]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for f, n in amounts.items():
            pipe.hincrbyfloat(self.key(key), f, n)
        pipe.execute()

    def put_fields(self, key: str, fields: Mapping[str, str]) -> None:
        self.client.hset(self.key(key), mapping={f: str(v) for f, v in fields.items()})

    def fields(self, key: str) -> dict[str, str]:
        return self.client.hgetall(self.key(key))

    def drop_fields(self, key: str, names) -> None:
        if names:
            self.client.hdel(self.key(key), *names)

    def put_expiring(self, name: str, text: str, ttl: float) -> None:
        self.client.set(self.key(name), text, px=max(1, int(ttl * 1000)))

    def get_expiring(self, name: str) -> str | None:
        return self.client.get(self.key(name))

    def claim(self, name: str, ttl: float) -> bool:
        return bool(self.client.set(self.key("claim:" + name), "1", nx=True, px=max(1, int(ttl * 1000))))

    def ping(self) -> None:
        self.client.ping()


def deployment_folder(settings: Settings) -> Path:
    """The host-local folder of one deployment: one per store and prefix, so test runs
    and side-by-side deployments on a host never share a snapshot or a leader lock."""
    digest = hashlib.sha256(f"{settings.database_url}|{settings['CACHE_PREFIX']}".encode()).hexdigest()
    return settings.local_cache_dir / f"{settings['CACHE_PREFIX']}-{digest[:12]}"


class Cache:
    """Redis when configured and reachable, else the local store; see the module doc."""

    def __init__(self, local, redis_store: RedisStore | None = None, *, retry_seconds: float = 5.0,
                 stale_after: float | None = None):
        self.local = local
        self.redis = redis_store
        self.retry_seconds = retry_seconds
        self.stale_after = stale_after  # seconds; None: snapshots are served as published
        self._lock = threading.Lock()
        self._down_since: float | None = None  # monotonic time Redis was found unreachable
        self._retry_at = 0.0
        self._pending: Counter = Counter()  # increments made locally while Redis was down
        self._memo: Snapshot | None = None  # the last snapshot parsed by this process

    @classmethod
    def from_settings(cls, settings: Settings) -> "Cache":
        local = FileStore(deployment_folder(settings))
        store = None
        if settings["REDIS_URL"]:
            store = RedisStore(redis_client(settings["REDIS_URL"], settings["REDIS_TIMEOUT_SECONDS"]),
                               settings["CACHE_PREFIX"])
        return cls(local, store, retry_seconds=settings["REDIS_RETRY_SECONDS"],
                   stale_after=settings.ready_max_age)

    # --- which store -----------------------------------------------------------------
    @property
    def using_fallback(self) -> bool:
        """True while Redis is configured but unreachable."""
        return self._down_since is not None

    def _call(self, op: Callable[[object], T]) -> T:
        if self.redis is not None and (self._down_since is None or time.monotonic() >= self._retry_at):
            try:
                result = op(self.redis)
            except redis.RedisError as exc:
                self._went_down(exc)
            else:
                if self._down_since is not None:
                    self._came_back()
                return result
        return op(self.local)

    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
            self._retry_at = time.monotonic() + self.retry_seconds
        if first:
            log.warning("Redis unreachable (%s: %s); serving the snapshot from %s until it "
                        "answers again", exc.__class__.__name__, exc, getattr(self.local, "folder", "memory"))
            key, f = FALLBACKS
            self.local.add(key, {f: 1})
            with self._lock:
                self._pending[(key, f)] += 1

    def _came_back(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._down_since = None
        log.warning("Redis answers again; the snapshot is shared through Redis once more")
        by_key: dict[str, dict[str, float]] = {}
        for (key, f), n in pending.items():
            by_key.setdefault(key, {})[f] = n
        while by_key:
            key, amounts = next(iter(by_key.items()))
            try:
                self.redis.add(key, amounts)
            except redis.RedisError as exc:  # gone again at once: keep the rest for next time
                with self._lock:
                    self._pending.update({(k, f): n for k, a in by_key.items() for f, n in a.items()})
                self._went_down(exc)
                return
            del by_key[key]

    def ping(self) -> str | None:
        """None when the cache's store answers, else why not (for /readyz)."""
        if self.redis is None:
            return None
        if self._down_since is not None and time.monotonic() < self._retry_at:
            return "redis unreachable (retrying)"
        try:
            self._call(lambda s: s.ping())
        except OSError as exc:  # the local store is a folder: a full or read-only disk
            return f"local cache: {exc.__class__.__name__}"
        return "redis unreachable" if self._down_since is not None else None

    # --- the snapshot ----------------------------------------------------------------
    def publish(self, snap: Snapshot) -> None:
        """Store a new snapshot (the poller's job). The big key is rewritten only when
        the content changed; the head moves on every poll."""
        def _write(store):
            raw = store.get(HEAD)
            same = raw is not None and Head.from_json(raw).version == snap.version
            values = {} if same else {SNAPSHOT: snap.to_json()}
            values[HEAD] = snap.head().to_json()
            store.set_many(values)
        self._call(_write)
        with self._lock:
            self._memo = snap

    def _raw_head(self) -> Head | None:
        raw = self._call(lambda s: s.get(HEAD))
        if raw:
            return Head.from_json(raw)
        # nothing where we read: the first seconds after Redis died (the host folder not
        # yet written) or after it came back empty (no poll published yet). The last
        # snapshot this process parsed bridges the gap; it ages like any other and is
        # served stale once older than the limit.
        memo = self._memo
        return memo.head() if memo is not None else None

    def _aged(self, h: Head) -> bool:
        return self.stale_after is not None and h.age(dt.datetime.now(dt.timezone.utc)) > self.stale_after

    def head(self) -> Head | None:
        h = self._raw_head()
        if h is None or not self._aged(h):
            return h
        return dataclasses.replace(h, version=h.version + AGED, statuses={
            n: "stale" if st == "fresh" else st for n, st in h.statuses.items()})

    def current_version(self) -> str | None:
        h = self.head()
        return h.version if h else None

    def get(self) -> Snapshot | None:
        h = self._raw_head()
        return self._served(h, self._load(h)) if h else None

    def get_if_changed(self, known_version: str | None) -> Snapshot | None:
        """The snapshot when its version differs from `known_version`, else None."""
        h = self._raw_head()
        if h is None or h.version + (AGED if self._aged(h) else "") == known_version:
            return None
        snap = self._served(h, self._load(h))
        return None if snap is None or snap.version == known_version else snap

    def _served(self, h: Head, snap: Snapshot | None) -> Snapshot | None:
        """An old snapshot's fresh sections as stale since it was computed (see the module doc)."""
        if snap is None or snap.version != h.version or not self._aged(h):
            return snap
        sections = {n: Section("stale", s.data, snap.computed_at, AGED_REASON) if s.status == "fresh" else s
                    for n, s in snap.sections.items()}
        return Snapshot(snap.computed_at, snap.data_as_of, sections, version=snap.version + AGED)

    # --- the host folder, for a follower copying the store's snapshot -------------------
    def local_head(self) -> Head | None:
        raw = self.local.get(HEAD)
        return Head.from_json(raw) if raw else None

    def copy_in(self, head: str, body: str | None) -> None:
        """Write a snapshot (`body` None: only its head moved) into the host folder."""
        self.local.set_many({SNAPSHOT: body, HEAD: head} if body is not None else {HEAD: head})

    def _load(self, h: Head) -> Snapshot | None:
        snap = self._memo
        if snap is None or snap.version != h.version:
            raw = self._call(lambda s: s.get(SNAPSHOT))
            if raw is None:
                return snap
            snap = Snapshot.from_json(raw)
            with self._lock:
                self._memo = snap
        if snap.version == h.version:  # the head carries the latest poll's times
            snap = dataclasses.replace(snap, computed_at=h.computed_at, data_as_of=h.data_as_of)
        return snap

    # --- expiring values (rendered screens) --------------------------------------------
    def put_expiring(self, name: str, text: str, ttl: float) -> None:
        self._call(lambda s: s.put_expiring(name, text, ttl))

    def get_expiring(self, name: str) -> str | None:
        return self._call(lambda s: s.get_expiring(name))

    def claim(self, name: str, ttl: float) -> bool:
        """True for exactly one caller per `name` until `ttl` passes (SET NX): who computes."""
        return self._call(lambda s: s.claim(name, ttl))

    # --- small hashes for metrics ----------------------------------------------------
    def add(self, key: str, amounts: Mapping[str, float]) -> None:
        """Increment fields of a shared hash (counters, histogram buckets)."""
        def _add(store):
            store.add(key, amounts)
            if store is self.local and self.redis is not None:
                with self._lock:  # replayed into Redis when it answers again
                    self._pending.update({(key, f): n for f, n in amounts.items()})
        self._call(_add)

    def put_fields(self, key: str, fields: Mapping[str, str]) -> None:
        self._call(lambda s: s.put_fields(key, fields))

    def fields(self, key: str) -> dict[str, str]:
        return self._call(lambda s: s.fields(key))

    def drop_fields(self, key: str, names) -> None:
        names = list(names)
        self._call(lambda s: s.drop_fields(key, names))
