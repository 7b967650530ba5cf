"""Helpers the data-path tests share: settings from overrides only, free ports, a
redis-server of a test's own, waiting for a condition, and a store that stops answering."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dashboard.settings import Settings
from tests.conftest import PG_ADMIN_URL


def make_settings(tmp_path, **overrides) -> Settings:
    """Settings from overrides only (the machine's environment does not leak in)."""
    base = {"LOCAL_CACHE_DIR": str(tmp_path / "cache"), "LOG_LEVEL": "WARNING",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    return Settings.from_env({**base, **overrides}, environ={})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server of this test's own on a free loopback port."""

    def __init__(self, port):
        self.port = port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def wait_for(predicate, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(step)


def make_store_unreachable(engine, store_url, tmp_path):
    """Returns a function that brings it back. SQLite: the file goes away; PostgreSQL:
    the database refuses connections and its sessions are ended."""
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        away = tmp_path / "away"
        away.mkdir()
        engine.dispose()  # open connections would keep reading the moved file
        for p in path.parent.glob(path.name + "*"):
            shutil.move(p, away / p.name)

        def back():
            engine.dispose()
            for p in path.parent.glob(path.name + "*"):  # the empty store a reconnect made
                p.unlink()
            for p in away.iterdir():
                shutil.move(p, path.parent / p.name)
        return back
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = url.database
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                     {"n": name})

    def back():
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    return back
