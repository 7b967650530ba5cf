"""Engines for the incident store, SQLite or PostgreSQL."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def make_engine(url: str, *, busy_timeout_ms: int = 10000, create: bool = True, **kwargs) -> Engine:
    """An engine with the connection settings the store needs.

    SQLite: WAL so that the simulator writes while pages read, and a busy timeout on
    every connection so that a short write lock waits instead of failing. With
    `create=False` (the app, the poller) a missing SQLite file is an error, not a new
    empty store made behind the operator's back.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            if create:
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            else:
                timeout = busy_timeout_ms / 1000
                kwargs.setdefault("creator", lambda: sqlite3.connect(
                    f"file:{Path(db).resolve()}?mode=rw", uri=True, timeout=timeout, check_same_thread=False))
        kwargs.setdefault("connect_args", {"timeout": busy_timeout_ms / 1000})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)
