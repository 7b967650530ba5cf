"""A readiness probe of the store: SELECT 1 with a short timeout, on a connection of its own."""
from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

STORE_TIMEOUT_SECONDS = 2  # libpq rounds connect_timeout below 2 up to 2


class StoreProbe:
    """SELECT 1 on a connection of its own, never a pooled one that hides an outage."""

    def __init__(self, url: str, timeout: int = STORE_TIMEOUT_SECONDS):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = parsed.database
            # mode=rw: a probe must not create an empty store where the file has gone
            self.engine = create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
                f"file:{path}?mode=rw", uri=True, timeout=timeout))
        else:
            self.engine = create_engine(url, poolclass=NullPool, connect_args={
                "connect_timeout": timeout, "options": f"-c statement_timeout={timeout * 1000}"})

    def check(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; only its class is shown
            return f"unreachable ({exc.__class__.__name__})"
        return None
