"""Throw-away stores for benchmarks: a fresh PostgreSQL database or SQLite file each."""
from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from datasource.engine import make_engine
from datasource.migrate import upgrade

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", os.environ.get(
    "TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))


@contextmanager
def fresh_store(backend: str, keep: bool = False):
    """Yield an engine on a new migrated store; drop it afterwards unless `keep`."""
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="cc-bench-"))
        engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()
            if not keep:
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cc_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
