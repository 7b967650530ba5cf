"""The login rate limits (Flask-Limiter): per client address and per account name.

Counted in Redis when `REDIS_URL` is set (keys under `<CACHE_PREFIX>:limits:`), else in
the store's `rate_limits` table, so that a limit holds across every worker and host
either way: a per-process memory count would let N workers allow N times the limit.
Fixed windows that open at the first attempt.
"""
from __future__ import annotations

import hashlib
import threading
import time

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import Storage
from sqlalchemy.exc import SQLAlchemyError

from datasource import rate_limits

STORE_SCHEME = "ccstore"


class StoreStorage(Storage):
    """A `limits` storage on the incident store (datasource/rate_limits.py)."""

    STORAGE_SCHEME = [STORE_SCHEME]
    PRUNE_SECONDS = 60.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, engine=None, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if engine is None:
            raise ValueError("StoreStorage needs engine=")
        self.engine = engine
        self._pruned = 0.0
        self._lock = threading.Lock()

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self._prune()
        return rate_limits.hit(self.engine, key, expiry, amount)

    def get(self, key: str) -> int:
        return rate_limits.count(self.engine, key)

    def get_expiry(self, key: str) -> float:
        return rate_limits.expires_at(self.engine, key)

    def check(self) -> bool:
        try:
            rate_limits.count(self.engine, "-")
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        return rate_limits.clear_all(self.engine)

    def clear(self, key: str) -> None:
        rate_limits.clear(self.engine, key)

    def _prune(self) -> None:
        """Closed windows are dropped now and then, so the table holds only open ones."""
        now = time.monotonic()
        with self._lock:
            if now - self._pruned < self.PRUNE_SECONDS:
                return
            self._pruned = now
        rate_limits.clear(self.engine)


def account_key() -> str:
    """The per-account bucket: the submitted name (case and spaces folded), hashed so that
    a hostile name is never part of a key; unknown names are limited like known ones."""
    name = (request.form.get("username") or "").strip().casefold()[:256]
    return "account:" + hashlib.sha256(name.encode()).hexdigest()[:32]


def address_key() -> str:
    """The client's address: the socket's, or with TRUSTED_PROXY_HOPS the one ProxyFix took
    from X-Forwarded-For."""
    return "address:" + (get_remote_address() or "-")


def make_limiter(server, settings, engine) -> Limiter:
    prefix = settings["CACHE_PREFIX"]
    if settings["REDIS_URL"]:
        timeout = settings["REDIS_TIMEOUT_SECONDS"]
        uri, options = settings["REDIS_URL"], {"key_prefix": f"{prefix}:limits", "socket_timeout": timeout,
                                               "socket_connect_timeout": timeout}
    else:
        uri, options = f"{STORE_SCHEME}://", {"engine": engine}
    return Limiter(address_key, app=server, default_limits=[], storage_uri=uri, storage_options=options,
                   key_prefix=prefix, strategy="fixed-window", in_memory_fallback_enabled=True,
                   swallow_errors=True)


def failed_login(response) -> bool:
    """Only refused passwords count against an account: its owner logging in does not."""
    return response.status_code == 401
